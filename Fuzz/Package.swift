// swift-tools-version:6.0
// libFuzzer targets for Ember's readers of untrusted input (docs/reliability.md#fuzzing). A package
// of its own, so that `swift build`/`swift test` of the engine never see executables without a
// `main`: build and run them with `make fuzz` from the repository root, which instruments the
// engine (the parent package, by path) for coverage and AddressSanitizer.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder; the repository may be cloned under any name.
let engineRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let engine = engineRoot.lastPathComponent.lowercased()

/// One fuzz target per reader: executable `fuzz-<name>` from Sources/Fuzz<Name>.
let fuzzTargets = [
    ("model-file", "FuzzModelFile"), ("safetensors", "FuzzSafetensors"), ("config", "FuzzConfig"),
    ("network", "FuzzNetwork"), ("image-transform", "FuzzImageTransform"), ("image", "FuzzImage"),
]

let package = Package(
    name: "EmberFuzz",
    products: fuzzTargets.map { .executable(name: "fuzz-\($0.0)", targets: [$0.1]) },
    dependencies: [.package(path: "..")],
    targets: [
        // libFuzzer's entry point, LLVMFuzzerRunDriver (the runtime comes with -sanitize=fuzzer).
        .target(name: "CFuzzDriver"),
        .target(name: "FuzzSupport", dependencies: [
            "CFuzzDriver",
            .product(name: "EmberNN", package: engine),
        ]),
    ] + fuzzTargets.map { (_, target) in
        .executableTarget(name: target, dependencies: [
            "FuzzSupport",
            .product(name: "EmberNN", package: engine),
            .product(name: "EmberStatic", package: engine),
        ])
    }
)
