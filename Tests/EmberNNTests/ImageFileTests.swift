import EmberCore
@testable import EmberNN
import EmberTestSupport
import Foundation
import XCTest

/// The image decoder (CEmberImage over libpng and libjpeg-turbo) against PIL's pixels
/// (tools/golden/generate_images.py), its errors, `ImageFileSource` and the background prefetch.
final class ImageFileTests: XCTestCase {
    /// JPEG pixels may differ from PIL's by this many levels: Pillow bundles its own libjpeg-turbo
    /// (3.x), the engine links the system's (Debian 12: 2.1), and the IDCT and the chroma
    /// upsampling may round differently across versions, SIMD paths (AVX2, SSE2, none) and
    /// libjpeg implementations (IJG libjpeg 9 upsamples otherwise). PNG is exact. (With Pillow
    /// 13 and Debian 12's libjpeg-turbo the pixels were identical.)
    static let jpegLevels = 3

    static var directory: String {
        get throws {
            guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
                throw FixtureError.missing("Fixtures/")
            }
            return url.appendingPathComponent("images").path
        }
    }

    func path(_ name: String) throws -> String { try Self.directory + "/" + name }

    /// The decodable fixtures: name → (file channels, expected RGB planes, expected gray plane, JPEG?).
    func cases() throws -> [(name: String, channels: Int, rgb: [Int], gray: [Int], jpeg: Bool)] {
        let images = try Case(Case(Fixture.load("images").root).any("images"))
        return try images.dict.keys.sorted().map { name in
            let c = try Case(images.any(name))
            XCTAssertEqual(try c.int("height"), 5)
            XCTAssertEqual(try c.int("width"), 7)
            return (name, try c.int("channels"), try c.tensor("rgb").data.map { Int($0) }, try c.tensor("gray").data.map { Int($0) },
                    try c.bool("jpeg"))
        }
    }

    func testDecodesLikePIL() throws {
        let all = try cases()
        XCTAssertEqual(all.count, 17)
        for c in all {
            let info = try ImageFile.info(try path(c.name))
            XCTAssertEqual(info, ImageFile.Info(channels: c.channels, height: 5, width: 7), c.name)
            for (channels, expected) in [(3, c.rgb), (1, c.gray)] {
                let (bytes, height, width) = try ImageFile.read(try path(c.name), channels: channels)
                XCTAssertEqual([height, width], [5, 7], c.name)
                XCTAssertEqual(bytes.count, expected.count, c.name)
                let diff = zip(bytes, expected).map { abs(Int($0) - $1) }.max() ?? .max
                if c.jpeg {
                    XCTAssertLessThanOrEqual(diff, Self.jpegLevels, "\(c.name) as \(channels) channel(s)")
                } else {
                    XCTAssertEqual(bytes.map(Int.init), expected, "\(c.name) as \(channels) channel(s): exact")
                }
            }
        }
    }

    func testChannelConversions() throws {
        // Gray to RGB replicates the plane; RGB to gray is PIL's luma rounding, computed here.
        let (gray, _, _) = try ImageFile.read(try path("gray.png"), channels: 1)
        let (gray3, _, _) = try ImageFile.read(try path("gray.png"), channels: 3)
        XCTAssertEqual(gray3, gray + gray + gray)
        let (rgb, _, _) = try ImageFile.read(try path("rgb.png"), channels: 3)
        let (luma, _, _) = try ImageFile.read(try path("rgb.png"), channels: 1)
        let n = 35
        let expected: [UInt8] = (0..<n).map { p in
            let r = UInt32(rgb[p]) * 19595, g = UInt32(rgb[n + p]) * 38470, b = UInt32(rgb[2 * n + p]) * 7471
            return UInt8((r + g + b + 0x8000) >> 16)
        }
        XCTAssertEqual(luma, expected)
        // Alpha is dropped: RGBA decodes to its colour planes.
        XCTAssertEqual(try ImageFile.read(try path("rgba.png"), channels: 3).bytes.count, 3 * n)
        assertEmberError(.invalidArgument, ["[channels] must be 1 or 3, got 2"]) { try ImageFile.read(try path("rgb.png"), channels: 2) }
    }

    func testErrorsNameTheFile() throws {
        let dir = try Self.directory
        let cases: [(String, EmberError.Kind, [String])] = [
            ("missing.png", .invalidArgument, ["does not exist"]),
            ("empty.png", .corruptData, ["is empty (0 bytes)"]),
            ("text.png", .invalidArgument, ["is not a PNG or JPEG file", "68 65 6c 6c", "not the name"]),
            ("gif_named.jpg", .invalidArgument, ["is a GIF file; only PNG and JPEG files are supported"]),
            ("truncated.png", .corruptData, ["truncated or corrupt PNG file (libpng:"]),
            ("truncated.jpg", .corruptData, ["is a truncated JPEG file (libjpeg: Premature end of JPEG file)"]),
            ("truncated_header.jpg", .corruptData, ["is a truncated or corrupt JPEG file (libjpeg:"]),
            ("cmyk.jpg", .invalidArgument, ["is a CMYK JPEG; only grayscale and RGB (YCbCr) JPEGs are supported"]),
            ("zero_width.png", .corruptData, ["PNG image of zero size (5 × 0 pixels)"]),
            ("zero_height.jpg", .corruptData, ["JPEG image of zero size"]),
            ("huge.png", .overflow, ["is 20000 × 20000 = 400000000 pixels; at most 268435456 (2^28) pixels are decoded"]),
        ]
        for (name, kind, fragments) in cases {
            let p = "\(dir)/\(name)"
            assertEmberError(kind, ["[image] '\(p)' "] + fragments) { try ImageFile.read(p, channels: 3) }
            do {
                _ = try ImageFile.read(p, channels: 1)
            } catch let e as EmberError {
                XCTAssertEqual(e.detail.got, p, name)
                XCTAssertEqual(e.detail.argument, "path", name)
            }
        }
        assertEmberError(.invalidArgument, ["[image] '\(dir)' is a directory, not an image file"]) { try ImageFile.read(dir, channels: 3) }
        // Header-only: a truncated file's header is intact, and a huge image is reported, not refused.
        XCTAssertEqual(try ImageFile.info("\(dir)/truncated.png"), ImageFile.Info(channels: 3, height: 5, width: 7))
        XCTAssertEqual(try ImageFile.info("\(dir)/huge.png"), ImageFile.Info(channels: 1, height: 20000, width: 20000))
        for name in ["missing.png", "empty.png", "text.png", "cmyk.jpg", "zero_width.png", "zero_height.jpg"] {
            XCTAssertThrowsError(try ImageFile.info("\(dir)/\(name)"), name)
        }
    }

    /// All decodable 3-channel fixtures, `count` rows cycling through them.
    func colourPaths(_ count: Int) throws -> [String] {
        let names = try cases().map(\.name)
        return try (0..<count).map { try path(names[$0 % names.count]) }
    }

    func testGatherWidensLikeToTensorAndMatchesRead() throws {
        let f = try Fixture.load("images")
        let source = try ImageFileSource(paths: [try path("gray.png"), try path("rgb.png")], sampleShape: [3, 5, 7])
        let batch = try source.gather([1])
        XCTAssertEqual(batch.shape, [1, 3, 5, 7])
        XCTAssertEqual(batch.data, try Case(f.root).tensor("rgb_png_to_tensor").data, "byte / 255 exactly as torchvision's to_tensor")
        let paths = try colourPaths(12)
        let wide = try ImageFileSource(paths: paths, sampleShape: [1, 5, 7]).gather(Array(0..<12))
        for (i, p) in paths.enumerated() {
            let bytes = try ImageFile.read(p, channels: 1).bytes
            XCTAssertEqual(Array(wide.data[i * 35..<(i + 1) * 35]), bytes.map { Float($0) / 255 }, p)
        }
    }

    func testParallelGatherEqualsSerial() throws {
        let before = Engine.numThreads
        defer { try? Engine.setNumThreads(before) }
        let source = try ImageFileSource(paths: try colourPaths(40), sampleShape: [3, 5, 7])
        let rows = [7, 3, 39, 0, 12, 12, 25, 1, 38, 16, 5]
        try Engine.setNumThreads(1)
        let serial = try source.gather(rows)
        try Engine.setNumThreads(2)
        let parallel = try source.gather(rows)
        XCTAssertEqual(serial, parallel)
        XCTAssertEqual(serial.shape, [11, 3, 5, 7])
        // Each row is its own image.
        let single = try source.gather([39])
        XCTAssertEqual(Array(parallel.data[2 * 105..<3 * 105]), single.data)
    }

    func testGatherReportsTheFirstFailingRow() throws {
        let before = Engine.numThreads
        defer { try? Engine.setNumThreads(before) }
        var paths = try colourPaths(10)
        paths[3] = try path("truncated.png")
        paths[8] = try path("missing.jpg")
        let source = try ImageFileSource(paths: paths, sampleShape: [3, 5, 7])
        for threads in [1, 2] {
            try Engine.setNumThreads(threads)
            assertEmberError(.corruptData, ["[image] row 3 (0-based): '\(paths[3])' is a truncated or corrupt PNG file"]) {
                try source.gather(Array(0..<10))
            }
            // The first failing row in the batch's order.
            assertEmberError(.invalidArgument, ["[image] row 8 (0-based): '\(paths[8])' does not exist"]) {
                try source.gather([9, 8, 3])
            }
            do {
                _ = try source.gather([0, 1, 2, 3])
            } catch let e as EmberError {
                XCTAssertEqual(e.detail.index, 3)
            }
        }
        assertEmberError(.invalidArgument, ["[gather] row 10 out of range 0..<10"]) { try source.gather([10]) }
    }

    func testOtherSizesNeedAResizeFunction() throws {
        let p = try path("rgb.png")
        let strict = try ImageFileSource(paths: [p, p], sampleShape: [3, 4, 6])
        assertEmberError(.shapeMismatch, ["[image] row 1 (0-based): '\(p)' is 5 × 7 pixels (height × width); the source's images are 4 × 6",
                                          "resize function"]) { try strict.gather([1]) }
        // A crop as the caller's resize function: the top-left 4 × 6 of each plane.
        let crop: ImageFileSource.Resize = { image, height, width in
            let (c, h, w) = (image.shape[0], image.shape[1], image.shape[2])
            XCTAssertEqual([c, h, w], [3, 5, 7])
            return try Tensor(shape: [c, height, width], data: (0..<c * height * width).map { i in
                image.data[(i / (height * width)) * h * w + (i / width % height) * w + i % width]
            })
        }
        let cropped = try ImageFileSource(paths: [p], sampleShape: [3, 4, 6], resize: crop).gather([0])
        let full = try ImageFileSource(paths: [p], sampleShape: [3, 5, 7]).gather([0])
        for ch in 0..<3 {
            for y in 0..<4 {
                XCTAssertEqual(Array(cropped.data[(ch * 4 + y) * 6..<(ch * 4 + y) * 6 + 6]), Array(full.data[(ch * 5 + y) * 7..<(ch * 5 + y) * 7 + 6]))
            }
        }
        // Larger targets go through the function too (its input is decoded at the file's size).
        let pad: ImageFileSource.Resize = { image, height, width in try Tensor(shape: [image.shape[0], height, width], repeating: 0.5) }
        XCTAssertEqual(try ImageFileSource(paths: [p], sampleShape: [3, 9, 9], resize: pad).gather([0]).data, [Float](repeating: 0.5, count: 243))
        let wrong: ImageFileSource.Resize = { _, _, _ in try Tensor.zeros([3, 2, 2]) }
        assertEmberError(.shapeMismatch, ["row 0 (0-based): '\(p)': the resize function returned [3, 2, 2]; expected [3, 4, 6]"]) {
            try ImageFileSource(paths: [p], sampleShape: [3, 4, 6], resize: wrong).gather([0])
        }
        let failing: ImageFileSource.Resize = { _, _, _ in throw EmberError.invalidArgument("resize", "no luck") }
        assertEmberError(.invalidArgument, ["row 0 (0-based): '\(p)': resizing from 5 × 7 to 4 × 6 failed: [resize] no luck"]) {
            try ImageFileSource(paths: [p], sampleShape: [3, 4, 6], resize: failing).gather([0])
        }
    }

    func testSourceArguments() throws {
        assertEmberError(.invalidArgument, ["[paths] needs at least one image file"]) { try ImageFileSource(paths: [], sampleShape: [3, 5, 7]) }
        for shape in [[2, 5, 7], [3, 0, 7], [3, 5], [1, 1 << 15, 1 << 14]] {
            assertEmberError(.invalidArgument, ["[shape] must be [channels (1 or 3), height >= 1, width >= 1]", shapeString(shape)]) {
                try ImageFileSource(paths: ["x.png"], sampleShape: shape)
            }
        }
    }

    // MARK: Training from image files

    /// conv 3×3 (4 channels) → relu → flatten → head, on images [3, 5, 7].
    func convSpec() -> NetworkSpec {
        NetworkSpec(inputs: [InputSpec("image", .tensor(shape: [3, 5, 7]))], nodes: [
            NodeSpec("conv", .conv2d, inputs: ["image"], params: ["out_channels": .number(4), "kernel_size": .number(3), "padding": .number(1)]),
            NodeSpec("relu", .relu, inputs: ["conv"]),
            NodeSpec("flatten", .flatten, inputs: ["relu"]),
            NodeSpec("head", .head, inputs: ["flatten"]),
        ], output: "head")
    }

    func imageData(_ paths: [String]) throws -> (files: Dataset, tensors: Dataset) {
        let target = try Tensor(shape: [paths.count], data: (0..<paths.count).map { Float($0 % 3) })
        let source = try ImageFileSource(paths: paths, sampleShape: [3, 5, 7])
        let files = try Dataset(inputs: [:], sources: ["image": source], target: target)
        let decoded = try Tensor(shape: [paths.count, 3, 5, 7], data: paths.flatMap { try ImageFile.read($0, channels: 3).bytes.map { Float($0) / 255 } })
        return (files, try Dataset(inputs: ["image": decoded], target: target))
    }

    func train(_ data: Dataset, prefetch: Bool, epochs: Int = 3, maxBatches: Int? = nil, valid: Dataset? = nil) throws -> (Model, Trainer) {
        let model = try Model(spec: convSpec(), task: .multiclass(classes: 3), seed: 11)
        var config = TrainerConfig()
        config.batchSize = 4
        config.prefetch = prefetch
        config.optimizer = .adam(lr: 0.01)
        let trainer = try Trainer(model: model, config: config)
        try trainer.fit(data, valid: valid, epochs: epochs, maxBatches: maxBatches)
        return (model, trainer)
    }

    func testPrefetchGivesIdenticalWeightsAndPredictions() throws {
        let (files, tensors) = try imageData(try colourPaths(22))
        let (withPrefetch, _) = try train(files, prefetch: true, valid: files)
        let (without, _) = try train(files, prefetch: false, valid: files)
        let (fromTensors, _) = try train(tensors, prefetch: true, valid: tensors)
        XCTAssertEqual(withPrefetch.snapshotWeights(), without.snapshotWeights())
        XCTAssertEqual(withPrefetch.snapshotWeights(), fromTensors.snapshotWeights(), "image files train as the decoded tensor does")
        XCTAssertEqual(withPrefetch.history, fromTensors.history)
        let predicted = try withPrefetch.predict(files, batchSize: 5, prefetch: true)
        XCTAssertEqual(predicted, try withPrefetch.predict(files, batchSize: 5, prefetch: false))
        XCTAssertEqual(predicted, try withPrefetch.predict(tensors, batchSize: 5))
        // Slices that stop inside an epoch (the next batch prefetched and dropped) change nothing.
        let model = try Model(spec: convSpec(), task: .multiclass(classes: 3), seed: 11)
        var config = TrainerConfig()
        config.batchSize = 4
        config.optimizer = .adam(lr: 0.01)
        let trainer = try Trainer(model: model, config: config)
        while model.history.count < 3 { try trainer.fit(files, valid: files, epochs: 3 - model.history.count, maxBatches: 2) }
        XCTAssertEqual(model.snapshotWeights(), withPrefetch.snapshotWeights())
    }

    func testCompiledStepTrainsFromABatchSource() throws {
        // A numeric input given as bytes goes through the compiled step's prepared batch.
        var rng = RandomGenerator(seed: 2)
        let bytes = (0..<60 * 6).map { _ in UInt8(rng.uniform(0, 255)) }
        let y = try Tensor(shape: [60], data: (0..<60).map { Float($0 % 2) })
        let source = try ByteSource(bytes: bytes, count: 60, sampleShape: [6], scale: 0.5)
        let tensor = try Tensor(shape: [60, 6], data: bytes.map { Float($0) * 0.5 })
        var weights: [[String: Tensor]] = []
        for (data, prefetch) in [(try Dataset(inputs: [:], sources: ["num": source], target: y), true),
                                 (try Dataset(inputs: [:], sources: ["num": source], target: y), false),
                                 (try Dataset(inputs: ["num": tensor], target: y), true)] {
            let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 6), neurons: [8]), task: .binary,
                                  standardize: ["num": [Bool](repeating: false, count: 6)], seed: 5)
            var config = TrainerConfig()
            config.batchSize = 7
            config.prefetch = prefetch
            let trainer = try Trainer(model: model, config: config)
            XCTAssertNotNil(trainer.chainPlan)
            try trainer.fit(data, epochs: 2)
            weights.append(model.snapshotWeights())
        }
        XCTAssertEqual(weights[0], weights[1])
        XCTAssertEqual(weights[0], weights[2])
    }

    /// Counts the batches that began.
    final class BatchCounter: TrainerCallback {
        var began = 0
        func onBatchBegin(_ trainer: Trainer, batch: Int) throws { began += 1 }
    }

    func testFailingBatchMidEpochStopsTrainingWithTheModelSoFar() throws {
        var paths = try colourPaths(20)
        paths[13] = try path("truncated.jpg")
        let (files, _) = try imageData(paths.map { $0.hasSuffix("truncated.jpg") ? try path("rgb.png") : $0 })
        let broken = try Dataset(inputs: [:], sources: ["image": try ImageFileSource(paths: paths, sampleShape: [3, 5, 7])], target: files.target)
        for prefetch in [true, false] {
            let model = try Model(spec: convSpec(), task: .multiclass(classes: 3), seed: 11)
            var config = TrainerConfig()
            config.batchSize = 4
            config.shuffle = false
            config.prefetch = prefetch
            let trainer = try Trainer(model: model, config: config)
            let counter = BatchCounter()
            trainer.callbacks = [counter]
            // Epoch 1 runs batches of rows 0-3, 4-7, 8-11; rows 12-15 hold the truncated file.
            assertEmberError(.corruptData, ["[image] row 13 (0-based): '\(paths[13])' is a truncated JPEG file"]) {
                try trainer.fit(broken, epochs: 2)
            }
            XCTAssertEqual(counter.began, 3, "the failing batch did not begin")
            XCTAssertTrue(trainer.epochInProgress)
            XCTAssertEqual(trainer.batchesInEpoch, 3)
            XCTAssertEqual(trainer.epoch, 1)
            XCTAssertTrue(model.history.isEmpty)
            // The weights are those of the three batches before it.
            let reference = try Model(spec: convSpec(), task: .multiclass(classes: 3), seed: 11)
            try Trainer(model: reference, config: config).fit(files, epochs: 1, maxBatches: 3)
            XCTAssertEqual(model.snapshotWeights(), reference.snapshotWeights(), "prefetch \(prefetch)")
            // Prediction stops at the failing batch too, naming the row.
            assertEmberError(.corruptData, ["row 13 (0-based)"]) { try model.predict(broken, batchSize: 4, prefetch: prefetch) }
        }
    }
}

