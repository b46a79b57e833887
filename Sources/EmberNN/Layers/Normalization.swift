import CEmberKernels
import EmberCore
import Glibc

/// Batch normalisation over the channel dimension 1 of [N, C] or [N, C, L] (`BatchNorm1d`) and
/// [N, C, H, W] (`BatchNorm2d`), with PyTorch's semantics: in training it normalises with the
/// batch statistics (biased variance) and updates the running statistics with `momentum`
/// (unbiased variance); in evaluation it uses the running statistics.
///
/// NOTE: PyTorch refuses a training batch with one value per channel; so does Ember (the trainer
/// drops a last batch of size one when the network has batch norm).
public final class BatchNorm: Module {
    /// Number of channels.
    public let numFeatures: Int
    /// Expected input rank: 2 or 3 for 1d, 4 for 2d.
    public let spatialDims: Int
    /// Added to the variance.
    public let eps: Float
    /// Weight of the new batch statistic in the running average.
    public let momentum: Float
    /// Scale γ (ones), if affine.
    public let weight: Parameter?
    /// Shift β (zeros), if affine.
    public let bias: Parameter?
    /// Running mean (zeros).
    public let runningMean: Buffer
    /// Running variance (ones).
    public let runningVar: Buffer
    /// Number of training batches seen (PyTorch's `num_batches_tracked`).
    public let numBatchesTracked: Buffer

    /// `BatchNorm1d` (`spatialDims` 1) or `BatchNorm2d` (`spatialDims` 2).
    public init(_ numFeatures: Int, spatialDims: Int = 1, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true) throws {
        guard numFeatures >= 1 else { throw EmberError.invalidArgument("batch_norm", "num_features must be >= 1, got \(numFeatures)") }
        guard spatialDims == 1 || spatialDims == 2 else {
            throw EmberError.invalidArgument("batch_norm", "spatial dimensions must be 1 or 2, got \(spatialDims)")
        }
        guard eps > 0, momentum >= 0, momentum <= 1 else {
            throw EmberError.invalidArgument("batch_norm", "eps must be > 0 and momentum in [0, 1], got \(eps) and \(momentum)")
        }
        self.numFeatures = numFeatures
        self.spatialDims = spatialDims
        self.eps = eps
        self.momentum = momentum
        weight = affine ? Parameter(try Tensor.ones([numFeatures])) : nil
        bias = affine ? Parameter(try Tensor.zeros([numFeatures])) : nil
        runningMean = Buffer(try Tensor.zeros([numFeatures]))
        runningVar = Buffer(try Tensor.ones([numFeatures]))
        numBatchesTracked = Buffer(Tensor.scalar(0), isCounter: true)
        super.init()
    }

    public override var kind: String { spatialDims == 1 ? "batch_norm1d" : "batch_norm2d" }
    public override var localParameters: [(String, Parameter)] {
        (weight.map { [("weight", $0)] } ?? []) + (bias.map { [("bias", $0)] } ?? [])
    }
    public override var localBuffers: [(String, Buffer)] {
        [("running_mean", runningMean), ("running_var", runningVar), ("num_batches_tracked", numBatchesTracked)]
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try forward(x, &ctx, fusedReLU: false)
    }

