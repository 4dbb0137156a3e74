"""Training speed and memory of mnistnet on this machine, against its matrix-multiply limit.

    python benchmarks/bench_training.py                      # synthetic 60,000 x 784 uint8
    python benchmarks/bench_training.py --json > bench.json
    python benchmarks/bench_training.py --dataset fashion-mnist \\
        --data-dir /usr/share/datasets/fashion-mnist          # real full-size data

Not a test: it measures, in one run,
1. the float32 and float64 GEMM rate at the network's shapes (the two large
   products of a step, X @ W1 and X.T @ D1, for each batch size);
2. mnistnet's seconds per epoch and samples/s for mini-batches of 32, 128
   and 512 (momentum) and full-batch gradient descent (the notebook's, on
   the first 10,000 samples), in float32 and float64;
3. the achieved GFLOP/s (818,176 FLOP per sample and step) and its ratio to
   the GEMM rate;
4. peak resident memory of `mnistnet train-multiclass` on the whole
   training set (float32 and float64; 1 and 3 epochs, to show nothing grows
   with the epochs), and the wall time of `mnistnet evaluate` on 10,000
   test images, start-up included;
and, when PyTorch is installed, the same network, data, batch, optimizer
and thread count in PyTorch, with the ratio.
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

from mnistnet import model
from mnistnet.idx import write_idx
from mnistnet.optimizers import make_optimizer
from mnistnet.training import fit

N_IN, N_HIDDEN, N_OUT = 784, 256, 10
# Forward 2*(784*256 + 256*10); backward dW2 + D2 @ W2.T + dW1 = 2*(256*10*2 + 784*256).
FLOP_PER_SAMPLE = 2 * (N_IN * N_HIDDEN + N_HIDDEN * N_OUT) + 2 * (
    2 * N_HIDDEN * N_OUT + N_IN * N_HIDDEN
)
GOALS = {
    "minibatch_f32_b128_ratio": 0.65,
    "fullbatch_f64_ratio": 0.70,
    "peak_mb_f32": 350,
    "peak_mb_f64": 650,
    "evaluate_seconds": 2.0,
}


def gemm_rate(dtype, batch, trials=7, trial_seconds=0.1):
    """GFLOP/s of X(batch, 784) @ W1 and X.T @ D1(batch, 256), the two large products.

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


def time_mnistnet(X, y, batch, epochs):
    """Best seconds per epoch of ``fit`` (after one warm-up epoch), no test scoring."""
    dtype = X.dtype
    params = model.init_params(N_IN, N_HIDDEN, N_OUT, method="xavier", seed=0, dtype=dtype)
    full = batch is None
    history = fit(
        params,
        X,
        y,
        task="multiclass",
        optimizer=make_optimizer("gd" if full else "momentum"),
        epochs=epochs + 1,
        lr=1e-5 if full else 0.05,
        batch_size=batch,
        reduction="sum" if full else "mean",
        rng=np.random.default_rng(0),
    )
    seconds = np.diff([0.0] + history.column("seconds"))[1:]
    return float(min(seconds))


def time_torch(X, y, batch, epochs):
    """Best seconds per epoch of the same network, optimizer, batch and threads in PyTorch.

    None when PyTorch is not installed.
    """
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
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


