/// Every differentiable operation of EmberCore, by the name used in error messages and in the
/// golden fixtures (Tests/EmberCoreTests/Fixtures). A test fails when one of these has no golden
/// case, so adding an op means adding its PyTorch reference too.
public enum OpKind: String, CaseIterable, Sendable {
    // Unary functions (`unary(_:_:)` with a `UnaryFunction`).
    case neg, exp, log, sqrt, abs, square, reciprocal, sin, cos, log1p, tanh, sigmoid, relu
    case addScalar = "add_scalar", mulScalar = "mul_scalar", powScalar = "pow_scalar"
    case elu, celu, selu, leakyRelu = "leaky_relu", hardtanh, relu6, hardsigmoid, hardshrink, softshrink
    case softplus, softsign, tanhshrink, logSigmoid = "log_sigmoid", threshold, gelu, geluTanh = "gelu_tanh"
    // Binary functions with broadcasting (`binary(_:_:_:)`), and `where`.
    case add, sub, mul, div, maximum, minimum, pow
    case `where`
    // Reductions and normalisations.
    case sum, mean, max, softmax, logSoftmax = "log_softmax"
    // Products.
    case matmul, batchedMatmul = "batched_matmul", linear
    // Shape and indexing.
    case reshape, permute, transpose, slice, concat, expand, gatherRows = "gather_rows", embedding
    // Stochastic (tested with injected masks).
    case dropout
    // Convolution and pooling.
    case conv1d, conv2d, maxPool1d = "max_pool1d", maxPool2d = "max_pool2d", avgPool1d = "avg_pool1d", avgPool2d = "avg_pool2d"
    case adaptiveAvgPool2d = "adaptive_avg_pool2d"
}
