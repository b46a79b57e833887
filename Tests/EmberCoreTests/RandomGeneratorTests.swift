// The engine RNG: determinism, independence of seeds, distributions, state round trip.
// (Known-answer values against an independent implementation: GoldenCoreTests.)
@testable import EmberCore
import EmberTestSupport
import XCTest

final class RandomGeneratorTests: XCTestCase {
    func testSameSeedSameStream() {
        var a = RandomGenerator(seed: 12345), b = RandomGenerator(seed: 12345)
        for _ in 0..<1000 { XCTAssertEqual(a.next(), b.next()) }
        XCTAssertEqual(a, b)
        XCTAssertEqual((0..<100).map { _ in a.uniform() }, (0..<100).map { _ in b.uniform() })
        XCTAssertEqual((0..<100).map { _ in a.normal() }, (0..<100).map { _ in b.normal() })
        XCTAssertEqual(a.permutation(50), b.permutation(50))
    }

    func testDifferentSeedsDiffer() {
        for (s1, s2) in [(UInt64(0), UInt64(1)), (1, 2), (42, 43), (0, UInt64.max)] {
            var a = RandomGenerator(seed: s1), b = RandomGenerator(seed: s2)
            let xa = (0..<16).map { _ in a.next() }, xb = (0..<16).map { _ in b.next() }
            XCTAssertNotEqual(xa, xb, "seeds \(s1) and \(s2)")
            // Not merely shifted: no common values at all in a short window.
            XCTAssertTrue(Set(xa).isDisjoint(with: Set(xb)), "seeds \(s1) and \(s2)")
        }
    }

    func testStateRoundTrip() throws {
        var a = RandomGenerator(seed: 7)
        for _ in 0..<10 { _ = a.next() }
        var b = try RandomGenerator(state: a.state)
        XCTAssertEqual((0..<20).map { _ in a.next() }, (0..<20).map { _ in b.next() })
        assertEmberError(.invalidArgument, ["[rng]", "all zeros"]) { try RandomGenerator(state: (0, 0, 0, 0)) }
    }

    func testPermutationIsAPermutation() {
        var rng = RandomGenerator(seed: 3)
        for n in [0, 1, 2, 7, 100, 1000] {
            let p = rng.permutation(n)
            XCTAssertEqual(p.count, n)
            XCTAssertEqual(p.sorted(), Array(0..<n), "permutation(\(n))")
        }
        // It actually shuffles: 1000 elements in identity order has probability 1/1000!.
        XCTAssertNotEqual(rng.permutation(1000), Array(0..<1000))
        XCTAssertEqual(rng.permutation(-1), [])
    }

    func testPermutationIsUniformOnThreeElements() {
        var rng = RandomGenerator(seed: 11)
        var counts: [[Int]: Int] = [:]
        let draws = 60_000
        for _ in 0..<draws { counts[rng.permutation(3), default: 0] += 1 }
        XCTAssertEqual(counts.count, 6)
        // Each of the 6 orders: expected 10000, sd ≈ 91; allow 5 sd.
        for (p, c) in counts { XCTAssertEqual(Double(c), 10_000, accuracy: 460, "order \(p)") }
    }

    func testBelowIsInRangeAndCoversIt() {
        var rng = RandomGenerator(seed: 5)
        var seen = Set<Int>()
        for _ in 0..<10_000 {
            let v = rng.below(7)
            XCTAssertTrue((0..<7).contains(v))
            seen.insert(v)
        }
        XCTAssertEqual(seen, Set(0..<7))
        XCTAssertEqual(rng.below(1), 0)
        XCTAssertEqual(rng.below(0), 0)
    }

    func testUniformRangeAndMean() {
        var rng = RandomGenerator(seed: 99)
        let n = 100_000
        var sum = 0.0, sumSq = 0.0
        var lo: Float = 1, hi: Float = 0
        for _ in 0..<n {
            let u = rng.uniform()
            XCTAssertTrue(u >= 0 && u < 1)
            // A multiple of 2⁻²⁴ exactly.
            XCTAssertEqual((u * 0x1p24).rounded(), u * 0x1p24)
            lo = min(lo, u)
            hi = max(hi, u)
            sum += Double(u)
            sumSq += Double(u) * Double(u)
        }
        let mean = sum / Double(n)
        let variance = sumSq / Double(n) - mean * mean
        // sd of the mean = sqrt(1/12 / n) ≈ 9.1e-4; allow 5 sd.
        XCTAssertEqual(mean, 0.5, accuracy: 0.0046)
        XCTAssertEqual(variance, 1.0 / 12, accuracy: 0.002)
        XCTAssertLessThan(lo, 0.001)
        XCTAssertGreaterThan(hi, 0.999)
        var r2 = RandomGenerator(seed: 1)
        for _ in 0..<1000 {
            let v = r2.uniform(-3, 5)
            XCTAssertTrue(v >= -3 && v < 5)
        }
    }

    func testNormalMomentsOver100kDraws() {
        var rng = RandomGenerator(seed: 2025)
        let n = 100_000
        var sum = 0.0, sumSq = 0.0, beyond2 = 0
        for _ in 0..<n {
            let z = Double(rng.normal())
            XCTAssertTrue(z.isFinite)
            sum += z
            sumSq += z * z
            if abs(z) > 2 { beyond2 += 1 }
        }
        let mean = sum / Double(n)
        let sd = (sumSq / Double(n) - mean * mean).squareRoot()
        // sd of the mean ≈ 0.0032, of the sd ≈ 0.0022; allow 5 sd.
        XCTAssertEqual(mean, 0, accuracy: 0.016)
        XCTAssertEqual(sd, 1, accuracy: 0.011)
        // P(|Z| > 2) = 0.0455: shape, not just moments.
        XCTAssertEqual(Double(beyond2) / Double(n), 0.0455, accuracy: 0.0035)
    }

    func testBernoulliRate() {
        var rng = RandomGenerator(seed: 8)
        let n = 100_000
        var hits = 0
        for _ in 0..<n where rng.bernoulli(0.3) { hits += 1 }
        // sd ≈ 0.00145; allow 5 sd.
        XCTAssertEqual(Double(hits) / Double(n), 0.3, accuracy: 0.0073)
    }

    /// Dropout with the engine RNG: drop rate p and scaling 1/(1-p) (it cannot match PyTorch's RNG).
    func testDropoutRateAndScaling() throws {
        var rng = RandomGenerator(seed: 17)
        let p: Float = 0.3
        let x = Variable(try Tensor(shape: [200, 500], repeating: 2), requiresGrad: true)
        let y = try dropout(x, p: p, rng: &rng)
        let zeros = y.value.data.filter { $0 == 0 }.count
        let kept = y.value.data.filter { $0 != 0 }
        XCTAssertEqual(zeros + kept.count, 100_000)
        XCTAssertEqual(Double(zeros) / 100_000, 0.3, accuracy: 0.0073)
        XCTAssertTrue(kept.allSatisfy { $0 == 2 * (1 / (1 - p)) })
        let m = try mean(y).value.scalarValue!
        XCTAssertEqual(m, 2, accuracy: 0.03, "inverted dropout keeps the mean")
        // p = 0 is the identity, and draws nothing from the RNG.
        let before = rng
        let same = try dropout(x, p: 0, rng: &rng)
        XCTAssertTrue(same === x)
        XCTAssertEqual(rng, before)
    }
}
