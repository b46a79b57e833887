"""Benchmark driver (standard library only): runs Ember from Swift (ember-bench), Ember through R
(ember_bench.R, the package installed in .rlib) and PyTorch (torch_bench.py, optional) one after
the other, each measurement in its own process, and prints tables of ratios measured in this run.

    python3 Benchmarks/run.py quick|full|core|latency|ftt|products [--ember .build/release/ember-bench] [--rlib .rlib] [--repeat 1]

quick: five cells of the MLP grid (5 timed epochs) at one and two threads, Fashion-MNIST at one
       thread, one seed, the small FT-Transformer and a 30-epoch long run (denormals).
full:  the mlr3torch paper's CPU grid (20 timed epochs) at one thread, and Swift and PyTorch at two,
       Fashion-MNIST at 1 and 2 threads, accuracy averaged over 3 seeds, two FT-Transformers and a
       100-epoch long run.
core:  matmul GFLOP/s and per-call times of small ops, EmberCore vs PyTorch, one thread.
latency: only the prediction latency table (quick and full end with it): one row through
       predict() and an mlr3 learner's $predict_newdata() (when mlr3 is on R_LIBS), 10,000 rows'
       rows/s, Ember through R vs PyTorch.
ftt:   only the two FT-Transformers (one timed epoch), Ember then PyTorch and MKL's products alone on
       PyTorch's shapes, `--repeat` times.
products: the grid's SGD cells, Swift's step against MKL's time for the batch's products alone on the
       same shapes (also columns of the full grid).

Environment: BENCH_CORETYPES=1 runs everything twice, with OPENBLAS_CORETYPE unset and set to
SkylakeX (per child process); R_LIBS, when set, is searched after --rlib (e.g. a library with
mlr3 for the latency table's mlr3 row); BENCH_EPOCHS overrides the timed epochs of the MLP grid;
BENCH_PYTHON is the interpreter that runs torch_bench.py (default: this one); BENCH_KERNELS=openblas|ember|byshape
makes ember-bench run its matrix products with OpenBLAS's kernels, Ember's own, or Ember's for products with at
most 64 rows of C and OpenBLAS's for the others (default: Ember's when OpenBLAS has fallen back to pre-AVX2
kernels, else by shape). Tables name the kernels after the BLAS core: "+ember", "+ember≤64" (by shape).
"""
import argparse
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from array import array
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE.parent / ".build" / "bench"
FASHION_GZ = Path("/usr/share/datasets/fashion-mnist")
N, P = 2000, 1000


# ---------------------------------------------------------------------------------------------
# Data: written once, read by all three systems.

def regression_data():
    """X ~ N(0, 1) (n × p), β ~ N(0, 1/p), Y = Xβ + 0.01·ε, as float32 (X row-major, then Y)."""
    path = WORK / f"regression-{N}x{P}.f32"
    if path.exists() and path.stat().st_size == 4 * N * (P + 1):
        return path
    rng = random.Random(1)
    beta = [rng.gauss(0, 1) / P ** 0.5 for _ in range(P)]
    x, y = array("f"), array("f")
    for _ in range(N):
        row = [rng.gauss(0, 1) for _ in range(P)]
        x.extend(row)
        y.append(sum(a * b for a, b in zip(row, beta)) + 0.01 * rng.gauss(0, 1))
    if sys.byteorder != "little":
        x.byteswap()
        y.byteswap()
    WORK.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        x.tofile(f)
        y.tofile(f)
    return path


def fashion_data():
    """Debian's idx files without their headers, as {train,test}-{images,labels}.u8; None if absent."""
    out = WORK / "fashion-mnist"
    parts = {"train-images": "train-images-idx3-ubyte.gz", "train-labels": "train-labels-idx1-ubyte.gz",
             "test-images": "t10k-images-idx3-ubyte.gz", "test-labels": "t10k-labels-idx1-ubyte.gz"}
    if not all((FASHION_GZ / gz).exists() for gz in parts.values()):
        return None
    out.mkdir(parents=True, exist_ok=True)
    for name, gz in parts.items():
        target = out / f"{name}.u8"
        if not target.exists():
            data = gzip.decompress((FASHION_GZ / gz).read_bytes())
            header = 4 + 4 * data[3]  # magic, then one 32-bit size per dimension
            target.write_bytes(data[header:])
    return out


# ---------------------------------------------------------------------------------------------
# Running the three systems.

class Systems:
    """How to start each system, and which of them can run here."""

    def __init__(self, args):
        self.ember = Path(args.ember)
        self.python = os.environ.get("BENCH_PYTHON", sys.executable)
        self.rlib = Path(args.rlib)
        self.notes = []
        probe = subprocess.run([self.python, "-c", "import torch; print(torch.__version__)"],
                               capture_output=True, text=True)
        self.torch = probe.returncode == 0
        self.notes.append(f"PyTorch {probe.stdout.strip()} ({self.python})" if self.torch else
                          f"PyTorch: not available ('import torch' failed in {self.python}); its columns stay empty")
        library = self.rlib / "mlr3ember" / "libs"
        self.r = shutil.which("Rscript") is not None and library.is_dir()
        if not self.r:
            self.notes.append(f"R: mlr3ember is not installed in {self.rlib} (run `make rpkg-install`); R columns stay empty")
        else:
            built = library.stat().st_mtime
            newest = max(f.stat().st_mtime for f in (HERE.parent / "Sources").rglob("*") if f.is_file())
            self.notes.append(f"R: mlr3ember from {self.rlib}, built {time.strftime('%Y-%m-%d %H:%M', time.localtime(built))}"
                              + (" — older than Sources/: R timings are of an older engine (`make rpkg-install`)"
                                 if built < newest else ""))
        if not self.ember.exists() and args.mode != "latency":
            sys.exit(f"{self.ember} does not exist: build it with `make bench-build`")

    def command(self, system, bench, options):
        flags = [str(v) for k, v in options.items() for v in (f"--{k}", v)]
        if system == "swift":
            return [str(self.ember), bench] + flags
        if system == "torch":
            return [self.python, str(HERE / "torch_bench.py"), bench] + flags
        return ["Rscript", str(HERE / "ember_bench.R")] + flags

    def available(self, system):
        return {"swift": True, "torch": self.torch, "r": self.r}[system]


