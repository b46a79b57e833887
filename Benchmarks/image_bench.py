"""Image benchmarks (`make bench-images`; standard library only): Ember through R (image_bench.R,
the package installed in .rlib) and PyTorch/torchvision (torch_bench.py) side by side, each
measurement in its own process, one after the other; tables of ratios measured in this run.

    python3 Benchmarks/image_bench.py quick|full [--ember .build/release/ember-bench] [--rlib .rlib]

1. LeNet on Fashion-MNIST (60k/10k), batch 128, Adam 1e-3, 1 epoch (quick) / 2 (full), at 1 and
   2 threads: train and predict images/s, test accuracy, peak RSS; the R memory of the byte column.
2. torchvision's ResNet-18 (10 classes) on synthetic byte images 3 × 32 × 32 and 3 × 64 × 64,
   batch 128, Adam 1e-3, at 1 and 2 threads: train images/s over timed epochs after a warm-up
   epoch, prediction images/s.
3. Augmentation overhead, one thread: random crop (padding) + horizontal flip against none, for
   ResNet-18 on 32 × 32 and LeNet on Fashion-MNIST; PyTorch through a DataLoader applying
   torchvision.transforms.v2 per image (num_workers=0) against the same loader without them.
4. JPEG decoding + resizing: 1,000 files of 256 × 256 RGB (written once by PIL) to 224 × 224, at
   1 and 2 threads (PyTorch: DataLoader with 0 and 2 workers).

Writes the tables to Benchmarks/results-images.md. Each row ends with 'others': the cores other
processes kept busy while it was measured (on a shared machine, rows above ~0.2 are disturbed).
Environment: BENCH_PYTHON is the interpreter of torch_bench.py (default: this one);
BENCH_QUIET_WAIT the seconds to wait at most, before each row, for other processes to leave the
cores (default 30); BENCH_RETRIES how many times to measure a disturbed row again (default 1);
OPENBLAS_CORETYPE, when set, applies to every child process.
"""
import argparse
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import FASHION_GZ, HERE, WORK, Systems, cores, fashion_data, fmt, line, markdown, ratio, run  # noqa: E402

RESULTS = HERE / "results-images.md"


class ImageSystems(Systems):
    """run.py's systems, with image_bench.R as the R side (its first argument names the benchmark)."""

    def command(self, system, bench, options):
        if system == "r":
            flags = [str(v) for k, v in options.items() for v in (f"--{k}", v)]
            return ["Rscript", str(HERE / "image_bench.R"), bench] + flags
        return super().command(system, bench, options)


def cpu_model():
    return next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")


def load():
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_seconds():
    """CPU time the machine has spent busy (user, nice, system, irq, softirq, steal: /proc/stat), and
    the CPU time of this process's finished children (the benchmarks), in seconds."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"),
            children.ru_utime + children.ru_stime)


class Others:
    """How many cores other processes kept busy over an interval: the machine's busy CPU time minus
    that of the benchmark processes started meanwhile, over the wall time."""

    def __init__(self):
        self.wall, (self.busy, self.ours) = time.time(), cpu_seconds()

    def cores(self):
        busy, ours = cpu_seconds()
        return max(0.0, (busy - self.busy) - (ours - self.ours)) / max(time.time() - self.wall, 1e-3)


def wait_for_quiet():
    """Waits (BENCH_QUIET_WAIT seconds at most, default 30) until other processes keep less than a
    quarter of a core busy over a second; returns how busy they were at the last look."""
    deadline = time.time() + float(os.environ.get("BENCH_QUIET_WAIT", 30))
    while True:
        others = Others()
        time.sleep(1)
        if others.cores() < 0.25 or time.time() >= deadline:
            return others.cores()


def kernels(*results):
    """Which kernels ran Ember's matrix products: "OpenBLAS", "Ember" or both."""
    names = sorted({"Ember" if r.get("kernels") == "ember" else "OpenBLAS" for r in results if r.get("blas_core")})
    return "/".join(names) or "—"


