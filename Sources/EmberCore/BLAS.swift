import COpenBLAS

/// The engine's window on BLAS (OpenBLAS): matrix products, the kernel core and threads.
///
/// This file is the only place in Ember that calls BLAS; it checks that every dimension fits
/// BLAS's 32-bit integers before the call.
public enum BLAS {
    /// The name of the kernel core OpenBLAS selected at start-up (e.g. "SkylakeX", "Prescott").
    ///
    /// Debian's OpenBLAS 0.3.21 does not recognise every CPU and may fall back to slow
    /// generic kernels unless `OPENBLAS_CORETYPE` is set before the process starts.
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// OpenBLAS's build configuration string.
    public static var config: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p)
    }

    /// Number of threads OpenBLAS uses.
    public static var numThreads: Int { Int(openblas_get_num_threads()) }

    /// Sets the number of threads OpenBLAS uses (at least 1).
    public static func setNumThreads(_ n: Int) throws {
        guard n >= 1 && n <= 1024 else {
            throw EmberError.invalidArgument("num_threads", "expected an integer in 1...1024, got \(n)")
        }
        openblas_set_num_threads(Int32(n))
    }

    /// C = alpha · op(A) · op(B) + beta · C for row-major matrices.
    ///
    /// `op(A)` is m×k, `op(B)` is k×n, C is m×n. With `transA`, A is stored k×m; with `transB`,
    /// B is stored n×k.
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        beta: Float = 0, c: UnsafeMutablePointer<Float>
    ) throws {
        guard let m32 = Int32(exactly: m), let n32 = Int32(exactly: n), let k32 = Int32(exactly: k),
              m >= 0, n >= 0, k >= 0
        else {
            throw EmberError(.overflow, "[matmul] dimensions m=\(m), n=\(n), k=\(k) must fit 32-bit BLAS integers")
        }
        if m == 0 || n == 0 { return }
        if k == 0 {
            // An empty inner dimension: C = beta · C (BLAS may not touch C at all).
            for i in 0..<(m * n) { c[i] = beta == 0 ? 0 : beta * c[i] }
            return
        }
        let lda = transA ? m32 : k32
        let ldb = transB ? k32 : n32
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            m32, n32, k32, alpha, a, max(lda, 1), b, max(ldb, 1), beta, c, max(n32, 1))
    }
}
