import CEmberKernels

/// Which kernels a convolution runs: chosen by size, or pinned (tests compare them): im2col with
/// BLAS, the direct path, the dense matrix of Convolution+Dense.swift (one group only), or
/// Winograd's F(2×2, 3×3) of Convolution+Winograd.swift (3×3, stride 1; for the forward pass and
/// the input gradient, where it fits).
enum ConvKernels: Sendable {
    case automatic, blas, direct, dense, winograd
}

/// The direct path of `ConvGeometry`: im2col into a small per-thread block and GEMM micro-kernels
/// of our own (CEmberKernels/convolution.c) for convolutions with few output channels per group.
///
/// Why: with C_out/groups of 6 or 16 (LeNet), a BLAS call spends more on packing and call overhead
/// than on arithmetic, and the whole-chunk layout [C_out, samples · P] needs staging copies in and
/// out of NCHW. Here each thread takes blocks of a few samples whose column matrix stays in L2:
/// the forward GEMM writes straight into the NCHW output with the bias fused, the backward one
/// stages dY of the block once and computes dW, db and dX from it. Samples run in parallel on
/// Ember's threads (BLAS is not called, so its threads stay idle: nothing nests).
///
/// Deterministic whatever the thread count: blocks depend on the geometry only, each block
/// writes its own partial dW and db, and the partials are added in block order.
extension ConvGeometry {
    /// Output channels per group up to which the direct kernels beat BLAS (small GEMM rows).
    static let directMaxOutPerGroup = 64

    /// Floats of column matrix a thread fills per block (256 KB: the block stays in L2).
    static let directBlockBudget = 1 << 16

    /// Whether `kernels` selects the direct path for this geometry.
    func runsDirect(_ kernels: ConvKernels) -> Bool {
        switch kernels {
        case .blas, .dense, .winograd: return false
        case .direct: return !isDepthwise
        case .automatic: return !isDepthwise && outPerGroup <= ConvGeometry.directMaxOutPerGroup
        }
    }

    /// Output channels per group from which the direct path runs its block products through
    /// BLAS (single-threaded calls, one per block: the blocks already run in parallel) instead of
    /// Ember's micro-kernels: with 32 or more rows OpenBLAS's FMA kernels run about twice as fast,
    /// while the micro-kernels (bit-identical on every instruction set, so without FMA) win on
    /// the few rows of small CNNs.
    static let directBLASMinOutPerGroup = 32

    /// Slots of partial weight gradients the direct path's BLAS variant accumulates blocks into
    /// (see `directBackward`): enough for the threads to share, few to add up.
    static let directGradientSlots = 8

    /// Whether the direct path's products go through BLAS (see `directBLASMinOutPerGroup`).
    var directUsesBLAS: Bool { outPerGroup >= ConvGeometry.directBLASMinOutPerGroup }

    /// Output positions per sample rounded up to whole 16-float vectors (the kernels' row length).
    var paddedPlane: Int { (outPlane + 15) / 16 * 16 }

    /// Row length of a block's column matrix for `samples` samples: their padded positions and
    /// 16 floats of slack that cember_im2col's whole-vector writes may run into.
    func blockRowLength(_ samples: Int) -> Int { samples * paddedPlane + 16 }

    /// Samples per block: as many as fit the budget (at least one), at most `limit`.
    func directSamplesPerBlock(limit: Int) -> Int {
        Swift.max(1, Swift.min(batch, limit, ConvGeometry.directBlockBudget / Swift.max(1, colRows * paddedPlane)))
    }

    /// The per-sample window geometry the C kernels take.
    var window: cember_window {
        cember_window(channels: Int64(inChannels), height: Int64(inH), width: Int64(inW),
                      kernel_h: Int64(kH), kernel_w: Int64(kW), stride_h: Int64(strideH), stride_w: Int64(strideW),
                      pad_h: Int64(padH), pad_w: Int64(padW), dilation_h: Int64(dilH), dilation_w: Int64(dilW),
                      out_h: Int64(outH), out_w: Int64(outW))
    }

