// cember_sigmoid (CEmberKernels/softmax.c): the logistic function of prediction probabilities,
// against the stable scalar formula in Double, in every instruction-set variant.
import CEmberKernels
import EmberCore
import Glibc
import XCTest

final class SigmoidKernelTests: XCTestCase {
    /// The scalar formula with glibc's expf, as EmberNN's `sigmoid(_:)`.
    static func scalar(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + expf(-x)) }
        let e = expf(x)
        return e / (1 + e)
    }

    static func run(_ x: [Float], inPlace: Bool = false) -> [Float] {
        var out = inPlace ? x : [Float](repeating: .nan, count: x.count + 3)
        if inPlace {
            out.withUnsafeMutableBufferPointer { o in cember_sigmoid(o.baseAddress, o.baseAddress, Int64(x.count)) }
        } else {
            x.withUnsafeBufferPointer { p in
                out.withUnsafeMutableBufferPointer { o in cember_sigmoid(p.baseAddress, o.baseAddress, Int64(x.count)) }
            }
        }
        return out
    }

    func testSigmoidMatchesTheFormulaInEveryVariant() throws {
        defer { _ = cember_kernels_force_isa(-1) }
        var rng = RandomGenerator(seed: 31)
        // Every length up to two vectors and a tail, values across the range where exp(-|x|) is normal.
        var x = (0..<70).map { _ in rng.uniform(-30, 30) }
        x += [0, -0.0, 1e-30, -1e-30, 86.9, -86.9, 16.7, -16.7, 88, -88, 100, -100, 104, -104,
              .infinity, -.infinity, .nan, 3]
        var results: [[Float]] = []
        for isa in 0...Int(cember_cpu_isa()) {
            _ = cember_kernels_force_isa(Int32(isa))
            for n in [0, 1, 15, 16, 17, 33, x.count] {
                let y = Self.run(Array(x[0..<n]))
                for i in 0..<n {
                    let reference = Float(1 / (1 + exp(-Double(x[i]))))
                    if x[i].isNaN {
                        XCTAssertTrue(y[i].isNaN, "NaN stays NaN")
                    } else if abs(x[i]) > 87 {
                        XCTAssertEqual(y[i], Self.scalar(x[i]), "\(x[i]): the scalar formula, subnormals included")
                    } else {
                        // Within 2 ulp of the exact value (relative 2.4e-7), the scalar formula's accuracy.
                        XCTAssertEqual(y[i], reference, accuracy: max(abs(reference) * 2.4e-7, .leastNonzeroMagnitude), "sigmoid(\(x[i]))")
                    }
                }
                XCTAssertTrue(y[n...].allSatisfy(\.isNaN), "nothing written past n = \(n)")
            }
            let whole = Self.run(x)
            XCTAssertEqual(Self.run(x, inPlace: true).map(\.bitPattern), whole[0..<x.count].map(\.bitPattern), "in place")
            results.append(Array(whole[0..<x.count]))
        }
        for r in results.dropFirst() { XCTAssertEqual(r.map(\.bitPattern), results[0].map(\.bitPattern), "every variant the same bits") }
        // The vector path keeps the scalar formula's symmetry closely: σ(x) + σ(-x) = 1.
        let pairs = Self.run(x.filter { !$0.isNaN } + x.filter { !$0.isNaN }.map { -$0 })
        let m = x.filter { !$0.isNaN }.count
        for i in 0..<m { XCTAssertEqual(pairs[i] + pairs[m + i], 1, accuracy: 2e-7, "σ(\(x[i])) + σ(-\(x[i]))") }
        XCTAssertGreaterThan(Self.run([-100])[0], 0, "no underflow to 0 at -100")
        XCTAssertEqual(Self.run([0])[0], 0.5)
    }
}
