// Swift programs using Ember directly (`import EmberNN`).
//
//     swift run -c release ember-example                     # two spirals + sin(3x), in memory
//     swift run -c release ember-example csv FILE TARGET     # an MLP on a CSV file (numeric columns)
//     swift run -c release ember-example fashion-mnist [EPOCHS]   # LeNet on Debian's Fashion-MNIST
//
// Each prints per-epoch metrics and a final (test or training) score.
import EmberCore
import EmberNN
import Glibc

func spirals() throws {
    var rng = RandomGenerator(seed: 1)
    let n = 1000
    var x = [Float](), y = [Float]()
    for i in 0..<n {
        let label = i % 2
        let t = Float(i / 2) / Float(n / 2) * 3 * Float.pi
        let r = t / (3 * Float.pi) + 0.05 * rng.normal()
        let sign: Float = label == 0 ? 1 : -1
        x += [sign * r * cosf(t), sign * r * sinf(t)]
        y.append(Float(label))
    }
    let data = try Dataset(x: try Tensor(shape: [n, 2], data: x), y: try Tensor(shape: [n], data: y))
    let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 2), neurons: [64, 64]), task: .binary, seed: 42)
    var config = TrainerConfig()
    config.optimizer = .adam(lr: 0.01)
    config.measuresTrain = [.accuracy]
    let records = try Trainer(model: model, config: config).fit(data, epochs: 60)
    for r in records where r.epoch % 20 == 0 {
        print("spirals epoch \(r.epoch): loss \(r.trainLoss), accuracy \(r.trainMetrics["accuracy"] ?? .nan)")
    }
    let p = try model.predict(data)
    print("spirals: training accuracy \(try Metric.accuracy.score(p, data.target ?? p, task: .binary))")

    var xs = [Float](), ys = [Float]()
    for _ in 0..<500 {
        let v = rng.uniform(-1, 1)
        xs.append(v)
        ys.append(sinf(3 * v) + 0.05 * rng.normal())
    }
    let reg = try Dataset(x: try Tensor(shape: [500, 1], data: xs), y: try Tensor(shape: [500], data: ys))
    let regressor = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 1), neurons: [32]), task: .regression, seed: 7)
    config.batchSize = 16
    config.measuresTrain = []
    try Trainer(model: regressor, config: config).fit(reg, epochs: 100)
    let rmse = try Metric.rmse.score(try regressor.predict(reg), try Tensor(shape: [500], data: ys), task: .regression)
    print("sin(3x): training RMSE \(rmse) (noise sd 0.05)")
    let bytes = regressor.serialized()
    let reloaded = try Model(serialized: bytes)
    print("model file: \(bytes.count) bytes; reloaded predictions identical: \(try reloaded.predict(reg) == regressor.predict(reg))")
}

/// Reads a CSV of numeric columns with a header; `target` names the label column. A target
/// with few distinct integer values is treated as classes, otherwise as a regression target.
func csv(_ path: String, _ target: String) throws {
    guard let f = fopen(path, "r") else { throw EmberError.invalidArgument("csv", "cannot open \(path)") }
    defer { fclose(f) }
    var lines: [String] = []
    var buffer = [CChar](repeating: 0, count: 1 << 16)
    while fgets(&buffer, Int32(buffer.count), f) != nil {
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let trimmed = line.trimmingCharacters(in: "\r\n")
        if !trimmed.isEmpty { lines.append(trimmed) }
    }
    guard let header = lines.first?.split(separator: ",").map({ String($0).trimmingCharacters(in: "\" ") }),
          let t = header.firstIndex(of: target) else {
        throw EmberError.invalidArgument("csv", "the header of \(path) has no column '\(target)'")
    }
    var x: [Float] = [], y: [Float] = []
    for (i, line) in lines.dropFirst().enumerated() {
        let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { Float(String($0).trimmingCharacters(in: "\" ")) }
        guard cells.count == header.count, cells.allSatisfy({ $0 != nil }) else {
            throw EmberError.invalidArgument("csv", "row \(i + 2) is not \(header.count) numbers")
        }
        for (j, c) in cells.enumerated() { if j == t { y.append(c ?? 0) } else { x.append(c ?? 0) } }
    }
    let n = y.count, p = header.count - 1
    let levels = Set(y)
    let classification = levels.count <= 10 && levels.allSatisfy { $0 == $0.rounded() && $0 >= 0 }
    let classes = Int(levels.max() ?? 0) + 1
    let task: TaskKind = !classification ? .regression : classes == 2 ? .binary : .multiclass(classes: classes)
    let data = try Dataset(x: try Tensor(shape: [n, p], data: x), y: try Tensor(shape: [n], data: y))
    let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: p)), task: task, seed: 1)
    var config = TrainerConfig()
    config.batchSize = 16
    config.measuresTrain = classification ? [.accuracy] : [.rmse]
    let records = try Trainer(model: model, config: config).fit(data, epochs: 50)
    for r in records where r.epoch % 10 == 0 {
        print("epoch \(r.epoch): loss \(r.trainLoss), \(r.trainMetrics.map { "\($0.key) \($0.value)" }.joined())")
    }
    let m: Metric = classification ? .accuracy : .rmse
    print("\(task.name) on \(n) rows × \(p) features: training \(m.rawValue) \(try m.score(try model.predict(data), try Tensor(shape: [n], data: y), task: task))")
}