    /// `y` [N, C_out, P] = bias + W · im2col(x) (plus `residual`, then relu'd with `relu`; see
    /// `forward`), block by block; `batch`, `outChannels` and `outPlane` are positive.
    func directForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                       _ y: UnsafeMutablePointer<Float>, relu: Bool, residual: UnsafePointer<Float>? = nil, maxSamplesPerChunk: Int) {
        let S = directSamplesPerBlock(limit: maxSamplesPerChunk), blocks = (batch + S - 1) / S
        let P = outPlane, P16 = paddedPlane, ld = blockRowLength(S), K = groupRows, Og = outPerGroup, O = outChannels
        let sample = inChannels * inPlane
        Parallel.forRange(blocks, minChunk: minUnits(S * O * K * P)) { b, e in
            var win = window
            let cols = TensorStorage(uninitializedCount: colRows * ld)
            withExtendedLifetime(cols) {
                for block in b..<e {
                    let first = block * S, count = Swift.min(S, batch - first)
                    for s in 0..<count {
                        cember_im2col(x + (first + s) * sample, &win, cols.pointer + s * P16, Int64(ld))
                    }
                    for s in 0..<count {
                        for g in 0..<groups {
                            let offset = ((first + s) * O + g * Og) * P, out = y + offset
                            let r = residual.map { $0 + offset }
                            if directUsesBLAS {
                                BLAS.gemmStridedUnchecked(transA: false, transB: false, m: Og, n: P, k: K, a: w + g * Og * K, lda: K,
                                                          b: cols.pointer + g * K * ld + s * P16, ldb: ld, c: out, ldc: P)
                                addBias(bias.map { $0 + g * Og }, relu: relu, residual: r, to: out, rows: Og, length: P)
                                continue
                            }
                            cember_gemm_nn(Int64(Og), Int64(P), Int64(K), w + g * Og * K, Int64(K), 1,
                                           cols.pointer + g * K * ld + s * P16, Int64(ld),
                                           out, Int64(P), bias.map { $0 + g * Og }, relu && r == nil ? 1 : 0)
                            if let r { addBias(nil, relu: relu, residual: r, to: out, rows: Og, length: P) }
                        }
                    }
                }
            }
        }
    }

    /// The backward pass from `dy` [N, C_out, P]: `dx` overwritten, `dw` accumulated, `db`
    /// overwritten; nil ones are skipped. With `reluOutput` (the forward output of a fused ReLU),
    /// `dy` is the gradient of the ReLU's output and is masked by it as it is staged.
    /// `batch`, `outChannels` and `outPlane` are positive.
    func directBackward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                        dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?,
                        reluOutput: UnsafePointer<Float>?, maxSamplesPerChunk: Int) {
        let S = directSamplesPerBlock(limit: maxSamplesPerChunk), blocks = (batch + S - 1) / S
        let P = outPlane, P16 = paddedPlane, ld = blockRowLength(S), K = groupRows, Og = outPerGroup, O = outChannels
        let sample = inChannels * inPlane, weights = O * K
        // Partial sums of dW and db per slot of consecutive blocks, added in slot order below. With
        // Ember's micro-kernels every block has its own slot; with BLAS the blocks of a slot
        // accumulate into it (beta 1), so that a batch of one-sample blocks does not add up
        // one partial dW per sample. Slots depend on the sizes only: the same bits on any number
        // of threads.
        let slots = directUsesBLAS ? Swift.min(blocks, ConvGeometry.directGradientSlots) : blocks
        let partialW = dw == nil ? nil : TensorStorage(uninitializedCount: slots * weights)
        let partialB = db == nil ? nil : TensorStorage(uninitializedCount: slots * O)
        withExtendedLifetime((partialW, partialB)) {
            Parallel.forRange(slots, minChunk: minUnits(S * O * K * P * 2 * (blocks / slots))) { b, e in
                var win = window
                let dyBlock = TensorStorage(uninitializedCount: O * ld)
                let cols = dw == nil ? nil : TensorStorage(uninitializedCount: colRows * ld)
                let dcols = dx == nil ? nil : TensorStorage(uninitializedCount: colRows * ld)
                let blockB = db == nil ? nil : TensorStorage(uninitializedCount: O)
                withExtendedLifetime((dyBlock, cols, dcols, blockB)) {
                    for slot in b..<e {
                        let slotFirst = slot * blocks / slots
                        for block in slotFirst..<((slot + 1) * blocks / slots) {
                            let first = block * S, count = Swift.min(S, batch - first), L = count * P16
                            // dY of the block as [C_out, count · P16], each sample's positions zero-padded.
                            for s in 0..<count {
                                cember_copy_rows_padded(dy + (first + s) * O * P, Int64(P), Int64(O), Int64(P),
                                                        reluOutput.map { $0 + (first + s) * O * P },
                                                        dyBlock.pointer + s * P16, Int64(ld), Int64(P16))
                            }
                            if let cols, let partialW {
                                for s in 0..<count {
                                    cember_im2col(x + (first + s) * sample, &win, cols.pointer + s * P16, Int64(ld))
                                }
                                for g in 0..<groups {
                                    if directUsesBLAS {
                                        BLAS.gemmStridedUnchecked(transA: false, transB: true, m: Og, n: K, k: L, a: dyBlock.pointer + g * Og * ld,
                                                                  lda: ld, b: cols.pointer + g * K * ld, ldb: ld, beta: block == slotFirst ? 0 : 1,
                                                                  c: partialW.pointer + slot * weights + g * Og * K, ldc: K)
                                        continue
                                    }
                                    cember_gemm_nt(Int64(Og), Int64(K), Int64(L), dyBlock.pointer + g * Og * ld, Int64(ld),
                                                   cols.pointer + g * K * ld, Int64(ld),
                                                   partialW.pointer + slot * weights + g * Og * K, Int64(K))
                                }
                            }
                            if let partialB, let blockB {
                                let sums = partialB.pointer + slot * O
                                if block == slotFirst {
                                    cember_row_sums(Int64(O), Int64(L), dyBlock.pointer, Int64(ld), sums)
                                } else {
                                    cember_row_sums(Int64(O), Int64(L), dyBlock.pointer, Int64(ld), blockB.pointer)
                                    for o in 0..<O { sums[o] += blockB.pointer[o] }
                                }
                            }
                            if let dcols, let dx {
                                for g in 0..<groups {
                                    if directUsesBLAS {
                                        BLAS.gemmStridedUnchecked(transA: true, transB: false, m: K, n: L, k: Og, a: w + g * Og * K, lda: K,
                                                                  b: dyBlock.pointer + g * Og * ld, ldb: ld, c: dcols.pointer + g * K * ld, ldc: ld)
                                        continue
                                    }
                                    cember_gemm_nn(Int64(K), Int64(L), Int64(Og), w + g * Og * K, 1, Int64(K),
                                                   dyBlock.pointer + g * Og * ld, Int64(ld), dcols.pointer + g * K * ld, Int64(ld), nil, 0)
                                }
                                for s in 0..<count {
                                    cember_col2im(dcols.pointer + s * P16, Int64(ld), &win, dx + (first + s) * sample)
                                }
                            }
                        }
                    }
                }
            }
            if let dw, let partialW { addBlocks(partialW.pointer, blocks: slots, size: weights, into: dw, accumulate: true) }
            if let db, let partialB { addBlocks(partialB.pointer, blocks: slots, size: O, into: db, accumulate: false) }
        }
    }

    /// Adds `bias[r]` (when given) to row r of `rows` rows of `length` floats, then `residual`
    /// (the same layout, when given), then with `relu` keeps `v > 0 ? v : 0` (what
    /// cember_gemm_nn's fused bias and ReLU give).
    private func addBias(_ bias: UnsafePointer<Float>?, relu: Bool, residual: UnsafePointer<Float>? = nil,
                         to out: UnsafeMutablePointer<Float>, rows: Int, length: Int) {
        guard bias != nil || relu || residual != nil else { return }
        for r in 0..<rows {
            let row = out + r * length
            if residual == nil, relu {
                // One pass: -0 + 0 = +0 changes nothing after the ReLU.
                let b = bias?[r] ?? 0
                for i in 0..<length { let v = row[i] + b; row[i] = v > 0 ? v : 0 }
                continue
            }
            finishRow(row, length, bias: bias?[r], residual: residual.map { $0 + r * length }, relu: relu)
        }
    }

    /// `out[i] (+)= Σ_block partial[block · size + i]`, summed in block order.
    private func addBlocks(_ partial: UnsafeMutablePointer<Float>, blocks: Int, size: Int,
                           into out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        for block in 1..<Swift.max(blocks, 1) {
            let src = partial + block * size
            for i in 0..<size { partial[i] += src[i] }
        }
        if accumulate {
            for i in 0..<size { out[i] += partial[i] }
        } else {
            out.update(from: partial, count: size)
        }
    }
}
