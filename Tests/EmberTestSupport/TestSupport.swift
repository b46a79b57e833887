// Helpers shared by the test targets: fixture loading, tolerance checks, central differences.
import EmberCore
import Foundation
import XCTest

/// Tolerances of docs/architecture.md#numerics-contract
/// (`|actual - expected| <= atol + rtol · |expected|`, elementwise).
public struct Tolerance: Sendable {
    public var rtol: Double
    public var atol: Double

    public init(rtol: Double, atol: Double) {
        self.rtol = rtol
        self.atol = atol
    }

    /// Elementwise ops (relu, dropout): rtol 1e-6, atol 1e-7.
    public static let elementwise = Tolerance(rtol: 1e-6, atol: 1e-7)
    /// Reductions, matmul, layers, losses: rtol 1e-5, atol 1e-6.
    public static let reduction = Tolerance(rtol: 1e-5, atol: 1e-6)
    /// Optimizer steps against PyTorch: rtol 1e-5, atol 1e-6.
    public static let optimizer = Tolerance(rtol: 1e-5, atol: 1e-6)
}

public enum FixtureError: Error, CustomStringConvertible {
    case missing(String)
    case malformed(String)
    public var description: String {
        switch self {
        case let .missing(s): return "fixture missing: \(s)"
        case let .malformed(s): return "fixture malformed: \(s)"
        }
    }
}

/// A JSON fixture written by tools/golden/generate.py.
public struct Fixture {
    public let root: [String: Any]

    public init(root: [String: Any]) { self.root = root }

    /// Loads `Fixtures/<name>.json` from a test target's resource bundle.
    public static func load(_ name: String, in bundle: Bundle) throws -> Fixture {
        guard let url = bundle.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
            throw FixtureError.missing("Fixtures/\(name).json (run python3 tools/golden/generate.py)")
        }
        let data = try Data(contentsOf: url)
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FixtureError.malformed("\(name).json is not an object")
        }
        return Fixture(root: root)
    }
}

/// Reads fields of a fixture object.
public struct Case {
    public let dict: [String: Any]
    public init(_ any: Any?) throws {
        guard let d = any as? [String: Any] else { throw FixtureError.malformed("expected an object") }
        dict = d
    }

    public func any(_ key: String) throws -> Any {
        guard let v = dict[key] else { throw FixtureError.missing(key) }
        return v
    }

    /// A tensor from nested lists; the shape is read off the nesting (a number is rank 0).
    public func tensor(_ key: String) throws -> Tensor { try tensorFrom(try any(key)) }

    public func double(_ key: String) throws -> Double {
        guard let n = try any(key) as? NSNumber else { throw FixtureError.malformed("\(key) is not a number") }
        return n.doubleValue
    }

    public func float(_ key: String) throws -> Float { Float(try double(key)) }

    public func int(_ key: String) throws -> Int {
        guard let n = try any(key) as? NSNumber else { throw FixtureError.malformed("\(key) is not a number") }
        return n.intValue
    }

    public func bool(_ key: String) throws -> Bool {
        guard let b = try any(key) as? Bool else { throw FixtureError.malformed("\(key) is not a bool") }
        return b
    }

    public func string(_ key: String) throws -> String {
        guard let s = try any(key) as? String else { throw FixtureError.malformed("\(key) is not a string") }
        return s
    }

    public func cases(_ key: String) throws -> [Case] {
        guard let a = try any(key) as? [Any] else { throw FixtureError.malformed("\(key) is not an array") }
        return try a.map { try Case($0) }
    }

    public func optionalTensor(_ key: String) throws -> Tensor? { dict[key] == nil ? nil : try tensor(key) }
}

public func tensorFrom(_ any: Any) throws -> Tensor {
    var shape: [Int] = []
    var cursor: Any? = any
    while let a = cursor as? [Any] {
        shape.append(a.count)
        cursor = a.first
    }
    var data: [Float] = []
    func flatten(_ v: Any) throws {
        if let a = v as? [Any] {
            for e in a { try flatten(e) }
        } else if let n = v as? NSNumber {
            data.append(Float(n.doubleValue))
        } else {
            throw FixtureError.malformed("non-numeric tensor element \(v)")
        }
    }
    try flatten(any)
    return try Tensor(shape: shape, data: data)
}

