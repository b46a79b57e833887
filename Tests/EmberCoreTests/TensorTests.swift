// Tensor semantics that golden values do not pin down: creation, reshape and the shape ops with
// their errors (messages are API: they name the op and the shapes), broadcasting rules including
// size-1 and empty dimensions, reductions on size-1 and empty axes, copy-on-write, seeded
// randomness, buffer pooling, and parallel loops giving the serial loop's bits.
@testable import EmberCore
import EmberTestSupport
import XCTest

final class TensorTests: XCTestCase {
    /// 0, 1, 2, … in `shape`.
    private func iota(_ shape: [Int]) throws -> Tensor {
        let n = shape.reduce(1, *)
        return try Tensor(shape: shape, data: (0..<n).map(Float.init))
    }

    // MARK: Creation

    func testZerosOnesFullScalar() throws {
        XCTAssertEqual(try Tensor.zeros([2, 3]), try Tensor(shape: [2, 3], data: [0, 0, 0, 0, 0, 0]))
        XCTAssertEqual(try Tensor.ones([3]).data, [1, 1, 1])
        XCTAssertEqual(try Tensor.full([2, 2], -2.5).data, [-2.5, -2.5, -2.5, -2.5])
        XCTAssertEqual(try Tensor.zeros([]).shape, [])
        XCTAssertEqual(try Tensor.zeros([]).count, 1, "a rank-0 tensor holds one element")
        XCTAssertEqual(try Tensor.ones([0, 4]).count, 0)
        XCTAssertEqual(try Tensor.ones([0, 4]).shape, [0, 4])
        XCTAssertEqual(Tensor.scalar(3).scalarValue, 3)
        assertEmberError(.invalidArgument, ["[tensor]", "negative dimension", "[2, -3]"]) { try Tensor.zeros([2, -3]) }
        assertEmberError(.invalidArgument, ["[tensor]", "[-1]"]) { try Tensor.full([-1], 1) }
    }

    /// PyTorch's arange: end excluded, fractional and negative steps, empty when the range is.
    func testArange() throws {
        XCTAssertEqual(try Tensor.arange(0, 5), try Tensor(shape: [5], data: [0, 1, 2, 3, 4]))
        XCTAssertEqual(try Tensor.arange(1, 2.5, step: 0.5).data, [1, 1.5, 2])
        XCTAssertEqual(try Tensor.arange(3, 0, step: -1).data, [3, 2, 1])
        XCTAssertEqual(try Tensor.arange(0, 1, step: 0.3).data, [0, 0.3, 0.6, Float(3) * 0.3])
        XCTAssertEqual(try Tensor.arange(2, 2).shape, [0])
        XCTAssertEqual(try Tensor.arange(5, 0).shape, [0], "a step pointing away from end gives an empty range")
        assertEmberError(.invalidArgument, ["[arange]", "non-zero step"]) { try Tensor.arange(0, 1, step: 0) }
        assertEmberError(.invalidArgument, ["[arange]", "finite"]) { try Tensor.arange(0, .infinity) }
    }

    func testElementAt() throws {
        let t = try iota([2, 3, 4])
        XCTAssertEqual(try t.element(at: [1, 2, 3]), 23)
        XCTAssertEqual(try t.element(at: [0, 1, 0]), 4)
        XCTAssertEqual(try Tensor.scalar(7).element(at: []), 7)
        assertEmberError(.invalidArgument, ["[element]", "[1, 3, 0]", "out of bounds", "[2, 3, 4]"]) {
            try t.element(at: [1, 3, 0])
        }
        assertEmberError(.invalidArgument, ["[element]", "rank 3"]) { try t.element(at: [1, 2]) }
    }

    // MARK: Random tensors

    func testSameSeedGivesSameRandomTensors() throws {
        func draw(_ seed: UInt64) throws -> [Tensor] {
            var rng = RandomGenerator(seed: seed)
            return [try Tensor.uniform([3, 4], low: -2, high: 3, rng: &rng),
                    try Tensor.normal([5], mean: 1, std: 2, rng: &rng),
                    try Tensor.bernoulli([2, 6], p: 0.3, rng: &rng)]
        }
        let a = try draw(42), b = try draw(42), c = try draw(43)
        XCTAssertEqual(a, b, "same seed, same tensors (bit for bit)")
        for (x, y) in zip(a, b) { XCTAssertEqual(x.data.map(\.bitPattern), y.data.map(\.bitPattern)) }
        XCTAssertNotEqual(a[0], c[0])
        XCTAssertNotEqual(a[1], c[1])
        // Consecutive draws from one generator differ.
        var rng = RandomGenerator(seed: 42)
        XCTAssertNotEqual(try Tensor.uniform([8], rng: &rng), try Tensor.uniform([8], rng: &rng))
    }