/// Reads an idx file (gzip-compressed, as Debian ships them) through `gzip -dc`.
func readIDX(_ path: String) throws -> (dims: [Int], bytes: [UInt8]) {
    guard let pipe = popen("gzip -dc '\(path)'", "r") else { throw EmberError.invalidArgument("idx", "cannot run gzip on \(path)") }
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let k = fread(&buffer, 1, buffer.count, pipe)
        if k == 0 { break }
        data.append(contentsOf: buffer[0..<k])
    }
    pclose(pipe)
    guard data.count >= 4 else { throw EmberError.invalidArgument("idx", "\(path) is empty or missing") }
    let rank = Int(data[3])
    var dims: [Int] = []
    for d in 0..<rank {
        let o = 4 + 4 * d
        dims.append(Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3]))
    }
    return (dims, Array(data[(4 + 4 * rank)...]))
}

func fashionMNIST(epochs: Int) throws {
    let dir = "/usr/share/datasets/fashion-mnist"
    func load(_ images: String, _ labels: String) throws -> Dataset {
        let (dims, pixels) = try readIDX("\(dir)/\(images)")
        let (_, ys) = try readIDX("\(dir)/\(labels)")
        let x = try Tensor(shape: [dims[0], 1, dims[1], dims[2]], data: pixels.map { Float($0) / 255 })
        return try Dataset(inputs: ["image": x], target: try Tensor(shape: [ys.count], data: ys.map(Float.init)))
    }
    let train = try load("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    let test = try load("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    let model = try Model(spec: try Architectures.lenet(imageShape: [1, 28, 28]), task: .multiclass(classes: 10), seed: 1)
    var config = TrainerConfig()
    config.batchSize = 128
    config.measuresTrain = [.accuracy]
    config.measuresValid = [.accuracy]
    let trainer = try Trainer(model: model, config: config)
    for e in 1...epochs {
        let start = clock()
        let r = try trainer.fit(train, valid: test, epochs: 1)[0]
        let secs = Double(clock() - start) / Double(CLOCKS_PER_SEC)
        print("epoch \(e): train loss \(r.trainLoss), train accuracy \(r.trainMetrics["accuracy"] ?? .nan), test accuracy \(r.validMetrics["accuracy"] ?? .nan) (\(Int(secs)) s CPU)")
    }
}

extension String {
    /// The string without leading and trailing scalars that occur in `set`.
    /// NOTE: compares Unicode scalars, not Characters: "\r\n" is a single Character.
    func trimmingCharacters(in set: String) -> String {
        let drop = Set(set.unicodeScalars)
        var scalars = Substring(self).unicodeScalars
        while let c = scalars.first, drop.contains(c) { scalars = scalars.dropFirst() }
        while let c = scalars.last, drop.contains(c) { scalars = scalars.dropLast() }
        return String(scalars)
    }
}

do {
    print("Ember — BLAS core: \(BLAS.coreName), threads: \(Engine.numThreads)")
    let args = CommandLine.arguments
    switch args.count > 1 ? args[1] : "spirals" {
    case "spirals": try spirals()
    case "csv":
        guard args.count == 4 else { print("usage: ember-example csv FILE TARGET"); exit(2) }
        try csv(args[2], args[3])
    case "fashion-mnist": try fashionMNIST(epochs: args.count > 2 ? Int(args[2]) ?? 2 : 2)
    default:
        print("usage: ember-example [spirals | csv FILE TARGET | fashion-mnist [EPOCHS]]")
        exit(2)
    }
} catch {
    print("error: \(error)")
    exit(1)
}
