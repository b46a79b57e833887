import EmberCore
import EmberNN

// Dataset functions of include/ember.h: named inputs and a target, copied once into engine memory.

/// Creates an empty dataset.
@_cdecl("ember_dataset_new")
public func ember_dataset_new(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ nRows: Int64) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_dataset", "is NULL") }
        let rows = try checkedCount(nRows, "n_rows", lower: 1)
        out.pointee = HandleRegistry.shared.register(DatasetBox(rows: rows))
    }
}

/// Frees a dataset.
@_cdecl("ember_dataset_free")
public func ember_dataset_free(_ dataset: OpaquePointer?) -> Int32 {
    guarded { try HandleRegistry.shared.free(dataset, DatasetBox.self, "dataset") }
}

/// The arguments every matrix input shares: the dataset, the input name, the column count and
/// the layout.
func matrixArguments(_ dataset: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ nCols: Int64, _ layout: Int32) throws
    -> (box: DatasetBox, name: String, cols: Int, columnMajor: Bool) {
    let box = try HandleRegistry.shared.lookup(dataset, DatasetBox.self, "dataset")
    return (box, try string(name, "name"), try checkedCount(nCols, "n_cols", lower: 1), try checkedLayout(layout))
}

/// Adds a numeric matrix input.
@_cdecl("ember_dataset_add_numeric")
public func ember_dataset_add_numeric(_ dataset: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ x: UnsafePointer<Double>?,
                                      _ nCols: Int64, _ layout: Int32) -> Int32 {
    guarded {
        let (box, n, cols, columnMajor) = try matrixArguments(dataset, name, nCols, layout)
        guard let x else { throw EmberError.invalidArgument("x", "is NULL") }
        let count = try checkedElements([box.rows, cols], "x")
        if let i = firstNonFinite(x, count: count) {
            let (row, col) = columnMajor ? (i % box.rows, i / box.rows) : (i / cols, i % cols)
            throw nonFiniteInput(n, row: row, ("column", col), x[i])
        }
        try box.add(n, try tensor(from: x, shape: [box.rows, cols], columnMajor: columnMajor, argument: "x"))
    }
}

/// The error for input `name`'s non-finite `value` at `row` and `position` (its column or element).
private func nonFiniteInput(_ name: String, row: Int, _ position: (String, Int), _ value: Double) -> EmberError {
    EmberError(.invalidArgument, "[x] input '\(name)': \(ErrorIndex.describe(("row", row), position)) is \(value); expected finite values",
               detail: EmberError.Detail(op: "dataset", argument: name, index: row, expected: "finite values", got: "\(value)"))
}

/// Adds a numeric input from separate columns (a data.frame's, without first copying them into
/// one matrix): `columns[j]` points at the `n_rows` values of column j.
@_cdecl("ember_dataset_add_numeric_columns")
public func ember_dataset_add_numeric_columns(_ dataset: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                              _ columns: UnsafePointer<UnsafePointer<Double>?>?, _ nCols: Int64) -> Int32 {
    guarded {
        let (box, n, cols, _) = try matrixArguments(dataset, name, nCols, 1)  // layout: column-major
        guard let columns else { throw EmberError.invalidArgument("columns", "is NULL") }
        _ = try checkedElements([box.rows, cols], "columns")
        var pointers: [UnsafePointer<Double>] = []
        pointers.reserveCapacity(cols)
        for j in 0..<cols {
            guard let column = columns[j] else {
                throw EmberError(.invalidArgument, "[columns] input '\(n)': \(ErrorIndex.describe(("column", j))) is NULL; expected \(box.rows) values",
                                 detail: EmberError.Detail(op: "dataset", argument: "columns", index: j, expected: "a pointer to \(box.rows) values", got: "NULL"))
            }
            if let row = firstNonFinite(column, count: box.rows) {
                throw nonFiniteInput(n, row: row, ("column", j), column[row])
            }
            pointers.append(column)
        }
        try box.add(n, try tensor(columns: pointers, rows: box.rows, argument: "columns"))
    }
}

/// Adds a categorical codes input, kept as integers.
@_cdecl("ember_dataset_add_categorical")
public func ember_dataset_add_categorical(_ dataset: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ codes: UnsafePointer<Int32>?,
                                          _ nCols: Int64, _ layout: Int32) -> Int32 {
    guarded {
        let (box, n, cols, columnMajor) = try matrixArguments(dataset, name, nCols, layout)
        guard let codes else { throw EmberError.invalidArgument("codes", "is NULL") }
        let count = try checkedElements([box.rows, cols], "codes")
        var data = [Int](repeating: 0, count: count)
        // In the caller's order (the first bad code is the one reported), without a division per code.
        let rows = box.rows
        for outer in 0..<(columnMajor ? cols : rows) {
            for inner in 0..<(columnMajor ? rows : cols) {
                let (row, col) = columnMajor ? (inner, outer) : (outer, inner)
                let code = codes[outer * (columnMajor ? rows : cols) + inner]
                guard code >= 0, code < 1 << 24 else {
                    throw EmberError(.invalidArgument, "[codes] input '\(n)': \(ErrorIndex.describe(("row", row), ("column", col))) holds code \(code); expected a level index >= 0",
                                     detail: EmberError.Detail(op: "dataset", argument: n, index: row, expected: "a code >= 0", got: "\(code)"))
                }
                data[row * cols + col] = Int(code)
            }
        }
        try box.add(n, codes: try IndexTensor(shape: [box.rows, cols], data: data))
    }
}

