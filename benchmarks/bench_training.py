"""Training speed, threads and memory of mnistnet, against this machine's matrix-multiply limit.

    python benchmarks/bench_training.py                      # synthetic 60,000 x 784 uint8
    python benchmarks/bench_training.py --quick              # a minute: every part, smaller
    python benchmarks/bench_training.py --json > bench.json
    python benchmarks/bench_training.py --dataset fashion-mnist \\
        --data-dir /usr/share/datasets/fashion-mnist          # real full-size data

Not a test: it measures, in one run,
1. for each dtype and batch size (32, 128, 512 with momentum; full-batch
   gradient descent on the first 10,000 samples), mnistnet's seconds per
   epoch with one thread, with OpenBLAS's own threads on every core (what
   mnistnet did before ``--threads``), and with mnistnet's own threads (the
   hidden units split among as many threads as ``auto`` would use on this
   machine, at most 4); ``auto`` is one of the two mnistnet columns, the
   contenders alternating epoch by epoch so that the machine's drift hits
   all alike (best epoch of each); the GEMM rate on every core measured
   right before and after the row, and each contender's share of it;
   PyTorch's best thread count and time when PyTorch is installed;
2. two mnistnet runs at once against one alone (each run's best epoch),
   with ``--threads auto``, with cores/2 threads each (what ``sweep`` gives
   two jobs) and with OpenBLAS's own threads;
3. the quick start's wall time (``train-binary --digits 5 8 --dataset
   mnist-sample``) with and without its pictures, start-up included;
4. peak resident memory of ``train-multiclass`` on the whole training set
   (float32 with its pictures; float32 and float64 without), and the wall
   time of ``evaluate`` on 10,000 test images;
and checks the results against the goals of issue 12.
"""

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
from threadpoolctl import threadpool_limits

from mnistnet import model, parallel
from mnistnet.idx import write_idx
from mnistnet.optimizers import make_optimizer
from mnistnet.training import fit

N_IN, N_HIDDEN, N_OUT = 784, 256, 10
# Forward 2*(784*256 + 256*10); backward dW2 + D2 @ W2.T + dW1 = 2*(256*10*2 + 784*256).
FLOP_PER_SAMPLE = 2 * (N_IN * N_HIDDEN + N_HIDDEN * N_OUT) + 2 * (
    2 * N_HIDDEN * N_OUT + N_IN * N_HIDDEN
)
GOALS = {
    "b128_ratio": 0.80,  # float32 batch 128: share of the every-core GEMM rate
    "b128_torch": 0.55,  # ... and at most this fraction of PyTorch's best time
    "b32_ratio": 0.60,
    "two_runs": 1.2,  # each of two runs at once, against one alone
    "quick_start_seconds": 3.5,
    "peak_mb_f32_pictures": 350,
    "peak_mb_f64": 650,
    "evaluate_seconds": 2.0,
}
CONTENDERS = ("1 thread", "OpenBLAS threads", "split")
OPENBLAS_SPIN_SECONDS = 0.5  # a pause after OpenBLAS's threads, for them to stop spinning


def gemm_rate(dtype, batch, threads, trials=7, trial_seconds=0.1):
    """GFLOP/s of X(batch, 784) @ W1 and X.T @ D1(batch, 256), the two large products,
    on ``threads`` BLAS threads.

    The best of several trials of at least ``trial_seconds`` each: this
    machine's speed jitters, and the best trial is the rate it can reach.
    """
    rng = np.random.default_rng(0)
    X = rng.random((batch, N_IN), dtype=np.float64).astype(dtype)
    W1 = rng.random((N_IN, N_HIDDEN)).astype(dtype)
    D1 = rng.random((batch, N_HIDDEN)).astype(dtype)
    Z = np.empty((batch, N_HIDDEN), dtype)
    G = np.empty((N_IN, N_HIDDEN), dtype)
    flop = 2 * 2 * batch * N_IN * N_HIDDEN
    best = float("inf")
    with threadpool_limits(threads):
        for _ in range(trials):
            reps, start = 0, time.perf_counter()
            while True:
                np.matmul(X, W1, out=Z)
                np.matmul(X.T, D1, out=G)
                reps += 1
                elapsed = time.perf_counter() - start
                if elapsed >= trial_seconds:
                    break
            best = min(best, elapsed / reps)
    return flop / best / 1e9


