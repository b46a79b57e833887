import EmberCore

/// Data for a model: one tensor per network input (batch first, by input name) and, for training
/// and validation, a target per row (regression values, 0/1 for binary with 1 = positive class,
/// class indices for multiclass).
public struct Dataset: Sendable {
    /// Input tensors by the network's input names.
    public let inputs: [String: Tensor]
    /// Targets [n], if any.
    public let target: Tensor?
    /// Number of rows.
    public let count: Int

    /// Creates a dataset; every input must have the same number of rows (and the target too).
    public init(inputs: [String: Tensor], target: Tensor? = nil) throws {
        guard let first = inputs.first else { throw EmberError.invalidArgument("dataset", "needs at least one input") }
        let n = first.value.shape.first ?? 0
        for (name, t) in inputs {
            guard t.rank >= 1, t.shape[0] == n else {
                throw EmberError.shapeMismatch("dataset", "input '\(name)' has shape \(shapeString(t.shape)); expected \(n) rows like '\(first.key)'")
            }
        }
        if let target {
            guard target.count == n else {
                throw EmberError.shapeMismatch("dataset", "the target has \(target.count) values; expected one per row (\(n))")
            }
        }
        self.inputs = inputs
        self.target = target
        self.count = n
    }

    /// A dataset with one numeric input named `num`.
    public init(x: Tensor, y: Tensor? = nil) throws {
        try self.init(inputs: ["num": x], target: y)
    }

    /// Inputs of `rows` in the order of `spec.inputs`.
    func batch<C: Collection>(_ rows: C, spec: NetworkSpec) throws -> [Tensor] where C.Element == Int {
        try spec.inputs.map { input in
            guard let t = inputs[input.name] else {
                throw EmberError.invalidArgument("dataset", "lacks the network input '\(input.name)'; it has \(inputs.keys.sorted().joined(separator: ", "))")
            }
            return try t.gatherRows(rows)
        }
    }
}
