import EmberFixtureRecipes
import EmberNN
import Glibc

// Writes the cross-language fixture: the model of `CrossLanguageRecipe` trained from Swift.
//   swift run ember-fixtures rpkg/tests/testthat/fixtures   (or: make crosslang-fixtures)
let arguments = CommandLine.arguments
let directory = arguments.count > 1 ? arguments[1] : "rpkg/tests/testthat/fixtures"
do {
    let model = try CrossLanguageRecipe.train()
    let path = directory + "/swift_mlp.safetensors"
    try model.save(to: path)
    print("wrote \(path) (\(model.history.count) epochs, final training loss \(model.history.last?.trainLoss ?? .nan))")
} catch {
    print("ember-fixtures: \(error)")
    exit(1)
}