/// The arguments every tensor input shares: the dataset, the input name and the shape.
func tensorArguments(_ dataset: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ shape: UnsafePointer<Int64>?, _ rank: Int32) throws
    -> (box: DatasetBox, name: String, dims: [Int]) {
    let box = try HandleRegistry.shared.lookup(dataset, DatasetBox.self, "dataset")
    return (box, try string(name, "name"), try tensorShape(shape, rank, rows: box.rows))
}

/// The shape [rows, d1, ..., dk] of a tensor input (rank 2...5, rows equal to the dataset's).
func tensorShape(_ shape: UnsafePointer<Int64>?, _ rank: Int32, rows: Int) throws -> [Int] {
    guard rank >= 2 && rank <= 5 else {
        throw EmberError(.invalidArgument, "[rank] must be in 2...5 (rows plus 1 to 4 dimensions), got \(rank)",
                         detail: EmberError.Detail(op: "dataset", argument: "rank", expected: "2...5", got: "\(rank)"))
    }
    guard let shape else { throw EmberError.invalidArgument("shape", "is NULL") }
    var dims: [Int] = []
    for d in 0..<Int(rank) { dims.append(try checkedCount(shape[d], "shape", lower: 1)) }
    guard dims[0] == rows else {
        throw EmberError(.shapeMismatch, "[shape] shape[0] is \(dims[0]); the dataset has \(rows) rows",
                         detail: EmberError.Detail(op: "dataset", argument: "shape", index: 0, expected: "\(rows)", got: "\(dims[0])"))
    }
    return dims
}

/// Adds an n-d tensor input.
@_cdecl("ember_dataset_add_tensor")
public func ember_dataset_add_tensor(_ dataset: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ x: UnsafePointer<Double>?,
                                     _ shape: UnsafePointer<Int64>?, _ rank: Int32, _ layout: Int32) -> Int32 {
    guarded {
        let (box, n, dims) = try tensorArguments(dataset, name, shape, rank)
        let columnMajor = try checkedLayout(layout)
        guard let x else { throw EmberError.invalidArgument("x", "is NULL") }
        let count = try checkedElements(dims, "x")
        for i in 0..<count where !x[i].isFinite {
            let row = columnMajor ? i % box.rows : i / (count / box.rows)
            throw nonFiniteInput(n, row: row, ("element", i), x[i])
        }
        try box.add(n, try tensor(from: x, shape: dims, columnMajor: columnMajor, argument: "x"))
    }
}

/// Adds a byte tensor input: `x` holds n_rows rows of shape `shape[1...]`, row-major, kept as
/// bytes and widened per batch to `scale × byte`.
@_cdecl("ember_dataset_add_bytes")
public func ember_dataset_add_bytes(_ dataset: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ x: UnsafePointer<UInt8>?,
                                    _ shape: UnsafePointer<Int64>?, _ rank: Int32, _ scale: Double) -> Int32 {
    guarded {
        let (box, n, dims) = try tensorArguments(dataset, name, shape, rank)
        guard let x else { throw EmberError.invalidArgument("x", "is NULL") }
        let count = try checkedElements(dims, "x")
        guard scale.isFinite, scale != 0, abs(scale) < 1e30 else {
            throw EmberError(.invalidArgument, "[scale] must be finite and non-zero, got \(scale)",
                             detail: EmberError.Detail(op: "dataset", argument: "scale", expected: "a finite non-zero number", got: "\(scale)"))
        }
        let bytes = Array(UnsafeBufferPointer(start: x, count: count))
        try box.add(n, source: try ByteSource(bytes: bytes, count: box.rows, sampleShape: Array(dims.dropFirst()), scale: scale))
    }
}

