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
}
