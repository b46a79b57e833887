import Glibc

/// The engine's random number generator: xoshiro256** seeded through SplitMix64.
///
/// The same seed gives the same stream on every platform and from every door (Swift, C, R);
/// Ember never uses the system RNG. Floats take the top 24 bits, so they are exact multiples of
/// 2⁻²⁴ in [0, 1).
public struct RandomGenerator: Sendable, Equatable {
    /// The four 64-bit words of xoshiro256** state.
    public var state: (UInt64, UInt64, UInt64, UInt64) { s }
    @usableFromInline var s: (UInt64, UInt64, UInt64, UInt64)

    /// Seeds the generator; any 64-bit seed (including 0) is valid.
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        self.s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    /// Restores a state captured from `state`.
    /// - Throws: if all four words are zero (the one state xoshiro cannot leave).
    public init(state: (UInt64, UInt64, UInt64, UInt64)) throws {
        guard state.0 | state.1 | state.2 | state.3 != 0 else {
            throw EmberError.invalidArgument("rng", "state must not be all zeros")
        }
        self.s = state
    }

    public static func == (a: RandomGenerator, b: RandomGenerator) -> Bool {
        a.state == b.state
    }

    /// The next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        let result = RandomGenerator.rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = RandomGenerator.rotl(s.3, 45)
        return result
    }

    @inlinable
    static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A uniform float in [0, 1).
    @inlinable
    public mutating func uniform() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// A uniform float in [low, high).
    @inlinable
    public mutating func uniform(_ low: Float, _ high: Float) -> Float {
        low + (high - low) * uniform()
    }

    /// A standard normal float (Box–Muller on two uniform doubles).
    public mutating func normal() -> Float {
        let u1 = (Double(next() >> 11) + 1) * 0x1p-53  // (0, 1]: log is finite
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// True with probability `p`.
    @inlinable
    public mutating func bernoulli(_ p: Float) -> Bool { uniform() < p }

    /// A uniform integer in 0..<bound without modulo bias (Lemire's method).
    public mutating func below(_ bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// A uniformly random permutation of 0..<n (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<max(n, 0))
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                let j = below(i + 1)
                p.swapAt(i, j)
            }
        }
        return p
    }
}
