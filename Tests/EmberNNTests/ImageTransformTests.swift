// The random image transforms (statistics of their parameters, determinism across seeds and
// threads, skipping at prediction), the pipeline's JSON form and its error messages. The
// deterministic kernels are compared with torchvision in ImageTransformGoldenTests.
import EmberTestSupport
import EmberCore
@testable import EmberNN
import CMallocCounter
import XCTest

final class ImageTransformTests: XCTestCase {
    /// `[n, c, h, w]` holding 1, 2, 3 … (every pixel distinct and non-zero).
    func ramp(_ shape: [Int]) throws -> Tensor {
        try Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { Float($0 + 1) })
    }

    /// A batch of `n` copies of `image` `[c, h, w]`.
    func repeated(_ image: Tensor, _ n: Int) throws -> Tensor {
        try Tensor(shape: [n] + image.shape, data: Array([[Float]](repeating: image.data, count: n).joined()))
    }

    /// Sample `i` of a batch.
    func sample(_ batch: Tensor, _ i: Int) throws -> Tensor { try batch.slice0(i) }

    /// `|count - n·p| <= 5 σ` of a binomial count: fails by chance with probability < 1e-6.
    func assertBinomial(_ count: Int, n: Int, p: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let sigma = (Double(n) * p * (1 - p)).squareRoot()
        XCTAssertLessThanOrEqual(abs(Double(count) - Double(n) * p), 5 * sigma + 1e-9,
                                 "\(what): \(count) of \(n), expected about \(Double(n) * p)", file: file, line: line)
    }

    // MARK: Random transforms: statistics

    func testFlipFrequencyMatchesP() throws {
        let n = 4000
        let batch = try repeated(try ramp([1, 2, 3]), n)
        for (transform, flipped) in [(ImageTransform.randomHorizontalFlip(p: 0.3), [Float]([3, 2, 1, 6, 5, 4])),
                                     (.randomVerticalFlip(p: 0.7), [4, 5, 6, 1, 2, 3])] {
            let pipeline = try ImageTransformPipeline(transforms: [transform])
            var rng = RandomGenerator(seed: 11)
            let out = try pipeline.apply(batch, training: true, rng: &rng)
            var count = 0
            for i in 0..<n {
                let s = try sample(out, i).data
                if s == flipped { count += 1 } else { XCTAssertEqual(s, [1, 2, 3, 4, 5, 6], "\(transform.name): sample \(i)") }
            }
            guard case let .randomHorizontalFlip(p) = transform else {
                assertBinomial(count, n: n, p: 0.7, transform.name)
                continue
            }
            assertBinomial(count, n: n, p: p, transform.name)
        }
        for (p, expected) in [(0.0, [Float]([1, 2, 3])), (1.0, [3, 2, 1])] {
            var rng = RandomGenerator(seed: 3)
            let out = try ImageTransformPipeline(transforms: [.randomHorizontalFlip(p: p)])
                .apply(try repeated(try ramp([1, 1, 3]), 200), training: true, rng: &rng)
            XCTAssertEqual(out, try repeated(try Tensor(shape: [1, 1, 3], data: expected), 200), "p = \(p)")
        }
    }

    /// Every crop origin of the padded image occurs about equally often, and each crop is the
    /// window of the padded image at its origin (deterministic pad + crop).
    func testRandomCropCoversEveryOffsetUniformly() throws {
        let image = try ramp([2, 4, 5])
        let n = 5000
        for (mode, fill) in [(ImagePaddingMode.constant, [Float]([-1, -2])), (.reflect, [0]), (.edge, [0]), (.symmetric, [0])] {
            let options = RandomCropOptions(height: 4, width: 5, padding: ImagePadding(2), fill: fill, paddingMode: mode)
            var rng = RandomGenerator(seed: 5)
            let out = try ImageTransformPipeline(transforms: [.randomCrop(options)]).apply(try repeated(image, n), training: true, rng: &rng)
            let padded = try ImageTransform.pad(ImagePadding(2), fill: fill, mode: mode).apply(to: image)
            var windows: [[Float]] = []
            for top in 0...4 {
                for left in 0...4 {
                    windows.append(try ImageTransform.crop(top: top, left: left, height: 4, width: 5).apply(to: padded).data)
                }
            }
            var counts = [Int](repeating: 0, count: 25)
            for i in 0..<n {
                let s = try sample(out, i).data
                // Edge and reflect windows can coincide; count the first that matches.
                guard let k = windows.firstIndex(of: s) else { return XCTFail("\(mode): sample \(i) is no window of the padded image") }
                counts[k] += 1
            }
            if mode == .constant {
                for (k, c) in counts.enumerated() { assertBinomial(c, n: n, p: 1.0 / 25, "constant: origin \(k / 5), \(k % 5)") }
            } else {
                XCTAssertEqual(counts.reduce(0, +), n)
            }
        }
        // Without padding the origin is uniform over the image: a 6 × 8 crop of 10 × 12.
        var rng = RandomGenerator(seed: 9)
        let options = RandomCropOptions(height: 6, width: 8)
        var counts = [Int](repeating: 0, count: 25)
        for _ in 0..<5000 {
            let (p, top, left) = ImageTransform.sampleRandomCrop(options, ImageDims(c: 1, h: 10, w: 12), &rng)
            XCTAssertEqual(p, .zero)
            counts[top * 5 + left] += 1
        }
        for (k, c) in counts.enumerated() { assertBinomial(c, n: 5000, p: 1.0 / 25, "origin \(k / 5), \(k % 5)") }
    }

    /// pad_if_needed pads the missing amount on both sides, as torchvision.
    func testRandomCropPadIfNeeded() throws {
        let options = RandomCropOptions(height: 6, width: 3, padIfNeeded: true)
        let pipeline = try ImageTransformPipeline(transforms: [.randomCrop(options)])
        XCTAssertEqual(try pipeline.outputShape(forInputShape: [5, 2, 4, 3], training: true), [5, 2, 6, 3])
        XCTAssertEqual(ImageTransform.randomCropPadding(options, ImageDims(c: 2, h: 4, w: 3)), ImagePadding(left: 0, top: 2, right: 0, bottom: 2))
        var rng = RandomGenerator(seed: 1)
        let out = try pipeline.apply(try repeated(try ramp([1, 4, 3]), 50), training: true, rng: &rng)
        // The 6-row window of the 8-row padded image always holds the 4 image rows, at 3 places.
        var tops = Set<Int>()
        for i in 0..<50 {
            let s = try sample(out, i).data
            XCTAssertEqual(s.filter { $0 != 0 }, (1...12).map(Float.init), "sample \(i)")
            tops.insert(try XCTUnwrap(s.firstIndex(of: 1)) / 3)
        }
        XCTAssertEqual(tops, [0, 1, 2])
    }

    func testRandomResizedCropRespectsScaleAndRatio() throws {
        let d = ImageDims(c: 3, h: 40, w: 50)
        let area = Double(d.h * d.w)
        let options = RandomResizedCropOptions(height: 8, width: 8, scale: ImageRange(0.2, 0.6), ratio: ImageRange(0.5, 2))
        var rng = RandomGenerator(seed: 21)
        var fractions: [Double] = [], ratios: [Double] = []
        for _ in 0..<3000 {
            let r = ImageTransform.sampleResizedCrop(options, d, &rng)
            XCTAssert(r.top >= 0 && r.left >= 0 && r.top + r.height <= d.h && r.left + r.width <= d.w, "inside: \(r)")
            let h = Double(r.height), w = Double(r.width)
            // h and w are rounded: some real sizes within half a pixel satisfy the bounds.
            XCTAssert((h + 0.5) * (w + 0.5) >= 0.2 * area && (h - 0.5) * (w - 0.5) <= 0.6 * area, "area of \(r)")
            XCTAssert((w + 0.5) / (h - 0.5) >= 0.5 && (w - 0.5) / (h + 0.5) <= 2, "ratio of \(r)")
            fractions.append(h * w / area)
            ratios.append(w / h)
        }
        XCTAssertLessThan(fractions.min() ?? 1, 0.23)
        XCTAssertGreaterThan(fractions.max() ?? 0, 0.57)
        XCTAssertLessThan(ratios.min() ?? 1, 0.55)
        XCTAssertGreaterThan(ratios.max() ?? 0, 1.8)
        // log-uniform ratio: as many below 1 as above.
        assertBinomial(ratios.filter { $0 < 1 }.count, n: ratios.count, p: 0.5, "ratio < 1")

        // No attempt fits (area 1 with ratio ≥ 2 needs w = 14 > 10): the centred crop of ratio 2.
        let fallback = RandomResizedCropOptions(height: 4, width: 4, scale: ImageRange(1, 1), ratio: ImageRange(2, 3))
        let r = ImageTransform.sampleResizedCrop(fallback, ImageDims(c: 1, h: 10, w: 10), &rng)
        XCTAssertEqual([r.top, r.left, r.height, r.width], [2, 0, 5, 10])

        // Applied: the output is the resized crop at the sampled region.
        let pipeline = try ImageTransformPipeline(transforms: [.randomResizedCrop(options)])
        let batch = try Tensor.uniform([6, 3, 40, 50], rng: &rng)
        var seedRNG = RandomGenerator(seed: 8)
        let out = try pipeline.apply(batch, training: true, rng: &seedRNG)
        XCTAssertEqual(out.shape, [6, 3, 8, 8])
        var replay = RandomGenerator(seed: 8)
        let batchSeed = replay.next()
        for i in 0..<6 {
            var sampleRNG = RandomGenerator(seed: ImageTransformPipeline.sampleSeed(batchSeed, i))
            let c = ImageTransform.sampleResizedCrop(options, d, &sampleRNG)
            let expected = try ImageTransform.resizedCrop(top: c.top, left: c.left, height: c.height, width: c.width,
                                                          outputHeight: 8, outputWidth: 8).apply(to: try sample(batch, i))
            XCTAssertEqual(try sample(out, i), expected, "sample \(i)")
        }
    }

    func testColorJitterFactorsAndOrder() throws {
        let options = ColorJitterOptions(brightness: ColorJitterOptions.range(around: 0.4), contrast: ImageRange(0.5, 1.5),
                                         saturation: ImageRange(0, 2))
        XCTAssertEqual(options.brightness, ImageRange(0.6, 1.4))
        XCTAssertEqual(ColorJitterOptions.range(around: 1.5), ImageRange(0, 2.5), "clipped at 0 like torchvision")
        var rng = RandomGenerator(seed: 4)
        var orders: [String: Int] = [:]
        var b: [Double] = [], c: [Double] = [], s: [Double] = []
        let n = 6000
        for _ in 0..<n {
            let j = ImageTransform.sampleColorJitter(options, &rng)
            orders["\(j.order.0)\(j.order.1)\(j.order.2)", default: 0] += 1
            b.append(try XCTUnwrap(j.brightness))
            c.append(try XCTUnwrap(j.contrast))
            s.append(try XCTUnwrap(j.saturation))
        }
        XCTAssertEqual(Set(orders.keys), ["012", "021", "102", "120", "201", "210"])
        for (order, count) in orders { assertBinomial(count, n: n, p: 1.0 / 6, "order \(order)") }
        for (name, values, low, high) in [("brightness", b, 0.6, 1.4), ("contrast", c, 0.5, 1.5), ("saturation", s, 0.0, 2.0)] {
            XCTAssert(values.allSatisfy { $0 >= low && $0 < high }, "\(name) within [\(low), \(high))")
            XCTAssertEqual(values.reduce(0, +) / Double(n), (low + high) / 2, accuracy: 0.02 * (high - low), "\(name): mean")
        }

        // Fixed factors: each image is one of the six orders of the deterministic adjustments.
        let image = try Tensor.uniform([3, 5, 6], rng: &rng)
        let fixed = ColorJitterOptions(brightness: ImageRange(1.3, 1.3), contrast: ImageRange(0.6, 0.6), saturation: ImageRange(1.8, 1.8))
        let steps: [ImageTransform] = [.adjustBrightness(1.3), .adjustContrast(0.6), .adjustSaturation(1.8)]
        var candidates: [[Float]] = []
        for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            var x = image
            for k in order { x = try steps[k].apply(to: x) }
            candidates.append(x.data)
        }
        XCTAssertEqual(Set(candidates.map { $0.description }).count, 6, "the orders give different images")
        let out = try ImageTransformPipeline(transforms: [.colorJitter(fixed)]).apply(try repeated(image, 120), training: true, rng: &rng)
        var seen = Set<Int>()
        for i in 0..<120 {
            let k = try XCTUnwrap(candidates.firstIndex(of: try sample(out, i).data), "sample \(i) is one of the six orders")
            seen.insert(k)
        }
        XCTAssertEqual(seen.count, 6)
    }

    func testRandomRotationAndAffineParameters() throws {
        var rng = RandomGenerator(seed: 13)
        let d = ImageDims(c: 3, h: 20, w: 30)
        let options = RandomAffineOptions(degrees: ImageRange(-10, 25), translate: (0.1, 0.25), scale: ImageRange(0.8, 1.1),
                                          shearX: ImageRange(-5, 5), shearY: ImageRange(2, 4), interpolation: .bilinear, fill: [0.5])
        var txs = Set<Double>(), tys = Set<Double>()
        for _ in 0..<2000 {
            let a = ImageTransform.sampleAffine(options, d, &rng)
            XCTAssert(a.angle >= -10 && a.angle < 25)
            XCTAssert(a.scale >= 0.8 && a.scale < 1.1)
            XCTAssert(a.shearX >= -5 && a.shearX < 5 && a.shearY >= 2 && a.shearY < 4)
            XCTAssertEqual(a.translateX, a.translateX.rounded(), "integer shifts")
            txs.insert(a.translateX)
            tys.insert(a.translateY)
            XCTAssertEqual(a.fill, [0.5])
            XCTAssertEqual(a.interpolation, .bilinear)
        }
        XCTAssertEqual(txs, Set((-3...3).map(Double.init)), "shifts up to 0.1 · 30 pixels")
        XCTAssertEqual(tys, Set((-5...5).map(Double.init)), "shifts up to 0.25 · 20 pixels")

        // A one-point range is the deterministic rotation with torchvision's default fill 0.
        let image = try Tensor.uniform([2, 3, 7, 9], rng: &rng)
        let out = try ImageTransformPipeline(transforms: [.randomRotation(degrees: ImageRange(30, 30), interpolation: .bilinear, fill: [0])])
            .apply(image, training: true, rng: &rng)
        XCTAssertEqual(out, try ImageTransform.rotate(angle: 30, interpolation: .bilinear, fill: [0]).apply(to: image))
        XCTAssertNotEqual(out, try ImageTransform.rotate(angle: 30, interpolation: .bilinear, fill: nil).apply(to: image),
                          "fill 0 blends with the mask; fill None does not")
    }

    // MARK: Determinism and stages

    func augmentation() throws -> ImageTransformPipeline {
        try ImageTransformPipeline(transforms: [
            .randomResizedCrop(RandomResizedCropOptions(height: 12, width: 12, scale: ImageRange(0.5, 1))),
            .randomCrop(RandomCropOptions(height: 12, width: 12, padding: ImagePadding(2), paddingMode: .reflect)),
            .randomHorizontalFlip(p: 0.5), .randomVerticalFlip(p: 0.2),
            .randomRotation(degrees: ImageRange(-20, 20), interpolation: .bilinear, fill: [0]),
            .randomAffine(RandomAffineOptions(degrees: ImageRange(-5, 5), translate: (0.1, 0.1), scale: ImageRange(0.9, 1.1))),
            .colorJitter(ColorJitterOptions(brightness: ImageRange(0.8, 1.2), contrast: ImageRange(0.8, 1.2), saturation: ImageRange(0.8, 1.2))),
            .normalize(mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3]),
        ])
    }

    func testSameSeedSameBatchAtAnyThreadCount() throws {
        let pipeline = try augmentation()
        var data = RandomGenerator(seed: 1)
        let batch = try Tensor.uniform([96, 3, 16, 14], rng: &data)
        let threads = Engine.numThreads
        defer { try? Engine.setNumThreads(threads) }
        var results: [Tensor] = []
        for t in [1, 2, 1] {
            try Engine.setNumThreads(t)
            var rng = RandomGenerator(seed: 42)
            results.append(try pipeline.apply(batch, training: true, rng: &rng))
            var expectedRNG = RandomGenerator(seed: 42)
            _ = expectedRNG.next()
            XCTAssertEqual(rng, expectedRNG, "one draw per batch")
        }
        XCTAssertEqual(results[0].shape, [96, 3, 12, 12])
        XCTAssertEqual(results[0], results[1], "1 and 2 threads")
        XCTAssertEqual(results[0], results[2])
        var other = RandomGenerator(seed: 43)
        let different = try pipeline.apply(batch, training: true, rng: &other)
        XCTAssertNotEqual(results[0], different, "another seed")
        // Samples draw independently: identical images get different augmentations.
        let same = try repeated(try sample(batch, 0), 8)
        var rng = RandomGenerator(seed: 42)
        let out = try pipeline.apply(same, training: true, rng: &rng)
        XCTAssertEqual(Set((0..<8).map { (try? sample(out, $0).data.description) ?? "" }).count, 8)
        // The next batch continues the stream: not the same augmentation again.
        var stream = RandomGenerator(seed: 42)
        let first = try pipeline.apply(batch, training: true, rng: &stream)
        let second = try pipeline.apply(batch, training: true, rng: &stream)
        XCTAssertNotEqual(first, second)
    }

    /// A batch costs a fixed number of heap allocations (the result, one scratch area, the plan),
    /// whatever the number and size of its images: nothing is allocated per sample or pixel.
    func testAllocationsDoNotGrowWithBatchOrImages() throws {
        try XCTSkipUnless(cmalloc_counter_available() == 1, "sanitizer builds keep their own allocator: nothing is counted")
        let pipeline = try augmentation()
        let threads = Engine.numThreads
        defer { try? Engine.setNumThreads(threads) }
        try Engine.setNumThreads(1)  // the counter sees the calling thread
        var data = RandomGenerator(seed: 1)
        var counts: [Int] = []
        for shape in [[4, 3, 16, 14], [64, 3, 16, 14], [64, 3, 40, 36]] {
            let batch = try Tensor.uniform(shape, rng: &data)
            var rng = RandomGenerator(seed: 5)
            _ = try pipeline.apply(batch, training: true, rng: &rng)  // warm the buffer pool
            cmalloc_counter_start()
            _ = try pipeline.apply(batch, training: true, rng: &rng)
            counts.append(cmalloc_counter_stop())
        }
        XCTAssertEqual(counts[0], counts[1], "4 and 64 images")
        XCTAssertEqual(counts[1], counts[2], "16 × 14 and 40 × 36 images")
        XCTAssertLessThan(counts[0], 40)
    }

    func testPredictionSkipsRandomTransforms() throws {
        let pipeline = try ImageTransformPipeline(transforms: [
            .randomCrop(RandomCropOptions(height: 6, width: 6, padding: ImagePadding(3))), .randomHorizontalFlip(p: 1),
            .colorJitter(ColorJitterOptions(brightness: ImageRange(0, 0))), .normalize(mean: [0.5], std: [0.25]),
        ])
        var data = RandomGenerator(seed: 2)
        let batch = try Tensor.uniform([4, 3, 6, 6], rng: &data)
        var rng = RandomGenerator(seed: 7)
        let predicted = try pipeline.apply(batch, training: false, rng: &rng)
        XCTAssertEqual(rng, RandomGenerator(seed: 7), "no draw at prediction")
        XCTAssertEqual(predicted, try ImageTransform.normalize(mean: [0.5], std: [0.25]).apply(to: batch))
        let trained = try pipeline.apply(batch, training: true, rng: &rng)
        XCTAssertEqual(trained.data.filter { $0 == -2 }.count, trained.count, "brightness 0 then normalize: every value -2")
        XCTAssertFalse(pipeline.isRandom(training: false))
        XCTAssertTrue(pipeline.isRandom(training: true))
        XCTAssertEqual(ImageTransform.randomCrop(RandomCropOptions(height: 1, width: 1)).stage, .train)
        XCTAssertEqual(ImageTransform.centerCrop(height: 1, width: 1).stage, .both)
        // A deterministic-only pipeline leaves the generator alone in training too.
        var untouched = RandomGenerator(seed: 7)
        _ = try ImageTransformPipeline(transforms: [.horizontalFlip]).apply(batch, training: true, rng: &untouched)
        XCTAssertEqual(untouched, RandomGenerator(seed: 7))
    }

    func testSingleImageAndResizeForLoaders() throws {
        var rng = RandomGenerator(seed: 3)
        let image = try Tensor.uniform([3, 17, 23], rng: &rng)
        let resized = try ImageTransform.resizeImage(image, height: 8, width: 8)
        XCTAssertEqual(resized.shape, [3, 8, 8])
        XCTAssertEqual(try ImageTransform.resizeImage(image, height: 17, width: 23), image, "same size: unchanged")
        let batch = try ImageTransform.resizeImage(try repeated(image, 2), height: 8, width: 8)
        XCTAssertEqual(try sample(batch, 1), resized)
        let pipeline = try ImageTransformPipeline(transforms: [.resize(.shorterSide(10)), .centerCrop(height: 10, width: 10)])
        XCTAssertEqual(try pipeline.outputShape(forInputShape: [3, 17, 23]), [3, 10, 10])
        XCTAssertEqual(try pipeline.outputShape(forInputShape: [5, 3, 17, 23]), [5, 3, 10, 10])
        XCTAssertEqual(try ImageTransformPipeline(transforms: [.resize(.shorterSide(10))]).outputShape(forInputShape: [1, 23, 17]), [1, 13, 10])
        XCTAssertEqual(try ImageTransformPipeline(transforms: []).apply(image, training: true, rng: &rng), image)
        assertEmberError(.invalidState, ["[random_horizontal_flip]", "ImageTransformPipeline"]) {
            try ImageTransform.randomHorizontalFlip(p: 0.5).apply(to: image)
        }
    }

    // MARK: JSON

    func everyTransform() -> [ImageTransform] {
        [
            .normalize(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]), .resize(.size(height: 20, width: 24)),
            .resize(.shorterSide(16)), .pad(ImagePadding(left: 1, top: 2, right: 3, bottom: 4), fill: [0.1, 0.2, 0.3], mode: .constant),
            .pad(ImagePadding(2), fill: [0], mode: .symmetric), .centerCrop(height: 16, width: 12), .grayscale(outputChannels: 3),
            .crop(top: -1, left: 2, height: 8, width: 9), .horizontalFlip, .verticalFlip,
            .resizedCrop(top: 1, left: 2, height: 6, width: 7, outputHeight: 10, outputWidth: 11),
            .rotate(angle: 12.5, interpolation: .bilinear, fill: nil), .rotate(angle: -3, interpolation: .nearest, fill: [1]),
            .affine(AffineOptions(angle: 5, translateX: 1.5, translateY: -2, scale: 1.1, shearX: 3, shearY: -4,
                                  interpolation: .bilinear, fill: [0.2, 0.3, 0.4])),
            .adjustBrightness(1.2), .adjustContrast(0.8), .adjustSaturation(1.5),
            .randomHorizontalFlip(p: 0.5), .randomVerticalFlip(p: 0.25),
            .randomCrop(RandomCropOptions(height: 16, width: 16, padding: ImagePadding(4), padIfNeeded: true, fill: [0.5], paddingMode: .reflect)),
            .randomResizedCrop(RandomResizedCropOptions(height: 14, width: 12, scale: ImageRange(0.3, 0.9), ratio: ImageRange(0.8, 1.25))),
            .randomRotation(degrees: ImageRange(-15, 30), interpolation: .bilinear, fill: [0.1]),
            .randomAffine(RandomAffineOptions(degrees: ImageRange(-10, 10), translate: (0.1, 0.2), scale: ImageRange(0.9, 1.1),
                                              shearX: ImageRange(-5, 5), shearY: ImageRange(-2, 3), interpolation: .nearest, fill: [0])),
            .randomAffine(RandomAffineOptions(degrees: ImageRange(0, 0), shearX: ImageRange(-5, 5))),
            .colorJitter(ColorJitterOptions(brightness: ImageRange(0.6, 1.4), saturation: ImageRange(0, 2))),
        ]
    }

    func testJSONRoundTrip() throws {
        let all = everyTransform()
        XCTAssertEqual(Set(all.map(\.name)), Set(ImageTransform.names), "every transform is covered")
        let pipeline = try ImageTransformPipeline(transforms: all)
        let text = pipeline.json.text
        XCTAssertTrue(text.hasPrefix("{\"format\":\"ember.image_transforms\",\"version\":1,\"transforms\":[{\"op\":\"normalize\""))
        let back = try ImageTransformPipeline(jsonText: text)
        XCTAssertEqual(back, pipeline)
        XCTAssertEqual(back.json.text, text)
        for t in all { XCTAssertEqual(try ImageTransform(json: t.json), t, t.name) }
    }

    /// torchvision's shorthands read as their long forms.
    func testJSONShorthands() throws {
        let text = """
        [{"op": "random_crop", "size": 32, "padding": 4},
         {"op": "random_crop", "size": [8, 6], "padding": [1, 2], "padding_mode": "edge"},
         {"op": "random_rotation", "degrees": 10},
         {"op": "random_affine", "degrees": [-5, 15], "shear": 7, "translate": null},
         {"op": "random_affine", "degrees": 0, "shear": [1, 2, 3, 4], "scale": [0.5, 2]},
         {"op": "color_jitter", "brightness": 0.4, "contrast": [0.7, 1.1], "hue": 0},
         {"op": "center_crop", "size": 5}, {"op": "resize", "size": [7]}, {"op": "pad", "padding": 3},
         {"op": "affine", "angle": 3, "shear": 4}, {"op": "random_horizontal_flip"}]
        """
        let p = try ImageTransformPipeline(jsonText: text)
        XCTAssertEqual(p.transforms, [
            .randomCrop(RandomCropOptions(height: 32, width: 32, padding: ImagePadding(4))),
            .randomCrop(RandomCropOptions(height: 8, width: 6, padding: ImagePadding(left: 1, top: 2, right: 1, bottom: 2), paddingMode: .edge)),
            .randomRotation(degrees: ImageRange(-10, 10), interpolation: .nearest, fill: [0]),
            .randomAffine(RandomAffineOptions(degrees: ImageRange(-5, 15), shearX: ImageRange(-7, 7))),
            .randomAffine(RandomAffineOptions(degrees: ImageRange(0, 0), scale: ImageRange(0.5, 2), shearX: ImageRange(1, 2), shearY: ImageRange(3, 4))),
            .colorJitter(ColorJitterOptions(brightness: ImageRange(0.6, 1.4), contrast: ImageRange(0.7, 1.1))),
            .centerCrop(height: 5, width: 5), .resize(.shorterSide(7)), .pad(ImagePadding(3), fill: [0], mode: .constant),
            .affine(AffineOptions(angle: 3, shearX: 4)), .randomHorizontalFlip(p: 0.5),
        ])
    }

    // MARK: Errors

    func testArgumentErrorsNameTransformAndArgument() {
        func check(_ fragments: [String], argument: String, index: Int = 1, _ transform: ImageTransform,
                   file: StaticString = #filePath, line: UInt = #line) {
            assertEmberError(.invalidArgument, fragments, file: file, line: line) {
                try ImageTransformPipeline(transforms: [.horizontalFlip, transform])
            }
            do {
                _ = try ImageTransformPipeline(transforms: [.horizontalFlip, transform])
            } catch let e as EmberError {
                XCTAssertEqual(e.detail.argument, argument, file: file, line: line)
                XCTAssertEqual(e.detail.index, index, file: file, line: line)
                XCTAssertEqual(e.detail.op, transform.name, file: file, line: line)
            } catch { XCTFail("\(error)", file: file, line: line) }
        }
        check(["[random_crop] transform 1 (0-based): padding must be >= 0 on every side, got [-1, 4, 4, 4]"], argument: "padding",
              .randomCrop(RandomCropOptions(height: 4, width: 4, padding: ImagePadding(left: -1, top: 4, right: 4, bottom: 4))))
        check(["[pad] transform 1 (0-based): padding must be >= 0"], argument: "padding", .pad(ImagePadding(-2), fill: [0], mode: .constant))
        check(["[random_horizontal_flip] transform 1 (0-based): p must be a probability in [0, 1], got 1.5"], argument: "p", .randomHorizontalFlip(p: 1.5))
        check(["[random_vertical_flip]", "p must be a probability in [0, 1], got -0.1"], argument: "p", .randomVerticalFlip(p: -0.1))
        check(["[normalize] transform 1 (0-based): std must be finite and non-zero (it divides), got [0.2, 0.0, 0.3]"], argument: "std",
              .normalize(mean: [0, 0, 0], std: [0.2, 0, 0.3]))
        check(["[random_resized_crop] transform 1 (0-based): scale must be [min, max] with min <= max, got [0.9, 0.1]"], argument: "scale",
              .randomResizedCrop(RandomResizedCropOptions(height: 4, width: 4, scale: ImageRange(0.9, 0.1))))
        check(["[random_resized_crop]", "ratio must be > 0, got [0.0, 1.0]"], argument: "ratio",
              .randomResizedCrop(RandomResizedCropOptions(height: 4, width: 4, ratio: ImageRange(0, 1))))
        check(["[random_rotation]", "degrees must be [min, max] with min <= max, got [10.0, -10.0]"], argument: "degrees",
              .randomRotation(degrees: ImageRange(10, -10), interpolation: .nearest, fill: [0]))
        check(["[color_jitter]", "brightness must be >= 0.0, got [-0.5, 1.0]"], argument: "brightness",
              .colorJitter(ColorJitterOptions(brightness: ImageRange(-0.5, 1))))
        check(["[center_crop]", "size must be >= 1, got 0"], argument: "size", .centerCrop(height: 0, width: 3))
        check(["[resize]", "size must be >= 1, got 0"], argument: "size", .resize(.shorterSide(0)))
        check(["[grayscale]", "num_output_channels must be 1 or 3, got 2"], argument: "num_output_channels", .grayscale(outputChannels: 2))
        check(["[affine]", "scale must be a finite number > 0, got 0.0"], argument: "scale", .affine(AffineOptions(angle: 0, scale: 0)))
        check(["[affine]", "shear must not be ±90 degrees"], argument: "shear", .affine(AffineOptions(angle: 0, shearX: 90)))
        check(["[random_affine]", "translate must be two fractions in [0, 1], got [0.5, 1.5]"], argument: "translate",
              .randomAffine(RandomAffineOptions(degrees: ImageRange(0, 0), translate: (0.5, 1.5))))
        check(["[adjust_contrast]", "contrast_factor must be a finite number >= 0, got -1.0"], argument: "contrast_factor", .adjustContrast(-1))
        check(["[rotate]", "fill must hold one value or one per channel, got []"], argument: "fill",
              .rotate(angle: 3, interpolation: .nearest, fill: []))
    }

    func testShapeErrors() throws {
        func check(_ fragments: [String], _ transforms: [ImageTransform], _ shape: [Int],
                   file: StaticString = #filePath, line: UInt = #line) {
            assertEmberError(.shapeMismatch, fragments, file: file, line: line) {
                try ImageTransformPipeline(transforms: transforms).outputShape(forInputShape: shape)
            }
        }
        check(["[normalize] transform 0 (0-based): mean has 2 values; expected 1 or one per channel (3) for an image [3, 8, 8]"],
              [.normalize(mean: [0.5, 0.5], std: [1])], [4, 3, 8, 8])
        check(["[random_crop] transform 1 (0-based): size [10, 10] is larger than the padded image [8, 8] (image [3, 8, 8])"],
              [.horizontalFlip, .randomCrop(RandomCropOptions(height: 10, width: 10))], [2, 3, 8, 8])
        check(["[pad] transform 0 (0-based): padding [8, 0, 0, 0] in reflect mode must be smaller than the image's extent (image [3, 8, 8])"],
              [.pad(ImagePadding(left: 8, top: 0, right: 0, bottom: 0), fill: [0], mode: .reflect)], [3, 8, 8])
        check(["[adjust_saturation] transform 0 (0-based): image must have 1 or 3 channels, got 2"], [.adjustSaturation(1.2)], [1, 2, 4, 4])
        check(["[grayscale]", "must have 1 or 3 (RGB) channels, got 4"], [.grayscale(outputChannels: 1)], [4, 5, 5])
        check(["[random_crop]", "fill has 2 values; expected 1 or one per channel (3)"],
              [.randomCrop(RandomCropOptions(height: 2, width: 2, fill: [0, 1]))], [3, 4, 4])
        check(["[image_transforms] images of [2, 3, 32, 32] become [2, 3, 24, 24] in training but [2, 3, 32, 32] at prediction"],
              [.randomResizedCrop(RandomResizedCropOptions(height: 24, width: 24))], [2, 3, 32, 32])
        check(["[image_transforms] expected an image [C, H, W] or a batch [N, C, H, W], got [3, 32]"], [.horizontalFlip], [3, 32])
        check(["[image_transforms] images must have at least one channel, row and column, got [2, 3, 0, 4]"], [.horizontalFlip], [2, 3, 0, 4])
        assertEmberError(.overflow, ["[center_crop] transform 0 (0-based): an image of [3, 100000, 100000] exceeds 2^31 elements"]) {
            try ImageTransformPipeline(transforms: [.centerCrop(height: 100_000, width: 100_000)]).outputShape(forInputShape: [3, 8, 8])
        }
        assertEmberError(.overflow, ["[resized_crop] transform 0 (0-based): an image of [3, 1099511627775, 1099511627775] exceeds 2^31 elements"]) {
            try ImageTransformPipeline(jsonText: #"[{"op": "resized_crop", "top": 0, "left": 0, "height": 1099511627775, "width": 1099511627775, "size": 4}]"#)
                .outputShape(forInputShape: [3, 8, 8])
        }
        // The same image fits in one stage and not in another: validated for both.
        XCTAssertEqual(try ImageTransformPipeline(transforms: [.randomResizedCrop(RandomResizedCropOptions(height: 24, width: 24))])
            .outputShape(forInputShape: [2, 3, 32, 32], training: true), [2, 3, 24, 24])
        var rng = RandomGenerator(seed: 1)
        assertEmberError(.shapeMismatch, ["[random_crop] transform 0 (0-based): size [5, 5] is larger"]) {
            try ImageTransformPipeline(transforms: [.randomCrop(RandomCropOptions(height: 5, width: 5))])
                .apply(try Tensor.zeros([2, 1, 4, 4]), training: true, rng: &rng)
        }
        XCTAssertEqual(rng, RandomGenerator(seed: 1), "nothing drawn when the batch is refused")
    }

    func testJSONErrors() {
        func check(_ fragments: [String], _ text: String, file: StaticString = #filePath, line: UInt = #line) {
            assertEmberError(.invalidArgument, fragments, file: file, line: line) { try ImageTransformPipeline(jsonText: text) }
        }
        check(["[image_transforms] transform 0 (0-based): unknown op 'random_flip'; expected one of normalize, resize"], #"[{"op": "random_flip"}]"#)
        check(["[random_crop] transform 1 (0-based): paddin is not a field of random_crop; expected fill, pad_if_needed, padding, padding_mode, size"],
              #"[{"op": "hflip"}, {"op": "random_crop", "size": 4, "paddin": 2}]"#)
        check(["[random_crop] transform 0 (0-based): size is required"], #"[{"op": "random_crop"}]"#)
        check(["[random_crop] transform 0 (0-based): padding_mode must be one of \"constant\", \"edge\", \"reflect\", \"symmetric\", got \"wrap\""],
              #"[{"op": "random_crop", "size": 4, "padding_mode": "wrap"}]"#)
        check(["[rotate] transform 0 (0-based): angle must be a number, got \"ten\""], #"[{"op": "rotate", "angle": "ten"}]"#)
        check(["[random_horizontal_flip] transform 0 (0-based): p must be a probability in [0, 1], got 2.0"], #"[{"op": "random_horizontal_flip", "p": 2}]"#)
        check(["[color_jitter] transform 0 (0-based): hue is not supported"], #"[{"op": "color_jitter", "hue": 0.1}]"#)
        check(["[random_resized_crop] transform 0 (0-based): antialias true is not supported"], #"[{"op": "random_resized_crop", "size": 4, "antialias": true}]"#)
        check(["[crop] transform 0 (0-based): top must be an integer, got 1.5"], #"[{"op": "crop", "top": 1.5, "left": 0, "height": 2, "width": 2}]"#)
        check(["[image_transforms] unsupported version 2"], #"{"format": "ember.image_transforms", "version": 2, "transforms": []}"#)
        check(["[image_transforms] format must be 'ember.image_transforms'"], #"{"format": "ember.network", "transforms": []}"#)
        check(["[image_transforms] transform 0 (0-based): lacks \"op\""], #"[{"size": 3}]"#)
        check(["[random_rotation] transform 0 (0-based): degrees as a single number must be >= 0, got -5.0"], #"[{"op": "random_rotation", "degrees": -5}]"#)
    }
}