    func testRandomDistributions() throws {
        var rng = RandomGenerator(seed: 9)
        let n = 20_000
        let u = try Tensor.uniform([n], low: -2, high: 3, rng: &rng)
        XCTAssertTrue(u.data.allSatisfy { $0 >= -2 && $0 < 3 })
        XCTAssertEqual(Double(u.data.reduce(0, +)) / Double(n), 0.5, accuracy: 0.05)

        let g = try Tensor.normal([n], mean: 1, std: 2, rng: &rng)
        let m = g.data.map(Double.init).reduce(0, +) / Double(n)
        let sd = (g.data.map { (Double($0) - m) * (Double($0) - m) }.reduce(0, +) / Double(n - 1)).squareRoot()
        XCTAssertEqual(m, 1, accuracy: 0.06)   // 4 standard errors (2 / √20000 ≈ 0.014)
        XCTAssertEqual(sd, 2, accuracy: 0.05)

        let b = try Tensor.bernoulli([n], p: 0.3, rng: &rng)
        XCTAssertTrue(b.data.allSatisfy { $0 == 0 || $0 == 1 })
        XCTAssertEqual(Double(b.data.reduce(0, +)) / Double(n), 0.3, accuracy: 0.013)  // 4 s.e.
        XCTAssertEqual(try Tensor.bernoulli([50], p: 0, rng: &rng).data, [Float](repeating: 0, count: 50))
        XCTAssertEqual(try Tensor.bernoulli([50], p: 1, rng: &rng).data, [Float](repeating: 1, count: 50))

        assertEmberError(.invalidArgument, ["[bernoulli]", "p must be in [0, 1]", "1.5"]) {
            try Tensor.bernoulli([2], p: 1.5, rng: &rng)
        }
        assertEmberError(.invalidArgument, ["[uniform]", "[-2]"]) { try Tensor.uniform([-2], rng: &rng) }
        assertEmberError(.invalidArgument, ["[normal]", "[3, -1]"]) { try Tensor.normal([3, -1], rng: &rng) }
    }

    // MARK: Reshape

    func testReshapeInfersMinusOne() throws {
        let t = try iota([2, 3, 4])
        XCTAssertEqual(try t.reshaped([-1, 4]).shape, [6, 4])
        XCTAssertEqual(try t.reshaped([4, -1]).shape, [4, 6])
        XCTAssertEqual(try t.reshaped([2, -1, 2]).shape, [2, 6, 2])
        XCTAssertEqual(try t.reshaped([-1]).shape, [24])
        XCTAssertEqual(try t.reshaped([-1, 4]).data, t.data, "row-major order is kept")
        XCTAssertEqual(try Tensor.scalar(5).reshaped([-1]).shape, [1])
        XCTAssertEqual(try Tensor.ones([1]).reshaped([]).shape, [])
        XCTAssertEqual(try Tensor.zeros([0, 3]).reshaped([-1, 3]).shape, [0, 3])
        XCTAssertEqual(try Tensor.zeros([0, 3]).reshaped([3, -1, 2]).shape, [3, 0, 2])
        XCTAssertTrue(try t.reshaped([-1]).storage === t.storage, "reshape shares storage")
    }

    func testReshapeErrors() throws {
        let t = try iota([2, 3])
        assertEmberError(.invalidArgument, ["[reshape]", "only one dimension can be -1", "[-1, -1]", "[2, 3]"]) {
            try t.reshaped([-1, -1])
        }
        assertEmberError(.shapeMismatch, ["[reshape]", "cannot reshape [2, 3] (6 elements) to [4, -1]"]) {
            try t.reshaped([4, -1])
        }
        assertEmberError(.shapeMismatch, ["[reshape]", "cannot reshape [2, 3] (6 elements) to [7]"]) { try t.reshaped([7]) }
        assertEmberError(.invalidArgument, ["[reshape]", "negative dimension", "[-2, -1]"]) { try t.reshaped([-2, -1]) }
        // 0 elements with a 0 beside the -1: any size fits, so the -1 is ambiguous (as in PyTorch).
        assertEmberError(.shapeMismatch, ["[reshape]", "[0, 3]", "[0, -1]"]) { try Tensor.zeros([0, 3]).reshaped([0, -1]) }
        // The differentiable version reports the same.
        assertEmberError(.shapeMismatch, ["[reshape]", "[2, 3]", "[5, -1]"]) { try reshape(Variable(t), [5, -1]) }
    }

    // MARK: Permute, transpose, slice, concat, expand

