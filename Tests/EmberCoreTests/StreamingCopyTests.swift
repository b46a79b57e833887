// cember_copy_streaming (CEmberKernels/elementwise.c): the copy a training step keeps of its
// weights, in every instruction-set variant this CPU runs.
import CEmberKernels
import XCTest

final class StreamingCopyTests: XCTestCase {
    /// Every variant copies exactly n floats, from every alignment of the destination (the head
    /// before the first 64-byte boundary, the streamed vectors, the tail), and writes nothing past n.
    func testEveryVariantCopiesExactlyNFloatsAtEveryAlignment() {
        defer { _ = cember_kernels_force_isa(-1) }
        let source = (0..<1100).map { Float($0) * 0.5 - 7 }
        for isa in [-1, 1, 0] {
            _ = cember_kernels_force_isa(Int32(isa))
            for offset in 0..<17 {
                for n in [0, 1, 15, 16, 17, 31, 33, 100, 1000] {
                    var destination = [Float](repeating: .nan, count: offset + n + 8)
                    destination.withUnsafeMutableBufferPointer { d in
                        source.withUnsafeBufferPointer { s in
                            cember_copy_streaming(d.baseAddress! + offset, s.baseAddress!, Int64(n))
                        }
                    }
                    let what = "isa cap \(isa), offset \(offset), n \(n)"
                    XCTAssertEqual(Array(destination[offset..<(offset + n)]), Array(source[0..<n]), what)
                    XCTAssertTrue(destination[0..<offset].allSatisfy(\.isNaN), "\(what): nothing before")
                    XCTAssertTrue(destination[(offset + n)...].allSatisfy(\.isNaN), "\(what): nothing after")
                }
            }
        }
    }
}