def environment(ember_results, torch_results):
    """The line printed under every table: CPU, Ember's BLAS core and kernels, PyTorch's BLAS, load."""
    torch_blas = sorted({r["blas_core"] for r in torch_results if r.get("blas_core")})
    versions = sorted({r["version"] for r in torch_results if r.get("version")})
    return (f"CPU {cpu_model()} ({os.cpu_count()} cores); Ember: BLAS core {cores(*ember_results)}, matrix-product "
            f"kernels {kernels(*ember_results)}; PyTorch {'/'.join(versions) or '—'}: {'/'.join(torch_blas) or '—'}; {load()}")


class Table:
    """A table printed row by row, then kept (with its caption and environment) for the markdown file."""

    def __init__(self, title, caption, headers):
        headers = headers + ["others"]  # cores other processes kept busy during the row's measurements
        self.title, self.caption, self.headers, self.rows = title, caption, headers, []
        self.ember, self.torch = [], []
        self.widths = [max(len(h), 7) for h in headers]
        print(f"\n{title}: {caption}", flush=True)
        print(line(headers, widths=self.widths), flush=True)

    def measure(self, body):
        """Measures a row: body() -> (row, Ember's results, PyTorch's results), after waiting for other
        processes to leave the cores; again, up to BENCH_RETRIES times (default 1), while they took a
        quarter of a core or more meanwhile. Prints and keeps the least disturbed measurement, with
        its 'others'; returns its results."""
        best = None
        for attempt in range(1 + int(os.environ.get("BENCH_RETRIES", 1))):
            wait_for_quiet()
            others = Others()
            row, ember, torch = body()
            busy = others.cores()
            if best is None or busy < best[0]:
                best = (busy, row, ember, torch)
            if busy < 0.25:
                break
            print(f"  (other processes took {busy:.2f} cores meanwhile: measuring the row again)", flush=True)
        busy, row, ember, torch = best
        row = row + [f"{busy:.2f}"]
        self.rows.append(row)
        self.ember += [r for r in ember if r]
        self.torch += [r for r in torch if r]
        print(line(self.headers, row, self.widths), flush=True)
        return ember, torch

    def close(self, notes=()):
        self.environment = environment(self.ember, self.torch)
        self.notes = list(notes)
        for note in self.notes + [self.environment]:
            print("  " + note, flush=True)
        return self

    def markdown(self):
        text = f"**{self.title}**: {self.caption}\n\n" + markdown(self.headers, self.rows)
        return text + "".join(f"\n\n{note}" for note in self.notes) + f"\n\n_{self.environment}_"


def one(systems, system, bench, options, threads=1):
    return run(systems, system, bench, options, {}, threads=threads)[0]


# ---------------------------------------------------------------------------------------------
# 1. LeNet on Fashion-MNIST.

def fashion(systems, mode):
    data = fashion_data()
    if data is None:
        print(f"\nFashion-MNIST: skipped, {FASHION_GZ} is missing (`sudo apt-get install dataset-fashion-mnist`)")
        return None
    epochs = 1 if mode == "quick" else 2
    headers = ["threads", "train img/s Ember", "PyTorch", "Ember/PT", "predict img/s Ember", "PyTorch", "Ember/PT",
               "accuracy Ember", "PyTorch", "RSS Ember", "RSS PT"]
    table = Table("LeNet, Fashion-MNIST", f"60k train / 10k test, batch 128, Adam lr 1e-3, shuffled, {epochs} epoch(s), "
                  f"seed 1. Ember: ember_fit() in R on the byte tensor column of ember_read_idx(); PyTorch: "
                  f"torch_bench.py fashion (float tensors prepared before timing). Images/s ratios are Ember ÷ "
                  f"PyTorch: higher is better for Ember. Peak RSS (VmHWM) of each process in MiB.", headers)
    setup, column = [], None
    for n in (1, 2):
        def body():
            e = one(systems, "r", "fashion", dict(dir=FASHION_GZ, epochs=epochs, threads=n, seed=1), threads=n)
            t = one(systems, "torch", "fashion", dict(dir=data, model="lenet", threads=n, seed=1, epochs=epochs),
                    threads=n)
            return ([n, e.get("train_images_per_s"), t.get("train_images_per_s"),
                     ratio(e.get("train_images_per_s"), t.get("train_images_per_s")), e.get("predict_images_per_s"),
                     t.get("predict_images_per_s"), ratio(e.get("predict_images_per_s"), t.get("predict_images_per_s")),
                     e.get("accuracy"), t.get("accuracy"), e.get("peak_rss_mib"), t.get("peak_rss_mib")], [e], [t])

        (e,), _ = table.measure(body)
        if e.get("fit_seconds") is not None:
            setup.append(f"{e['fit_seconds'] - e['train_seconds']:.2f} s at {n} thread(s)")
            column = e.get("column_mb")
    notes = []
    if column is not None:
        notes.append(f"R memory of the training images' tensor column (object.size of its bytes): {column:.1f} MB "
                     f"(target ≤ 60 MB). Ember's train img/s time the epochs (an ember_callback() at their start "
                     f"and end); ember_fit()'s set-up around them (checks, copying the column into the engine) "
                     f"took {', '.join(setup)}.")
    return table.close(notes)