/// Asserts that `actual` and `expected` have the same shape and agree within `tol` elementwise.
public func assertClose(_ actual: Tensor?, _ expected: Tensor, _ tol: Tolerance, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    guard let actual else {
        XCTFail("\(what): no value (expected shape \(shapeString(expected.shape)))", file: file, line: line)
        return
    }
    guard actual.shape == expected.shape else {
        XCTFail("\(what): shape \(shapeString(actual.shape)) != expected \(shapeString(expected.shape))", file: file, line: line)
        return
    }
    var worst: (Int, Double)? = nil
    // `data` copies the tensor's values: read it once, not per element.
    let actualData = actual.data, expectedData = expected.data
    for i in 0..<expected.count {
        let a = Double(actualData[i]), e = Double(expectedData[i])
        let excess = abs(a - e) - (tol.atol + tol.rtol * abs(e))
        if !(excess <= 0) && (worst == nil || !(excess <= worst!.1)) { worst = (i, excess) }
    }
    if let (i, _) = worst {
        XCTFail("\(what): element \(i) is \(actual.data[i]), expected \(expected.data[i]) " +
                "(rtol \(tol.rtol), atol \(tol.atol))", file: file, line: line)
    }
}

/// Scalar version of `assertClose`.
public func assertClose(_ actual: Float?, _ expected: Float, _ tol: Tolerance, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    assertClose(actual.map(Tensor.scalar), Tensor.scalar(expected), tol, what, file: file, line: line)
}

/// Asserts that `body` throws an `EmberError` of `kind` whose message contains every fragment.
public func assertEmberError<T>(_ kind: EmberError.Kind, _ fragments: [String], file: StaticString = #filePath,
                         line: UInt = #line, _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected an EmberError(\(kind)) containing \(fragments), but nothing was thrown", file: file, line: line)
    } catch let e as EmberError {
        XCTAssertEqual(e.kind, kind, "kind of error: \(e.message)", file: file, line: line)
        for f in fragments {
            XCTAssertTrue(e.message.contains(f), "message '\(e.message)' lacks '\(f)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected an EmberError, got \(error)", file: file, line: line)
    }
}

/// A tensor of `shape` with entries drawn from `rng` (uniform in [low, high)).
public func randomTensor(_ shape: [Int], _ rng: inout RandomGenerator, _ low: Float = -1, _ high: Float = 1) -> Tensor {
    let n = shape.reduce(1, *)
    return try! Tensor(shape: shape, data: (0..<n).map { _ in rng.uniform(low, high) })
}

/// Central-difference gradient check in float32; returns one line per disagreement.
///
/// `build` maps the leaves to an output; the checked objective is `Σ output · seed` (seed of the
/// output's shape), differentiated w.r.t. every element of every leaf in `check`. The analytic
/// gradient comes from `backward(seed:)`. A numeric derivative `n` and analytic `a` must satisfy
/// `|n - a| <= atol + rtol · max(|n|, |a|)`; atol absorbs float32 rounding of the objective
/// divided by the step (≈ 1e-7 · |objective| / h).
public func gradientMismatches(_ leaves: [Tensor], check: [Int]? = nil, seed: Tensor? = nil, step h: Float = 1e-2,
                        rtol: Double = 1e-2, atol: Double = 1e-3,
                        _ build: ([Variable]) throws -> Variable) throws -> [String] {
    let vars = leaves.map { Variable($0, requiresGrad: true) }
    let out = try build(vars)
    let g = try seed ?? Tensor(shape: out.shape, repeating: 1)
    try out.backward(seed: g)
    func objective(_ ls: [Tensor]) throws -> Double {
        let o = try GradientMode.withoutGradients { try build(ls.map { Variable($0) }) }
        var s = 0.0
        for i in 0..<o.value.count { s += Double(o.value.data[i]) * Double(g.data[i]) }
        return s
    }
    var problems: [String] = []
    for li in check ?? Array(leaves.indices) {
        guard let analytic = vars[li].grad, analytic.shape == leaves[li].shape else {
            problems.append("leaf \(li) received no gradient of its shape")
            continue
        }
        for j in 0..<leaves[li].count {
            var plus = leaves, minus = leaves
            plus[li].withUnsafeMutableBufferPointer { $0[j] += h }
            minus[li].withUnsafeMutableBufferPointer { $0[j] -= h }
            let delta = Double(plus[li].data[j]) - Double(minus[li].data[j])
            let numeric = (try objective(plus) - objective(minus)) / delta
            let a = Double(analytic.data[j])
            if !(abs(numeric - a) <= atol + rtol * max(abs(numeric), abs(a))) {
                problems.append("leaf \(li) element \(j): analytic \(a), numeric \(numeric)")
            }
        }
    }
    return problems
}

/// Asserts that `gradientMismatches` finds nothing.
public func gradientCheck(_ leaves: [Tensor], check: [Int]? = nil, seed: Tensor? = nil, step h: Float = 1e-2,
                   rtol: Double = 1e-2, atol: Double = 1e-3, _ what: String,
                   file: StaticString = #filePath, line: UInt = #line,
                   _ build: ([Variable]) throws -> Variable) throws {
    let problems = try gradientMismatches(leaves, check: check, seed: seed, step: h, rtol: rtol, atol: atol, build)
    XCTAssertTrue(problems.isEmpty, "\(what): " + problems.joined(separator: "; "), file: file, line: line)
}