class Contender:
    """One way of training: its own weights, optimizer and batch order, continued from
    call to call; ``net`` and ``blas`` threads as given. :meth:`epochs` trains a few
    epochs in one ``fit`` call (its workspace is made once, as in a real run) and
    keeps each epoch's seconds."""

    def __init__(self, X, y, batch, net, blas):
        self.X, self.y, self.batch, self.net, self.blas = X, y, batch, net, blas
        self.params = model.init_params(
            N_IN, N_HIDDEN, N_OUT, method="xavier", seed=0, dtype=X.dtype
        )
        self.optimizer = make_optimizer("gd" if batch is None else "momentum")
        self.rng = np.random.default_rng(0)
        self.times = []

    def epochs(self, count):
        full = self.batch is None
        with threadpool_limits(self.blas):
            history = fit(self.params, self.X, self.y, task="multiclass",
                          optimizer=self.optimizer, epochs=count, lr=1e-5 if full else 0.05,
                          batch_size=self.batch, reduction="sum" if full else "mean",
                          rng=self.rng, net=self.net)  # fmt: skip
        # the first epoch of a call pays for its allocations: not counted
        self.times += np.diff(history.column("seconds")).tolist()


def time_contenders(X, y, batch, epochs, cores):
    """Best seconds per epoch of each of :data:`CONTENDERS`, the three taking turns
    (two turns of ``epochs // 2 + 1`` epochs each, the first of a turn not counted);
    also the threads of the split and of ``auto``."""
    split = max(2, min(cores, parallel.AUTO_MAX_THREADS))
    auto = parallel.resolve_threads(None, batch or len(X), N_HIDDEN, cores=cores)
    with parallel.network(split) as net:
        contenders = {
            "1 thread": Contender(X, y, batch, model, 1),
            "OpenBLAS threads": Contender(X, y, batch, model, cores),
            "split": Contender(X, y, batch, net, 1),
        }
        for _ in range(2):
            for name, contender in contenders.items():
                contender.epochs(max(1, epochs // 2) + 1)
                if name == "OpenBLAS threads":
                    # Its idle threads spin on for about 0.1 s after the last product
                    # (OpenBLAS's THREAD_TIMEOUT) and would slow whoever comes next.
                    time.sleep(OPENBLAS_SPIN_SECONDS)
    times = {name: min(c.times) for name, c in contenders.items()}
    times["auto"] = times["1 thread" if auto == 1 else "split"]
    return times, split, auto


def time_torch(X, y, batch, epochs, threads):
    """Best seconds per epoch of the same network, optimizer and batch in PyTorch on
    ``threads`` threads; None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tdtype = torch.float32 if X.dtype == np.float32 else torch.float64
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y.astype(np.int64))
    net = torch.nn.Sequential(
        torch.nn.Linear(N_IN, N_HIDDEN), torch.nn.Sigmoid(), torch.nn.Linear(N_HIDDEN, N_OUT)
    ).to(tdtype)
    full = batch is None
    opt = torch.optim.SGD(net.parameters(), lr=1e-5 if full else 0.05, momentum=0 if full else 0.9)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum" if full else "mean")
    n = len(Xt)
    step = n if full else batch
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        order = torch.arange(n) if full else torch.randperm(n)
        for s in range(0, n, step):
            idx = order[s : s + step]
            xb, yb = (Xt, yt) if full else (Xt[idx], yt[idx])
            opt.zero_grad(set_to_none=True)
            out = net(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            loss.item()  # as mnistnet does: the loss is read every step
        times.append(time.perf_counter() - start)
    return float(min(times[1:]))


def _this_script(*args):
    return [sys.executable, os.path.abspath(__file__), *map(str, args)]


def torch_best(scratch, rows_n, batch, epochs, cores):
    """PyTorch at its best thread count (1, 2, 4, ... up to ``cores``), each count in a
    fresh process: PyTorch's worker threads keep spinning after it returns and would
    slow every later run. Returns ``(seconds, threads)``."""
    counts = sorted({1, cores, *(2**k for k in range(1, 8) if 2**k < cores)})
    best = None
    for threads in counts:
        done = subprocess.run(
            _this_script("--torch-worker", scratch, rows_n, batch or "full", epochs, threads),
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        secs = float(done.stdout.split()[-1])
        if best is None or secs < best[0]:
            best = (secs, threads)
    return best


def measure_row(X, y, batch, args, cores, torch_scratch):
    """One row of the threads table: GEMM rate, each contender, PyTorch's best."""
    dtype = X.dtype.type
    rows_n = len(X) if batch is not None else min(len(X), args.full_batch_samples)
    shape_batch = batch if batch is not None else rows_n
    before = gemm_rate(dtype, shape_batch, cores)
    times, split, auto = time_contenders(X[:rows_n], y[:rows_n], batch, args.epochs, cores)
    gemm = max(before, gemm_rate(dtype, shape_batch, cores))
    flop = rows_n * FLOP_PER_SAMPLE
    row = {
        "dtype": X.dtype.name,
        "batch": "full" if batch is None else batch,
        "samples": rows_n,
        "gemm_gflops": round(gemm, 1),
        "split_threads": split,
        "auto_threads": auto,
        "seconds": {name: round(t, 4) for name, t in times.items()},
        "ratio_to_gemm": {name: round(flop / t / 1e9 / gemm, 3) for name, t in times.items()},
    }
    if torch_scratch is not None:
        secs, threads = torch_best(torch_scratch, rows_n, batch, args.epochs, cores)
        row["torch_seconds"], row["torch_threads"] = round(secs, 4), threads
        row["auto_over_torch"] = round(times["auto"] / secs, 3)
    return row


def run_worker(args):
    """``--run-worker``: one training run's best epoch, printed (for two runs at once)."""
    X, y = np.load(args.run_worker[0]), np.load(args.run_worker[1])
    mode, epochs = args.run_worker[2], int(args.run_worker[3])
    cores = parallel.available_cores()
    if mode == "openblas":
        threads, blas = 1, cores
    else:
        threads = parallel.resolve_threads(None if mode == "auto" else int(mode), 128, N_HIDDEN)
        blas = 1
    with parallel.network(threads) as net:
        contender = Contender(X, y, 128, net, blas)
        contender.epochs(epochs + 1)
    print(min(contender.times))


def two_runs(scratch, epochs, cores):
    """Each of two runs at once against one alone, float32, batch 128, for three
    thread settings; one alone and two together alternate, twice."""
    modes = {"auto": "auto", f"{max(1, cores // 2)} each (sweep)": str(max(1, cores // 2)),
             "OpenBLAS threads": "openblas"}  # fmt: skip
    data = [os.path.join(scratch, "X32.npy"), os.path.join(scratch, "y.npy")]
    results = {}
    for name, mode in modes.items():
        alone, pair = [], []
        for _ in range(2):
            command = _this_script("--run-worker", *data, mode, epochs)
            alone.append(float(subprocess.run(command, capture_output=True, text=True,
                                              check=True).stdout))  # fmt: skip
            procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in "ab"]
            pair.append(max(float(p.communicate()[0]) for p in procs))
        results[name] = {"alone": round(min(alone), 4), "each_of_two": round(min(pair), 4),
                         "slowdown": round(min(pair) / min(alone), 2)}  # fmt: skip
    return results


def synthetic(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(
        np.uint8
    )


def load_images(args):
    """(train images, train labels) as uint8."""
    if args.dataset == "synthetic":
        return synthetic(60000, 0)
    from mnistnet.datasets import load_split

    split = load_split(args.dataset, "train", data_dir=args.data_dir)
    return split.images, split.labels


def write_synthetic_idx(folder):
    """60,000 train and 10,000 test synthetic images as plain IDX files for the CLI runs."""
    for prefix, n, seed in (("train", 60000, 0), ("t10k", 10000, 1)):
        images, labels = synthetic(n, seed)
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), images)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), labels)