/// The values of input `name` for every row, as training reads them (bytes widened, image files
/// decoded and resized), row-major into `out` (`length` = rows × values per row).
@_cdecl("ember_dataset_read_input")
public func ember_dataset_read_input(_ dataset: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Double>?,
                                     _ length: Int64) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.lookup(dataset, DatasetBox.self, "dataset")
        let n = try string(name, "name")
        let data = try box.dataset("dataset")
        guard let shape = data.sampleShape(of: n) else {
            throw EmberError.invalidArgument("name", "the dataset has no input '\(n)'; it has \(data.inputNames.joined(separator: ", "))")
        }
        let count = try checkedElements([box.rows] + shape, "out")
        guard length == Int64(count) else {
            throw EmberError(.shapeMismatch, "[length] input '\(n)' holds \(count) values; got room for \(length)",
                             detail: EmberError.Detail(op: "dataset", argument: "length", expected: "\(count)", got: "\(length)"))
        }
        guard let out else { throw EmberError.invalidArgument("out", "is NULL") }
        let t = try data.inputs[n]?.gatherRows(0..<box.rows) ?? data.sources[n]?.gather(Array(0..<box.rows))
        guard let t else { throw EmberError.invalidArgument("name", "the dataset has no input '\(n)'") }
        t.withUnsafeBufferPointer { src in for i in 0..<count { out[i] = Double(src[i]) } }
    }
}

/// The dataset and the values of a one-per-row target (`unit`: value or class), each checked
/// with `valid`; `expected` says what is allowed.
func targetArguments<T>(_ dataset: OpaquePointer?, _ y: UnsafePointer<T>?, _ length: Int64, unit: String, expected: String,
                        _ valid: (T) -> Bool) throws -> (box: DatasetBox, y: UnsafePointer<T>) {
    let box = try HandleRegistry.shared.lookup(dataset, DatasetBox.self, "dataset")
    guard length == Int64(box.rows) else {
        throw EmberError(.shapeMismatch, "[length] the target needs one \(unit) per row (\(box.rows)), got \(length)",
                         detail: EmberError.Detail(op: "dataset", argument: "length", expected: "\(box.rows)", got: "\(length)"))
    }
    guard let y else { throw EmberError.invalidArgument("y", "is NULL") }
    for i in 0..<box.rows where !valid(y[i]) {
        throw EmberError(.invalidArgument, "[y] \(ErrorIndex.describe(("target", i))) is \(y[i]); expected \(expected)",
                         detail: EmberError.Detail(op: "dataset", argument: "y", index: i, expected: expected, got: "\(y[i])"))
    }
    return (box, y)
}

/// Sets the target.
@_cdecl("ember_dataset_set_target")
public func ember_dataset_set_target(_ dataset: OpaquePointer?, _ y: UnsafePointer<Double>?, _ length: Int64) -> Int32 {
    guarded {
        let (box, y) = try targetArguments(dataset, y, length, unit: "value", expected: "finite values") { $0.isFinite }
        box.setTarget(try Tensor(shape: [box.rows], data: (0..<box.rows).map { Float(y[$0]) }))
    }
}

/// Sets class targets as integers: one 0-based class index per row (binary: 1 = positive class,
/// 0 = negative), checked >= 0 here and against the model's classes when it trains.
@_cdecl("ember_dataset_set_target_classes")
public func ember_dataset_set_target_classes(_ dataset: OpaquePointer?, _ y: UnsafePointer<Int32>?, _ length: Int64) -> Int32 {
    guarded {
        let (box, y) = try targetArguments(dataset, y, length, unit: "class", expected: "a class index >= 0") { $0 >= 0 }
        box.setTarget(classes: IndexTensor((0..<box.rows).map { Int(y[$0]) }))
    }
}

/// Sets a target matrix: n_rows × n_cols finite values (a multilabel task: 0/1, one column per label)
/// in the given layout.
@_cdecl("ember_dataset_set_target_matrix")
public func ember_dataset_set_target_matrix(_ dataset: OpaquePointer?, _ y: UnsafePointer<Double>?, _ nCols: Int64,
                                            _ layout: Int32) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.lookup(dataset, DatasetBox.self, "dataset")
        let cols = try checkedCount(nCols, "n_cols", lower: 1)
        let columnMajor = try checkedLayout(layout)
        guard let y else { throw EmberError.invalidArgument("y", "is NULL") }
        let count = try checkedElements([box.rows, cols], "y")
        for i in 0..<count where !y[i].isFinite {
            let (row, col) = columnMajor ? (i % box.rows, i / box.rows) : (i / cols, i % cols)
            throw EmberError(.invalidArgument, "[y] target \(ErrorIndex.describe(("row", row), ("column", col))) is \(y[i]); expected finite values",
                             detail: EmberError.Detail(op: "dataset", argument: "y", index: row, expected: "finite values", got: "\(y[i])"))
        }
        box.setTarget(try tensor(from: y, shape: [box.rows, cols], columnMajor: columnMajor, argument: "y"))
    }
}

/// Number of rows.
@_cdecl("ember_dataset_rows")
public func ember_dataset_rows(_ dataset: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.lookup(dataset, DatasetBox.self, "dataset")
        guard let out else { throw EmberError.invalidArgument("out_rows", "is NULL") }
        out.pointee = Int64(box.rows)
    }
}
