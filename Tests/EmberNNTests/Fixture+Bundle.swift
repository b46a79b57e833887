import EmberTestSupport
import Foundation

extension Fixture {
    /// Loads `Fixtures/<name>.json` from this test target's bundle.
    static func load(_ name: String) throws -> Fixture { try load(name, in: .module) }
}