# Linux counts the peak RSS of the process a command was started from into the
# command's own ru_maxrss (fork/exec inherit the high-water mark). This
# benchmark holds the whole dataset, so a small launcher process starts each
# measured command and reports that command's own peak and wall time.
LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), time.perf_counter() - start, usage.ru_maxrss)
"""


def run_measured(cmd):
    """Run ``cmd``; return (wall seconds, peak RSS in MB) of that process alone."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, text=True, check=True
    )
    code, wall, maxrss_kib = done.stdout.split()
    if code != "0":
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n{done.stderr}")
    return float(wall), int(maxrss_kib) / 1024


def cli_runs(args, folder):
    """Quick start with and without pictures, peak memory on the whole training set,
    evaluate's wall time: each a command in its own process."""
    if args.dataset == "synthetic":
        data = ["--dataset", "idx", "--data-dir", folder]
    else:
        data = [
            "--dataset",
            args.dataset,
            *(["--data-dir", args.data_dir] if args.data_dir else []),
        ]
    base = [sys.executable, "-m", "mnistnet"]
    quick = [*base, "train-binary", "--digits", "5", "8", "--dataset", "mnist-sample", "--quiet"]
    walls = {"pictures": [], "no pictures": []}
    for i in range(1 if args.quick else 3):  # alternating
        for name, extra in (("pictures", []), ("no pictures", ["--no-plots"])):
            out = os.path.join(folder, f"quick-{name.replace(' ', '-')}-{i}")
            walls[name].append(run_measured([*quick, *extra, "--out", out])[0])
    results = {f"quick_start_seconds_{k.replace(' ', '_')}": round(min(v), 3)
               for k, v in walls.items()}  # fmt: skip
    per_class = ["--samples-per-class", "1000" if args.quick else "all"]
    for dtype, pictures in (("float32", True), ("float32", False), ("float64", False)):
        out = os.path.join(folder, f"run-{dtype}-{pictures}")
        cmd = [*base, "train-multiclass", *data, *per_class, "--optimizer", "momentum",
               "--batch-size", "128", "--lr", "0.05", "--reduction", "mean", "--pixels", "unit",
               "--init", "xavier", "--dtype", dtype, "--epochs", "1", "--quiet", "--out", out,
               *([] if pictures else ["--no-plots"])]  # fmt: skip
        _, peak = run_measured(cmd)
        results[f"peak_mb_{dtype}{'_pictures' if pictures else ''}"] = round(peak, 1)
    model_path = os.path.join(folder, "run-float32-False", "model.npz")
    walls = [run_measured([*base, "evaluate", model_path, *data, "--json"])[0] for _ in range(3)]
    results["evaluate_seconds"] = round(min(walls), 3)
    results["samples_per_class"] = per_class[1]
    return results


