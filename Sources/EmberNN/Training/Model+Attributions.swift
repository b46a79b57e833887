import EmberCore

extension Model {
    /// Gradient × input attributions of the float input `inputName` (a numeric or tensor input):
    /// for every row, the derivative of one raw output (a class's logit, a label's logit, a
    /// regression's output in the target's units) with respect to each element of the input as the
    /// network sees it (standardised, transformed for prediction), times that element. With
    /// standardised columns this is the gradient with respect to the raw value times its distance
    /// from the training mean, so for a linear model a row's attributions sum to its output minus
    /// the output at the mean. `outputs` holds one output column (0-based) for every row, or one
    /// for all rows. Returns `[rows] + input shape`. Parameters' gradients are left untouched.
    public func attributions(_ data: Dataset, input inputName: String, outputs: [Int], batchSize: Int = 256) throws -> Tensor {
        guard batchSize >= 1 else { throw EmberError.invalidArgument("batch_size", "must be >= 1, got \(batchSize)") }
        try check(Dataset(inputs: data.inputs, sources: data.sources), op: "attributions")
        guard let position = spec.inputs.firstIndex(where: { $0.name == inputName }) else {
            throw EmberError(.invalidArgument, "[input] the network has no input '\(inputName)'; its inputs are \(spec.inputs.map(\.name).joined(separator: ", "))",
                             detail: EmberError.Detail(op: "attributions", argument: "input", expected: spec.inputs.map(\.name).joined(separator: ", "), got: inputName))
        }
        if case .categorical = spec.inputs[position].kind {
            throw EmberError(.invalidArgument, "[input] input '\(inputName)' holds categorical codes, which have no gradient; attributions are for numeric and tensor inputs",
                             detail: EmberError.Detail(op: "attributions", argument: "input", expected: "a numeric or tensor input", got: inputName))
        }
        let n = data.count, k = task.outputs
        guard outputs.count == 1 || outputs.count == n else {
            throw EmberError(.invalidArgument, "[outputs] needs 1 or \(n) output columns (one per row), got \(outputs.count)",
                             detail: EmberError.Detail(op: "attributions", argument: "outputs", expected: "1 or \(n) values", got: "\(outputs.count)"))
        }
        for (i, c) in outputs.enumerated() where c < 0 || c >= k {
            throw EmberError(.invalidArgument, "[outputs] \(ErrorIndex.describe(("element", i))) is \(c); the network has \(k) output(s), 0..<\(k)",
                             detail: EmberError.Detail(op: "attributions", argument: "outputs", index: i, expected: "0..<\(k)", got: "\(c)"))
        }
        let sample = spec.inputs[position].sampleShape.reduce(1, *)
        var out = [Float](repeating: 0, count: n * sample)
        let parameters = network.parameters
        let kept = parameters.map(\.grad)
        defer { for (p, g) in zip(parameters, kept) { p.grad = g } }
        // Regression outputs are standardised inside the engine: attributions in the target's units.
        let unit: Float = task.isRegression ? targetScaling.scale[0] : 1
        var ctx = ForwardContext(training: false, rng: rng)
        try withDenormalsFlushed {
            var start = 0
            while start < n {
                let end = min(start + batchSize, n), m = end - start
                let xs = try transformed(try Model.prepareInputs(data, rows: start..<end, spec: spec, scaling: inputScaling), training: false)
                let x = Variable(xs[position], requiresGrad: true)
                let vars = xs.enumerated().map { $0.offset == position ? x : Variable($0.element) }
                let o = try network.forward(vars, &ctx)
                let seed = Tensor.build(shape: o.shape) { s in
                    s.initialize(repeating: 0)
                    for r in 0..<m { s[r * k + outputs[outputs.count == 1 ? 0 : start + r]] = 1 }
                }
                try o.backward(seed: seed)
                guard let g = x.grad, g.count == m * sample else {
                    throw EmberError(.invalidState, "[attributions] input '\(inputName)' received no gradient")
                }
                g.withUnsafeBufferPointer { gp in
                    xs[position].withUnsafeBufferPointer { xp in
                        for i in 0..<(m * sample) { out[start * sample + i] = gp[i] * xp[i] * unit }
                    }
                }
                start = end
            }
        }
        return try Tensor(shape: [n] + spec.inputs[position].sampleShape, data: out)
    }
}