# ---------------------------------------------------------------------------------------------
# 2. and 3. ResNet-18 on synthetic byte images.

def synthetic_images(size, count=2048):
    """`count` random byte images 3 × size × size (C order) and a label (0-9) each, written once."""
    images, labels = WORK / f"images-{count}x3x{size}x{size}.u8", WORK / f"labels-{count}.u8"
    rng = random.Random(size)
    if not images.exists() or images.stat().st_size != count * 3 * size * size:
        WORK.mkdir(parents=True, exist_ok=True)
        images.write_bytes(rng.randbytes(count * 3 * size * size))
    if not labels.exists() or labels.stat().st_size != count:
        labels.write_bytes(bytes(random.Random(1).randrange(10) for _ in range(count)))
    return images, labels


def resnet_settings(mode):
    """Training images per epoch, timed epochs (after one warm-up epoch), images predicted."""
    return (384, 1, 512) if mode == "quick" else (512, 3, 2048)


def resnet(systems, mode):
    train, epochs, predict = resnet_settings(mode)
    headers = ["size", "threads", "train img/s Ember", "PyTorch", "Ember/PT", "predict img/s Ember", "PyTorch",
               "Ember/PT", "RSS Ember", "RSS PT"]
    table = Table("ResNet-18, synthetic images", f"torchvision's ResNet-18 (Ember: ember_cnn(\"resnet18\")), 10 classes, "
                  f"random byte images 3 × size × size, batch 128, Adam lr 1e-3, shuffled; trained on {train} images "
                  f"({train // 128} batches per epoch): one warm-up epoch, then the median images/s of {epochs} timed "
                  f"epoch(s); prediction of {predict} images in batches of 128. Ember: ember_fit()/predict() in R on the "
                  f"byte tensor column of as_ember_tensor(); PyTorch: torch_bench.py images (batches gathered from a "
                  f"uint8 tensor and divided by 255). Images/s ratios are Ember ÷ PyTorch: higher is better for Ember.",
                  headers)
    for size in (32, 64):
        images, labels = synthetic_images(size)
        for n in (1, 2):
            options = dict(data=images, labels=labels, size=size, model="resnet18", n=train, epochs=epochs, warmup=1,
                           predict=predict, threads=n)

            def body():
                e = one(systems, "r", "images", options, threads=n)
                t = one(systems, "torch", "images", dict(options, channels=3, batch=128), threads=n)
                return ([f"{size}×{size}", n, e.get("train_images_per_s"), t.get("train_images_per_s"),
                         ratio(e.get("train_images_per_s"), t.get("train_images_per_s")), e.get("predict_images_per_s"),
                         t.get("predict_images_per_s"), ratio(e.get("predict_images_per_s"), t.get("predict_images_per_s")),
                         e.get("peak_rss_mib"), t.get("peak_rss_mib")], [e], [t])

            table.measure(body)
    return table.close(["Ember times the training epochs with an ember_callback() at their start and end (the "
                        "Swift-only `ember-bench resnet` times single SGD steps instead; not used here)."])


