// cember_add_code_rows (CEmberKernels/elementwise.c): the weight columns of one-hot inputs added to
// a linear layer's rows, against the same additions in Swift, in every instruction-set variant; and
// cember_linear_code_rows (gemm.c), the layer's product and those additions in one pass, against
// the product of cember_sgemm_bias_relu followed by cember_add_code_rows.
import CEmberKernels
import EmberCore
import XCTest

final class CodeRowsKernelTests: XCTestCase {
    func testCodeRowsAreAddedInOrderThenTheBiasAndTheReLUInEveryVariant() {
        defer { _ = cember_kernels_force_isa(-1) }
        var rng = RandomGenerator(seed: 23)
        let cards = [3, 1, 4], offsets = [0, 3, 4], k = 3, rows = 9
        for isa in 0...Int(cember_cpu_isa()) {
            _ = cember_kernels_force_isa(Int32(isa))
            for width in [1, 15, 16, 17, 64, 70, 129] {
                let table = (0..<(8 * width)).map { _ in rng.uniform(-2, 2) }
                let bias = (0..<width).map { _ in rng.uniform(-1, 1) }
                // Every level, and unseen codes (-1 and the cardinality and beyond) that add nothing.
                let codes: [Int64] = (0..<(rows * k)).map { Int64(($0 * 5 + $0 / k) % (cards[$0 % k] + 3)) - 1 }
                let start = (0..<(rows * width)).map { _ in rng.uniform(-3, 3) }
                for fromZero in [false, true] {
                    for withBias in [false, true] {
                        for relu in [false, true] {
                            var expected = start
                            for r in 0..<rows {
                                for c in 0..<width {
                                    var a: Float = fromZero ? 0 : start[r * width + c]
                                    for j in 0..<k {
                                        let v = Int(codes[r * k + j])
                                        if v >= 0 && v < cards[j] { a += table[(offsets[j] + v) * width + c] }
                                    }
                                    if withBias { a += bias[c] }
                                    expected[r * width + c] = relu ? (a > 0 ? a : 0) : a
                                }
                            }
                            var y = start
                            let c64 = cards.map(Int64.init), o64 = offsets.map(Int64.init)
                            y.withUnsafeMutableBufferPointer { py in
                                cember_add_code_rows(py.baseAddress, Int64(rows), Int64(width), fromZero ? 1 : 0, table, codes, Int64(k),
                                                     c64, o64, withBias ? bias : nil, relu ? 1 : 0)
                            }
                            XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern),
                                           "isa \(isa), width \(width), from zero \(fromZero), bias \(withBias), relu \(relu)")
                        }
                    }
                }
            }
        }
    }

    /// The one-pass layer gives the two passes' bits in every variant: row counts around each
    /// variant's tile (2, 6, 12 rows), widths around 16 columns, depths 1–40, one or three codes
    /// per row (unseen ones among them), with and without the bias and the ReLU; nothing outside
    /// the output's rows is written (finite sentinels after them).
    func testOnePassLayerWithCodeRowsGivesTheBitsOfTheProductThenTheCodeRows() {
        defer { _ = cember_kernels_force_isa(-1) }
        var rng = RandomGenerator(seed: 29)
        for isa in 0...Int(cember_cpu_isa()) {
            _ = cember_kernels_force_isa(Int32(isa))
            for (m, n, k) in [(1, 1, 1), (2, 16, 8), (5, 17, 3), (6, 64, 8), (7, 15, 13), (12, 33, 40), (13, 64, 1),
                              (25, 70, 16), (37, 129, 7)] {
                for cards in [[5], [3, 1, 4]] {
                    let nc = cards.count
                    let offsets = cards.indices.map { cards[..<$0].reduce(0, +) }
                    let ldw = (n + 15) / 16 * 16
                    let x = (0..<(m * k)).map { _ in rng.uniform(-2, 2) }
                    let w = (0..<(n * k)).map { _ in rng.uniform(-1, 1) }
                    let wt = (0..<(k * ldw)).map { i in i % ldw < n ? w[(i % ldw) * k + i / ldw] : 0 }
                    let table = (0..<(cards.reduce(0, +) * n)).map { _ in rng.uniform(-1, 1) }
                    let bias = (0..<n).map { _ in rng.uniform(-1, 1) }
                    let codes: [Int64] = (0..<(m * nc)).map { Int64(($0 * 5 + $0 / nc) % (cards[$0 % nc] + 2)) - 1 }
                    let c64 = cards.map(Int64.init), o64 = offsets.map(Int64.init)
                    for withBias in [false, true] {
                        for relu in [false, true] {
                            var expected = [Float](repeating: 7, count: m * n + 16), y = expected
                            expected.withUnsafeMutableBufferPointer { p in
                                cember_sgemm_bias_relu(0, 1, Int64(m), Int64(n), Int64(k), x, Int64(k), w, Int64(k), nil, 0,
                                                       p.baseAddress, Int64(n))
                                cember_add_code_rows(p.baseAddress, Int64(m), Int64(n), 0, table, codes, Int64(nc), c64, o64,
                                                     withBias ? bias : nil, relu ? 1 : 0)
                            }
                            y.withUnsafeMutableBufferPointer { p in
                                cember_linear_code_rows(Int64(m), Int64(n), Int64(k), x, wt, Int64(ldw), table, codes, Int64(nc),
                                                        c64, o64, withBias ? bias : nil, relu ? 1 : 0, p.baseAddress)
                            }
                            XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern),
                                           "isa \(isa), \(m) × \(n) × \(k), cardinalities \(cards), bias \(withBias), relu \(relu)")
                        }
                    }
                }
            }
        }
    }
}