def synthetic(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(
        np.uint8
    )


def load_images(args):
    """(train images, train labels) as uint8, and the dataset arguments for the CLI runs."""
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


def memory_and_evaluate(args, folder):
    if args.dataset == "synthetic":
        data = ["--dataset", "idx", "--data-dir", folder]
    else:
        data = ["--dataset", args.dataset]
        data += ["--data-dir", args.data_dir] if args.data_dir else []
    base = [sys.executable, "-m", "mnistnet"]
    results = {}
    for dtype in ("float32", "float64"):
        for epochs in (1, 3):
            out = os.path.join(folder, f"run-{dtype}-{epochs}")
            cmd = base + ["train-multiclass", *data, "--samples-per-class", "all",
                          "--optimizer", "momentum", "--batch-size", "128", "--lr", "0.05",
                          "--reduction", "mean", "--pixels", "unit", "--init", "xavier",
                          "--dtype", dtype, "--epochs", str(epochs), "--no-plots", "--quiet",
                          "--out", out]  # fmt: skip
            _, peak = run_measured(cmd)
            results[f"peak_mb_{dtype}_{epochs}_epochs"] = round(peak, 1)
    model_path = os.path.join(folder, "run-float32-1", "model.npz")
    walls = [run_measured(base + ["evaluate", model_path, *data, "--json"])[0] for _ in range(3)]
    results["evaluate_seconds"] = round(min(walls), 3)
    return results


def blas_name():
    try:
        cfg = np.show_config(mode="dicts")
        return cfg["Build Dependencies"]["blas"]["name"]
    except Exception:
        return "unknown"


def main():
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
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--no-memory", action="store_true", help="skip the CLI memory runs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()  # fmt: skip

    images, labels = load_images(args)
    n = len(images)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "blas": blas_name(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        },
        "dataset": args.dataset,
        "samples": n,
        "flop_per_sample": FLOP_PER_SAMPLE,
        "rows": [],
    }
    with_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    with tempfile.TemporaryDirectory() as scratch:
        for dtype_name in args.dtypes:
            dtype = np.dtype(dtype_name).type
            X = images.reshape(n, -1).astype(dtype)
            X /= 255
            y = labels.astype(np.intp)
            if with_torch:  # the same arrays for the PyTorch runs, in their own process
                np.save(os.path.join(scratch, "X.npy"), X)
                np.save(os.path.join(scratch, "y.npy"), y)
            for batch in [*args.batch_sizes, None]:
                row = measure_row(X, y, batch, args, scratch if with_torch else None)
                report["rows"].append(row)
            del X
    if not args.no_memory:
        with tempfile.TemporaryDirectory() as folder:
            if args.dataset == "synthetic":
                write_synthetic_idx(folder)
            report["cli"] = memory_and_evaluate(args, folder)
    report["goals"] = check_goals(report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)


def measure_row(X, y, batch, args, torch_scratch):
    """One table row: the GEMM rate, mnistnet's epoch, and PyTorch's (when asked).

    This machine's speed drifts over minutes, so the GEMM rate is measured
    right before and right after the training epochs, and the better of the
    two is the limit the epochs are compared to.
    """
    dtype = X.dtype.type
    rows_n = len(X) if batch is not None else min(len(X), args.full_batch_samples)
    shape_batch = batch if batch is not None else rows_n
    before = gemm_rate(dtype, shape_batch)
    secs = time_mnistnet(X[:rows_n], y[:rows_n], batch, args.epochs)
    gemm = max(before, gemm_rate(dtype, shape_batch))
    achieved = rows_n * FLOP_PER_SAMPLE / secs / 1e9
    row = {
        "dtype": X.dtype.name,
        "batch": "full" if batch is None else batch,
        "samples": rows_n,
        "seconds_per_epoch": round(secs, 4),
        "samples_per_second": round(rows_n / secs),
        "gflops": round(achieved, 1),
        "gemm_gflops": round(gemm, 1),
        "ratio_to_gemm": round(achieved / gemm, 3),
    }
    if torch_scratch is not None:
        torch_secs = time_torch_in_subprocess(torch_scratch, rows_n, batch, args.epochs)
        row["torch_seconds_per_epoch"] = round(torch_secs, 4)
        row["torch_over_mnistnet"] = round(torch_secs / secs, 3)
    return row


