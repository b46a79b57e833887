// cember_add_code_rows (CEmberKernels/elementwise.c): the weight columns of one-hot inputs added to
// a linear layer's rows, against the same additions in Swift, in every instruction-set variant.
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
}
