// Training benchmarks through EmberNN's public API (Model, Trainer, Architectures): the
// mlr3torch paper's MLP grid and Fashion-MNIST.
import EmberCore
import EmberNN

/// Records the wall time of every training batch (from batch begin to batch end, so it covers
/// gathering the batch, forward, loss, backward and the optimizer step), and the part of it from
/// the end of the backward pass to the end of the batch: the optimizer step.
final class BatchTimer: TrainerCallback {
    var seconds: [Double] = []
    var optimizerSeconds: [Double] = []
    /// Process CPU seconds per batch.
    var cpuSeconds: [Double] = []
    private var start = 0.0, backwardEnd = 0.0, cpuStart = 0.0
    /// It only reads clocks: plain SGD keeps its weight updates inside the backward pass, as in a
    /// run without callbacks (the optimizer's time is then mostly in the backward pass).
    var readsGradients: Bool { false }

    init() {
        seconds.reserveCapacity(1 << 16)
        optimizerSeconds.reserveCapacity(1 << 16)
    }

    func onBatchBegin(_ trainer: Trainer, batch: Int) throws {
        start = now()
        cpuStart = cpuNow()
    }
    func onAfterBackward(_ trainer: Trainer, batch: Int) throws { backwardEnd = now() }
    func onBatchEnd(_ trainer: Trainer, batch: Int, loss: Double) throws {
        let end = now()
        seconds.append(end - start)
        optimizerSeconds.append(end - backwardEnd)
        cpuSeconds.append(cpuNow() - cpuStart)
    }

    func removeAll() {
        seconds.removeAll(keepingCapacity: true)
        optimizerSeconds.removeAll(keepingCapacity: true)
        cpuSeconds.removeAll(keepingCapacity: true)
    }
}

/// Every column as is: the benchmarks compare the same arithmetic as PyTorch's plain loops.
func noStandardization(_ features: Int) -> [String: [Bool]] {
    ["num": [Bool](repeating: false, count: features)]
}

