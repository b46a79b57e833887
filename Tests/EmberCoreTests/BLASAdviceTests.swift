// The engine's advice when OpenBLAS falls back to kernels that leave the CPU's vector units unused
// (docs/architecture.md#openblas-core-detection: Debian's OpenBLAS picks "Prescott" on CPUs it does not know).
import CEmberKernels
@testable import EmberCore
import XCTest

final class BLASAdviceTests: XCTestCase {
    func testFallbackKernelsOnAVXCPUsGetAdviceNamingTheVariable() throws {
        let avx512 = try XCTUnwrap(BLAS.coreAdvice(core: "Prescott", cpuISA: 2))
        for part in ["'Prescott'", "AVX-512", "OPENBLAS_CORETYPE=SkylakeX", "before the process starts",
                     "Ember runs its own matrix-product kernels"] {
            XCTAssertTrue(avx512.contains(part), "\(part) in: \(avx512)")
        }
        let avx2 = try XCTUnwrap(BLAS.coreAdvice(core: "Sandybridge", cpuISA: 1))
        for part in ["'Sandybridge'", "AVX2", "OPENBLAS_CORETYPE=Haswell"] {
            XCTAssertTrue(avx2.contains(part), "\(part) in: \(avx2)")
        }
        XCTAssertNotNil(BLAS.coreAdvice(core: "NEHALEM", cpuISA: 1), "core names compare case-insensitively")
        XCTAssertNotNil(BLAS.coreAdvice(core: "Core2", cpuISA: 2))
    }

    func testKernelsThatFitOrCPUsWithoutAVX2GetNone() {
        for core in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"] {
            for isa in 0...2 { XCTAssertNil(BLAS.coreAdvice(core: core, cpuISA: isa), "\(core) on ISA \(isa)") }
        }
        XCTAssertNil(BLAS.coreAdvice(core: "Prescott", cpuISA: 0), "without AVX2 there are no faster kernels to pick")
    }

    func testThisProcessAdvisesFromItsCoreAndCPU() {
        XCTAssertEqual(BLAS.coreAdvice, BLAS.coreAdvice(core: BLAS.coreName, cpuISA: Int(cember_cpu_isa())))
        XCTAssertGreaterThanOrEqual(cember_cpu_isa(), cember_kernels_isa(), "the kernels never use more than the CPU has")
    }
}
