import EmberCore
import EmberNN

/// The cross-language recipe: the same network, data, seed and training configuration that the R
/// test `test_crosslanguage.R` uses through `ember_fit()`. Trained here, it must give weights
/// bit-identical to R's (the committed file `rpkg/tests/testthat/fixtures/swift_mlp.safetensors`
/// is the reference both sides compare with; regenerate it with `make crosslang-fixtures`).
public enum CrossLanguageRecipe {
    /// Rows of the data set.
    public static let rows = 150

    /// Features [rows, 2] (row-major doubles) and binary targets (1 = "pos", the first level).
    /// Only exact double arithmetic, so that R computes the same values:
    /// x1 = ((i·37) mod 101)/50 − 1, x2 = ((i·53) mod 89)/44 − 1, y = x1 + x2/2 > 0.
    public static func data() -> (x: [Double], y: [Double]) {
        var x: [Double] = [], y: [Double] = []
        for i in 0..<rows {
            let x1 = Double((i * 37) % 101) / 50 - 1
            let x2 = Double((i * 53) % 89) / 44 - 1
            x += [x1, x2]
            y.append(x1 + 0.5 * x2 > 0 ? 1 : 0)
        }
        return (x, y)
    }

    /// The network: `ember_mlp(neurons = 8, p = 0.1)` for two numeric features.
    public static func network() throws -> NetworkSpec {
        try Architectures.mlp(TabularInputs(numeric: 2), neurons: [8], p: 0.1)
    }

    /// Trains the model: binary task with classes ("pos", "neg"), seed 42, both features
    /// standardised; batch size 16, shuffled, Adam with lr 0.01, 5 epochs.
    public static func train() throws -> Model {
        let (x, y) = data()
        let model = try Model(spec: try network(), task: .binary, classNames: ["pos", "neg"], seed: 42)
        var config = TrainerConfig()
        config.batchSize = 16
        config.optimizer = .adam(lr: 0.01)
        let dataset = try Dataset(x: try Tensor(shape: [rows, 2], data: x.map { Float($0) }),
                                  y: try Tensor(shape: [rows], data: y.map { Float($0) }))
        try Trainer(model: model, config: config).fit(dataset, epochs: 5)
        return model
    }
}