def time_torch_in_subprocess(scratch, rows_n, batch, epochs):
    """:func:`time_torch` in a fresh process: PyTorch's worker threads keep spinning
    after it returns and would slow every later NumPy run in this one."""
    code = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); import bench_training as b; "
        "n = int(sys.argv[3]); batch = None if sys.argv[4] == 'full' else int(sys.argv[4]); "
        "X = np.load(sys.argv[2] + '/X.npy')[:n]; y = np.load(sys.argv[2] + '/y.npy')[:n]; "
        "print(b.time_torch(X, y, batch, int(sys.argv[5])))"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    args = [here, scratch, str(rows_n), "full" if batch is None else str(batch), str(epochs)]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


def _row(report, dtype, batch):
    return next((r for r in report["rows"] if r["dtype"] == dtype and r["batch"] == batch), None)


def check_goals(report):
    goals = []
    r = _row(report, "float32", 128)
    if r:
        ok = r["ratio_to_gemm"] >= GOALS["minibatch_f32_b128_ratio"]
        if "torch_over_mnistnet" in r:
            ok = ok and r["torch_over_mnistnet"] > 1
        measured = f"{r['ratio_to_gemm']:.0%}"
        if "torch_over_mnistnet" in r:
            measured += f"; PyTorch takes {r['torch_over_mnistnet']:.2f}x as long"
        goals.append(("float32 batch 128: >= 65% of GEMM, and faster than PyTorch if present",
                      measured, ok))  # fmt: skip
    r = _row(report, "float64", "full")
    if r:
        goals.append(("float64 full batch: >= 70% of GEMM", f"{r['ratio_to_gemm']:.0%}",
                      r["ratio_to_gemm"] >= GOALS["fullbatch_f64_ratio"]))  # fmt: skip
    cli = report.get("cli")
    if cli:
        for dtype, limit in (("float32", GOALS["peak_mb_f32"]), ("float64", GOALS["peak_mb_f64"])):
            one, three = cli[f"peak_mb_{dtype}_1_epochs"], cli[f"peak_mb_{dtype}_3_epochs"]
            goals.append((f"peak memory, whole training set, {dtype}: < {limit} MB",
                          f"{one:.0f} MB (1 epoch), {three:.0f} MB (3 epochs)",
                          max(one, three) < limit))  # fmt: skip
        goals.append(("evaluate, 10,000 images, with start-up: < 2 s",
                      f"{cli['evaluate_seconds']:.2f} s",
                      cli["evaluate_seconds"] < GOALS["evaluate_seconds"]))  # fmt: skip
    return [{"goal": g, "measured": m, "met": ok} for g, m, ok in goals]


def print_report(report):
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    m = report["machine"]
    console.print(
        f"{report['date']}  {m['cpus']} CPUs  {m['processor']}  Python {m['python']}  "
        f"NumPy {m['numpy']} ({m['blas']})  data: {report['dataset']} ({report['samples']} samples)"
    )
    table = Table(title="Training, 784-256-10, seconds per epoch")
    for col in ("dtype", "batch", "samples", "s/epoch", "samples/s", "GFLOP/s", "GEMM GFLOP/s",
                "of GEMM", "PyTorch s/epoch", "PyTorch / mnistnet"):  # fmt: skip
        table.add_column(col, justify="right")
    for r in report["rows"]:
        table.add_row(
            r["dtype"], str(r["batch"]), f"{r['samples']:,}", f"{r['seconds_per_epoch']:.3f}",
            f"{r['samples_per_second']:,}", f"{r['gflops']:.1f}", f"{r['gemm_gflops']:.1f}",
            f"{r['ratio_to_gemm']:.0%}",
            f"{r['torch_seconds_per_epoch']:.3f}" if "torch_seconds_per_epoch" in r else "-",
            f"{r['torch_over_mnistnet']:.2f}x" if "torch_over_mnistnet" in r else "-",
        )  # fmt: skip
    console.print(table)
    goals = Table(title="Goals")
    for col in ("goal", "measured", "met"):
        goals.add_column(col)
    for g in report["goals"]:
        goals.add_row(g["goal"], g["measured"], "yes" if g["met"] else "NO")
    console.print(goals)


if __name__ == "__main__":
    main()