    func testPermuteValues() throws {
        let t = try iota([2, 3, 4])
        let p = try t.permuted([2, 0, 1])
        XCTAssertEqual(p.shape, [4, 2, 3])
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 {
            XCTAssertEqual(try p.element(at: [k, i, j]), try t.element(at: [i, j, k]))
        } } }
        XCTAssertEqual(try t.permuted([0, 1, 2]), t)
        XCTAssertEqual(try iota([2, 3]).permuted([1, 0]).data, [0, 3, 1, 4, 2, 5])
        let r4 = try iota([2, 3, 2, 2]).permuted([3, 1, 0, 2])
        XCTAssertEqual(r4.shape, [2, 3, 2, 2])
        XCTAssertEqual(try r4.element(at: [1, 2, 0, 1]), try iota([2, 3, 2, 2]).element(at: [0, 2, 1, 1]))
        XCTAssertEqual(try Tensor.zeros([0, 3, 2]).permuted([2, 0, 1]).shape, [2, 0, 3])
        // Negative axes count from the end, as in PyTorch.
        XCTAssertEqual(try t.permuted([-1, 0, -2]), try t.permuted([2, 0, 1]))
        let x = Variable(t, requiresGrad: true)
        let y = try permute(x, [-1, 0, 1])
        XCTAssertEqual(y.value, p)
        try y.backward(seed: p)
        XCTAssertEqual(x.grad, t, "the inverse permutation of normalised axes")
    }

    func testTransposeValues() throws {
        let t = try iota([2, 3, 4])
        let d = try t.transposed()  // the last two
        XCTAssertEqual(d.shape, [2, 4, 3])
        XCTAssertEqual(try d.element(at: [1, 3, 2]), try t.element(at: [1, 2, 3]))
        XCTAssertEqual(try t.transposed(0, -1), try t.permuted([2, 1, 0]))
        XCTAssertEqual(try t.transposed(1, 1), t)
        XCTAssertEqual(try transpose(Variable(t), 0, 2).value, try t.permuted([2, 1, 0]))
    }

    func testPermuteAndTransposeErrors() throws {
        let t = try iota([2, 3, 4])
        assertEmberError(.invalidArgument, ["[permute]", "axes [0, 0, 1]", "not a permutation", "[2, 3, 4]"]) {
            try t.permuted([0, 0, 1])
        }
        assertEmberError(.invalidArgument, ["[permute]", "axes [1, 0]", "[2, 3, 4]"]) { try t.permuted([1, 0]) }
        assertEmberError(.invalidArgument, ["[permute]", "[0, 1, 3]"]) { try permute(Variable(t), [0, 1, 3]) }
        assertEmberError(.invalidArgument, ["[permute]", "axes [0, 1, -4]", "[2, 3, 4]"]) { try t.permuted([0, 1, -4]) }
        assertEmberError(.invalidArgument, ["[permute]", "axes [2, -1, 0]"]) { try t.permuted([2, -1, 0]) }
        assertEmberError(.invalidArgument, ["[transpose]", "axis 3 is out of range", "rank 3", "[2, 3, 4]"]) {
            try t.transposed(0, 3)
        }
        assertEmberError(.invalidArgument, ["[transpose]", "axis -4", "[2, 3, 4]"]) { try transpose(Variable(t), -4, 0) }
        assertEmberError(.invalidArgument, ["[transpose]", "rank 1", "[5]"]) { try iota([5]).transposed() }
    }

    func testSliceValues() throws {
        let t = try iota([3, 5])
        XCTAssertEqual(try t.sliced(axis: 1, start: 1, end: 5, step: 2), try Tensor(shape: [3, 2], data: [1, 3, 6, 8, 11, 13]))
        XCTAssertEqual(try t.sliced(axis: 0, start: 1, end: 3).data, [5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
        XCTAssertEqual(try t.sliced(axis: -1, start: 4, end: 5).data, [4, 9, 14])
        XCTAssertEqual(try t.sliced(axis: 1, start: 0, end: 5, step: 3).shape, [3, 2], "ceil(5 / 3) elements")
        XCTAssertEqual(try t.sliced(axis: 1, start: 2, end: 2).shape, [3, 0], "an empty range")
        XCTAssertEqual(try t.sliced(axis: 0, start: 0, end: 3, step: 10).data, [0, 1, 2, 3, 4])
    }

    func testSliceErrors() throws {
        let t = try iota([3, 5])
        assertEmberError(.invalidArgument, ["[slice]", "range 2..<6 is out of bounds", "axis 1", "[3, 5]"]) {
            try t.sliced(axis: 1, start: 2, end: 6)
        }
        assertEmberError(.invalidArgument, ["[slice]", "range 3..<1", "[3, 5]"]) { try t.sliced(axis: 1, start: 3, end: 1) }
        assertEmberError(.invalidArgument, ["[slice]", "range -1..<2", "[3, 5]"]) { try t.sliced(axis: 0, start: -1, end: 2) }
        assertEmberError(.invalidArgument, ["[slice]", "step must be >= 1, got 0", "[3, 5]"]) {
            try t.sliced(axis: 0, start: 0, end: 2, step: 0)
        }
        assertEmberError(.invalidArgument, ["[slice]", "axis 2 is out of range", "[3, 5]"]) {
            try slice(Variable(t), axis: 2, start: 0, end: 1)
        }
    }

    func testConcatValues() throws {
        let a = try iota([2, 2]), b = try Tensor(shape: [2, 1], data: [10, 11])
        XCTAssertEqual(try Tensor.concatenated([a, b], axis: 1), try Tensor(shape: [2, 3], data: [0, 1, 10, 2, 3, 11]))
        XCTAssertEqual(try Tensor.concatenated([a, try Tensor(shape: [1, 2], data: [7, 8])], axis: 0).data, [0, 1, 2, 3, 7, 8])
        XCTAssertEqual(try Tensor.concatenated([a, b], axis: -1).shape, [2, 3])
        XCTAssertEqual(try Tensor.concatenated([a], axis: 0), a)
        XCTAssertEqual(try Tensor.concatenated([try Tensor.zeros([0, 2]), a], axis: 0), a, "an empty part adds nothing")
        // A variable used twice receives both slices of the gradient.
        let x = Variable(a, requiresGrad: true)
        try concat([x, x], axis: 0).backward(seed: try iota([4, 2]))
        XCTAssertEqual(x.grad?.data, [4, 6, 8, 10])
    }

    func testConcatErrors() throws {
        let a = try iota([2, 3])
        assertEmberError(.shapeMismatch, ["[concat]", "tensor 1 has shape [2, 4]", "[2, 3]", "outside axis 0"]) {
            try Tensor.concatenated([a, try iota([2, 4])], axis: 0)
        }
        assertEmberError(.shapeMismatch, ["[concat]", "tensor 2 has shape [6]", "rank 2", "[2, 3]"]) {
            try Tensor.concatenated([a, a, try iota([6])], axis: 0)
        }
        assertEmberError(.invalidArgument, ["[concat]", "axis 2 is out of range", "[2, 3]"]) {
            try Tensor.concatenated([a, a], axis: 2)
        }
        assertEmberError(.invalidArgument, ["[concat]", "at least one tensor"]) { try Tensor.concatenated([], axis: 0) }
        assertEmberError(.shapeMismatch, ["[concat]", "[3, 3]", "[2, 3]"]) {
            try concat([Variable(a), Variable(try iota([3, 3]))], axis: 1)
        }
    }

    func testExpandValues() throws {
        let col = try Tensor(shape: [2, 1], data: [1, 2])
        XCTAssertEqual(try col.expanded(to: [2, 3]).data, [1, 1, 1, 2, 2, 2])
        XCTAssertEqual(try col.expanded(to: [2, 2, 2]).data, [1, 1, 2, 2, 1, 1, 2, 2])
        XCTAssertEqual(try Tensor.scalar(4).expanded(to: [2, 2]).data, [4, 4, 4, 4])
        XCTAssertEqual(try col.expanded(to: [2, 1]), col)
        XCTAssertEqual(try Tensor.ones([1, 3]).expanded(to: [0, 3]).shape, [0, 3], "a size-1 dimension expands to 0")
    }

    func testExpandErrors() throws {
        let t = try iota([2, 3])
        assertEmberError(.shapeMismatch, ["[expand]", "[2, 3]", "[4, 3]", "cannot be broadcast"]) { try t.expanded(to: [4, 3]) }
        assertEmberError(.shapeMismatch, ["[expand]", "cannot expand shape [2, 3] to [3]"]) { try t.expanded(to: [3]) }
        assertEmberError(.shapeMismatch, ["[expand]", "cannot expand shape [2, 3] to [1, 3]"]) { try t.expanded(to: [1, 3]) }
        assertEmberError(.shapeMismatch, ["[expand]", "[2, 3]", "[2, 0]"]) { try expand(Variable(t), to: [2, 0]) }
    }

    func testIndexErrors() throws {
        let x = Variable(try iota([3, 2]))
        assertEmberError(.invalidArgument, ["[gather_rows]", "index 3", "out of range 0..<3"]) {
            try gatherRows(x, IndexTensor([0, 3]))
        }
        assertEmberError(.invalidArgument, ["[embedding]", "index -1", "0..<3"]) { try embedding(IndexTensor([-1]), weight: x) }
        assertEmberError(.shapeMismatch, ["[embedding]", "[6]"]) { try embedding(IndexTensor([0]), weight: Variable(try iota([6]))) }
        assertEmberError(.shapeMismatch, ["[index_tensor]", "[2, 2]", "needs 4 elements, got 3"]) {
            try IndexTensor(shape: [2, 2], data: [0, 1, 2])
        }
    }

    // MARK: Broadcasting

    func testBroadcastShapeRules() throws {
        XCTAssertEqual(try broadcastShapes([2, 3], [3], op: "add"), [2, 3])
        XCTAssertEqual(try broadcastShapes([3, 1], [1, 4], op: "add"), [3, 4])
        XCTAssertEqual(try broadcastShapes([2, 1, 4], [3, 1], op: "add"), [2, 3, 4])
        XCTAssertEqual(try broadcastShapes([], [2, 3], op: "add"), [2, 3])
        XCTAssertEqual(try broadcastShapes([1], [], op: "add"), [1])
        // Size-1 and empty dimensions: 1 stretches to 0; 0 only meets 0 or 1.
        XCTAssertEqual(try broadcastShapes([0, 3], [3], op: "add"), [0, 3])
        XCTAssertEqual(try broadcastShapes([1], [0], op: "add"), [0])
        XCTAssertEqual(try broadcastShapes([0, 1], [1, 5], op: "add"), [0, 5])
        assertEmberError(.shapeMismatch, ["[add]", "shapes [3] and [0] cannot be broadcast", "dimension 0: 3 vs 0"]) {
            try broadcastShapes([3], [0], op: "add")
        }
        assertEmberError(.shapeMismatch, ["[mul]", "[2, 3]", "[4]", "dimension 1: 3 vs 4"]) {
            try binary(Variable(try iota([2, 3])), Variable(try iota([4])), .mul)
        }
        assertEmberError(.shapeMismatch, ["[where]", "[2]", "[3]"]) {
            try `where`(try Tensor.ones([2]), Variable(try iota([3])), Variable(.scalar(0)))
        }
    }

    /// [0, 3] + [3] is an empty [0, 3]; the bias gradient is zeros of its shape.
    func testBroadcastWithEmptyDimension() throws {
        let a = Variable(try Tensor.zeros([0, 3]), requiresGrad: true)
        let b = Variable(try Tensor(shape: [3], data: [1, 2, 3]), requiresGrad: true)
        let y = try a + b
        XCTAssertEqual(y.shape, [0, 3])
        try y.backward(seed: try Tensor.zeros([0, 3]))
        XCTAssertEqual(a.grad?.shape, [0, 3])
        XCTAssertEqual(b.grad, try Tensor.zeros([3]))
        let c = try binary(Variable(try Tensor.ones([1])), Variable(try Tensor.zeros([0])), .sub)
        XCTAssertEqual(c.shape, [0])
    }

    /// The C kernels of the binary functions and comparisons give the bits of Swift's scalar
    /// expressions (max/min as Swift's, with NaN and signed zeros), for matching shapes, a single
    /// value on either side and general broadcasting.
    func testBinaryKernelsMatchScalarSwift() throws {
        let special: [Float] = [.nan, 0, -0, 1, -1, .infinity, -.infinity, 2.5, -3.25, 1e-30, 7, .nan]
        let a = try Tensor(shape: [3, 1, 12], data: (0..<36).map { special[($0 * 5) % 12] })
        let b = try Tensor(shape: [2, 12], data: (0..<24).map { special[($0 * 7 + 3) % 12] })
        let functions: [(BinaryFunction, (Float, Float) -> Float)] = [
            (.add, { $0 + $1 }), (.sub, { $0 - $1 }), (.mul, { $0 * $1 }), (.div, { $0 / $1 }),
            (.maximum, { Swift.max($0, $1) }), (.minimum, { Swift.min($0, $1) }),
        ]
        let comparisons: [(Comparison, (Float, Float) -> Bool)] = [
            (.greater, { $0 > $1 }), (.greaterEqual, { $0 >= $1 }), (.less, { $0 < $1 }), (.lessEqual, { $0 <= $1 }),
            (.equal, { $0 == $1 }), (.notEqual, { $0 != $1 }),
        ]
        var ops: [(String, (Tensor, Tensor) throws -> Tensor, (Float, Float) -> Float)] = []
        for (f, scalar) in functions { ops.append((f.rawValue, { try f.apply($0, $1) }, scalar)) }
        for (c, scalar) in comparisons { ops.append((c.rawValue, { try compare($0, $1, c) }, { scalar($0, $1) ? 1 : 0 })) }
        let pairs: [(Tensor, Tensor)] = [
            (a, b),  // [3, 1, 12] with [2, 12]: rows broadcast
            (b, try Tensor(shape: [2, 12], data: b.data.reversed())),
            (a, .scalar(-0)), (.scalar(.nan), b), (try Tensor(shape: [2, 1], data: [0, .nan]), b),
        ]
        for (name, op, scalar) in ops {
            for (x, y) in pairs {
                let shape = try broadcastShapes(x.shape, y.shape, op: name)
                let ex = try x.expanded(to: shape), ey = try y.expanded(to: shape)
                let expected = zip(ex.data, ey.data).map { scalar($0, $1).bitPattern }
                XCTAssertEqual(try op(x, y).data.map(\.bitPattern), expected, "\(name) of \(x.shape) and \(y.shape)")
            }
        }
    }

    /// reduceGradient sums over the broadcast dimensions (leading ones and size-1 ones).
    func testReduceGradient() throws {
        let g = try iota([2, 3, 4])
        XCTAssertEqual(reduceGradient(g, toShape: [4]).data, [60, 66, 72, 78])
        XCTAssertEqual(reduceGradient(g, toShape: [3, 1]).data, [60, 92, 124])
        XCTAssertEqual(reduceGradient(g, toShape: []).data, [276])
        XCTAssertEqual(reduceGradient(g, toShape: [2, 3, 4]), g)
    }

    // MARK: Reductions on size-1 and empty axes

    func testReductionsOverSizeOneAxes() throws {
        let t = try iota([2, 1, 3])
        XCTAssertEqual(try t.sum(axes: [1]), try t.reshaped([2, 3]))
        XCTAssertEqual(try t.sum(axes: [1], keepDims: true), t)
        XCTAssertEqual(try mean(Variable(t), axes: [1]).value, try t.reshaped([2, 3]))
        let (values, indices) = try t.max(axis: 1)
        XCTAssertEqual(values, try t.reshaped([2, 3]))
        XCTAssertEqual(indices.data, [0, 0, 0, 0, 0, 0])
        XCTAssertEqual(try softmax(Variable(t), axis: 1).value, try Tensor.ones([2, 1, 3]))
        XCTAssertEqual(try logSoftmax(Variable(t), axis: 1).value, try Tensor.zeros([2, 1, 3]))
        XCTAssertEqual(try Tensor.scalar(2.5).sum(), .scalar(2.5))
        XCTAssertEqual(try mean(Variable(.scalar(2.5))).value, .scalar(2.5))
    }

    func testReductionsOverEmptyAxes() throws {
        let e = try Tensor.zeros([0, 3])
        XCTAssertEqual(try e.sum(), .scalar(0), "the sum of nothing is 0")
        XCTAssertEqual(try e.sum(axes: [0]), try Tensor.zeros([3]))
        XCTAssertEqual(try e.sum(axes: [0], keepDims: true), try Tensor.zeros([1, 3]))
        XCTAssertEqual(try e.sum(axes: [1]).shape, [0])
        XCTAssertEqual(try mean(Variable(e), axes: [1]).shape, [0], "averaging 3 elements per (absent) row")
        XCTAssertEqual(try e.max(axis: 1).values.shape, [0])
        XCTAssertEqual(try softmax(Variable(e), axis: 1).shape, [0, 3])
        // The gradient of an empty sum is an empty tensor of the input's shape.
        let x = Variable(e, requiresGrad: true)
        try sum(x).backward()
        XCTAssertEqual(x.grad?.shape, [0, 3])
        // NOTE: PyTorch returns NaN for the mean of nothing; Ember refuses.
        assertEmberError(.invalidArgument, ["[mean]", "at least one element", "[0, 3]"]) { try mean(Variable(e)) }
        assertEmberError(.invalidArgument, ["[mean]", "[0, 3]"]) { try mean(Variable(e), axes: [0]) }
        assertEmberError(.invalidArgument, ["[max]", "empty axis 0", "[0, 3]"]) { try e.max(axis: 0) }
        assertEmberError(.invalidArgument, ["[max]", "empty axis 0"]) { try max(Variable(e), axis: 0) }
    }

    func testReductionAxisErrors() throws {
        let t = try iota([2, 3])
        assertEmberError(.invalidArgument, ["[sum]", "axis 2 is out of range", "rank 2"]) { try t.sum(axes: [2]) }
        assertEmberError(.invalidArgument, ["[sum]", "axis -1 is repeated in [1, -1]"]) { try t.sum(axes: [1, -1]) }
        assertEmberError(.invalidArgument, ["[mean]", "axis -3"]) { try mean(Variable(t), axes: [-3]) }
        assertEmberError(.invalidArgument, ["[max]", "axis 5"]) { try t.max(axis: 5) }
        assertEmberError(.invalidArgument, ["[softmax]", "axis 2", "rank 2"]) { try softmax(Variable(t), axis: 2) }
    }

    /// Sums accumulate in double precision along any axis (`mean`'s documented contract), not
    /// only along the last: 300 000 × 0.1 in float32 steps would drift by ~0.1 %.
    func testSumAccuracyDoesNotDependOnAxis() throws {
        let n = 300_000
        let exact = Double(Float(0.1)) * Double(n)
        let rows = try Tensor.full([n, 2], 0.1), columns = try Tensor.full([2, n], 0.1)
        for (what, s) in [("axis 0 of [n, 2]", try rows.sum(axes: [0])), ("axis 1 of [2, n]", try columns.sum(axes: [1])),
                          ("axis 1 of [2, n, 1]", try columns.reshaped([2, n, 1]).sum(axes: [1]).reshaped([2]))] {
            for v in s.data { XCTAssertEqual(Double(v), exact, accuracy: exact * 1e-6, what) }
        }
        let m = try mean(Variable(rows), axes: [0]).value
        for v in m.data { XCTAssertEqual(v, 0.1, accuracy: 1e-7, "mean over axis 0") }
    }

    /// max/argmax pick the first maximum on ties; max's gradient goes to that element only.
    func testArgmaxTiesAndMaxGradient() throws {
        let t = try Tensor(shape: [2, 3], data: [1, 5, 5, -2, -3, -2])
        XCTAssertEqual(try t.argmax(axis: 1).data, [1, 0])
        XCTAssertEqual(try t.argmax(axis: 0).data, [0, 0, 0])
        XCTAssertEqual(try t.argmax(axis: 1, keepDims: true).shape, [2, 1])
        let x = Variable(t, requiresGrad: true)
        try max(x, axis: 1).backward(seed: try Tensor(shape: [2], data: [2, 3]))
        XCTAssertEqual(x.grad?.data, [0, 2, 0, 3, 0, 0])
    }

    // MARK: Copy-on-write

    func testCopyOnWrite() throws {
        let original = try iota([2, 3])
        var copy = original
        XCTAssertTrue(copy.storage === original.storage, "a copy shares storage until written")
        copy.withUnsafeMutableBufferPointer { $0[0] = 99 }
        XCTAssertEqual(original.data, [0, 1, 2, 3, 4, 5], "writing the copy leaves the original")
        XCTAssertEqual(copy.data, [99, 1, 2, 3, 4, 5])
        XCTAssertFalse(copy.storage === original.storage)

        // A reshaped view shares storage too, and is copied on write as well.
        var flat = try original.reshaped([6])
        try flat.setData([6, 5, 4, 3, 2, 1])
        XCTAssertEqual(original.data, [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(flat.data, [6, 5, 4, 3, 2, 1])

        // A unique tensor is written in place (no copy).
        var unique = try iota([3])
        let before = unique.storage.pointer  // not the storage object: holding it would share it
        unique.withUnsafeMutableBufferPointer { $0[1] = -1 }
        XCTAssertEqual(unique.storage.pointer, before)
        XCTAssertEqual(unique.data, [0, -1, 2])

        // A variable's value is not changed by writing a tensor taken from it.
        let v = Variable(try iota([2]))
        var w = v.value
        w.withUnsafeMutableBufferPointer { $0[0] = 7 }
        XCTAssertEqual(v.value.data, [0, 1])
        assertEmberError(.shapeMismatch, ["[set_data]", "[2]", "needs 2 elements, got 3"]) { try w.setData([1, 2, 3]) }
    }

    // MARK: Buffer pool

    /// A small training-like step: linear → gelu → log-softmax → mean, forward and backward;
    /// returns the weight (value and gradient).
    private func step(_ rng: inout RandomGenerator) throws -> Variable {
        let x = Variable(try Tensor.normal([16, 8], rng: &rng))
        let w = Variable(try Tensor.normal([4, 8], std: 0.3, rng: &rng), requiresGrad: true)
        let b = Variable(try Tensor.zeros([4]), requiresGrad: true)
        let h = unary(try linear(x, weight: w, bias: b), .gelu())
        let y = try mean(try logSoftmax(try h * Variable(try Tensor.full([4], 0.5))))
        try y.backward()
        XCTAssertNotNil(w.grad)
        return w
    }

    func testBufferPoolLiveCountReturnsToBaseline() throws {
        let baseline = BufferPool.shared.statistics.live
        do {
            var rng = RandomGenerator(seed: 3)
            let w = try step(&rng)
            XCTAssertGreaterThan(BufferPool.shared.statistics.live, baseline, "the weight and its gradient are alive")
            XCTAssertEqual(w.grad?.shape, [4, 8])
        }
        XCTAssertEqual(BufferPool.shared.statistics.live, baseline, "every storage went back to the pool")
    }

    func testRepeatedComputationMakesNoNewSystemAllocations() throws {
        var rng = RandomGenerator(seed: 4)
        _ = try step(&rng)  // warm-up: fills the pool with buffers of these shapes
        let before = BufferPool.shared.statistics
        _ = try step(&rng)
        let after = BufferPool.shared.statistics
        XCTAssertEqual(after.systemAllocations, before.systemAllocations, "steady state allocates nothing new")
        XCTAssertGreaterThan(after.reuses, before.reuses, "the second run was served from the pool")
        XCTAssertEqual(after.live, before.live)
    }

    // MARK: Parallel loops

    /// Elementwise ops, broadcasting ops, softmax and a sum on 300 000 elements give the same bits
    /// on one thread and on two (each element is computed by the same code whichever thread runs
    /// it). Run with denormals flushed on the calling thread, as the trainer runs: see
    /// `testSerialLoopsFlushDenormalsLikeParallelLoops` for the mode outside such a block.
    func testParallelEqualsSerial() throws {
        let saved = Engine.numThreads
        defer { XCTAssertNoThrow(try Engine.setNumThreads(saved)) }
        var rng = RandomGenerator(seed: 11)
        // std 3: the gelu gradient's e^(-x²/2) term underflows into denormals for |x| > 13.
        let x = try Tensor.normal([1000, 300], std: 3, rng: &rng)
        let bias = try Tensor.normal([300], rng: &rng)
        let column = try Tensor.normal([1000, 1], rng: &rng)
        let seed = try Tensor.normal([1000, 300], rng: &rng)
        XCTAssertGreaterThanOrEqual(x.count, 2 * Parallel.minimumChunk, "large enough to be split")

        func run() throws -> [Tensor] {
            try withDenormalsFlushed {
                let v = Variable(x, requiresGrad: true)
                let g = unary(v, .gelu())
                try g.backward(seed: seed)
                let w = Variable(x, requiresGrad: true)
                let r = relu(w)
                try r.backward(seed: seed)
                return [
                    g.value, try XCTUnwrap(v.grad), r.value, try XCTUnwrap(w.grad),
                    UnaryFunction.exp.apply(x), UnaryFunction.softplus().apply(x),
                    try BinaryFunction.add.apply(x, bias), try BinaryFunction.mul.apply(x, column),
                    try BinaryFunction.mul.apply(x, .scalar(0.3)), try BinaryFunction.div.apply(x, seed),
                    try softmax(Variable(x), axis: -1).value, try softmax(Variable(x), axis: 0).value,
                    try logSoftmax(Variable(x), axis: 1).value, try x.sum(axes: [1]),
                ]
            }
        }
        try Engine.setNumThreads(1)
        XCTAssertEqual(Engine.numThreads, 1)
        let serial = try run()
        try Engine.setNumThreads(2)
        XCTAssertEqual(Engine.numThreads, 2)
        let parallel = try run()
        for (i, (s, p)) in zip(serial, parallel).enumerated() {
            XCTAssertEqual(s.shape, p.shape, "result \(i)")
            XCTAssertTrue(s.data.map(\.bitPattern) == p.data.map(\.bitPattern), "result \(i) differs between 1 and 2 threads")
        }
    }

    /// Ember flushes denormals during its own compute (docs/architecture.md#threads-and-denormals),
    /// whatever the caller's mode and however many threads run the loop: an op whose results are
    /// denormal gives zeros on one thread as on two.
    func testSerialLoopsFlushDenormalsLikeParallelLoops() throws {
        #if arch(x86_64) || arch(i386)
        let saved = Engine.numThreads
        defer { XCTAssertNoThrow(try Engine.setNumThreads(saved)) }
        XCTAssertFalse(denormalsAreFlushed, "the test starts outside withDenormalsFlushed")
        let x = try Tensor.full([300_000], 1e-20)
        var results: [Int: Tensor] = [:]
        for threads in [1, 2] {
            try Engine.setNumThreads(threads)
            results[threads] = UnaryFunction.mulScalar(1e-20).apply(x)  // 1e-40 is denormal
        }
        let subnormal = results.mapValues { $0.data.filter(\.isSubnormal).count }
        XCTAssertEqual(subnormal[2], 0, "the parallel loop flushes denormals")
        XCTAssertEqual(subnormal[1], 0, "the serial loop should flush denormals too (Parallel.forRange runs " +
                       "body(0, n) on the caller without FTZ/DAZ), so that results do not depend on the thread count")
        XCTAssertFalse(denormalsAreFlushed, "the caller's mode is restored")
        #else
        throw XCTSkip("FTZ/DAZ are x86 MXCSR bits")
        #endif
    }
}