def run(systems, system, bench, options, environment, threads=1):
    """Runs one measurement in a child process; returns its JSON results (an error on failure)."""
    if not systems.available(system):
        return [{}]
    r_libs = ":".join([str(systems.rlib)] + ([os.environ["R_LIBS"]] if os.environ.get("R_LIBS") else []))
    env = dict(os.environ, R_LIBS=r_libs, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    for name, value in environment.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    try:
        proc = subprocess.run(systems.command(system, bench, options), env=env, capture_output=True, text=True,
                              timeout=3600)
    except subprocess.TimeoutExpired:
        return [{"error": "timed out after an hour"}]
    results = []
    for text in proc.stdout.splitlines():
        try:
            results.append(json.loads(text))
        except ValueError:
            pass  # not a result line
    if proc.returncode != 0 or not results:
        message = next((r["error"] for r in results if "error" in r), None)
        message = message or (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        if (system, message) not in REPORTED:  # each distinct failure once
            REPORTED.add((system, message))
            print(f"  ! {system} {bench} failed: {message}", flush=True)
        return [{"error": message}]
    return results


REPORTED = set()


# ---------------------------------------------------------------------------------------------
# Formatting.

def fmt(value, digits=3):
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def line(headers, row=None, widths=None):
    """One line of a fixed-width text table: the header line when `row` is None."""
    cells = headers if row is None else [fmt(c) for c in row]
    widths = widths or [max(len(h), 7) for h in headers]
    return "  ".join(c.rjust(w) for c, w in zip(cells, widths))


def markdown(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cores(*results):
    # "+ember": the matrix products ran Ember's own kernels (BLAS.kernels), not OpenBLAS's;
    # "+ember≤64": Ember's for products with at most 64 rows of C, OpenBLAS's for the others
    # (BLAS.Kernels.byShape).
    suffix = {"ember": "+ember", "byShape": "+ember≤64"}
    return "/".join(sorted({r["blas_core"] + suffix.get(r.get("kernels"), "")
                            for r in results if r.get("blas_core")})) or "—"


# ---------------------------------------------------------------------------------------------
# The benchmarks.

MLP_HEADERS = ["opt", "layers", "width", "Swift ms", "R ms", "PyTorch ms", "Swift/PT", "R/PT", "Swift GFLOP/s",
               "fwd+bwd GFLOP/s", "opt step ms", "Swift/MKL rate", "RSS Swift", "RSS R", "RSS PT", "BLAS core (Swift/R)",
               "MKL products ms", "Swift/MKL same shapes", "host"]


def mlp_flop(layers, width, batch=32):
    """Floating-point operations of one training batch in its matrix products: forward, weight
    gradient and input gradient (none for the first layer, whose input needs no gradient)."""
    sizes = [P] + [width] * layers + [1]
    products = [a * b for a, b in zip(sizes, sizes[1:])]
    return 2 * batch * (2 * sum(products) + sum(products[1:]))


QUIET = 0.9  # a run is quiet when the host's speed around it is at least this fraction of its best


class Host:
    """How fast the host lets this machine compute now, as a fraction of the fastest seen in this run.

    On a shared virtual machine the host takes cycles from the vCPUs for seconds to minutes at a
    time (MKL's large product read 58 to 92 GFLOP/s within a minute on the AMD EPYC of 2026-12-07),
    which no load average inside the machine shows. A long-lived PyTorch process
    (`torch_bench.py canary`, idle between requests) times MKL's 1024³ product on each CPU
    (about 0.25 s) whenever `speed()` asks; `run.py` asks before and after each timed run."""

    def __init__(self, systems):
        self.proc, self.best = None, None
        if systems.torch:
            env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
            self.proc = subprocess.Popen([systems.python, str(HERE / "torch_bench.py"), "canary"], env=env, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            for _ in range(5):
                self.speed()

    def speed(self):
        """MKL's GFLOP/s on the slower CPU now (None without PyTorch)."""
        if self.proc is None:
            return None
        try:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            value = float(self.proc.stdout.readline())
        except (OSError, ValueError):
            self.proc = None
            return None
        self.best = max(self.best or 0.0, value)
        return value

    def quiet_now(self):
        """Whether the host lets the machine compute at QUIET of its best speed now (True without
        PyTorch: nothing to tell)."""
        speed = self.speed()
        return speed is None or speed >= QUIET * self.best

    def around(self, job):
        """Runs `job` (which returns a result dict) between two readings; the result gains "host":
        the slower reading over the best so far (None without PyTorch)."""
        before = self.speed()
        result = dict(job())
        after = self.speed()
        speeds = [v for v in (before, after) if v is not None]
        result["host"] = min(speeds) / self.best if speeds and self.best else None
        return result


def quiet(result):
    return result.get("host") is None or result["host"] >= QUIET


def measure(host, jobs, n_rounds):
    """Runs each of `jobs` (name, result key, a function returning a result dict) `n_rounds` times,
    alternating, then again, up to `BENCH_RETRIES` times (2), each job none of whose runs was quiet
    (the host at QUIET of its best speed or more, before and after), or none of whose runs has a
    positive `key` (R's time per batch, a difference of two fits, read below zero on a host that
    slowed every short fit), if the host is quiet now (a run
    on a host that is still slow would tell nothing new: on a host slow for an hour the retries
    only tripled the run's time); returns {name: its fastest run}, each run with its "host"
    reading."""
    runs = {name: [] for name, _, _ in jobs}
    for _ in range(n_rounds):
        for name, _, job in jobs:
            runs[name].append(host.around(job))
    for _ in range(int(os.environ.get("BENCH_RETRIES", 2))):
        for name, key, job in jobs:
            timed = any(r.get(key) is not None and r[key] > 0 for r in runs[name])
            if not (timed and any(quiet(r) for r in runs[name])) and host.quiet_now():
                runs[name].append(host.around(job))
    return {name: fastest(runs[name], key) for name, key, _ in jobs}


def host_column(*results):
    """The row's host reading: the lowest of its kept runs' (1 = as fast as the fastest seen)."""
    values = [r["host"] for r in results if r.get("host") is not None]
    return round(min(values), 2) if values else None


def mlp_cells(mode):
    if mode == "quick":
        return [("sgd", 0, 100), ("sgd", 4, 100), ("sgd", 8, 200), ("sgd", 16, 400), ("adamw", 4, 200)]
    return [(opt, layers, width) for opt in ("sgd", "adamw")
            for layers, width in [(0, 100)] + [(l, w) for l in (4, 8, 12, 16) for w in (100, 200, 400)]]


THREADS_HEADERS = ["opt", "layers", "width", "Swift 1t ms", "Swift 2t ms", "PyTorch 2t ms", "Swift/PT (2t)",
                   "Swift speed-up", "PyTorch speed-up", "round trip ns Swift/PT", "MKL 2t products ms",
                   "MKL products speed-up", "MKL 2t products/PT", "Swift 2t alone", "host"]


def round_trip_ns(systems, environment):
    """The round trip of a cache line between CPUs 0 and 1 (ember-bench placement), in ns: tens
    when the two vCPUs are cores of one die, several hundred when they sit on two dies of the CPU
    (AMD's chiplets share no last-level cache), as a virtual machine's host may place them."""
    return run(systems, "swift", "placement", {"rounds": 100000}, environment)[0].get("round_trip_ns")


def mlp_grid_two_threads(systems, mode, environment, one_thread, host):
    """The grid's cells again with Swift and PyTorch at two threads each (the engine decides per op
    whether splitting pays); Swift's speed-up from epochs at one and two threads paired in its
    kept run's process (the median ratio of the pairs' medians; its "Swift 1t ms" their one-thread median),
    PyTorch's over the one-thread rows of `one_thread` (this run's).

    Each system runs each cell twice, the two systems alternating, and again (`measure`) while
    none of its runs was quiet; it keeps its fastest run: on a 2-vCPU virtual machine a two-thread
    run now and then loses one of its vCPUs for seconds (the same cell then takes 1.5-3x as long,
    for Ember and PyTorch alike), which one run per cell cannot tell from the engine's speed. The
    host also moves the two vCPUs between cores of one die and two dies of the CPU from minute to
    minute: the round trip of a cache line between them (`round_trip_ns`), measured before and
    after each run, is printed for each kept run (the larger of the two), so that a cell measured
    across dies shows as such.

    MKL's products alone on the cell's shapes at two threads (torch_bench.py mlp-products) run in
    the same rounds: over PyTorch's two-thread step they are the lowest Swift/PT that products at
    MKL's two-thread speed allow; over MKL's one-thread products of the one-thread grid, the
    speed-up that MKL's own products reach on these shapes."""
    epochs = int(os.environ.get("BENCH_EPOCHS", 5 if mode == "quick" else 20))
    data = regression_data()
    print(f"\nMLP, two threads: the same cells, Swift and PyTorch at two threads each (median ms per batch, the "
          f"fastest of two runs each, alternating, more while the host was slow around every run); speed-up: each "
          f"system's one-thread time over its two-thread time (Swift's: the median over pairs of epochs in its kept "
          f"run's process, one at each thread count, alternating, of the ratio of their medians, and Swift 1t ms the "
          f"median of its one-thread epochs; PyTorch's from the one-thread grid); round trip: of a cache line between the two vCPUs "
          f"around each kept run (tens of ns: one die; several hundred: two dies); host: MKL's speed around the kept "
          f"runs over its best in this run (the lowest of the kept runs'); MKL 2t products ms: the batch's products "
          f"alone through torch.mm at two threads on the cell's shapes (the fastest of the same rounds); MKL products "
          f"speed-up: the one-thread grid's MKL products ms over it; MKL 2t products/PT: it over PyTorch's "
          f"two-thread step, the least Swift/PT that products at MKL's two-thread speed allow; Swift 2t alone: the "
          f"share of the kept two-thread run's timed batches that the trainer ran on one thread (its measured "
          f"choice).", flush=True)
    print(line(THREADS_HEADERS), flush=True)
    rows = []
    for (opt, layers, width), first in zip(mlp_cells(mode), one_thread):
        options = dict(data=data, n=N, p=P, layers=layers, width=width, opt=opt, epochs=epochs, warmup=1, threads=2)

        def job(system):
            def timed():
                before = round_trip_ns(systems, environment)
                # Swift pairs each two-thread epoch with a one-thread one in the same process.
                opts = dict(options, interleave=1) if system == "swift" else options
                result = run(systems, system, "mlp", opts, environment, threads=2)[0]
                trips = [t for t in (before, round_trip_ns(systems, environment)) if t is not None]
                return dict(result, trip=max(trips) if trips else None)
            return timed

        # Swift's speed-up from epochs at one and two threads paired in one process (ember-bench
        # mlp --interleave 1): the median over the pairs of the ratio of their medians. Against
        # one-thread runs in separate processes, even alternating in the same rounds, a host that
        # moves a 0.4 ms step by 40% within minutes made cells the engine ran on one thread read
        # 0.91-0.99 (2026-12-07 20:29); paired, the 8 x 100 cell read 0.999-1.003 by hand.
        shapes = {"layers": layers, "width": width, "p": P, "threads": 2}
        kept = measure(host, [(system, "median_batch_ms", job(system)) for system in ("swift", "torch")]
                       + [("products", "products_ms", lambda: run(systems, "torch", "mlp-products", shapes, environment,
                                                                  threads=2)[0])], 2)
        s2, t2 = kept["swift"], kept["torch"]
        s1, t1 = s2.get("one_thread_median_batch_ms"), first[5]
        trip = "/".join("—" if x.get("trip") is None else f"{x['trip']:.0f}" for x in (s2, t2))
        ms2 = s2.get("median_batch_ms"), t2.get("median_batch_ms")
        mkl2 = kept["products"].get("products_ms")
        row = [opt, layers, width if layers else "—", s1, ms2[0], ms2[1], ratio(ms2[0], ms2[1]), s2.get("speedup_paired"),
               ratio(t1, ms2[1]), trip, mkl2, ratio(first[16], mkl2), ratio(mkl2, ms2[1]),
               ratio(s2.get("batches_alone"), s2.get("batches")),
               host_column(s2, t2, kept["products"])]
        rows.append(row)
        print(line(THREADS_HEADERS, row), flush=True)
    return rows


def rounds(mode):
    """How many times the one-thread grid and the FT-Transformer measure each system per row, the
    systems alternating (`BENCH_ROUNDS`; 2 in a full run, 1 in a quick one)."""
    return max(1, int(os.environ.get("BENCH_ROUNDS", 1 if mode == "quick" else 2)))


def fastest(results, key):
    """Of several runs of one measurement, the one with the lowest positive `key` (R's time per
    batch is a difference of two fits, which a disturbed run can make meaningless; the first run
    when none has one: its error, if any, is what the row shows)."""
    timed = [r for r in results if r.get(key) is not None and r[key] > 0]
    return min(timed, key=lambda r: r[key]) if timed else results[0]


def mlp_grid(systems, mode, environment, host):
    """The grid's cells at one thread: Swift, R and PyTorch, and MKL's products alone on the cell's
    shapes. Each is measured `rounds(mode)` times, the four alternating, and keeps its fastest run:
    on a shared virtual machine the host takes cycles from the vCPUs for minutes at a time (every
    system's step then takes up to 1.6x as long), and one run per cell, its systems measured one
    after the other, turned that into ratios off by as much (a cell read 0.93 in one run and 0.69
    in a quiet one). Alternating rounds give each system the same chances of a quiet minute."""
    epochs = int(os.environ.get("BENCH_EPOCHS", 5 if mode == "quick" else 20))
    n_rounds = rounds(mode)
    data = regression_data()
    print(f"\nMLP regression, n = {N}, p = {P}, batch 32 ({-(-N // 32)} batches/epoch), MSE, lr 1e-4, no shuffling, "
          f"one thread; {epochs} timed epochs after 1 warm-up epoch. Time per batch: median (Swift, PyTorch), "
          f"mean from fits of different lengths (R; R/PT compares it with PyTorch's mean); each system (and MKL's "
          f"products) the fastest of {n_rounds} run(s), alternating, and more while the host was slow around every run "
          f"(host: MKL's speed around the kept runs over its best in this run, the lowest of the four); Swift GFLOP/s: the batch's "
          f"matrix-product work over Swift's time; fwd+bwd GFLOP/s: the same work over the time from the start of "
          f"the batch to the end of its backward pass (so without the optimizer step, whose median time follows); "
          f"peak RSS in MiB.", flush=True)
    # The yardstick of the products' rate: MKL's large sgemm, one thread, in this run (the fastest
    # of three processes, as the grid's own runs are the fastest of their rounds).
    rates = [r.get("gflops") for r in (run(systems, "torch", "sgemm", {}, environment)[0] for _ in range(3))]
    rates = [r for r in rates if r is not None]
    mkl = max(rates) if rates else None
    print(f"MKL's large sgemm (1024³, torch.matmul, one thread): {fmt(mkl)} GFLOP/s (the fastest of three processes: "
          f"{', '.join(fmt(r) for r in rates) or '—'}); Swift/MKL rate: Swift GFLOP/s "
          f"over it. MKL products ms: the batch's products alone through torch.mm on the cell's shapes, cold weights "
          f"layer after layer as in a step; Swift/MKL same shapes: that time over Swift's whole step (at least the "
          f"fraction of MKL's rate on these shapes that Swift's products reach).", flush=True)
    print(line(MLP_HEADERS), flush=True)
    rows = []
    for opt, layers, width in mlp_cells(mode):
        options = dict(data=data, n=N, p=P, layers=layers, width=width, opt=opt, epochs=epochs, warmup=1)
        # The batch's products alone through MKL on the cell's own shapes (torch.mm, cold weights
        # layer after layer as in a step); Swift's whole step against that time: at least the
        # fraction of MKL's rate on these shapes that Swift's products reach.
        def job(system, bench="mlp", opts=options):
            return lambda: run(systems, system, bench, opts, environment)[0]

        kept = measure(host, [("swift", "median_batch_ms", job("swift")), ("r", "mean_batch_ms", job("r")),
                              ("torch", "median_batch_ms", job("torch")),
                              ("products", "products_ms", job("torch", "mlp-products",
                                                              {"layers": layers, "width": width, "p": P}))], n_rounds)
        s, r, t = kept["swift"], kept["r"], kept["torch"]
        mkl_products = kept["products"].get("products_ms")
        ms = s.get("median_batch_ms"), r.get("mean_batch_ms"), t.get("median_batch_ms")
        # R gives a mean per batch: compare it with PyTorch's mean. A mean at or below zero (the
        # long fits no slower than the short ones: every short fit disturbed) measures nothing.
        r_ms = ms[1] if ms[1] is None or ms[1] > 0 else "disturbed"
        row = [opt, layers, width if layers else "—", ms[0], r_ms, ms[2], ratio(ms[0], ms[2]),
               None if r_ms == "disturbed" else ratio(ms[1], t.get("mean_batch_ms")),
               ratio(mlp_flop(layers, width) / 1e6, ms[0]), ratio(mlp_flop(layers, width) / 1e6, s.get("median_fwdbwd_ms")),
               s.get("median_opt_ms"), ratio(ratio(mlp_flop(layers, width) / 1e6, ms[0]), mkl), s.get("peak_rss_mib"),
               r.get("peak_rss_mib"), t.get("peak_rss_mib"), f"{cores(s)}/{cores(r)}", mkl_products,
               ratio(mkl_products, ms[0]), host_column(s, r, t, kept["products"])]
        rows.append(row)
        print(line(MLP_HEADERS, row), flush=True)
        # Same seed, data and settings: Swift and R must train the very same network.
        if s.get("final_loss") and r.get("final_loss") and abs(s["final_loss"] - r["final_loss"]) > 1e-5 * abs(s["final_loss"]):
            print(f"  ! the final training losses of Swift ({s['final_loss']:.7g}) and R ({r['final_loss']:.7g}) differ",
                  flush=True)
    return rows


PRODUCTS_HEADERS = ["layers", "width", "Swift SGD ms", "MKL products ms", "Swift/MKL same shapes", "BLAS core"]


def products(systems, environment):
    """The SGD cells of the grid (5 timed epochs): Swift's whole step against MKL's time for the
    batch's products alone on the same shapes (torch_bench.py mlp-products)."""
    data = regression_data()
    print("\nMLP SGD cells, one thread: Swift's median ms per batch (5 timed epochs) against the batch's matrix "
          "products alone through MKL on the same shapes (torch.mm, cold weights layer after layer as in a step); "
          "Swift/MKL same shapes: MKL's time over Swift's whole step.", flush=True)
    print(line(PRODUCTS_HEADERS), flush=True)
    rows = []
    for opt, layers, width in mlp_cells("full"):
        if opt != "sgd" or layers == 0:
            continue
        s = run(systems, "swift", "mlp", dict(data=data, n=N, p=P, layers=layers, width=width, opt=opt, epochs=5,
                                              warmup=1), environment)[0]
        t = run(systems, "torch", "mlp-products", {"layers": layers, "width": width, "p": P}, environment)[0]
        row = [layers, width, s.get("median_batch_ms"), t.get("products_ms"),
               ratio(t.get("products_ms"), s.get("median_batch_ms")), cores(s)]
        rows.append(row)
        print(line(PRODUCTS_HEADERS, row), flush=True)
    return rows


FASHION_HEADERS = ["model", "threads", "train img/s Ember", "PyTorch", "Ember/PT", "predict img/s Ember", "PyTorch",
                   "Ember/PT", "accuracy Ember", "PyTorch", "RSS Ember", "RSS PT", "BLAS core"]


def fashion(systems, mode, environment):
    data = fashion_data()
    if data is None:
        print(f"\nFashion-MNIST: skipped, {FASHION_GZ} is missing (install Debian's dataset-fashion-mnist: "
              f"`sudo apt-get install dataset-fashion-mnist`, or `make deps`)")
        return []
    threads, seeds = ([1], [1]) if mode == "quick" else ([1, 2], [1, 2, 3])
    print(f"\nFashion-MNIST (60k train, 10k test): MLP 784-256-128-10 and LeNet, batch 128, Adam lr 1e-3, 2 epochs; "
          f"images/s: median over seeds {seeds}, accuracy: their mean; peak RSS in MiB.", flush=True)
    print(line(FASHION_HEADERS), flush=True)
    rows = []
    for model in ("mlp", "lenet"):
        for n in threads:
            runs = {system: [run(systems, system, "fashion", dict(dir=data, model=model, threads=n, seed=seed, epochs=2),
                                 environment, threads=n)[0] for seed in seeds] for system in ("swift", "torch")}

            def summary(system, key, combine):
                values = [r[key] for r in runs[system] if r.get(key) is not None]
                return combine(values) if values else None

            e_train, t_train = (summary(s, "train_images_per_s", statistics.median) for s in ("swift", "torch"))
            e_pred, t_pred = (summary(s, "predict_images_per_s", statistics.median) for s in ("swift", "torch"))
            e_acc, t_acc = (summary(s, "accuracy", statistics.mean) for s in ("swift", "torch"))
            row = ["MLP" if model == "mlp" else "LeNet", n, e_train, t_train, ratio(e_train, t_train),
                   e_pred, t_pred, ratio(e_pred, t_pred), e_acc, t_acc, summary("swift", "peak_rss_mib", max),
                   summary("torch", "peak_rss_mib", max), cores(*runs["swift"])]
            rows.append(row)
            print(line(FASHION_HEADERS, row), flush=True)
    return rows


FTT_HEADERS = ["blocks", "d_token", "heads", "Ember ms", "PyTorch ms", "Ember/PT", "RSS Ember", "RSS PT", "BLAS core",
               "Ember CPU ms", "PT CPU ms", "CPU Ember/PT", "MKL products ms", "Ember/MKL same shapes",
               "MKL products/PT", "host"]


def ft_transformer(systems, mode, environment, host, repeat=1):
    """The FT-Transformer on a spam-shaped task (4601 × 57 numeric, binary), batch 32, AdamW, one
    thread: median time per training batch (ember-bench ftt, torch_bench.py ftt), and the mean
    process CPU time per batch (robust to other processes on a shared machine); and the batch's
    matrix products alone through MKL on PyTorch's own shapes (torch_bench.py ftt-products), one
    thread, in the same rounds: MKL's products over PyTorch's step is the lowest Ember/PT that an
    engine whose products ran at MKL's speed on these shapes, and did nothing else, could reach."""
    configs = [(1, 32, 4)] + ([] if mode == "quick" else [(3, 192, 8)]) * repeat
    epochs = 2 if mode == "full" else 1
    n_rounds = rounds(mode)
    print(f"\nFT-Transformer, 4601 × 57 numeric features, binary, batch 32, AdamW, one thread; {epochs} timed "
          f"epoch(s) after 1 warm-up epoch; median ms per batch, each system the fastest of {n_rounds} run(s), "
          f"alternating, more while the host was slow around every run (its CPU ms from the same run); peak RSS in MiB; mean CPU ms per batch; "
          f"MKL products ms: every matrix product of PyTorch's step (mm, addmm, bmm; forward and backward) alone "
          f"through MKL on the same shapes and layouts, replayed in the step's order (the fastest of the same rounds); "
          f"Ember/MKL same shapes: that time over Ember's whole step; MKL products/PT: over PyTorch's step, the "
          f"least Ember/PT that products at MKL's speed allow.", flush=True)
    print(line(FTT_HEADERS), flush=True)
    rows = []
    for blocks, d_token, heads in configs:
        options = {"blocks": blocks, "d-token": d_token, "heads": heads, "epochs": epochs, "warmup": 1}
        shapes = {"blocks": blocks, "d-token": d_token, "heads": heads}
        kept = measure(host, [(system, "median_batch_ms", (lambda system=system: run(systems, system, "ftt", options,
                                                                                     environment)[0]))
                              for system in ("swift", "torch")]
                       + [("products", "products_ms", lambda: run(systems, "torch", "ftt-products", shapes,
                                                                  environment)[0])], n_rounds)
        e, t, mkl = kept["swift"], kept["torch"], kept["products"].get("products_ms")
        row = [blocks, d_token, heads, e.get("median_batch_ms"), t.get("median_batch_ms"),
               ratio(e.get("median_batch_ms"), t.get("median_batch_ms")), e.get("peak_rss_mib"), t.get("peak_rss_mib"), cores(e),
               e.get("cpu_batch_ms"), t.get("cpu_batch_ms"), ratio(e.get("cpu_batch_ms"), t.get("cpu_batch_ms")),
               mkl, ratio(mkl, e.get("median_batch_ms")), ratio(mkl, t.get("median_batch_ms")),
               host_column(e, t, kept["products"])]
        rows.append(row)
        print(line(FTT_HEADERS, row), flush=True)
    return rows


LONG_HEADERS = ["system", "epochs", "first ms", "last ms", "last/first", "subnormal at end", "last ms/PT"]


def long_run(systems, mode, environment):
    """Denormals over a long run: an MLP (4 × 100) trained with AdamW (lr 1e-3, weight decay 0.01)
    for many epochs, so that the optimizer state of units that stop learning decays towards zero.
    PyTorch runs twice, flushing denormals and not: its subnormal count shows that the run reaches
    denormal values; Ember's last/first ratio shows whether it slows down, and its subnormal count
    (at one and two threads) whether every thread that computes flushes them."""
    epochs = 30 if mode == "quick" else 100
    data = regression_data()
    print(f"\nLong run: MLP 4 × 100 on the regression data, AdamW lr 1e-3 (weight decay 0.01), batch 32, {epochs} timed "
          f"epochs, one thread unless the row says otherwise. Median ms per batch over the first and the last tenth "
          f"of the epochs; values of the parameters and the optimizer state that are subnormal at the end; last ms "
          f"over PyTorch's (flushing).", flush=True)
    widths = [17] + [max(len(h), 7) for h in LONG_HEADERS[1:]]
    print(line(LONG_HEADERS, widths=widths), flush=True)
    options = dict(data=data, n=N, p=P, layers=4, width=100, opt="adamw", lr=1e-3, epochs=epochs, warmup=1)
    results = [("Ember (Swift)", run(systems, "swift", "mlp", options, environment)[0]),
               ("Ember, 2 threads", run(systems, "swift", "mlp", dict(options, threads=2), environment, threads=2)[0]),
               ("PyTorch, flush", run(systems, "torch", "mlp", dict(options, flush=1), environment)[0]),
               ("PyTorch, no flush", run(systems, "torch", "mlp", dict(options, flush=0), environment)[0])]
    reference = results[2][1].get("last_ms")
    rows = []
    for name, r in results:
        row = [name, epochs, r.get("first_ms"), r.get("last_ms"), ratio(r.get("last_ms"), r.get("first_ms")),
               r.get("subnormal"), ratio(r.get("last_ms"), reference)]
        rows.append(row)
        print(line(LONG_HEADERS, row, widths), flush=True)
    return rows


LATENCY_HEADERS = ["measure", "Ember through R", "PyTorch", "Ember/PT", "unit"]
LATENCY_NETWORK = "MLP 13-64-64-1 (8 numeric features, standardised, and one factor of 5 levels, one-hot), binary"


def best_of(results):
    """One result from several runs of the same measurement: per key, the lowest time (keys ending
    in _us) or the highest rate (keys ending in _per_s), other keys from the first run that has them
    (an error result of a failed run counts only when every run failed)."""
    results = list(results)
    results = [r for r in results if "error" not in r] or results[:1]
    best = {}
    for result in results:
        for key, value in result.items():
            if key not in best or not isinstance(value, (int, float)):
                best.setdefault(key, value)
            elif key.endswith("_us"):
                best[key] = min(best[key], value)
            elif key.endswith("_per_s"):
                best[key] = max(best[key], value)
    return best


def latency(systems, environment):
    """Prediction latency of a serving MLP (ember_bench.R --bench latency, torch_bench.py latency),
    one thread: one row through predict() (median µs over many calls, each timed alone, after
    warm-up calls), through an mlr3 learner's $predict_newdata() when mlr3 is installed (with
    mlr3's own part: the time outside the learner's $.predict()), and rows/s on 10,000 rows."""
    print(f"\nPrediction latency, one thread: {LATENCY_NETWORK}; median µs of one row over 2000 calls after "
          f"warm-up (lower is better), rows/s of 10,000 rows (median of 20 calls, higher is better); each "
          f"system the best of three processes, the two alternating.", flush=True)
    # PyTorch's 10,000 rows run at one of two speeds from process to process (MKL's product with 13
    # columns has a slow mode that a process may stay in: 5.0 or 7.3 ms on the AMD EPYC Zen 3 of
    # 2026-12-06), so one process made Ember/PT a coin toss: PyTorch's best of three processes,
    # measure by measure (the lowest µs, the most rows/s). Ember's side gets the same, its
    # processes alternating with PyTorch's, since the host of a shared virtual machine slows
    # every process now and then (mlr3's one row read 25 to 35 ms from run to run).
    rs, ts = [], []
    for _ in range(3):
        rs.append(run(systems, "r", "latency", {"bench": "latency"}, environment)[0])
        ts.append(run(systems, "torch", "latency", {}, environment)[0])
    r, t = best_of(rs), best_of(ts)
    # mlr3's parts from the process of the fastest total, so that they add up.
    timed = [x for x in rs if x.get("mlr3_row_us") is not None]
    if timed:
        r.update({k: v for k, v in min(timed, key=lambda x: x["mlr3_row_us"]).items() if k.startswith("mlr3_")})
    rows = [["one row, predict() (R) / forward (PyTorch)", r.get("predict_row_us"), t.get("predict_row_us"),
             ratio(r.get("predict_row_us"), t.get("predict_row_us")), "µs"],
            ["one row, predict(type = \"prob\")", r.get("predict_row_prob_us"), t.get("predict_row_us"),
             ratio(r.get("predict_row_prob_us"), t.get("predict_row_us")), "µs"],
            ["one row, predict(), caches evicted before each call", r.get("predict_row_cold_us"), t.get("predict_row_cold_us"),
             ratio(r.get("predict_row_cold_us"), t.get("predict_row_cold_us")), "µs"]]
    if r.get("mlr3_row_us") is not None:
        rows += [[f"one row, mlr3 {r.get('mlr3_version', '')} $predict_newdata()", r["mlr3_row_us"], None, None, "µs"],
                 ["  of which mlr3's own (outside the learner's $.predict())", r.get("mlr3_own_us"), None, None, "µs"],
                 ["  of which predict() (inside $.predict(), after task$data())", r.get("mlr3_predict_us"), None, None, "µs"]]
    elif "error" not in r and systems.available("r"):
        rows.append(["one row, mlr3 $predict_newdata()", "mlr3 not installed", None, None, "µs"])
    rows.append([f"{r.get('rows', 10000):,} rows, predict(type = \"prob\")", r.get("predict_rows_per_s"),
                 t.get("predict_rows_per_s"), ratio(r.get("predict_rows_per_s"), t.get("predict_rows_per_s")), "rows/s"])
    rows.append([f"{r.get('rows', 10000):,} rows, the same per second of CPU time", r.get("predict_rows_per_cpu_s"),
                 t.get("predict_rows_per_cpu_s"), ratio(r.get("predict_rows_per_cpu_s"), t.get("predict_rows_per_cpu_s")),
                 "rows/s"])
    # The floor: the three matrix products alone at MKL's speed (PyTorch's torch.mm, no bias,
    # activation or encoding). Ember/PT on that row is the best ratio an engine whose products ran
    # at MKL's speed and which did nothing else could reach. MKL's product with 13 columns has a
    # slow mode that some PyTorch processes stay in (torch_bench.py latency_bench): a ceiling near
    # 1 means that run caught it (about 3.2 otherwise, on the AMD EPYC of 2026-12-05).
    rows.append([f"{r.get('rows', 10000):,} rows, the products alone (MKL): the ceiling of Ember/PT",
                 None, t.get("products_rows_per_s"), ratio(t.get("products_rows_per_s"), t.get("predict_rows_per_s")),
                 "rows/s"])
    widths = [max([len(h)] + [len(fmt(row[i])) for row in rows]) for i, h in enumerate(LATENCY_HEADERS)]
    for row in [None] + rows:
        print(line(LATENCY_HEADERS, row, widths), flush=True)
    return rows, cores(r)


def latency_summary(label, rows, blas):
    return (f"**Prediction latency**, one thread, {LATENCY_NETWORK} ({label}; BLAS core {blas}; each system the best "
            f"of three processes, alternating; Ember/PT above 1 is better for Ember in rows/s, below 1 in µs)\n\n"
            + markdown(LATENCY_HEADERS, rows))


CORE_HEADERS = ["benchmark", "Ember", "OpenBLAS call", "Ember kernels call", "PyTorch", "Ember/PyTorch", "unit"]


def core(systems, environment):
    print("\nEmberCore vs PyTorch, one thread (matmul: GFLOP/s, higher is better; others: ns per call, lower is "
          "better; Ember/PyTorch is the ratio of these numbers).", flush=True)
    ember = run(systems, "swift", "core", {}, environment)
    torch = {r.get("bench"): r for r in run(systems, "torch", "core", {}, environment)}
    rows = []
    for e in ember:
        if "bench" not in e:
            continue
        t = torch.get(e["bench"], {})
        key = "gflops" if "gflops" in e else "ns"
        rows.append([e["bench"], e[key], e.get("gflops_blas"), e.get("gflops_ember"), t.get(key), ratio(e[key], t.get(key)),
                     "GFLOP/s" if key == "gflops" else "ns"])
    widths = [max([len(h)] + [len(fmt(r[i])) for r in rows]) for i, h in enumerate(CORE_HEADERS)]
    for row in [None] + rows:
        print(line(CORE_HEADERS, row, widths))
    print(f"BLAS core (Ember; +ember: its own kernels run the products by default, +ember≤64: for products with at "
          f"most 64 rows): {cores(*ember)}")
    return rows, cores(*ember)


def machine():
    """The CPU model and the widest vector instructions it has (the level Ember's kernels dispatch to)."""
    cpu, flags = "?", set()
    with open("/proc/cpuinfo") as f:
        for l in f:
            if l.startswith("model name") and cpu == "?":
                cpu = l.split(":", 1)[1].strip()
            elif l.startswith("flags") and not flags:
                flags = set(l.split(":", 1)[1].split())
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags and "fma" in flags else "SSE"
    return f"{cpu}, {isa}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["quick", "full", "core", "latency", "ftt", "products"])
    parser.add_argument("--ember", default=str(HERE.parent / ".build" / "release" / "ember-bench"))
    parser.add_argument("--rlib", default=str(HERE.parent / ".rlib"))
    parser.add_argument("--repeat", type=int, default=1, help="ftt mode: how many times to run each pair")
    args = parser.parse_args()
    systems = Systems(args)
    if os.environ.get("BENCH_CORETYPES") == "1":
        passes = [("OPENBLAS_CORETYPE unset", {"OPENBLAS_CORETYPE": None}),
                  ("OPENBLAS_CORETYPE=SkylakeX", {"OPENBLAS_CORETYPE": "SkylakeX"})]
    else:
        passes = [(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}", {})]
    # Every table's caption names the CPU and its best instruction set.
    cpu = machine()
    passes = [(f"{cpu}; {label}", environment) for label, environment in passes]
    print(f"Ember benchmarks ({args.mode}), {time.strftime('%Y-%m-%d %H:%M')}, {cpu}, {os.cpu_count()} cores")
    for note in systems.notes:
        print("  " + note)

    started = time.time()
    summaries = []
    host = Host(systems) if args.mode in ("quick", "full", "ftt") else None
    for label, environment in passes:
        print(f"\n=== {label} ===")
        if args.mode == "core":
            rows, blas = core(systems, environment)
            summaries.append(f"**EmberCore vs PyTorch, one thread** ({label}; BLAS core {blas})\n\n"
                             + markdown(CORE_HEADERS, rows))
            continue
        if args.mode == "products":
            summaries.append(f"**MLP SGD cells against MKL's products on the same shapes**, one thread ({label})\n\n"
                             + markdown(PRODUCTS_HEADERS, products(systems, environment)))
            continue
        if args.mode == "latency":
            summaries.append(latency_summary(label, *latency(systems, environment)))
            continue
        if args.mode == "ftt":
            ftt = ft_transformer(systems, args.mode, environment, host, args.repeat)
            summaries.append(f"**FT-Transformer**, spam-shaped task, batch 32, AdamW ({label})\n\n"
                             + markdown(FTT_HEADERS[:6] + FTT_HEADERS[9:], [r[:6] + r[9:] for r in ftt]))
            continue
        mlp = mlp_grid(systems, args.mode, environment, host)
        two = mlp_grid_two_threads(systems, args.mode, environment, mlp, host)
        images = fashion(systems, args.mode, environment)
        ftt = ft_transformer(systems, args.mode, environment, host)
        long = long_run(systems, args.mode, environment)
        summaries.append(summary(label, mlp, two, images, ftt, long, rounds(args.mode)))
        summaries.append(latency_summary(label, *latency(systems, environment)))

    settings = "".join(f"{k}={os.environ[k]} " for k in ("BENCH_CORETYPES", "BENCH_EPOCHS") if k in os.environ)
    print(f"\n--- README-ready summary (`{settings}make bench{'' if args.mode == 'full' else '-' + args.mode}`) ---\n")
    print("\n\n".join(summaries))
    print("\nEmber/PT is the ratio of the numbers shown (Ember/PyTorch): below 1 is better for times, above 1 for images/s and GFLOP/s.")
    print(f"({time.time() - started:.0f} s)")


def summary(label, mlp, two, images, ftt, long, n_rounds):
    """Markdown: the MLP grid (one and two threads) and Fashion-MNIST tables, with BLAS cores and peak
    RSS in the captions."""
    def peak(rows, column):
        values = [r[column] for r in rows if r[column] is not None]
        return f"{max(values):.0f} MiB" if values else "—"

    text = (f"**MLP, time per batch** ({label}; each system and MKL's products the fastest of {n_rounds} run(s), "
            f"alternating, more while the host was slow around every run; host: MKL's speed around the kept runs over "
            f"its best in this run; BLAS core Swift/R: {', '.join(sorted({r[15] for r in mlp}))}; "
            f"peak RSS Swift {peak(mlp, 12)}, R {peak(mlp, 13)}, PyTorch {peak(mlp, 14)}; Swift/MKL rate: the batch's "
            f"product work per second over MKL's large-sgemm rate, one thread, this run; Swift/MKL same shapes: MKL's "
            f"time for the batch's products alone on the cell's shapes over Swift's whole step)\n\n"
            + markdown(MLP_HEADERS[:12] + MLP_HEADERS[16:], [r[:12] + r[16:] for r in mlp]))
    if two:
        text += (f"\n\n**MLP, two threads**, Swift and PyTorch at two threads each, ms per batch (the fastest of two "
                 f"runs each, more while the host was slow around every run); speed-up: one-thread time over two-thread time (Swift's: the median over pairs of epochs in "
                 f"one process, one at each thread count, of the ratio of their medians; Swift 1t ms: its one-thread epochs); round trip: of a cache line between the two "
                 f"vCPUs around each kept run, the larger of before and after (tens of ns: two cores of one die; several "
                 f"hundred: two dies of the CPU, which share no cache); MKL 2t products: the batch's products alone "
                 f"through MKL at two threads on the cell's shapes, its speed-up over its one-thread time and its time "
                 f"over PyTorch's two-thread step (the least Swift/PT that products at MKL's speed allow); Swift 2t alone: "
                 f"the share of its timed batches the trainer ran on one thread, as it measured faster ({label})\n\n"
                 + markdown(THREADS_HEADERS, two))
    if images:
        text += (f"\n\n**Fashion-MNIST**, MLP 784-256-128-10 and LeNet, 2 epochs ({label}; BLAS core {', '.join(sorted({r[12] for r in images}))}; "
                 f"peak RSS Ember {peak(images, 10)}, PyTorch {peak(images, 11)})\n\n"
                 + markdown(FASHION_HEADERS[:10], [r[:10] for r in images]))
    if ftt:
        text += (f"\n\n**FT-Transformer**, spam-shaped task, batch 32, AdamW, ms per batch, each system (and MKL's "
                 f"products) the fastest of {n_rounds} run(s), alternating; MKL products: every matrix product of "
                 f"PyTorch's step alone through MKL on its shapes, over Ember's step and over PyTorch's (the least "
                 f"Ember/PT that products at MKL's speed allow) ({label})\n\n"
                 + markdown(FTT_HEADERS[:6] + FTT_HEADERS[12:], [r[:6] + r[12:] for r in ftt]))
    text += (f"\n\n**Long run**, MLP 4 × 100, AdamW lr 1e-3, ms per batch over the first and last tenth of the epochs ({label})\n\n"
             + markdown(LONG_HEADERS, long))
    return text

if __name__ == "__main__":
    main()
