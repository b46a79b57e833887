import CEmberSupport

/// The error every Ember operation throws: a typed kind plus a message that names the op or
/// argument, the shapes involved and what was expected.
public struct EmberError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, as a closed set (the C ABI maps it to a status code).
    public enum Kind: Int32, Sendable {
        /// An argument is out of range, NULL, non-finite, or otherwise unusable.
        case invalidArgument = 1
        /// Tensor shapes do not fit together.
        case shapeMismatch = 2
        /// The object is in a state that does not allow the call (e.g. predicting before fitting).
        case invalidState = 3
        /// Serialized bytes are malformed or of an unknown version.
        case corruptData = 4
        /// A size or count does not fit the range the engine or BLAS supports.
        case overflow = 5
        /// The memory a network, batch, dataset or prediction needs exceeds what the machine has
        /// available (`MemoryBudget`); refused before anything is allocated.
        case memory = 6
        /// The host's interrupt check (`Interrupts`) asked the engine to stop.
        case interrupted = 7
    }

    /// The kind of failure.
    public let kind: Kind
    /// Human-readable text; starts with the op or argument in brackets, e.g. `[linear] ...`.
    public let message: String
    /// Structured detail, so hosts can phrase the error in their own terms (R: 1-based indices,
    /// R argument names). Every field is optional.
    public var detail: Detail

    /// The parts of an error a host may want to rephrase.
    public struct Detail: Equatable, Sendable {
        /// The op or layer type (`linear`, `conv2d`, `fit`).
        public var op: String?
        /// The layer's path in the network (`blocks.1.linear`).
        public var layer: String?
        /// The argument or parameter at fault (`batch_size`, `opt.lr`).
        public var argument: String?
        /// A 0-based index (row, column, class …) the error is about.
        public var index: Int?
        /// What was expected, as text (`64 features`).
        public var expected: String?
        /// What was found, as text (`32`).
        public var got: String?

        /// Creates a detail record.
        public init(op: String? = nil, layer: String? = nil, argument: String? = nil, index: Int? = nil,
                    expected: String? = nil, got: String? = nil) {
            self.op = op
            self.layer = layer
            self.argument = argument
            self.index = index
            self.expected = expected
            self.got = got
        }
    }

    /// Creates an error of `kind` with `message` and optional structured detail.
    public init(_ kind: Kind, _ message: String, detail: Detail = Detail()) {
        self.kind = kind
        self.message = message
        self.detail = detail
    }

    public var description: String { message }

    /// `[op] message` for an invalid argument. When `op` is an argument name (as the C
    /// boundary uses it), it is recorded as the argument too.
    public static func invalidArgument(_ op: String, _ message: String, index: Int? = nil) -> EmberError {
        EmberError(.invalidArgument, "[\(op)] \(message)", detail: Detail(op: op, argument: op, index: index))
    }

    /// `[op] message` for mismatching shapes.
    public static func shapeMismatch(_ op: String, _ message: String, expected: String? = nil, got: String? = nil) -> EmberError {
        EmberError(.shapeMismatch, "[\(op)] \(message)", detail: Detail(op: op, expected: expected, got: got))
    }
}

/// How error messages name rows, columns, elements and other positions. Swift and C callers count
/// from 0 and read `row 3, column 1 (0-based)`; a host whose users count from 1 (R) sets the base
/// once (`ember_set_message_index_base`) and its users read `row 4, column 2`. The structured
/// `EmberError.Detail.index` stays 0-based whatever the base.
public enum ErrorIndex {
    /// The base messages count from: 0 (the default) or 1.
    public static var base: Int { Int(cember_message_index_base()) }

    /// Sets the base messages count from; only 0 and 1 are accepted.
    public static func setBase(_ base: Int) throws {
        guard base == 0 || base == 1 else {
            throw EmberError(.invalidArgument, "[base] the message index base must be 0 or 1, got \(base)",
                             detail: EmberError.Detail(argument: "base", expected: "0 or 1", got: "\(base)"))
        }
        cember_set_message_index_base(Int32(base))
    }

    /// The 0-based position `index` as messages show it (`index + base`).
    public static func number(_ index: Int) -> Int { index + base }

    /// `" (0-based)"` after positions at base 0, `""` at base 1.
    public static var qualifier: String { base == 0 ? " (0-based)" : "" }

    /// Named positions as messages show them: `row 3, column 1 (0-based)` at base 0,
    /// `row 4, column 2` at base 1.
    public static func describe(_ parts: (String, Int)...) -> String {
        parts.map { "\($0.0) \(number($0.1))" }.joined(separator: ", ") + qualifier
    }
}

/// Formats a shape as `[2, 3]` for error messages.
@inlinable
public func shapeString(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}
