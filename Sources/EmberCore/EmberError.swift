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
    }

    /// The kind of failure.
    public let kind: Kind
    /// Human-readable text; starts with the op or argument in brackets, e.g. `[linear] ...`.
    public let message: String

    /// Creates an error of `kind` with `message`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// `[op] message` for an invalid argument.
    public static func invalidArgument(_ op: String, _ message: String) -> EmberError {
        EmberError(.invalidArgument, "[\(op)] \(message)")
    }

    /// `[op] message` for mismatching shapes.
    public static func shapeMismatch(_ op: String, _ message: String) -> EmberError {
        EmberError(.shapeMismatch, "[\(op)] \(message)")
    }
}

/// Formats a shape as `[2, 3]` for error messages.
@inlinable
public func shapeString(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}