def blas_name():
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:
        return "unknown"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset",
        default="synthetic",
        choices=["synthetic", "mnist", "fashion-mnist", "mnist-sample", "idx"],
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs (after 1 warm-up)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--full-batch-samples", type=int, default=10000)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="every part, smaller: 12,000 samples, 2 epochs, float32, batch 32 "
        "and 128, 10,000 images for the memory runs",
    )
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--no-cli", action="store_true", help="skip the command-line runs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--torch-worker", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--run-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()  # fmt: skip
    if args.quick:
        args.epochs, args.batch_sizes, args.dtypes = 2, [32, 128], ["float32"]
        args.full_batch_samples = 4000
    return args


def torch_worker(args):
    scratch, n, batch, epochs, threads = args.torch_worker
    X = np.load(os.path.join(scratch, "X.npy"))[: int(n)]
    y = np.load(os.path.join(scratch, "y.npy"))[: int(n)]
    print(time_torch(X, y, None if batch == "full" else int(batch), int(epochs), int(threads)))


def main():
    args = parse_args()
    if args.torch_worker:
        return torch_worker(args)
    if args.run_worker:
        return run_worker(args)
    images, labels = load_images(args)
    if args.quick:
        images, labels = images[:12000], labels[:12000]
    report = _header(args, len(images))
    with_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    cores = report["machine"]["cores"]
    with tempfile.TemporaryDirectory() as scratch:
        y = labels.astype(np.intp)
        np.save(os.path.join(scratch, "y.npy"), y)
        for dtype_name in args.dtypes:
            X = images.reshape(len(images), -1).astype(dtype_name)
            X /= 255
            np.save(os.path.join(scratch, "X.npy"), X)  # for the PyTorch processes
            if dtype_name == "float32":
                np.save(os.path.join(scratch, "X32.npy"), X)  # for the two-runs processes
            for batch in [*args.batch_sizes, None]:
                row = measure_row(X, y, batch, args, cores, scratch if with_torch else None)
                report["rows"].append(row)
                print(f"measured {row['dtype']} batch {row['batch']}", file=sys.stderr)
            del X
        if os.path.exists(os.path.join(scratch, "X32.npy")):
            report["two_runs"] = two_runs(scratch, args.epochs, cores)
    if not args.no_cli:
        with tempfile.TemporaryDirectory() as folder:
            if args.dataset == "synthetic":
                write_synthetic_idx(folder)
            report["cli"] = cli_runs(args, folder)
    report["goals"] = check_goals(report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)


def _header(args, n):
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cores": parallel.available_cores(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "blas": blas_name(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        },
        "dataset": args.dataset,
        "samples": n,
        "quick": args.quick,
        "flop_per_sample": FLOP_PER_SAMPLE,
        "rows": [],
    }


def _row(report, dtype, batch):
    return next((r for r in report["rows"] if r["dtype"] == dtype and r["batch"] == batch), None)