/// The background thread that assembles the next batch.
final class PrefetchTests: XCTestCase {
    func testBatchesComeBackInOrderFromAnotherThreadAndErrorsStayWithTheirBatch() throws {
        let caller = pthread_self()
        let prefetcher = BatchPrefetcher { rows in
            guard pthread_equal(pthread_self(), caller) == 0 else { throw EmberError(.invalidState, "ran on the caller's thread") }
            if rows.contains(13) { throw EmberError.invalidArgument("rows", "row 13 is bad") }
            return [try Tensor(shape: [rows.count], data: rows.map(Float.init))]
        }
        defer { prefetcher.close() }
        assertEmberError(.invalidState, ["[prefetch] no batch was started"]) { try prefetcher.take() }
        XCTAssertEqual(try prefetcher.inputs([1, 2], next: [3, 4, 5]).first?.data, [1, 2])
        XCTAssertEqual(prefetcher.started, [3, 4, 5])
        XCTAssertEqual(try prefetcher.inputs([3, 4, 5], next: [13]).first?.data, [3, 4, 5])
        // The started batch [13] fails, but it is dropped when another batch is asked for.
        XCTAssertEqual(try prefetcher.inputs([6], next: [13]).first?.data, [6])
        assertEmberError(.invalidArgument, ["row 13 is bad"]) { try prefetcher.inputs([13], next: [7]) }
        XCTAssertEqual(try prefetcher.inputs([7], next: nil).first?.data, [7], "the batch after a failure")
    }
}
