// ember-bench: the Swift side of the benchmark harness. Benchmarks/run.py runs it once per
// measurement, in its own process (so the peak RSS is that measurement's), and reads the JSON
// line(s) it prints:
//
//     ember-bench mlp --data FILE --n 2000 --p 1000 --layers 4 --width 100 --opt sgd --epochs 20 [--warmup 1] [--lr 1e-4]
//     ember-bench fashion --dir DIR --model mlp|lenet [--threads 1] [--seed 1] [--epochs 2] [--init FILE]
//     ember-bench ftt [--n 4601] [--p 57] [--blocks 1] [--d-token 32] [--heads 4] [--epochs 2] [--warmup 1] [--threads 1]
//     ember-bench resnet [--depth 18] [--size 32] [--batch 32] [--steps 10] [--warmup 1] [--threads 1] [--opt sgd|adam]
//                        [--mode train|predict]
//     ember-bench core
//     ember-bench transforms [--threads 1]
//     ember-bench placement [--rounds 200000]
//
// BENCH_KERNELS=openblas|ember|byshape in the environment sets BLAS.kernels (default: Ember's
// kernels when OpenBLAS has fallen back to pre-AVX2 kernels, else by shape), to time each on one
// machine.
import EmberCore
import Glibc

switch getenv("BENCH_KERNELS").map({ String(cString: $0) }) {
case "openblas"?: BLAS.kernels = .openBLAS
case "ember"?: BLAS.kernels = .ember
case "byshape"?: BLAS.kernels = .byShape
default: break
}

let arguments = CommandLine.arguments
let command = arguments.count > 1 ? arguments[1] : ""
do {
    let options = try Options(arguments.dropFirst(2))
    switch command {
    case "mlp": try mlpBench(options)
    case "fashion": try fashionBench(options)
    case "ftt": try fttBench(options)
    case "resnet": try resnetBench(options)
    case "core": try coreBench(options)
    case "transforms": try transformBench(options)
    case "placement": try placementBench(options)
    default:
        print("usage: ember-bench mlp|fashion|ftt|resnet|core|transforms|placement --name value ... (see Benchmarks/README.md)")
        exit(2)
    }
} catch {
    emit([("system", .text("ember-swift")), ("error", .text("\(error)"))])
    exit(1)
}