def slowdown(plain, augmented):
    """How much slower training with augmentation is, in % (from images/s)."""
    return (plain / augmented - 1) * 100 if plain and augmented else None


def augmentation(systems, mode):
    train, _, _ = resnet_settings(mode)
    epochs = 3 if mode == "quick" else 5
    fashion_epochs = 1 if mode == "quick" else 2
    headers = ["model", "augmentation", "Ember img/s plain", "augmented", "Ember slowdown %", "PyTorch img/s plain",
               "augmented", "PT slowdown %", "Ember/PT augmented"]
    table = Table("Augmentation overhead", f"training images/s without and with random crop + horizontal flip, one "
                  f"thread, batch 128, Adam lr 1e-3, shuffled. ResNet-18: {train} synthetic images 3 × 32 × 32, one "
                  f"warm-up epoch, median of {epochs} timed epochs; LeNet: Fashion-MNIST's 60k training images, "
                  f"{fashion_epochs} epoch(s). Ember: ember_fit(augment = list(ember_transform(\"random_crop\", ...), "
                  f"ember_transform(\"random_horizontal_flip\"))), run by the engine per batch; PyTorch: a "
                  f"torch.utils.data.DataLoader (num_workers=0) over a dataset returning one image at a time, with "
                  f"torchvision.transforms.v2 RandomCrop + RandomHorizontalFlip per image, against the same loader "
                  f"without them. Slowdown = plain img/s ÷ augmented img/s − 1; Ember/PT is Ember ÷ PyTorch "
                  f"(higher is better for Ember).", headers)
    images, labels = synthetic_images(32)
    cases = [("ResNet-18 32×32", "crop 32, padding 4 + flip", "images", "images",
              dict(data=images, labels=labels, size=32, model="resnet18", n=train, epochs=epochs, warmup=1, padding=4),
              dict(channels=3, batch=128))]
    data = fashion_data()
    if data is not None:
        cases.append(("LeNet 28×28", "crop 28, padding 2 + flip", "fashion", "images",
                      dict(dir=FASHION_GZ, epochs=fashion_epochs, seed=1, padding=2),
                      dict(data=data / "train-images.u8", labels=data / "train-labels.u8", channels=1, size=28,
                           model="lenet", batch=128, epochs=fashion_epochs, warmup=0, padding=2)))
    for model, what, r_bench, t_bench, r_options, t_options in cases:
        t_options = dict(r_options, **t_options) if r_bench == t_bench else t_options

        def body():
            e0, e1 = (one(systems, "r", r_bench, dict(r_options, augment=a, threads=1)) for a in (0, 1))
            t0, t1 = (one(systems, "torch", t_bench, dict(t_options, loader=1, augment=a, threads=1)) for a in (0, 1))
            rates = [r.get("train_images_per_s") for r in (e0, e1, t0, t1)]
            return ([model, what, rates[0], rates[1], slowdown(rates[0], rates[1]), rates[2], rates[3],
                     slowdown(rates[2], rates[3]), ratio(rates[1], rates[3])], [e0, e1], [t0, t1])

        table.measure(body)
    return table.close()


# ---------------------------------------------------------------------------------------------
# 4. JPEG decoding and resizing.