/// One cell of the paper's grid: `--layers` hidden Linear+ReLU layers of `--width`, then
/// Linear(·, 1); MSE; batch 32; no shuffling; `--opt` sgd or adamw with `--lr` (1e-4 by default).
/// `--data` holds X (n × p) then y (n) as float32. Besides the median time per batch it reports
/// the medians over the first and the last tenth of the timed epochs and how many values of the
/// parameters and the optimizer state are subnormal at the end (the long-run denormal benchmark),
/// and how many of the timed batches ran on one thread while `--threads` was more
/// (`batches_alone`: the trainer's measured choice, `StepThreading`).
///
/// With `--interleave 1` and `--threads` over 1, each timed epoch at `--threads` is paired with one
/// at a single thread in the same process, the order alternating (n, 1, 1, n, …), and the run also
/// reports the one-thread median (`one_thread_median_batch_ms`) and the speed-up as the median over
/// the pairs of the ratio of their epochs' medians (`speedup_paired`): a host that slows the
/// machine for a minute then slows both sides of a pair, which two processes run seconds apart
/// cannot promise.
func mlpBench(_ o: Options) throws {
    let n = try o.int("n"), p = try o.int("p")
    let layers = try o.int("layers"), width = try o.int("width"), optimizer = try o.string("opt")
    let epochs = try o.int("epochs", 20), warmup = try o.int("warmup", 1)
    let threads = try o.int("threads", 1), interleave = try o.int("interleave", 0) == 1 && threads > 1
    guard let lr = Double(try o.string("lr", "1e-4")), lr > 0 else { throw EmberError.invalidArgument("mlp", "--lr must be a positive number") }
    try Engine.setNumThreads(threads)
    let values = try readFloats(try o.string("data"))
    guard values.count == n * (p + 1) else {
        throw EmberError.invalidArgument("mlp", "the data file holds \(values.count) floats; expected n·(p+1) = \(n * (p + 1))")
    }
    let data = try Dataset(x: try Tensor(shape: [n, p], data: Array(values[0..<(n * p)])),
                           y: try Tensor(shape: [n], data: Array(values[(n * p)...])))

    let spec = try Architectures.mlp(TabularInputs(numeric: p), neurons: [Int](repeating: width, count: layers))
    let model = try Model(spec: spec, task: .regression, standardize: noStandardization(p), standardizeTarget: false, seed: 1)
    var config = TrainerConfig()
    config.batchSize = 32
    config.shuffle = false
    switch optimizer {
    case "sgd": config.optimizer = .sgd(lr: lr)
    case "adamw": config.optimizer = .adamw(lr: lr)
    default: throw EmberError.invalidArgument("mlp", "--opt must be sgd or adamw, got \(optimizer)")
    }
    let trainer = try Trainer(model: model, config: config)
    let timer = BatchTimer()
    trainer.callbacks = [timer]
    try trainer.fit(data, epochs: warmup)
    timer.removeAll()
    let aloneBefore = trainer.stepsOnOneThread
    var records: [EpochRecord] = []
    var paired: [(String, Field)] = []
    let total: Double  // seconds of the timed epochs at `threads`
    if interleave {
        // Each pair: an epoch at `threads` and one at a single thread, in alternating order.
        var many: [Double] = [], manyOptimizer: [Double] = [], one: [Double] = [], ratios: [Double] = []
        for e in 0..<epochs {
            var medians = (many: Double.nan, one: Double.nan)
            for single in e % 2 == 0 ? [false, true] : [true, false] {
                try Engine.setNumThreads(single ? 1 : threads)
                timer.removeAll()
                let r = try trainer.fit(data, epochs: 1)
                if single {
                    one += timer.seconds
                    medians.one = median(timer.seconds)
                } else {
                    records += r
                    many += timer.seconds
                    manyOptimizer += timer.optimizerSeconds
                    medians.many = median(timer.seconds)
                }
            }
            ratios.append(medians.one / medians.many)
        }
        try Engine.setNumThreads(threads)
        (timer.seconds, timer.optimizerSeconds) = (many, manyOptimizer)
        paired = [("one_thread_median_batch_ms", .number(median(one) * 1e3)), ("speedup_paired", .number(median(ratios)))]
        total = many.reduce(0, +)
    } else {
        let start = now()
        records = try trainer.fit(data, epochs: epochs)
        total = now() - start
    }
    let window = max(1, epochs / 10) * (timer.seconds.count / max(1, epochs))
    let state = model.network.parameters.map(\.value) + trainer.optimizer.stateTensors().map(\.1)
    let subnormal = state.reduce(0) { $0 + $1.data.lazy.filter(\.isSubnormal).count }
    emit([("system", .text("ember-swift")), ("median_batch_ms", .number(median(timer.seconds) * 1e3)),
          ("mean_batch_ms", .number(total / Double(timer.seconds.count) * 1e3)), ("batches", .number(Double(timer.seconds.count))),
          ("median_fwdbwd_ms", .number(median(zip(timer.seconds, timer.optimizerSeconds).map { $0 - $1 }) * 1e3)),
          ("median_opt_ms", .number(median(timer.optimizerSeconds) * 1e3)),
          ("first_ms", .number(median(Array(timer.seconds.prefix(window))) * 1e3)),
          ("last_ms", .number(median(Array(timer.seconds.suffix(window))) * 1e3)),
          ("subnormal", .number(Double(subnormal))), ("final_loss", .number(records.last?.trainLoss ?? .nan)),
          ("batches_alone", .number(Double(trainer.stepsOnOneThread - aloneBefore)))] + paired)
}

