// The deterministic image transforms against torchvision.transforms.v2.functional
// (Fixtures/image_transforms.json, written by tools/golden/generate_transforms.py). Each case's
// transform is read from its JSON form, so the reader is exercised on torchvision's shorthands too.
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Foundation
import XCTest

final class ImageTransformGoldenTests: XCTestCase {
    var inputs: [String: Tensor] = [:]
    var cases: [Case] = []

    override func setUpWithError() throws {
        let root = try Fixture.load("image_transforms").root
        guard let raw = root["inputs"] as? [String: Any] else { throw FixtureError.malformed("inputs") }
        for (name, value) in raw { inputs[name] = try tensorFrom(value) }
        cases = try Case(root).cases("cases")
    }

    /// Tolerances per op, `|ember - torchvision| <= atol + rtol · |torchvision|` on values in [0, 1]
    /// (the largest differences seen are noted):
    /// - exact: copies and index maps (crop, pad, center_crop, flips, the quarter turns of rotate),
    ///   and normalize, whose `(x - mean) / std` is the same two float32 operations;
    /// - `.elementwise` (1e-7 + 1e-6 relative): the luma `0.2989 r + 0.587 g + 0.114 b` and the
    ///   blends of the colour ops, in PyTorch's order; PyTorch's vectorised add may fuse the multiply
    ///   (one rounding fewer) and contrast's mean is summed in another order: 1 ulp (6e-8) seen;
    /// - 1e-6 absolute and relative for bilinear resizing and the grid of rotate and affine: the
    ///   same float32 weights and coordinates, but a sum of four products of values up to 1 whose
    ///   rounding PyTorch's FMA kernels change by a few ulp of 1 (3e-7 seen); for the grid, the
    ///   sampling position (x + 1) · W / 2 − 0.5 is rounded in float32 (~ulp(1) · W / 2 ≈ 5e-7 pixel
    ///   for these widths), which moves a value by at most that times a neighbour difference (≤ 1).
    ///   Nearest sampling is exact: the cases avoid positions at exactly half a pixel.
    func tolerance(_ op: String, _ name: String) -> Tolerance {
        switch op {
        case "crop", "pad", "center_crop", "hflip", "vflip", "normalize":
            return Tolerance(rtol: 0, atol: 0)
        case "rotate" where name.contains("5x5_90") || name.contains("5x5_270") || name.contains("_180_") || name.contains("nearest"):
            return Tolerance(rtol: 0, atol: 0)
        case "affine" where name.contains("nearest"):
            return Tolerance(rtol: 0, atol: 0)
        case "rotate", "affine", "resize", "resized_crop":
            return Tolerance(rtol: 1e-6, atol: 1e-6)
        default:
            return .elementwise
        }
    }

    func transform(_ c: Case) throws -> ImageTransform {
        let data = try JSONSerialization.data(withJSONObject: try c.any("transform"))
        return try ImageTransform(json: try JSONValue.parse([UInt8](data)))
    }

    func testEveryCaseMatchesTorchvision() throws {
        XCTAssertGreaterThanOrEqual(cases.count, 50)
        var seen = Set<String>()
        for c in cases {
            let name = try c.string("name")
            let t = try transform(c)
            seen.insert(t.name)
            let input = try XCTUnwrap(inputs[try c.string("input")], name)
            let expected = try c.tensor("output")
            let output = try t.apply(to: input)
            assertClose(output, expected, tolerance(t.name, name), "\(name) (\(try c.string("torchvision")))")
            // One image at a time gives the same as the batch.
            let first = try t.apply(to: try input.reshaped([-1] + Array(input.shape.suffix(3))).slice0(0))
            XCTAssertEqual(first.data, Array(output.data.prefix(first.count)), "\(name): single image")
        }
        let deterministic = Set(ImageTransform.names.filter { !$0.hasPrefix("random_") && $0 != "color_jitter" })
        XCTAssertEqual(seen, deterministic, "every deterministic transform has golden cases")
    }
}

extension Tensor {
    /// The first-axis entry `i` of a tensor, as its own tensor.
    func slice0(_ i: Int) throws -> Tensor {
        let inner = Array(shape.dropFirst())
        let n = inner.reduce(1, *)
        return try Tensor(shape: inner, data: Array(data[(i * n)..<((i + 1) * n)]))
    }
}