def jpeg(systems, mode):
    count, source, size = 1000, 256, 224
    directory = WORK / "jpeg"
    written = one(systems, "torch", "jpeg-files", dict(dir=directory, n=count, size=source))
    if "error" in written or not systems.torch:
        print(f"\nJPEG decoding: skipped, the files could not be written by PIL ({written.get('error', 'no PyTorch')})")
        return None
    passes = 1 if mode == "quick" else 3
    headers = ["threads", "Ember img/s", "PyTorch img/s", "Ember/PT", "Ember as.array img/s", "PyTorch loader",
               "RSS Ember", "RSS PT"]
    table = Table("JPEG decoding + resizing", f"{count} JPEG files of {source} × {source} RGB (quality 90, "
                  f"{written.get('mib', 0):.1f} MiB, in {directory.relative_to(HERE.parent)}) decoded and resized to "
                  f"{size} × {size} (bilinear, no antialiasing), batches of 128; images/s of a whole pass (median of "
                  f"{passes}, after one batch). Ember: predict() in R of a negligible network (global average "
                  f"pooling + a linear head) over ember_image_files(paths, shape = c(3, {size}, {size})), num_threads "
                  f"= threads: the engine decodes and resizes each batch on its threads while the previous one is "
                  f"predicted; as.array(): the same decoding plus R's copy into a double array, on the first 256 "
                  f"images. PyTorch: PIL open + convert(\"RGB\"), v2.functional pil_to_tensor, to_dtype(float32, "
                  f"scale=True), resize({size}, antialias=False) per image in a DataLoader (0 workers at 1 thread, "
                  f"2 worker processes at 2 threads, their start-up included). Ember/PT: Ember ÷ PyTorch img/s, "
                  f"higher is better for Ember. RSS in MiB (Ember: before as.array(); PyTorch: the main process).",
                  headers)
    for n in (1, 2):
        def body():
            e = one(systems, "r", "jpeg", dict(dir=directory, n=count, size=size, epochs=passes, threads=n), threads=n)
            t = one(systems, "torch", "jpeg", dict(dir=directory, n=count, size=size, batch=128,
                                                   workers=0 if n == 1 else 2, epochs=passes, threads=1))
            return ([n, e.get("images_per_s"), t.get("images_per_s"), ratio(e.get("images_per_s"), t.get("images_per_s")),
                     e.get("as_array_images_per_s"), f"{t.get('workers', '—')} workers", e.get("peak_rss_mib"),
                     t.get("peak_rss_mib")], [e], [t])

        table.measure(body)
    return table.close()


def installed(systems):
    """When the package in the R library was installed (None without it)."""
    library = Path(systems.rlib) / "mlr3ember" / "libs"
    return library.stat().st_mtime if library.is_dir() else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["quick", "full"])
    parser.add_argument("--ember", default=str(HERE.parent / ".build" / "release" / "ember-bench"))
    parser.add_argument("--rlib", default=str(HERE.parent / ".rlib"))
    args = parser.parse_args()
    systems = ImageSystems(args)
    built = installed(systems)
    if not systems.r:
        print("  ! the Ember columns need mlr3ember in " + str(systems.rlib) + " (`make rpkg-install`)")
    started = time.time()
    header = [f"Ember image benchmarks ({args.mode}), {time.strftime('%Y-%m-%d %H:%M')}, {cpu_model()}, "
              f"{os.cpu_count()} cores, {load()} at the start",
              f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"] + systems.notes
    header.append("Column 'others': how many cores other processes kept busy while the row was measured (this "
                  "machine's busy CPU time minus the benchmarks'); before each row the driver waits up to "
                  f"{os.environ.get('BENCH_QUIET_WAIT', '30')} s (BENCH_QUIET_WAIT) for them to use less than a "
                  f"quarter of a core, and measures a row again, up to {os.environ.get('BENCH_RETRIES', '1')} times "
                  "(BENCH_RETRIES), while they took more; the least disturbed measurement is shown. Rows with "
                  "others ≳ 0.2 are disturbed, two-thread rows most.")
    print(header[0])
    for note in header[1:]:
        print("  " + note)
    tables = [t for t in (fashion(systems, args.mode), resnet(systems, args.mode), augmentation(systems, args.mode),
                          jpeg(systems, args.mode)) if t is not None]
    footer = f"({time.time() - started:.0f} s; {load()} at the end)"
    if systems.r and installed(systems) != built:
        footer += ("\n\n! mlr3ember was installed again in " + str(systems.rlib) + " during this run: the Ember rows "
                   "may come from two engines")
    print(f"\n{footer}")
    text = (f"# Image benchmarks (`make bench-images{'' if args.mode == 'quick' else ' BENCH_MODE=full'}`)\n\n"
            + header[0] + "\n\n" + "".join(f"- {note}\n" for note in header[1:]) + "\n"
            + "\n\n".join(t.markdown() for t in tables) + f"\n\n{footer}\n")
    RESULTS.write_text(text)
    print(f"Markdown tables written to {RESULTS.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
