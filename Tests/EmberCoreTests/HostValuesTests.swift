// EmberCore/HostValues.swift over CEmberKernels: firstNonFinite, the first NaN or infinity of the
// host's doubles and of float tensors across the scans' 1024-value blocks, and convertColumnsToRows.
import CEmberKernels
import EmberCore
import XCTest

final class FiniteScanTests: XCTestCase {
    func testTheFirstNonFiniteDoubleIsFoundInEveryBlockAndFiniteExtremesPass() {
        let finite: [Double] = [0, -0.0, 1e300, -1e300, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 3.5]
        for n in [1, 7, 1023, 1024, 1025, 3000] {
            var x = (0..<n).map { finite[$0 % finite.count] }
            XCTAssertNil(x.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count: n) }, "n \(n): all finite")
            for position in Set([0, n / 2, 1023, 1024, n - 1]) where position >= 0 && position < n {
                for bad in [Double.nan, .infinity, -.infinity] {
                    x[position] = bad
                    if position + 5 < n { x[position + 5] = .nan }  // a later one is not reported
                    let found = x.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count: n) }
                    XCTAssertEqual(found, position, "n \(n), \(bad) at \(position)")
                    // A count that ends at the value does not reach it.
                    XCTAssertNil(x.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count: position) })
                    x[position] = finite[position % finite.count]
                    if position + 5 < n { x[position + 5] = finite[(position + 5) % finite.count] }
                }
            }
        }
    }

    func testTheFirstNonFiniteFloatIsFound() {
        var x = [Float](repeating: 1, count: 2100)
        XCTAssertNil(x.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count: 2100) })
        x[1500] = -.infinity
        x[2000] = .nan
        XCTAssertEqual(x.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count: 2100) }, 1500)
        x[3] = .nan
        XCTAssertEqual(x.withUnsafeBufferPointer { firstNonFinite($0.baseAddress!, count: 2100) }, 3)
    }
}

/// convertColumnsToRows (cember_columns_to_rows): the host's double columns as row-major floats.
final class ColumnsToRowsTests: XCTestCase {
    /// Every variant writes Float(columns[c][r]) for the asked rows only, for column counts around
    /// the 8-column groups and row ranges around the 8-row blocks, extremes included.
    func testColumnsBecomeRowsWithSwiftsRoundingInEveryVariant() {
        defer { _ = cember_kernels_force_isa(-1) }
        var rng = RandomGenerator(seed: 21)
        let special: [Double] = [1e300, -1e300, Double.leastNormalMagnitude / 4, -0.0, 0.1, 3.4028235677973366e38, 16777217, .nan, .infinity]
        for isa in 0...Int(cember_cpu_isa()) {
            _ = cember_kernels_force_isa(Int32(isa))
            for ncols in [1, 7, 8, 9, 13, 16, 19] {
                let n = 37
                let columns: [[Double]] = (0..<ncols).map { c in
                    (0..<n).map { r in (r * ncols + c) % 11 == 0 ? special[(r + c) % special.count] : Double(rng.uniform(-1e4, 1e4)) * 1.000000001 }
                }
                for (first, rows) in [(0, n), (3, 17), (8, 8), (5, 0), (36, 1)] {
                    var dst = [Float](repeating: -7, count: n * ncols)
                    columns.withUnsafeBufferPointers { pointers in
                        dst.withUnsafeMutableBufferPointer { convertColumnsToRows(pointers, first: first, rows: rows, into: $0.baseAddress!) }
                    }
                    for r in 0..<n {
                        for c in 0..<ncols {
                            let got = dst[r * ncols + c]
                            let what = "isa \(isa), \(ncols) columns, rows \(first)..<\(first + rows): row \(r), column \(c)"
                            if r >= first && r < first + rows {
                                let want = Float(columns[c][r])
                                XCTAssertTrue(got.bitPattern == want.bitPattern || (got.isNaN && want.isNaN), "\(what): \(got) against \(want)")
                            } else {
                                XCTAssertEqual(got, -7, "\(what): not written")
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Array where Element == [Double] {
    /// The columns' base addresses, valid inside `body`.
    func withUnsafeBufferPointers<R>(_ body: ([UnsafePointer<Double>?]) -> R) -> R {
        var pointers: [UnsafePointer<Double>?] = []
        func nest(_ i: Int) -> R {
            if i == count { return body(pointers) }
            return self[i].withUnsafeBufferPointer { p in
                pointers.append(p.baseAddress)
                return nest(i + 1)
            }
        }
        return nest(0)
    }
}