def check_goals(report):
    goals = []
    r = _row(report, "float32", 128)
    if r:
        ratio = r["ratio_to_gemm"]["auto"]
        goals.append(("float32 batch 128: >= 80% of the GEMM rate (auto)", f"{ratio:.0%}",
                      ratio >= GOALS["b128_ratio"]))  # fmt: skip
        if "auto_over_torch" in r:
            goals.append(("float32 batch 128: <= 0.55x PyTorch's best time",
                          f"{r['auto_over_torch']:.2f}x ({r['torch_threads']} threads)",
                          r["auto_over_torch"] <= GOALS["b128_torch"]))  # fmt: skip
    r = _row(report, "float32", 32)
    if r:
        ratio = r["ratio_to_gemm"]["auto"]
        goals.append(("float32 batch 32: >= 60% of the GEMM rate (auto)", f"{ratio:.0%}",
                      ratio >= GOALS["b32_ratio"]))  # fmt: skip
    for name, two in report.get("two_runs", {}).items():
        goals.append((f"two runs at once ({name}): each <= 1.2x one alone",
                      f"{two['slowdown']:.2f}x", two["slowdown"] <= GOALS["two_runs"]))  # fmt: skip
    cli = report.get("cli")
    if cli:
        goals += _cli_goals(cli)
    return [{"goal": g, "measured": m, "met": ok} for g, m, ok in goals]


def _cli_goals(cli):
    quick = cli["quick_start_seconds_pictures"]
    f32, f64 = cli["peak_mb_float32_pictures"], cli["peak_mb_float64"]
    images = "all" if cli["samples_per_class"] == "all" else "10,000"
    return [
        ("quick start with pictures: < 3.5 s", f"{quick:.2f} s "
         f"({cli['quick_start_seconds_no_pictures']:.2f} s without)",
         quick < GOALS["quick_start_seconds"]),
        (f"peak memory, float32 with pictures ({images} images): < 350 MB",
         f"{f32:.0f} MB ({cli['peak_mb_float32']:.0f} MB without)",
         f32 < GOALS["peak_mb_f32_pictures"]),
        (f"peak memory, float64 ({images} images): < 650 MB", f"{f64:.0f} MB",
         f64 < GOALS["peak_mb_f64"]),
        ("evaluate, 10,000 images, with start-up: < 2 s", f"{cli['evaluate_seconds']:.2f} s",
         cli["evaluate_seconds"] < GOALS["evaluate_seconds"]),
    ]  # fmt: skip


def print_report(report):
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 170)
    m = report["machine"]
    console.print(
        f"{report['date']}  {m['cores']} cores  {m['processor']}  Python {m['python']}  "
        f"NumPy {m['numpy']} ({m['blas']})  data: {report['dataset']} ({report['samples']} "
        f"samples{', --quick' if report['quick'] else ''})"
    )
    table = Table(title="Training 784-256-10: seconds per epoch (share of the GEMM rate)")
    for col in ("dtype", "batch", "samples", "GEMM GFLOP/s", *CONTENDERS, "auto",
                "PyTorch (threads)", "auto / PyTorch"):  # fmt: skip
        table.add_column(col, justify="right")
    for r in report["rows"]:
        cells = [f"{r['seconds'][c]:.3f} ({r['ratio_to_gemm'][c]:.0%})" for c in CONTENDERS]
        cells[2] = f"{r['split_threads']}: " + cells[2]
        cells.append(f"{r['auto_threads']} thread(s)")
        torch = (f"{r['torch_seconds']:.3f} ({r['torch_threads']})" if "torch_seconds" in r
                 else "-")  # fmt: skip
        ratio = f"{r['auto_over_torch']:.2f}x" if "auto_over_torch" in r else "-"
        table.add_row(r["dtype"], str(r["batch"]), f"{r['samples']:,}",
                      f"{r['gemm_gflops']:.1f}", *cells, torch, ratio)  # fmt: skip
    console.print(table)
    if "two_runs" in report:
        two = Table(title="Two runs at once, float32, batch 128: best epoch (s)")
        for col in ("threads", "one alone", "each of two", "slowdown"):
            two.add_column(col, justify="right")
        for name, t in report["two_runs"].items():
            two.add_row(
                name, f"{t['alone']:.3f}", f"{t['each_of_two']:.3f}", f"{t['slowdown']:.2f}x"
            )
        console.print(two)
    goals = Table(title="Goals")
    for col in ("goal", "measured", "met"):
        goals.add_column(col)
    for g in report["goals"]:
        goals.add_row(g["goal"], g["measured"], "yes" if g["met"] else "NO")
    console.print(goals)


if __name__ == "__main__":
    main()