/// Fashion-MNIST from raw files written by run.py (`{train,test}-{images,labels}.u8`): an MLP
/// 784-256-128-10 or LeNet, batch 128, Adam (lr 1e-3), shuffled; training and prediction images
/// per second and test accuracy after `--epochs`. `--init FILE` starts from the weights in a
/// safetensors file (torch_bench.py's `--save-init`) instead of Ember's own initialisation.
func fashionBench(_ o: Options) throws {
    let dir = try o.string("dir"), arch = try o.string("model")
    let epochs = try o.int("epochs", 2), seed = try o.int("seed", 1)
    try Engine.setNumThreads(try o.int("threads", 1))
    guard arch == "mlp" || arch == "lenet" else { throw EmberError.invalidArgument("fashion", "--model must be mlp or lenet, got \(arch)") }
    let isCNN = arch == "lenet"
    func load(_ part: String) throws -> Dataset {
        let pixels = try readBytes("\(dir)/\(part)-images.u8"), labels = try readBytes("\(dir)/\(part)-labels.u8")
        let n = labels.count
        // Straight into tensor storage: no intermediate [Float] to inflate the peak RSS.
        let x = Tensor.build(shape: isCNN ? [n, 1, 28, 28] : [n, 784]) { out in
            for i in 0..<out.count { out[i] = Float(pixels[i]) / 255 }
        }
        return try Dataset(inputs: [isCNN ? "image" : "num": x], target: try Tensor(shape: [n], data: labels.map(Float.init)))
    }
    let train = try load("train"), test = try load("test")
    let spec = isCNN ? try Architectures.lenet(imageShape: [1, 28, 28])
                     : try Architectures.mlp(TabularInputs(numeric: 784), neurons: [256, 128])
    let model = try Model(spec: spec, task: .multiclass(classes: 10), standardize: isCNN ? [:] : noStandardization(784),
                          seed: UInt64(seed))
    if let initial = try? o.string("init") { try model.loadWeights(safetensors: try readBytes(initial)) }
    var config = TrainerConfig()
    config.batchSize = 128
    config.optimizer = .adam(lr: 1e-3)
    let trainer = try Trainer(model: model, config: config)
    let t0 = now()
    try trainer.fit(train, epochs: epochs)
    let t1 = now()
    let probabilities = try model.predict(test, batchSize: 128)
    let t2 = now()
    let accuracy = try Metric.accuracy.score(probabilities, test.target ?? probabilities, task: model.task)
    emit([("system", .text("ember-swift")), ("train_images_per_s", .number(Double(epochs * train.count) / (t1 - t0))),
          ("predict_images_per_s", .number(Double(test.count) / (t2 - t1))), ("accuracy", .number(accuracy))])
}

/// The FT-Transformer on a wide tabular task shaped like mlr3's spam: `--n` rows (4601) of `--p`
/// numeric features (57), two classes (BCE on one logit), batch 32, AdamW (lr 1e-4), not shuffled,
/// `--blocks`/`--d-token`/`--heads` (1/32/4 as in Examples/r/benchmark_mlr3.R; 3/192/8 is the
/// default architecture) with the architecture's default dropouts. The data are synthetic and
/// generated here (torch_bench.py draws its own with the same recipe: X ~ U(-1, 1), y from the
/// sign of the first feature): only the arithmetic matters, not the values. Reports the median
/// time per batch over `--epochs` timed epochs after `--warmup`, and the mean process CPU time
/// per batch over them (`cpu_batch_ms`; torch_bench.py ftt reports the same).
func fttBench(_ o: Options) throws {
    let n = try o.int("n", 4601), p = try o.int("p", 57)
    let blocks = try o.int("blocks", 1), dToken = try o.int("d-token", 32), heads = try o.int("heads", 4)
    let epochs = try o.int("epochs", 2), warmup = try o.int("warmup", 1)
    try Engine.setNumThreads(try o.int("threads", 1))
    var rng = RandomGenerator(seed: 1)
    let x = try Tensor.uniform([n, p], low: -1, high: 1, rng: &rng)
    let xs = x.data
    let y = try Tensor(shape: [n], data: (0..<n).map { xs[$0 * p] > 0 ? 1 : 0 })
    let data = try Dataset(x: x, y: y)
    let spec = try Architectures.ftTransformer(TabularInputs(numeric: p), nBlocks: blocks, dToken: dToken, heads: heads)
    let model = try Model(spec: spec, task: .binary, standardize: noStandardization(p), seed: 1)
    var config = TrainerConfig()
    config.batchSize = 32
    config.shuffle = false
    config.optimizer = .adamw(lr: 1e-4)
    let trainer = try Trainer(model: model, config: config)
    let timer = BatchTimer()
    trainer.callbacks = [timer]
    try trainer.fit(data, epochs: warmup)
    timer.removeAll()
    let cpu0 = cpuNow()
    let records = try trainer.fit(data, epochs: epochs)
    let cpuPerBatch = (cpuNow() - cpu0) / Double(max(timer.seconds.count, 1))
    emit([("system", .text("ember-swift")), ("median_batch_ms", .number(median(timer.seconds) * 1e3)),
          ("cpu_batch_ms", .number(cpuPerBatch * 1e3)),
          ("median_fwdbwd_ms", .number(median(zip(timer.seconds, timer.optimizerSeconds).map { $0 - $1 }) * 1e3)),
          ("median_opt_ms", .number(median(timer.optimizerSeconds) * 1e3)),
          ("batches", .number(Double(timer.seconds.count))), ("final_loss", .number(records.last?.trainLoss ?? .nan))])
}

