// withDenormalsFlushed: FTZ/DAZ inside the block, the caller's mode restored afterwards.
@testable import EmberCore
import EmberTestSupport
import XCTest

/// Keeps the optimiser from folding denormal arithmetic at compile time.
@inline(never)
func opaque(_ x: Float) -> Float { x }

/// Arithmetic in a call the optimiser cannot move across the MXCSR changes (plain float
/// operations may be scheduled before or after the opaque calls that set the mode).
@inline(never)
func divide(_ x: Float, _ y: Float) -> Float { x / y }

@inline(never)
func multiply(_ x: Float, _ y: Float) -> Float { x * y }

final class FloatingPointModeTests: XCTestCase {
    func testFlushInsideRestoreOutside() throws {
        #if arch(x86_64) || arch(i386)
        XCTAssertFalse(denormalsAreFlushed, "test processes start without FTZ/DAZ")
        let tiny = opaque(Float.leastNormalMagnitude)
        XCTAssertTrue((opaque(tiny) / 4).isSubnormal, "denormals exist outside")
        XCTAssertEqual(opaque(Float.leastNonzeroMagnitude) * opaque(0x1p24), 0x1p-125)
        let inside: (Bool, Float, Float) = withDenormalsFlushed {
            // 2⁻¹⁴⁹ · 2²⁴ = 2⁻¹²⁵ is a normal result, so only DAZ can make it 0.
            (denormalsAreFlushed, divide(tiny, 4), multiply(Float.leastNonzeroMagnitude, 0x1p24))
        }
        XCTAssertTrue(inside.0, "FTZ and DAZ set inside")
        XCTAssertEqual(inside.1, 0, "FTZ: a denormal result is flushed to zero")
        XCTAssertEqual(inside.2, 0, "DAZ: a denormal operand reads as zero")
        XCTAssertFalse(denormalsAreFlushed, "restored after the block")
        XCTAssertTrue((opaque(tiny) / 4).isSubnormal)
        #else
        throw XCTSkip("FTZ/DAZ are x86 MXCSR bits")
        #endif
    }

    func testRestoredWhenBodyThrowsAndWhenNested() throws {
        #if arch(x86_64) || arch(i386)
        struct Boom: Error {}
        XCTAssertThrowsError(try withDenormalsFlushed { throw Boom() })
        XCTAssertFalse(denormalsAreFlushed, "restored after a throwing body")
        withDenormalsFlushed {
            withDenormalsFlushed { XCTAssertTrue(denormalsAreFlushed) }
            XCTAssertTrue(denormalsAreFlushed, "the inner block restores the outer (flushed) mode")
        }
        XCTAssertFalse(denormalsAreFlushed)
        #else
        throw XCTSkip("FTZ/DAZ are x86 MXCSR bits")
        #endif
    }
}
