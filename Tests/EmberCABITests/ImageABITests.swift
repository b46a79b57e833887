import CEmberSupport
import Foundation
import XCTest

@testable import EmberCABI

/// ember_dataset_add_image_files, ember_image_info and ember_image_read as a C caller uses them,
/// on the image fixtures of EmberNNTests (tools/golden/generate_images.py).
extension CABITests {
    static var imageDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../EmberNNTests/Fixtures/images").standardizedFileURL
    }

    func image(_ name: String) -> String { Self.imageDirectory.appendingPathComponent(name).path }

    /// The bytes PIL decodes from fixture `name` as 3 (`rgb`) or 1 (`gray`) channels.
    func expectedPixels(_ name: String, _ key: String) throws -> [UInt8] {
        let url = Self.imageDirectory.deletingLastPathComponent().appendingPathComponent("images.json")
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let images = try XCTUnwrap(root["images"] as? [String: Any])
        let values = try XCTUnwrap((images[name] as? [String: Any])?[key] as? [Int])
        return values.map { UInt8($0) }
    }

    func testImageInfoAndRead() throws {
        var c: Int64 = 0, h: Int64 = 0, w: Int64 = 0
        check(ember_image_info(image("rgba.png"), &c, &h, &w))
        XCTAssertEqual([c, h, w], [4, 5, 7])
        check(ember_image_info(image("gray.jpg"), &c, &h, &w))
        XCTAssertEqual([c, h, w], [1, 5, 7])
        var out = [UInt8](repeating: 0, count: 105)
        check(ember_image_read(image("rgb.png"), 3, &out, 105))
        XCTAssertEqual(out, try expectedPixels("rgb.png", "rgb"), "CHW: planes R, G, B of 5 × 7")
        var gray = [UInt8](repeating: 0, count: 35)
        check(ember_image_read(image("palette.png"), 1, &gray, 35))
        XCTAssertEqual(gray, try expectedPixels("palette.png", "gray"))

        // Validation at the boundary; `out` is written only on success.
        expectError(ember_image_info(nil, &c, &h, &w), invalid, "[path] is NULL", argument: "path")
        expectError(ember_image_info(image("rgb.png"), nil, &h, &w), invalid, "out_channels", argument: "out_channels")
        expectError(ember_image_info(image("rgb.png"), &c, &h, nil), invalid, "out_width")
        expectError(ember_image_read(image("rgb.png"), 2, &out, 105), invalid, "[channels] must be 1 (gray) or 3 (RGB), got 2", argument: "channels")
        expectError(ember_image_read(image("rgb.png"), 3, nil, 105), invalid, "[out] is NULL", argument: "out")
        var untouched = [UInt8](repeating: 7, count: 104)
        expectError(ember_image_read(image("rgb.png"), 3, &untouched, 104), shape, "decodes to 3 × 5 × 7 = 105 bytes; out_length is 104", argument: "out_length")
        XCTAssertEqual(untouched, [UInt8](repeating: 7, count: 104))
        let overflow: Int32 = 5
        for (name, code, needle) in [("missing.png", invalid, "does not exist"), ("text.png", invalid, "is not a PNG or JPEG file"),
                                     ("cmyk.jpg", invalid, "is a CMYK JPEG"), ("truncated.png", corrupt, "is a truncated or corrupt PNG file (libpng: Read Error)"),
                                     ("empty.png", corrupt, "is empty (0 bytes)"), ("huge.png", overflow, "is 20000 × 20000 = 400000000 pixels; at most 268435456 (2^28)")] {
            untouched = [UInt8](repeating: 7, count: 105)
            expectError(ember_image_read(image(name), 3, &untouched, 105), code, "[image] '\(image(name))' \(needle)", argument: "path")
            XCTAssertEqual(untouched, [UInt8](repeating: 7, count: 105), name)
        }
        expectError(ember_image_info(image("missing.png"), &c, &h, &w), invalid, "does not exist")
    }

    /// A dataset of `files` as input "image" [3, 5, 7] with targets 0, 1, 2, 0, ...
    func imageDataset(_ files: [String]) throws -> OpaquePointer {
        var d: OpaquePointer?
        check(ember_dataset_new(&d, Int64(files.count)))
        let dataset = try XCTUnwrap(d)
        withCPaths(files) { check(ember_dataset_add_image_files(dataset, "image", $0, Int64(files.count), 3, 5, 7)) }
        check(ember_dataset_set_target(dataset, (0..<files.count).map { Double($0 % 3) }, Int64(files.count)))
        return dataset
    }

    func withCPaths<T>(_ files: [String], _ body: ([UnsafePointer<CChar>?]) -> T) -> T {
        let copies = files.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        return body(copies.map { $0.map { UnsafePointer($0) } })
    }

    func testImageFilesTrainAsTheDecodedTensor() throws {
        let names = ["rgb.png", "gray.png", "rgba.png", "palette.png", "rgb.jpg", "gray.jpg", "interlaced.png", "rgb16.png"]
        let files = (0..<20).map { image(names[$0 % names.count]) }
        let fromFiles = try imageDataset(files)
        defer { _ = ember_dataset_free(fromFiles) }
        // The same pixels as a tensor input (byte / 255, row-major [n, 3, 5, 7]).
        var pixels: [Double] = []
        for f in files {
            var out = [UInt8](repeating: 0, count: 105)
            check(ember_image_read(f, 3, &out, 105))
            pixels += out.map { Double(Float($0) / 255) }
        }
        var d: OpaquePointer?
        check(ember_dataset_new(&d, 20))
        let fromTensor = try XCTUnwrap(d)
        defer { _ = ember_dataset_free(fromTensor) }
        check(ember_dataset_add_tensor(fromTensor, "image", pixels, [20, 3, 5, 7], 4, 0))
        check(ember_dataset_set_target(fromTensor, (0..<20).map { Double($0 % 3) }, 20))

        let net = architecture("resnet", #"{"inputs": {"image": [3, 5, 7]}, "channels": 4, "n_blocks": 1}"#)
        var predictions: [[Double]] = []
        for data in [fromFiles, fromTensor] {
            var model: OpaquePointer?
            check(ember_model_new(&model, #"{"network": \#(net), "task": "multiclass", "n_classes": 3, "seed": "3"}"#))
            defer { _ = ember_model_free(model) }
            var trainer: OpaquePointer?
            check(ember_trainer_new(&trainer, model, #"{"batch_size": 6}"#))
            defer { _ = ember_trainer_free(trainer) }
            check(ember_trainer_fit(trainer, data, data, 2, 0, 2, nil))
            var p = [Double](repeating: 0, count: 60)
            check(ember_model_predict(model, data, 7, 0, &p, 60))
            predictions.append(p)
        }
        XCTAssertEqual(predictions[0], predictions[1])

        // A broken file fails the call that reaches its batch, naming the row and the file.
        var broken = files
        broken[9] = image("truncated.jpg")
        let bad = try imageDataset(broken)
        defer { _ = ember_dataset_free(bad) }
        var model: OpaquePointer?
        check(ember_model_new(&model, #"{"network": \#(net), "task": "multiclass", "n_classes": 3, "seed": "3"}"#))
        defer { _ = ember_model_free(model) }
        var trainer: OpaquePointer?
        check(ember_trainer_new(&trainer, model, #"{"batch_size": 6, "shuffle": false}"#))
        defer { _ = ember_trainer_free(trainer) }
        expectError(ember_trainer_fit(trainer, bad, nil, 1, 0, 1, nil), corrupt, "[image] row 9 (0-based): '\(broken[9])' is a truncated JPEG file", argument: "path")
        XCTAssertEqual(cember_last_error_index(), 9)
        let state = try XCTUnwrap(json(text { ember_trainer_state(trainer, $0) }) as? [String: Any])
        XCTAssertEqual(state["batches_in_epoch"] as? Int, 1, "the batch of rows 0-5 trained")
        var p = [Double](repeating: 0, count: 60)
        expectError(ember_model_predict(model, bad, 4, 0, &p, 60), corrupt, "row 9 (0-based)")
    }

    func testAddImageFilesValidatesItsArguments() throws {
        var d: OpaquePointer?
        check(ember_dataset_new(&d, 3))
        let dataset = try XCTUnwrap(d)
        defer { _ = ember_dataset_free(dataset) }
        let files = [image("rgb.png"), image("gray.png"), image("rgb.jpg")]
        withCPaths(files) { paths in
            expectError(ember_dataset_add_image_files(nil, "image", paths, 3, 3, 5, 7), invalid, "dataset")
            expectError(ember_dataset_add_image_files(dataset, nil, paths, 3, 3, 5, 7), invalid, "name")
            expectError(ember_dataset_add_image_files(dataset, "image", nil, 3, 3, 5, 7), invalid, "[paths] is NULL", argument: "paths")
            expectError(ember_dataset_add_image_files(dataset, "image", paths, 2, 3, 5, 7), shape, "the dataset has 3 rows; one path per row is needed, got 2", argument: "n_paths")
            expectError(ember_dataset_add_image_files(dataset, "image", paths, 3, 4, 5, 7), invalid, "[channels] must be 1 (gray) or 3 (RGB), got 4", argument: "channels")
            expectError(ember_dataset_add_image_files(dataset, "image", paths, 3, 3, 0, 7), invalid, "[height]", argument: "height")
            expectError(ember_dataset_add_image_files(dataset, "image", paths, 3, 3, 5, -1), invalid, "[width]", argument: "width")
            expectError(ember_dataset_add_image_files(dataset, "image", paths, 3, 1, 1 << 15, 1 << 14), 5, "exceed the limit of 268435456 pixels", argument: "height")
            var withNull = paths
            withNull[1] = nil
            expectError(ember_dataset_add_image_files(dataset, "image", withNull, 3, 3, 5, 7), invalid, "[paths] paths[1] (0-based) is NULL", argument: "paths")
            XCTAssertEqual(cember_last_error_index(), 1)
            check(ember_dataset_add_image_files(dataset, "image", paths, 3, 3, 5, 7))
            expectError(ember_dataset_add_image_files(dataset, "image", paths, 3, 3, 5, 7), invalid, "already has an input named 'image'")
            expectError(ember_dataset_add_numeric(dataset, "image", [1, 2, 3], 1, 0), invalid, "already has an input named 'image'")
        }
    }
}