/// torchvision's ResNet (`--depth` 18, 34 or 50; `Architectures.resnet18/34/50`) on synthetic
/// images [3, `--size`, `--size`] (uniform in [0, 1), 10 classes), batch `--batch` (32), `--opt`
/// sgd (momentum 0.9, lr 0.01; the default) or adam (lr 1e-3), not shuffled: median time per
/// training step (forward, backward, optimizer) over `--steps` after `--warmup` steps
/// (torch_bench.py resnet does the same). `--mode predict` times the prediction of `--steps`
/// batches instead (eval-mode forward and softmax), median over 5 rounds after one warm-up round;
/// `cpu_images_per_s` (both modes) divides by the process's CPU time instead (robust to other
/// processes at one thread).
func resnetBench(_ o: Options) throws {
    let depth = try o.int("depth", 18), size = try o.int("size", 32), batch = try o.int("batch", 32)
    let steps = try o.int("steps", 10), warmup = try o.int("warmup", 2)
    let mode = try o.string("mode", "train"), opt = try o.string("opt", "sgd")
    guard mode == "train" || mode == "predict" else { throw EmberError.invalidArgument("resnet", "--mode must be train or predict, got \(mode)") }
    guard opt == "sgd" || opt == "adam" else { throw EmberError.invalidArgument("resnet", "--opt must be sgd or adam, got \(opt)") }
    try Engine.setNumThreads(try o.int("threads", 1))
    let n = batch * max(steps, warmup)
    var rng = RandomGenerator(seed: 1)
    let x = try Tensor.uniform([n, 3, size, size], rng: &rng)
    let y = try Tensor(shape: [n], data: (0..<n).map { Float($0 % 10) })
    let model = try Model(spec: try Architectures.torchvisionResNet(depth: depth, imageShape: [3, size, size]),
                          task: .multiclass(classes: 10), seed: 1)
    if mode == "predict" {
        let timed = try Dataset(inputs: ["image": try x.gatherRows(0..<(batch * steps))], target: try y.gatherRows(0..<(batch * steps)))
        var seconds: [Double] = [], cpuSeconds: [Double] = []
        for round in 0..<6 {
            let t0 = now(), c0 = cpuNow()
            _ = try model.predict(timed, batchSize: batch, prefetch: false)
            if round > 0 {
                seconds.append(now() - t0)
                cpuSeconds.append(cpuNow() - c0)
            }
        }
        let perBatch = median(seconds) / Double(steps)
        emit([("system", .text("ember-swift")), ("mode", .text(mode)), ("median_batch_ms", .number(perBatch * 1e3)),
              ("images_per_s", .number(Double(batch) / perBatch)),
              ("cpu_images_per_s", .number(Double(batch * steps) / median(cpuSeconds)))])
        return
    }
    var config = TrainerConfig()
    config.batchSize = batch
    config.shuffle = false
    config.optimizer = opt == "adam" ? .adam(lr: 1e-3) : .sgd(lr: 0.01, momentum: 0.9)
    let trainer = try Trainer(model: model, config: config)
    let timer = BatchTimer()
    trainer.callbacks = [timer]
    let warmupData = try Dataset(inputs: ["image": try x.gatherRows(0..<(batch * warmup))],
                                 target: try y.gatherRows(0..<(batch * warmup)))
    try trainer.fit(warmupData, epochs: 1)
    timer.removeAll()
    let timed = try Dataset(inputs: ["image": try x.gatherRows(0..<(batch * steps))], target: try y.gatherRows(0..<(batch * steps)))
    let records = try trainer.fit(timed, epochs: 1)
    emit([("system", .text("ember-swift")), ("mode", .text(mode)), ("median_step_ms", .number(median(timer.seconds) * 1e3)),
          ("images_per_s", .number(Double(batch) / median(timer.seconds))),
          ("cpu_images_per_s", .number(Double(batch) / median(timer.cpuSeconds))),
          ("median_fwdbwd_ms", .number(median(zip(timer.seconds, timer.optimizerSeconds).map { $0 - $1 }) * 1e3)),
          ("median_opt_ms", .number(median(timer.optimizerSeconds) * 1e3)),
("steps", .number(Double(timer.seconds.count))), ("final_loss", .number(records.last?.trainLoss ?? .nan))])
}
