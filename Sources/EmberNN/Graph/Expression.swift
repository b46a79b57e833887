import EmberCore

/// A differentiable expression over a few arguments, written as data: custom layers (the node op
/// `fn`) and custom losses (`LossFunction` of kind `.expression`) that R and Swift callers build
/// from arithmetic and math on their inputs. Each operation is an op of EmberCore's tape, so
/// autograd differentiates it; the JSON form is stored in network descriptions and documented in
/// docs/network-description.md.
public indirect enum NetworkExpression: Equatable, Sendable {
    /// The `index`-th argument (a layer's inputs; a loss's prediction 0 and target 1).
    case argument(Int)
    /// A number, broadcast against the other operand.
    case constant(Double)
    /// An operation on sub-expressions, with its integer option (`dim` of reductions, softmax and
    /// select; `index` of select).
    case operation(NetworkExpressionOp, [NetworkExpression], dim: Int?, index: Int?)

    /// Evaluates the expression on the tape for `arguments`.
    public func evaluate(_ arguments: [Variable]) throws -> Variable {
        switch self {
        case let .argument(i):
            guard i >= 0 && i < arguments.count else {
                throw EmberError.invalidArgument("fn", "the expression reads argument \(i + 1); there are \(arguments.count)")
            }
            return arguments[i]
        case let .constant(c):
            return Variable(.scalar(Float(c)))
        case let .operation(op, args, dim, index):
            return try op.apply(try args.map { try $0.evaluate(arguments) }, args: args, dim: dim, index: index)
        }
    }

    /// The largest argument index read, plus one.
    public var arity: Int {
        switch self {
        case let .argument(i): return i + 1
        case .constant: return 0
        case let .operation(_, args, _, _): return args.map(\.arity).max() ?? 0
        }
    }
}

/// The operations of `NetworkExpression`.
public enum NetworkExpressionOp: String, CaseIterable, Sendable {
    case add, sub, mul, div, pow, maximum, minimum
    case neg, exp, log, sqrt, abs, square, log1p, sin, cos, tanh, sigmoid, relu
    case sum, mean, softmax, logSoftmax = "log_softmax", select

    var operands: Int {
        switch self {
        case .add, .sub, .mul, .div, .pow, .maximum, .minimum: return 2
        default: return 1
        }
    }

    func apply(_ v: [Variable], args: [NetworkExpression], dim: Int?, index: Int?) throws -> Variable {
        guard v.count == operands else {
            throw EmberError.invalidArgument("fn", "'\(rawValue)' takes \(operands) operand(s), got \(v.count)")
        }
        switch self {
        case .add: return try binary(v[0], v[1], .add)
        case .sub: return try binary(v[0], v[1], .sub)
        case .mul: return try binary(v[0], v[1], .mul)
        case .div: return try binary(v[0], v[1], .div)
        case .pow:
            // A constant exponent is the scalar power (its gradient is defined for negative bases).
            if case let .constant(c) = args[1] { return unary(v[0], .powScalar(Float(c))) }
            return try binary(v[0], v[1], .pow)
        case .maximum: return try binary(v[0], v[1], .maximum)
        case .minimum: return try binary(v[0], v[1], .minimum)
        case .neg: return unary(v[0], .neg)
        case .exp: return unary(v[0], .exp)
        case .log: return unary(v[0], .log)
        case .sqrt: return unary(v[0], .sqrt)
        case .abs: return unary(v[0], .abs)
        case .square: return unary(v[0], .square)
        case .log1p: return unary(v[0], .log1p)
        case .sin: return unary(v[0], .sin)
        case .cos: return unary(v[0], .cos)
        case .tanh: return unary(v[0], .tanh)
        case .sigmoid: return unary(v[0], .sigmoid)
        case .relu: return unary(v[0], .relu)
        case .sum: return try EmberCore.sum(v[0], axes: dim.map { [$0] })
        case .mean: return try EmberCore.mean(v[0], axes: dim.map { [$0] })
        case .softmax: return try EmberCore.softmax(v[0], axis: dim ?? -1)
        case .logSoftmax: return try EmberCore.logSoftmax(v[0], axis: dim ?? -1)
        case .select:
            guard let d = dim, let i = index else { throw EmberError.invalidArgument("fn", "'select' needs 'dim' and 'index'") }
            let x = v[0]
            let axis = d < 0 ? d + x.shape.count : d
            guard axis >= 1 && axis < x.shape.count else {
                throw EmberError.invalidArgument("fn", "'select' dim \(d) is out of range for shape \(shapeString(x.shape)) (0 is the batch)")
            }
            guard i >= 0 && i < x.shape[axis] else {
                throw EmberError.invalidArgument("fn", "'select' index \(i) is out of range: dimension \(d) has \(x.shape[axis]) entries")
            }
            var shape = x.shape
            shape.remove(at: axis)
            return try reshape(try slice(x, axis: axis, start: i, end: i + 1), shape)
        }
    }
}

