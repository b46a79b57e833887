// swift-tools-version:6.0
// Ember: a deep-learning engine in Swift. Layers depend one way:
// COpenBLAS → EmberCore → EmberNN (+ CEmberImage) → EmberCABI (see docs/architecture.md#layers).
import Foundation
import PackageDescription

// The R package carries a copy of Package.swift, Sources/ and include/ only (no Tests/ or
// Examples/); the development targets are declared when their folders exist.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let hasDevelopmentTargets = FileManager.default.fileExists(atPath: packageRoot + "/Tests")

let package = Package(
    name: "Ember",
    products: [
        .library(name: "EmberCore", targets: ["EmberCore"]),
        .library(name: "EmberNN", targets: ["EmberNN"]),
        // The archive the R package links, together with the static Swift runtime.
        .library(name: "EmberStatic", type: .static, targets: ["EmberCABI"]),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // C where C is the right tool: MXCSR (flush-to-zero) and thread-local error text.
        .target(name: "CEmberSupport"),
        // Vectorised hot loops (optimizer updates, convolution kernels …) with runtime CPU dispatch.
        // No memset/memcpy builtins: loops over short rows must stay loops, not library calls.
        .target(name: "CEmberKernels",
                cSettings: [.unsafeFlags(["-O3", "-fno-math-errno", "-fno-builtin-memset", "-fno-builtin-memcpy"])]),
        // PNG and JPEG files decoded by Debian's libpng and libjpeg-turbo (libpng-dev,
        // libjpeg62-turbo-dev). The R package links them itself (rpkg/src/Makevars.in): a static
        // archive does not carry linker settings.
        .target(name: "CEmberImage", linkerSettings: [.linkedLibrary("png"), .linkedLibrary("jpeg")]),
        .target(name: "EmberCore", dependencies: ["COpenBLAS", "CEmberSupport", "CEmberKernels"]),
        .target(name: "EmberNN", dependencies: ["EmberCore", "CEmberKernels", "CEmberImage"]),
        .target(name: "EmberCABI", dependencies: ["EmberNN", "CEmberSupport"]),
    ]
)

if hasDevelopmentTargets {
    package.products.append(.executable(name: "ember-example", targets: ["EmberExample"]))
    package.products.append(.executable(name: "ember-fixtures", targets: ["EmberFixtures"]))
    package.products.append(.executable(name: "ember-bench", targets: ["EmberBench"]))
    package.targets += [
        .executableTarget(name: "EmberExample", dependencies: ["EmberNN"], path: "Examples/swift"),
        .executableTarget(name: "EmberBench", dependencies: ["EmberNN"], path: "Benchmarks/swift"),
        .target(name: "EmberTestSupport", dependencies: ["EmberCore"], path: "Tests/EmberTestSupport"),
        // Counts malloc calls of one thread (the allocation-free training step test).
        .target(name: "CMallocCounter", path: "Tests/CMallocCounter"),
        // The cross-language recipe, shared by the fixture writer (`make crosslang-fixtures`) and the tests.
        .target(name: "EmberFixtureRecipes", dependencies: ["EmberNN"], path: "Tests/EmberFixtureRecipes"),
        .executableTarget(name: "EmberFixtures", dependencies: ["EmberFixtureRecipes"], path: "Tests/EmberFixtures"),
        .testTarget(name: "EmberCoreTests", dependencies: ["EmberCore", "EmberTestSupport", "CEmberKernels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "EmberNNTests", dependencies: ["EmberNN", "EmberTestSupport", "EmberFixtureRecipes", "CMallocCounter"], resources: [.copy("Fixtures")]),
        .testTarget(name: "EmberCABITests", dependencies: ["EmberCABI"]),
    ]
}
