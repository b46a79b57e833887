import EmberCore
@testable import EmberNN
import XCTest

final class StandardizationTests: XCTestCase {
    /// Mean and sample standard deviation of the masked columns (against sums in the test), scale 1
    /// for a constant column, and the identity for the others.
    func testFitMatchesColumnStatistics() throws {
        let rows: [[Float]] = [[1, 10, 5, 7], [2, 20, 5, -1], [4, 30, 5, 3], [8, 45, 5, 0.5]]
        let x = try Tensor(shape: [4, 4], data: rows.flatMap { $0 })
        let s = Standardization.fit(x, mask: [true, false, true, true])
        for j in [0, 3] {
            let column = rows.map { Double($0[j]) }
            let mean = column.reduce(0, +) / 4
            let sd = (column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 3).squareRoot()
            XCTAssertEqual(s.mean[j], Float(mean), "mean of column \(j)")
            XCTAssertEqual(s.scale[j], Float(sd), "scale of column \(j)")
        }
        XCTAssertEqual(s.mean[1], 0)
        XCTAssertEqual(s.scale[1], 1, "an unmasked column is left alone")
        XCTAssertEqual(s.mean[2], 5)
        XCTAssertEqual(s.scale[2], 1, "a constant column keeps scale 1")
        let y = s.apply(x)
        XCTAssertEqual(y.data[1 * 4 + 0], (2 - s.mean[0]) / s.scale[0])
        XCTAssertEqual(y.data[1 * 4 + 1], 20)
    }

    /// No masked column: the identity, without reading the data; applying it returns the input's
    /// storage unchanged (no copy per batch).
    func testNoMaskedColumnIsTheIdentity() throws {
        let x = try Tensor(shape: [3, 2], data: [1, 2, 3, 4, 5, 6])
        let s = Standardization.fit(x, mask: [false, false])
        XCTAssertEqual(s, .identity(2))
        XCTAssertTrue(s.isIdentity)
        let y = s.apply(x)
        XCTAssertTrue(y.storage === x.storage)
        XCTAssertFalse(Standardization(mean: [0, 1], scale: [1, 1]).isIdentity)
    }

    /// A range of rows scaled as it is copied gives the bits of copying the rows and scaling the
    /// copy, for tabular and image-shaped inputs, the identity and an empty range; rows outside the
    /// data are refused.
    func testARangeOfRowsScaledAsCopiedMatchesCopyingThenScaling() throws {
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.build(shape: [50, 13]) { o in for i in 0..<o.count { o[i] = rng.uniform(-20, 20) } }
        let s = Standardization.fit(x, mask: (0..<13).map { $0 % 4 != 2 })
        for range in [0..<50, 7..<31, 49..<50, 10..<10] {
            let fused = try s.apply(x, rows: range), reference = s.apply(try x.gatherRows(range))
            XCTAssertEqual(fused.shape, [range.count, 13])
            XCTAssertEqual(fused.data.map(\.bitPattern), reference.data.map(\.bitPattern), "rows \(range)")
        }
        let image = Tensor.build(shape: [6, 2, 2, 3]) { o in for i in 0..<o.count { o[i] = rng.uniform(0, 255) } }
        let pixels = Standardization(mean: (0..<12).map { Float($0) }, scale: (0..<12).map { Float($0 + 1) })
        let fused = try pixels.apply(image, rows: 2..<5)
        XCTAssertEqual(fused.shape, [3, 2, 2, 3])
        XCTAssertEqual(fused.data.map(\.bitPattern), pixels.apply(try image.gatherRows(2..<5)).data.map(\.bitPattern))
        XCTAssertEqual(try Standardization.identity(13).apply(x, rows: 3..<9).data, try x.gatherRows(3..<9).data)
        XCTAssertThrowsError(try s.apply(x, rows: 40..<51)) { XCTAssertTrue("\($0)".contains("out of range 0..<50"), "\($0)") }
        XCTAssertThrowsError(try pixels.apply(x, rows: 0..<2)) { XCTAssertTrue("\($0)".contains("expected rows of 12 values"), "\($0)") }
    }
}
