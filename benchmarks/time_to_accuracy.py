"""Seconds of training until the validation accuracy first reaches 97%, 98% and 98.5%.

    python benchmarks/time_to_accuracy.py --data-dir DIR/val
    python benchmarks/time_to_accuracy.py --data-dir DIR/val --rounds 3 --threads 2 --json

``DIR/val`` is a validation dataset in IDX files (``--dataset idx``): its
train split is trained on, its test split is the validation set scored
after every epoch. In one run, alternating round after round so that the
machine's drift spreads over all of them, each in a fresh process:

1. ``mnistnet``: the quick recipe (``configs/multiclass-quick.toml``), its
   whole schedule (without its stop at the target, so 98.5% can show);
2. ``pytorch-same``: the same network in PyTorch with the same recipe,
   translated as closely as PyTorch allows (same data arrays, Xavier
   initialisation, Nesterov SGD with the one-cycle rate per step, shifts,
   label smoothing and the moving average of the weights, float32);
3. ``pytorch-usual``: the same network with PyTorch's usual recipe:
   default initialisation, pixels normalised by MNIST's mean and standard
   deviation, SGD with momentum 0.9 at lr 0.1, batches of 64, a cosine
   schedule per epoch.

The PyTorch rows are left out, with a note, when PyTorch is not installed
(it never is a dependency of mnistnet). Seconds count training and the
per-epoch validation, not start-up or loading. Not a test.
"""

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time

THRESHOLDS = (0.97, 0.98, 0.985)
RECIPES = ("mnistnet", "pytorch-same", "pytorch-usual")
QUICK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs",
                     "multiclass-quick.toml")  # fmt: skip
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # PyTorch's MNIST example's Normalize


def _quick_config(path, data_dir, target_free=True, threads=None):
    from mnistnet.config import SETTINGS, read_config_file, resolve_config

    values = read_config_file(path)
    values.update(dataset="idx", data_dir=data_dir, out=os.devnull)
    if threads is not None:  # mnistnet's own threads (BLAS stays on one)
        values["threads"] = threads
    if target_free and "target_accuracy" in SETTINGS:  # run the whole schedule
        values.pop("target_accuracy", None)
    return resolve_config("multiclass", values)


def run_mnistnet(config_path, data_dir, threads=None):
    """The quick recipe on ``threads`` threads (``--threads``): [(seconds, accuracy)] per epoch."""
    from mnistnet import experiment

    config = _quick_config(config_path, data_dir, threads=threads)
    train, _, test = experiment.load_data(config)
    curve = []
    experiment.run_training(config, train, test, lambda r: curve.append((r.seconds, r.test_acc)))
    return curve


def _torch_data(config_path, data_dir):
    import torch

    from mnistnet import experiment

    config = _quick_config(config_path, data_dir)
    train, _, test = experiment.load_data(config)
    return config, train, test, torch.from_numpy(test.X), torch.from_numpy(test.y)


def _torch_net(init):
    import torch
    from torch import nn

    net = nn.Sequential(nn.Linear(784, 256), nn.Sigmoid(), nn.Linear(256, 10))
    if init == "xavier":  # N(0, 1/fan_in), biases 0: mnistnet's xavier
        for layer in (net[0], net[2]):
            nn.init.normal_(layer.weight, 0.0, 1 / math.sqrt(layer.in_features))
            nn.init.zeros_(layer.bias)
    return net.to(torch.float32)


def _accuracy(net, X, y):
    import torch

    with torch.no_grad():
        return float((net(X).argmax(1) == y).float().mean())


def run_pytorch_same(config_path, data_dir):
    """The quick recipe in PyTorch: [(seconds, accuracy)] per epoch."""
    import numpy as np
    import torch

    from mnistnet.data import shift_images
    from mnistnet.optimizers import scheduled_lr

    c, train, _, X_val, y_val = _torch_data(config_path, data_dir)
    torch.manual_seed(c.seed)
    net = _torch_net("xavier")
    average = torch.optim.swa_utils.AveragedModel(
        net, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(c.ema)
    ) if c.ema else None  # fmt: skip
    opt = torch.optim.SGD(net.parameters(), lr=c.lr, momentum=c.momentum, nesterov=True)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=c.label_smoothing)
    rng = np.random.default_rng(c.seed)
    X, y = train.X, torch.from_numpy(train.y)
    steps = math.ceil(len(X) / c.batch_size)
    curve, start = [], time.perf_counter()
    for epoch in range(c.epochs):
        order = rng.permutation(len(X))
        for i in range(steps):
            idx = order[i * c.batch_size : (i + 1) * c.batch_size]
            Xb = X[idx]
            if c.augment_shift:
                Xb = shift_images(Xb, c.augment_shift, rng)
            for group in opt.param_groups:
                t = epoch + (i + 0.5) / steps
                group["lr"] = scheduled_lr(c.lr, t, c.epochs, c.lr_schedule, c.warmup_epochs)
            opt.zero_grad(set_to_none=True)
            loss_fn(net(torch.from_numpy(Xb)), y[idx]).backward()
            opt.step()
            if average is not None:
                average.update_parameters(net)
        scored = average.module if average is not None else net
        curve.append((time.perf_counter() - start, _accuracy(scored, X_val, y_val)))
    return curve


