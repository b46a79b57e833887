// The layer-norm kernels of CEmberKernels (normalization.c) that EmberNN's LayerNorm runs: forward
// and backward against the formulas in Double, row lengths around the 16-float vectors, with and
// without the affine parameters; every instruction-set variant gives the same bits.
import CEmberKernels
import EmberCore
import EmberTestSupport
import XCTest

final class LayerNormKernelTests: XCTestCase {
    /// (y, xhat, inv_std, dx, dgamma, dbeta) from the kernels; dgamma and dbeta start at `start`.
    private func run(_ x: [Float], _ dy: [Float], gamma: [Float]?, beta: [Float]?, rows: Int, d: Int, eps: Float,
                     start: Float = 0) -> [[Float]] {
        var y = [Float](repeating: .nan, count: rows * d), xhat = y, dx = y
        var inv = [Float](repeating: .nan, count: rows)
        var dg = [Float](repeating: start, count: d), db = dg
        cember_layer_norm_forward(x, gamma, beta, &xhat, &y, &inv, Int64(rows), Int64(d), eps)
        if gamma != nil {
            cember_layer_norm_backward(dy, xhat, gamma, inv, &dx, &dg, &db, Int64(rows), Int64(d))
        } else {
            cember_layer_norm_backward(dy, xhat, nil, inv, &dx, nil, nil, Int64(rows), Int64(d))
        }
        return [y, xhat, inv, dx, dg, db]
    }

    func testMatchesTheFormulasInDouble() throws {
        var rng = RandomGenerator(seed: 31)
        for (d, affine) in [1, 5, 15, 16, 17, 37, 64, 192].flatMap({ d in [(d, true), (d, false)] }) {
            let rows = 7, eps: Float = 1e-5
            // An offset mean, so that the centring matters.
            let x = randomTensor([rows, d], &rng, -3, 5).data, dy = randomTensor([rows, d], &rng).data
            let gamma = affine ? randomTensor([d], &rng, 0.5, 1.5).data : nil
            let beta = affine ? randomTensor([d], &rng).data : nil
            let out = run(x, dy, gamma: gamma, beta: beta, rows: rows, d: d, eps: eps, start: 0.25)
            var y = [Double](), dx = [Double](), dg = [Double](repeating: 0.25, count: d), db = dg
            for r in 0..<rows {
                let row = (0..<d).map { Double(x[r * d + $0]) }
                let mu = row.reduce(0, +) / Double(d)
                let variance = row.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(d)
                let inv = 1 / (variance + Double(eps)).squareRoot()
                let h = row.map { ($0 - mu) * inv }
                let g = (0..<d).map { Double(dy[r * d + $0]) * Double(gamma?[$0] ?? 1) }
                let m1 = g.reduce(0, +) / Double(d)
                let m2 = zip(g, h).map { $0 * $1 }.reduce(0, +) / Double(d)
                for i in 0..<d {
                    y.append(h[i] * Double(gamma?[i] ?? 1) + Double(beta?[i] ?? 0))
                    dx.append((g[i] - m1 - h[i] * m2) * inv)
                    dg[i] += Double(dy[r * d + i]) * h[i]
                    db[i] += Double(dy[r * d + i])
                }
            }
            func tensor(_ v: [Double]) throws -> Tensor { try Tensor(shape: [v.count], data: v.map { Float($0) }) }
            let what = "d \(d), affine \(affine)"
            assertClose(try Tensor(shape: [rows * d], data: out[0]), try tensor(y), .reduction, "y, \(what)")
            assertClose(try Tensor(shape: [rows * d], data: out[3]), try tensor(dx), Tolerance(rtol: 1e-4, atol: 1e-5), "dx, \(what)")
            if affine {
                assertClose(try Tensor(shape: [d], data: out[4]), try tensor(dg), .reduction, "dgamma, \(what)")
                assertClose(try Tensor(shape: [d], data: out[5]), try tensor(db), .reduction, "dbeta, \(what)")
            } else {
                XCTAssertEqual(out[0], out[1], "without gamma y is xhat, \(what)")
            }
        }
    }

    /// A constant row normalises to zeros (variance 0, 1/√eps), with a zero gradient.
    func testConstantRow() {
        let out = run([Float](repeating: 2.5, count: 20), [Float](repeating: 1, count: 20), gamma: nil, beta: nil, rows: 1,
                      d: 20, eps: 1e-5)
        XCTAssertEqual(out[1], [Float](repeating: 0, count: 20))
        XCTAssertEqual(out[3], [Float](repeating: 0, count: 20))
        XCTAssertEqual(Double(out[2][0]), 1 / (1e-5 as Double).squareRoot(), accuracy: 1)
    }

    func testVariantsGiveTheSameBits() throws {
        defer { _ = cember_kernels_force_isa(-1) }
        var rng = RandomGenerator(seed: 32)
        let rows = 5, d = 37
        let x = randomTensor([rows, d], &rng, -2, 3).data, dy = randomTensor([rows, d], &rng).data
        let gamma = randomTensor([d], &rng).data, beta = randomTensor([d], &rng).data
        var results: [[Float]] = []
        for isa in 0...Int(cember_cpu_isa()) {
            _ = cember_kernels_force_isa(Int32(isa))
            results.append(run(x, dy, gamma: gamma, beta: beta, rows: rows, d: d, eps: 1e-5).flatMap { $0 })
        }
        for r in results.dropFirst() { XCTAssertEqual(r.map(\.bitPattern), results[0].map(\.bitPattern)) }
    }
}
