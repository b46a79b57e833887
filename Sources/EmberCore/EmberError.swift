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

/// Formats a shape as `[2, 3]` for error messages.
@inlinable
public func shapeString(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}
