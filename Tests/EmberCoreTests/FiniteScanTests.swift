// firstNonFinite (EmberCore/Finite.swift over CEmberKernels' scans): the first NaN or infinity of
// the host's doubles and of float tensors, across the scans' 1024-value blocks.
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
                    // Values past count are not read.
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