// MARK: JSON

extension NetworkExpression {
    /// The JSON form: `{"arg": 0}`, `{"const": 1.5}` or `{"op": "mul", "args": [...], "dim": 1, "index": 0}`.
    public var json: JSONValue {
        switch self {
        case let .argument(i): return .object([("arg", .number(Double(i)))])
        case let .constant(c): return .object([("const", .number(c))])
        case let .operation(op, args, dim, index):
            var members: [(String, JSONValue)] = [("op", .string(op.rawValue)), ("args", .array(args.map(\.json)))]
            if let dim { members.append(("dim", .number(Double(dim)))) }
            if let index { members.append(("index", .number(Double(index)))) }
            return .object(members)
        }
    }

    /// Parses the JSON form; errors name the part that is wrong. `depth` bounds nesting (a
    /// malicious description cannot exhaust the stack).
    public init(json: JSONValue, depth: Int = 0) throws {
        func invalid(_ message: String) -> EmberError { EmberError.invalidArgument("fn", "expression: \(message)") }
        guard depth < 100 else { throw invalid("nested deeper than 100 levels") }
        if let a = json["arg"] {
            guard let i = a.intValue, i >= 0, i < 64 else { throw invalid("'arg' must be an integer in 0..<64, got \(a.text)") }
            self = .argument(i)
        } else if let c = json["const"] {
            guard let d = c.numberValue, d.isFinite else { throw invalid("'const' must be a finite number, got \(c.text)") }
            self = .constant(d)
        } else if let o = json["op"] {
            guard let name = o.stringValue, let op = NetworkExpressionOp(rawValue: name) else {
                throw invalid("unknown op \(o.text); known: \(NetworkExpressionOp.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let list = json["args"]?.arrayValue else { throw invalid("'\(name)' needs 'args', an array") }
            guard list.count == op.operands else { throw invalid("'\(name)' takes \(op.operands) operand(s), got \(list.count)") }
            let args = try list.map { try NetworkExpression(json: $0, depth: depth + 1) }
            func integer(_ key: String) throws -> Int? {
                guard let v = json[key] else { return nil }
                guard let i = v.intValue, abs(i) < 1 << 20 else { throw invalid("'\(key)' must be an integer, got \(v.text)") }
                return i
            }
            self = .operation(op, args, dim: try integer("dim"), index: try integer("index"))
        } else {
            throw invalid("each part needs 'arg', 'const' or 'op', got \(json.text)")
        }
    }
}

/// A custom layer: an expression over its inputs.
final class ExpressionLayer: Module {
    let expression: NetworkExpression

    init(_ expression: NetworkExpression) {
        self.expression = expression
        super.init()
    }

    override var kind: String { "fn" }

    override func forward(_ inputs: [Variable], _ ctx: inout ForwardContext) throws -> Variable {
        try expression.evaluate(inputs)
    }

    override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try expression.evaluate([x])
    }
}
