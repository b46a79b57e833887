import EmberCore
import EmberFixtureRecipes
@testable import EmberNN
import Foundation
import XCTest

/// The doors agree: the same network, data and seed trained from Swift and from R give
/// bit-identical weights (the R side is rpkg/tests/testthat/test_crosslanguage.R, which compares
/// with the same committed file), and a model file written from R loads here.
/// Regenerate the fixtures with `make crosslang-fixtures`.
final class CrossLanguageTests: XCTestCase {
    /// rpkg/tests/testthat/fixtures, found from this file's path (the R package owns the files).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../rpkg/tests/testthat/fixtures").standardized.path

    func testSwiftTrainingReproducesTheCommittedWeights() throws {
        let model = try CrossLanguageRecipe.train()
        let committed = try Model(contentsOf: CrossLanguageTests.fixtures + "/swift_mlp.safetensors")
        let a = model.snapshotWeights(), b = committed.snapshotWeights()
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        for (name, t) in a {
            let bits = t.data.map(\.bitPattern), expected = (b[name]?.data ?? []).map(\.bitPattern)
            XCTAssertEqual(bits, expected, "weights of \(name) differ: the training recipe changed its numbers; regenerate with make crosslang-fixtures only if that is intended")
        }
        XCTAssertEqual(model.history.map(\.trainLoss), committed.history.map(\.trainLoss))
        XCTAssertEqual(model.classNames, ["pos", "neg"])
    }

    func testModelFileWrittenFromRLoadsAndPredicts() throws {
        let model = try Model(contentsOf: CrossLanguageTests.fixtures + "/r_iris_mlp.safetensors")
        XCTAssertEqual(model.classNames, ["setosa", "versicolor", "virginica"])
        XCTAssertNotNil(model.hostMetadata["mlr3ember.encoding"], "R stores its feature encoding in the file")
        // Iris rows 1, 51 and 101: one of each species.
        let x = try Tensor(shape: [3, 4], data: [5.1, 3.5, 1.4, 0.2, 7.0, 3.2, 4.7, 1.4, 6.3, 3.3, 6.0, 2.5])
        let p = try model.predict(try Dataset(x: x)).data
        for row in 0..<3 {
            let probs = Array(p[(row * 3)..<(row * 3 + 3)])
            XCTAssertEqual(probs.firstIndex(of: probs.max() ?? 0), row)
        }
        XCTAssertEqual(model.history.count, 40)
    }
}
