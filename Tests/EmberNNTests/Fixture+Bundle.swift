import EmberTestSupport
import Foundation

extension Fixture {
    /// Loads `Fixtures/<name>.json` from this test target's bundle.
    static func load(_ name: String) throws -> Fixture { try load(name, in: .module) }

    /// The bytes of `Fixtures/<file>` (a safetensors file) from this test target's bundle.
    static func bytes(_ file: String) throws -> [UInt8] {
        guard let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw FixtureError.missing("Fixtures/")
        }
        return [UInt8](try Data(contentsOf: dir.appendingPathComponent(file)))
    }
}