    /// Batch normalisation, followed with `fusedReLU` by a ReLU in the same op: the values and
    /// gradients of `relu(batchNorm(x))` without the intermediate tensor and its passes.
    public func forward(_ x: Variable, _ ctx: inout ForwardContext, fusedReLU: Bool) throws -> Variable {
        let s = x.shape
        let okRank = spatialDims == 1 ? (s.count == 2 || s.count == 3) : s.count == 4
        guard okRank, s[1] == numFeatures else {
            let expected = spatialDims == 1 ? "[N, \(numFeatures)] or [N, \(numFeatures), L]" : "[N, \(numFeatures), H, W]"
            throw error(.shapeMismatch, "expected input of shape \(expected), got \(shapeString(s))")
        }
        let n = s[0], c = numFeatures, inner = s.dropFirst(2).reduce(1, *)
        let m = n * inner
        let training = ctx.training
        if training && m <= 1 {
            throw error(.invalidArgument, "expected more than 1 value per channel when training, got input \(shapeString(s))")
        }
        guard m > 0 else { return x }
        var mean = [Float](repeating: 0, count: c), invStd = [Float](repeating: 0, count: c)
        let px = x.value.unsafeReadPointer
        // Channels are independent: they run on Ember's threads (the same bits whatever their number).
        let minChannels = Swift.max(1, Parallel.minimumChunk / Swift.max(1, 2 * m))
        if training {
            var unbiased = [Double](repeating: 0, count: c)
            mean.withUnsafeMutableBufferPointer { meanBuffer in
                invStd.withUnsafeMutableBufferPointer { invBuffer in
                    unbiased.withUnsafeMutableBufferPointer { unbiasedBuffer in
                        let pm = meanBuffer.baseAddress.unsafelyUnwrapped, pi = invBuffer.baseAddress.unsafelyUnwrapped
                        let pu = unbiasedBuffer.baseAddress.unsafelyUnwrapped
                        Parallel.forRange(c, minChunk: minChannels) { lo, hi in
                            for ch in lo..<hi {
                                let first = px + ch * inner
                                let mu = cember_bn_sum(first, Int64(n), Int64(inner), Int64(c * inner)) / Double(m)
                                let sq = cember_bn_centered_squares(first, Int64(n), Int64(inner), Int64(c * inner), Float(mu))
                                pm[ch] = Float(mu)
                                pi[ch] = Float(1 / (sq / Double(m) + Double(eps)).squareRoot())
                                pu[ch] = sq / Double(m - 1)
                            }
                        }
                    }
                }
            }
            runningMean.value.withUnsafeMutableBufferPointer { rm in
                for ch in 0..<c { rm[ch] = (1 - momentum) * rm[ch] + momentum * mean[ch] }
            }
            runningVar.value.withUnsafeMutableBufferPointer { rv in
                for ch in 0..<c { rv[ch] = (1 - momentum) * rv[ch] + momentum * Float(unbiased[ch]) }
            }
            numBatchesTracked.value = Tensor.scalar((numBatchesTracked.value.scalarValue ?? 0) + 1)
        } else {
            let rm = runningMean.value.data, rv = runningVar.value.data
            for ch in 0..<c {
                mean[ch] = rm[ch]
                invStd[ch] = 1 / (rv[ch] + eps).squareRoot()
            }
        }
        let gamma = weight?.value.data ?? [Float](repeating: 1, count: c)
        let beta = bias?.value.data ?? [Float](repeating: 0, count: c)
        var inputs = [x]
        if let weight { inputs.append(weight.variable) }
        if let bias { inputs.append(bias.variable) }
        // x̂ is kept only for a backward pass; without one (prediction), y comes in one pass.
        let records = GradientMode.isEnabled && inputs.contains { $0.requiresGrad }
        var xhat = records ? Tensor.build(shape: s) { _ in } : nil
        // x̂ is new and unshared (no copy); it lives until the backward closure below lets it go.
        let ph = xhat?.withUnsafeMutableBufferPointer { $0.baseAddress }
        let y = Tensor.build(shape: s) { out in
            let po = out.baseAddress.unsafelyUnwrapped
            mean.withUnsafeBufferPointer { mb in
                invStd.withUnsafeBufferPointer { ib in
                    gamma.withUnsafeBufferPointer { gb in
                        beta.withUnsafeBufferPointer { bb in
                            let pm = mb.baseAddress.unsafelyUnwrapped, pi = ib.baseAddress.unsafelyUnwrapped
                            let pg = gb.baseAddress.unsafelyUnwrapped, pb = bb.baseAddress.unsafelyUnwrapped
                            Parallel.forRange(n * c, minChunk: Swift.max(1, Parallel.minimumChunk / Swift.max(1, inner))) { lo, hi in
                                for row in lo..<hi {
                                    let ch = row % c, o = row * inner
                                    let mu = pm[ch], inv = pi[ch], g = pg[ch], b = pb[ch]
                                    let src = px + o, dst = po + o
                                    if let ph {
                                        let h = ph + o
                                        for i in 0..<inner {
                                            let v = (src[i] - mu) * inv
                                            h[i] = v
                                            dst[i] = v * g + b
                                        }
                                    } else {
                                        for i in 0..<inner { dst[i] = (src[i] - mu) * inv * g + b }
                                    }
                                    if fusedReLU {
                                        for i in 0..<inner { dst[i] = dst[i] > 0 ? dst[i] : 0 }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        guard let xhat else { return Variable(y) }
        let affine = weight != nil
        return Variable(y, inputs: inputs) { upstream in
            // Through the fused ReLU first: dy · (y > 0 ? 1 : 0), as the ReLU's own gradient.
            let dy = !fusedReLU ? upstream : Tensor.build(shape: s) { out in
                let pu = upstream.unsafeReadPointer, py = y.unsafeReadPointer
                for i in 0..<out.count { out[i] = pu[i] * (py[i] > 0 ? 1 : 0) }
            }
            let pdy = dy.unsafeReadPointer, ph = xhat.unsafeReadPointer
            var sumDy = [Double](repeating: 0, count: c), sumDyX = [Double](repeating: 0, count: c)
            sumDy.withUnsafeMutableBufferPointer { sb in
                sumDyX.withUnsafeMutableBufferPointer { xb in
                    let ps = sb.baseAddress.unsafelyUnwrapped, pxs = xb.baseAddress.unsafelyUnwrapped
                    Parallel.forRange(c, minChunk: minChannels) { lo, hi in
                        for ch in lo..<hi {
                            cember_bn_grad_sums(pdy + ch * inner, ph + ch * inner, Int64(n), Int64(inner), Int64(c * inner),
                                                ps + ch, pxs + ch)
                        }
                    }
                }
            }
            // dx = γ/σ · (dy - mean(dy) - x̂ · mean(dy · x̂)) in training, γ/σ · dy in evaluation.
            let scale = (0..<c).map { gamma[$0] * invStd[$0] }
            let md = sumDy.map { Float($0 / Double(m)) }, mdx = sumDyX.map { Float($0 / Double(m)) }
            let dx = Tensor.build(shape: s) { out in
                let po = out.baseAddress.unsafelyUnwrapped
                scale.withUnsafeBufferPointer { kb in
                    md.withUnsafeBufferPointer { mdb in
                        mdx.withUnsafeBufferPointer { mxb in
                            let pk = kb.baseAddress.unsafelyUnwrapped, pmd = mdb.baseAddress.unsafelyUnwrapped
                            let pmx = mxb.baseAddress.unsafelyUnwrapped
                            Parallel.forRange(n * c, minChunk: Swift.max(1, Parallel.minimumChunk / Swift.max(1, inner))) { lo, hi in
                                for row in lo..<hi {
                                    let ch = row % c, o = row * inner
                                    let k = pk[ch], a = pmd[ch], b = pmx[ch]
                                    let g = pdy + o, h = ph + o, dst = po + o
                                    if training {
                                        for i in 0..<inner { dst[i] = k * (g[i] - a - h[i] * b) }
                                    } else {
                                        for i in 0..<inner { dst[i] = k * g[i] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            var grads: [Tensor?] = [dx]
            if affine {
                grads.append(try Tensor(shape: [c], data: sumDyX.map { Float($0) }))
                grads.append(try Tensor(shape: [c], data: sumDy.map { Float($0) }))
            }
            return grads
        }
    }
}

/// Layer normalisation over the last dimension (`nn.LayerNorm(d)`): `(x - mean) / √(var + eps)`
/// with the biased variance, then `· γ + β`.
public final class LayerNorm: Module {
    /// Size of the normalised (last) dimension.
    public let size: Int
    /// Added to the variance.
    public let eps: Float
    /// Scale γ (ones), if affine.
    public let weight: Parameter?
    /// Shift β (zeros), if affine.
    public let bias: Parameter?

    /// Creates a layer norm over a last dimension of `size`.
    public init(_ size: Int, eps: Float = 1e-5, affine: Bool = true) throws {
        guard size >= 1 else { throw EmberError.invalidArgument("layer_norm", "normalized_shape must be >= 1, got \(size)") }
        guard eps > 0 else { throw EmberError.invalidArgument("layer_norm", "eps must be > 0, got \(eps)") }
        self.size = size
        self.eps = eps
        weight = affine ? Parameter(try Tensor.ones([size])) : nil
        bias = affine ? Parameter(try Tensor.zeros([size])) : nil
        super.init()
    }

    public override var kind: String { "layer_norm" }
    public override var localParameters: [(String, Parameter)] {
        (weight.map { [("weight", $0)] } ?? []) + (bias.map { [("bias", $0)] } ?? [])
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        guard let d = x.shape.last, d == size else {
            throw error(.shapeMismatch, "expected input with last dimension \(size), got \(shapeString(x.shape))")
        }
        let rows = x.value.count / d
        let px = x.value.unsafeReadPointer
        let affine = weight != nil && bias != nil
        let gamma = affine ? weight?.value : nil, beta = affine ? bias?.value : nil
        // Vectorised row by row in CEmberKernels (normalization.c); x̂ and 1/σ kept for the backward pass.
        var invStd = Tensor.build(shape: [rows]) { _ in }
        var xhat = Tensor.build(shape: x.shape) { _ in }
        let y = Tensor.build(shape: x.shape) { out in
            invStd.withUnsafeMutableBufferPointer { pi in
                xhat.withUnsafeMutableBufferPointer { ph in
                    guard let py = out.baseAddress, let pi = pi.baseAddress, let ph = ph.baseAddress else { return }
                    cember_layer_norm_forward(px, gamma?.unsafeReadPointer, beta?.unsafeReadPointer, ph, py, pi,
                                              Int64(rows), Int64(d), eps)
                }
            }
        }
        var inputs = [x]
        if let weight { inputs.append(weight.variable) }
        if let bias { inputs.append(bias.variable) }
        return Variable(y, inputs: inputs) { [xhat, invStd] dy in
            // dx̂ = dy · γ; dx = (dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂)) / σ; dγ = Σ dy · x̂, dβ = Σ dy.
            var dGamma = try Tensor.zeros([affine ? d : 0]), dBeta = try Tensor.zeros([affine ? d : 0])
            let dx = Tensor.build(shape: x.shape) { out in
                dGamma.withUnsafeMutableBufferPointer { pg in
                    dBeta.withUnsafeMutableBufferPointer { pb in
                        guard let pdx = out.baseAddress else { return }
                        cember_layer_norm_backward(dy.unsafeReadPointer, xhat.unsafeReadPointer, gamma?.unsafeReadPointer,
                                                   invStd.unsafeReadPointer, pdx, affine ? pg.baseAddress : nil,
                                                   affine ? pb.baseAddress : nil, Int64(rows), Int64(d))
                    }
                }
            }
            return affine ? [dx, dGamma, dBeta] : [dx]
        }
    }
}
