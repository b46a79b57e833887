// cember_copy_rows (CEmberKernels/convolution.c): column blocks of concatenations and standardised
// prediction batches, in every instruction-set variant.
import CEmberKernels
import EmberCore
import XCTest

final class RowCopyTests: XCTestCase {
    /// Every variant copies exactly the rows' `len` values between strides (scaled where asked, the
    /// bits of (x - mean) / scale in Swift) and writes nothing else.
    func testRowsAreCopiedOrScaledBetweenStridesAndNothingElseIsWritten() {
        defer { _ = cember_kernels_force_isa(-1) }
        var rng = RandomGenerator(seed: 8)
        for isa in 0...Int(cember_cpu_isa()) {
            _ = cember_kernels_force_isa(Int32(isa))
            for len in [1, 5, 8, 13, 16, 17, 40] {
                let rows = 7, srcLd = len + 3, dstLd = len + 5, offset = 2
                let src = (0..<(rows * srcLd)).map { _ in rng.uniform(-4, 4) }
                let mean = (0..<len).map { _ in rng.uniform(-1, 1) }, scale = (0..<len).map { _ in rng.uniform(0.5, 3) }
                for scaled in [false, true] {
                    // A finite sentinel: masked lanes of the scaled copy hold NaN, which a stray
                    // store would leave behind.
                    var dst = [Float](repeating: -7, count: offset + rows * dstLd + 16)
                    src.withUnsafeBufferPointer { s in
                        mean.withUnsafeBufferPointer { m in
                            scale.withUnsafeBufferPointer { sc in
                                dst.withUnsafeMutableBufferPointer { d in
                                    cember_copy_rows(s.baseAddress, Int64(srcLd), Int64(rows), Int64(len), scaled ? m.baseAddress : nil,
                                                     scaled ? sc.baseAddress : nil, d.baseAddress! + offset, Int64(dstLd))
                                }
                            }
                        }
                    }
                    let what = "isa \(isa), len \(len), scaled \(scaled)"
                    for i in 0..<dst.count {
                        let k = i - offset, r = k / dstLd, j = k % dstLd
                        if k >= 0 && r < rows && j < len {
                            let x = src[r * srcLd + j]
                            XCTAssertEqual(dst[i].bitPattern, (scaled ? (x - mean[j]) / scale[j] : x).bitPattern, "\(what): row \(r), column \(j)")
                        } else {
                            XCTAssertEqual(dst[i], -7, "\(what): nothing written at \(i)")
                        }
                    }
                }
            }
        }
    }

    /// Concatenation along the last axis and a middle axis puts every part's block where it belongs.
    func testConcatenationPlacesEachPart() throws {
        let a = try Tensor(shape: [3, 2], data: [1, 2, 3, 4, 5, 6])
        let b = try Tensor(shape: [3, 1], data: [7, 8, 9])
        XCTAssertEqual(try Tensor.concatenated([a, b, a], axis: 1).data, [1, 2, 7, 1, 2, 3, 4, 8, 3, 4, 5, 6, 9, 5, 6])
        let c = try Tensor(shape: [2, 1, 2], data: [1, 2, 3, 4]), d = try Tensor(shape: [2, 2, 2], data: [5, 6, 7, 8, 9, 10, 11, 12])
        let cd = try Tensor.concatenated([c, d], axis: 1)
        XCTAssertEqual(cd.shape, [2, 3, 2])
        XCTAssertEqual(cd.data, [1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12])
        XCTAssertEqual(try Tensor.concatenated([a, try Tensor(shape: [0, 2], data: []), a], axis: 0).data, a.data + a.data)
        XCTAssertEqual(try Tensor.concatenated([try Tensor(shape: [3, 0], data: []), b], axis: 1).data, b.data)
    }
}