def run_pytorch_usual(config_path, data_dir, epochs=15):
    """PyTorch's usual MNIST recipe on the same network: [(seconds, accuracy)] per epoch."""
    import torch

    _, train, _, X_val, y_val = _torch_data(config_path, data_dir)
    torch.manual_seed(0)
    net = _torch_net("default")
    X = (torch.from_numpy(train.X) - MNIST_MEAN) / MNIST_STD
    X_val = (X_val - MNIST_MEAN) / MNIST_STD
    y = torch.from_numpy(train.y)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    curve, start = [], time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(X)).split(64):
            opt.zero_grad(set_to_none=True)
            loss_fn(net(X[idx]), y[idx]).backward()
            opt.step()
        schedule.step()
        curve.append((time.perf_counter() - start, _accuracy(net, X_val, y_val)))
    return curve


WORKERS = {"mnistnet": run_mnistnet, "pytorch-same": run_pytorch_same,
           "pytorch-usual": run_pytorch_usual}  # fmt: skip


def summarise(recipe, curve):
    """The row of one run: seconds and epochs to each threshold, final accuracy."""
    row = {"recipe": recipe, "epochs": len(curve), "final_accuracy": curve[-1][1]}
    for threshold in THRESHOLDS:
        first = next((e for e, (_, acc) in enumerate(curve, 1) if acc >= threshold), None)
        row[f"seconds_to_{threshold}"] = curve[first - 1][0] if first else None
        row[f"epochs_to_{threshold}"] = first
    row["seconds"] = curve[-1][0]
    return row


def _run_worker(recipe, args):
    """One run in a fresh process with ``--threads`` BLAS threads; its row."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))  # fmt: skip
    command = [sys.executable, __file__, "--worker", recipe, "--data-dir", args.data_dir,
               "--config", args.config, "--threads", str(args.threads)]  # fmt: skip
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return summarise(recipe, json.loads(out.stdout.splitlines()[-1]))


def _cell(seconds, epochs):
    return "-" if seconds is None else f"{seconds:.2f} s (epoch {epochs})"


def print_table(rows, note):
    print("| recipe | to 97% | to 98% | to 98.5% | epochs | final accuracy | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        cells = [_cell(r[f"seconds_to_{t}"], r[f"epochs_to_{t}"]) for t in THRESHOLDS]
        print(f"| {r['recipe']} | {' | '.join(cells)} | {r['epochs']} | "
              f"{r['final_accuracy'] * 100:.2f}% | {r['seconds']:.2f} |")  # fmt: skip
    if note:
        print(f"\n{note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the validation dataset (IDX files)")
    parser.add_argument("--config", default=os.path.normpath(QUICK), help="mnistnet's recipe")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each recipe, alternating")
    parser.add_argument("--threads", type=int, default=1,
                        help="mnistnet's --threads, PyTorch's and BLAS's threads")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--worker", choices=RECIPES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        extra = {"threads": args.threads} if args.worker == "mnistnet" else {}
        if args.worker != "mnistnet":
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(WORKERS[args.worker](args.config, args.data_dir, **extra)))
        return
    recipes, note = list(RECIPES), ""
    if importlib.util.find_spec("torch") is None:
        recipes, note = ["mnistnet"], "PyTorch is not installed: its rows are left out."
    rows = [_run_worker(recipe, args) for _ in range(args.rounds) for recipe in recipes]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    if args.json:
        print(json.dumps({"machine": machine, "threads": args.threads, "rows": rows,
                          "note": note}, indent=2))  # fmt: skip
    else:
        print(f"{machine}; {args.threads} thread(s); {time.strftime('%Y-%m-%d')}\n")
        print_table(rows, note)


if __name__ == "__main__":
    main()
