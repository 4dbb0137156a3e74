"""``mnistnet evaluate`` and ``mnistnet info``: score a saved model, or describe it.

\b
  mnistnet info runs/binary-5-8/model.npz
  mnistnet evaluate runs/binary-5-8/model.npz
  mnistnet evaluate runs/multiclass/model.npz --plots-dir report/
  mnistnet evaluate model.npz --min-accuracy 0.95 --json > report.json   # a CI gate

Everything needed to score a model comes from its metadata (task, digits,
pixel scaling, dtype, dataset); ``--dataset``/``--data-dir`` only say where
the images are. Results go to stdout (tables, or one JSON document with
``--json``); chatter goes to stderr. NumPy, the data layer and matplotlib
are imported inside the commands, so ``mnistnet --help`` stays fast, and
``info`` never loads matplotlib or any data.

A missing or unreadable model file is a failure (exit 1, like any bad
model file), not a usage error: the path is a string checked by
``load_model``, which names the problem in one line.
"""

import hashlib
import os
import sys

import click

from mnistnet.cli._common import dataset_options, handle_errors, json_option, quiet_option
from mnistnet.errors import EXIT_BELOW_THRESHOLD
from mnistnet.fileio import check_writable_dir

#: Version of the ``evaluate --json`` document; bumped when a field changes meaning.
EVALUATION_SCHEMA = "mnistnet-evaluation/1"
INFO_SCHEMA = "mnistnet-info/1"
TOP_CONFUSIONS = 5

MODEL_ARG = click.argument("model", metavar="MODEL.npz", type=click.Path(path_type=str))


@click.command()
@MODEL_ARG
@dataset_options(
    default=None,
    default_help="Dataset to score on. Default: the one recorded in the model.",
    data_dir_help="Directory holding the IDX files. Default: the folder the model was "
    "trained from, if its training named one, else $MNISTNET_DATA_DIR/<dataset>, else "
    "the user cache.",
)
@click.option(
    "--split",
    type=click.Choice(["test", "train"]),
    default="test",
    show_default=True,
    help="Which split to score.",
)
@click.option(
    "--min-accuracy",
    type=click.FloatRange(0, 1),
    default=None,
    metavar="X",
    help="Exit with status 3 (after printing the results) when accuracy < X (0..1).",
)
@click.option(
    "--plots-dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    metavar="DIR",
    help="Also write the pictures of this evaluation (PNG) into DIR.",
)
@click.option("--info", "show_info", is_flag=True, help="Only show the metadata (as `info`).")
@json_option
@quiet_option
@handle_errors
def evaluate(
    model, dataset, data_dir, mirrors, split, min_accuracy, plots_dir, show_info, as_json, quiet
):
    """Score a saved model on the images of its task.

    Binary models are scored on the images of their two digits, ten-class
    models on the whole split, prepared exactly as in training (pixel
    scaling and dtype come from the model file).

    \b
    Examples:
      mnistnet evaluate runs/binary-5-8/model.npz --dataset mnist-sample
      mnistnet evaluate runs/multiclass/model.npz --plots-dir report/
      mnistnet evaluate model.npz --min-accuracy 0.95 --json > report.json

    Exit codes: 0 ok, 1 bad model file or data, 2 usage error,
    3 accuracy below --min-accuracy.
    """
    if show_info:
        _info(model, as_json)
        return

    from mnistnet.checkpoint import load_model
    from mnistnet.console import make_console, print_json, stdout_console

    console = make_console(quiet or as_json)
    params, meta = load_model(model)
    if plots_dir is not None:
        from mnistnet.plots import PICTURE_FILES

        check_writable_dir(plots_dir, "--plots-dir", PICTURE_FILES)
    recorded = (
        meta.get("dataset", {}).get("name") if isinstance(meta.get("dataset"), dict) else None
    )
    if dataset is None:
        if not recorded:
            raise click.UsageError("the model does not record its dataset; pass --dataset")
        dataset = recorded
        if data_dir is None:  # the folder the model was trained from, if it named one
            data_dir = (meta.get("config") or {}).get("data_dir")
    elif recorded and dataset != recorded:
        console.print(
            f"Note: the model was trained on {recorded}; scoring it on {dataset} as asked."
        )
    if dataset == "idx" and data_dir is None:
        raise click.UsageError("--dataset idx needs --data-dir (a folder with the four IDX files)")

    from mnistnet.cli.progress import download_progress
    from mnistnet.pipeline import load_task_data

    with download_progress(console) as progress:
        data = load_task_data(
            dataset,
            split,
            meta["classes"],
            pixels=meta["pixels"],
            dtype=meta["dtype"],
            data_dir=data_dir,
            mirrors=mirrors,
            progress=progress,
        )
    console.print(f"Scoring {model} on {len(data):,} {split} images of {dataset}")
    report = evaluation_report(model, params, meta, data, min_accuracy)

    if plots_dir is not None:
        report["plots"] = _write_plots(params, meta, data, plots_dir, console)

    if as_json:
        print_json(report)
    elif not quiet:
        _print_report(stdout_console(), report)
    if min_accuracy is not None and not report["passed"]:
        if not (as_json or quiet):
            click.echo(
                f"Accuracy {report['accuracy']:.4f} is below --min-accuracy {min_accuracy:g}.",
                err=True,
            )
        sys.exit(EXIT_BELOW_THRESHOLD)


@click.command()
@MODEL_ARG
@json_option
@handle_errors
def info(model, as_json):
    """Show a saved model's metadata, without touching any data.

    Architecture, preprocessing, the training config, the final metrics
    and the hashes of the data files it was trained on.

    \b
    Example:
      mnistnet info runs/binary-5-8/model.npz --json
    """
    _info(model, as_json)


# --- building the results (no printing) -------------------------------------------------


def evaluation_report(model_path, params, meta, data, min_accuracy=None):
    """The ``evaluate --json`` document (see the README for each field)."""
    from mnistnet import metrics
    from mnistnet.plots import display_names
    from mnistnet.training import score

    task = meta["task"]
    loss, acc, P = score(params, data.X, data.y, task)
    from mnistnet.model import predict

    y_pred = predict(P)
    names = display_names(meta)
    classes = list(meta["classes"])
    cm = metrics.confusion_matrix(data.y, y_pred, len(classes))
    report = {
        "schema": EVALUATION_SCHEMA,
        "model": _model_summary(model_path, meta),
        "task": task,
        "classes": classes,
        "class_names": names,
        "dataset": {
            "name": data.dataset,
            "split": data.split,
            "files": [f.to_dict() for f in data.files],
        },
        "n": len(data),
        "accuracy": acc,
        "loss": loss,
        "confusion_matrix": cm.tolist(),
        "binary": None,
        "per_class": metrics.per_class(cm, classes, names),
        "macro_avg": metrics.macro_average(cm),
        "top_confusions": [
            {"true": classes[i], "predicted": classes[j], "count": n}
            for i, j, n in metrics.top_confusions(cm, TOP_CONFUSIONS)
        ],
        "min_accuracy": min_accuracy,
        "passed": None if min_accuracy is None else acc >= min_accuracy,
    }
    if task == "binary":
        report["binary"] = {
            "negative": classes[0],
            "positive": classes[1],
            **metrics.binary_counts(cm),
        }
    return report


def _model_summary(path, meta):
    return {
        "path": os.path.abspath(path),
        "sha256": _sha256(path),
        "format_version": meta["format_version"],
        "mnistnet_version": meta.get("mnistnet_version"),
        "layers": meta["layers"],
        "pixels": meta["pixels"],
        "dtype": meta["dtype"],
    }


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_plots(params, meta, data, plots_dir, console):
    """Every picture of this evaluation, drawn from the split it scored."""
    from mnistnet import plots

    paths = plots.plot_report(params, meta, data, plots_dir)
    console.print(f"Wrote {len(paths)} pictures into {plots_dir}")
    return paths


# --- rendering for people ---------------------------------------------------------------


def _print_report(out, report):
    from rich.table import Table

    names = report["class_names"]
    m = report["model"]
    layers = "-".join(str(v) for v in m["layers"])
    ds = report["dataset"]
    out.print(
        f"[bold]{_task_title(report)}[/] ({layers}, pixels {m['pixels']}, {m['dtype']}) "
        f"on {ds['name']} {ds['split']}"
    )

    summary = Table(title="Result", title_justify="left")
    summary.add_column("images", justify="right")
    summary.add_column("accuracy", justify="right")
    summary.add_column("mean loss", justify="right")
    summary.add_row(f"{report['n']:,}", f"{100 * report['accuracy']:.2f}%", f"{report['loss']:.5f}")
    out.print(summary)

    cm = report["confusion_matrix"]
    b = report["binary"]
    if b is not None:
        neg, pos = names
        table = Table(title=f"Confusion matrix (positive = {pos})", title_justify="left")
        table.add_column("true \\ predicted")
        table.add_column(f"pred {neg}", justify="right")
        table.add_column(f"pred {pos}", justify="right")
        table.add_row(f"true {neg}", f"TN {b['tn']:,}", f"FP {b['fp']:,}")
        table.add_row(f"true {pos}", f"FN {b['fn']:,}", f"TP {b['tp']:,}")
    else:
        table = Table(
            title="Confusion matrix (rows: true, columns: predicted)", title_justify="left"
        )
        table.add_column("")
        for name in names:
            table.add_column(_short(name), justify="right")
        for i, row in enumerate(cm):
            table.add_row(
                _short(names[i]),
                *(
                    f"[bold]{v}[/]" if i == j else (str(v) if v else "[dim]·[/]")
                    for j, v in enumerate(row)
                ),
            )
    out.print(table)

    pc = Table(title="Per class", title_justify="left")
    for col in ("class", "precision", "recall", "F1", "support"):
        pc.add_column(col, justify="left" if col == "class" else "right")
    for row in report["per_class"]:
        pc.add_row(
            row["name"],
            f"{row['precision']:.4f}",
            f"{row['recall']:.4f}",
            f"{row['f1']:.4f}",
            f"{row['support']:,}",
        )
    avg = report["macro_avg"]
    pc.add_row(
        "macro avg",
        f"{avg['precision']:.4f}",
        f"{avg['recall']:.4f}",
        f"{avg['f1']:.4f}",
        f"{report['n']:,}",
        style="dim",
    )
    out.print(pc)

    top = report["top_confusions"]
    if top:
        name_of = dict(zip(report["classes"], names, strict=True))
        out.print("Most frequent confusions (true -> predicted):")
        for c in top:
            out.print(f"  {name_of[c['true']]} -> {name_of[c['predicted']]}: {c['count']:,}")
    else:
        out.print("No confusions: every image was classified correctly.")
    if report["min_accuracy"] is not None:
        verdict = "[green]passed[/]" if report["passed"] else "[red]failed[/]"
        out.print(f"--min-accuracy {report['min_accuracy']:g}: {verdict}")
    for path in report.get("plots", []):
        out.print(f"  wrote {path}")


def _task_title(report):
    names = report["class_names"]
    if report["task"] == "binary":
        return f"binary {names[0]} vs {names[1]}"
    return f"{report['task']} ({len(names)} classes)"


def _short(name, width=7):
    return name if len(name) <= width else name[: width - 1] + "…"


# --- info -------------------------------------------------------------------------------


def _info(model, as_json):
    from mnistnet.checkpoint import load_model
    from mnistnet.console import print_json, stdout_console

    params, meta = load_model(model)
    doc = {
        "schema": INFO_SCHEMA,
        "path": os.path.abspath(model),
        "sha256": _sha256(model),
        "size": os.path.getsize(model),
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in params.items()},
        "n_params": int(sum(v.size for v in params.values())),
        "metadata": meta,
    }
    if as_json:
        print_json(doc)
    else:
        _print_info(stdout_console(), doc)


def _print_info(out, doc):
    from rich.table import Table

    meta = doc["metadata"]

    def kv(title, rows):
        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in rows:
            if value is not None:
                table.add_row(key, _fmt(value))
        out.print(table)

    names = meta.get("class_names") or [str(c) for c in meta["classes"]]
    kv(
        "Model",
        [
            ("file", doc["path"]),
            ("sha256", doc["sha256"]),
            ("size", f"{doc['size']:,} bytes"),
            ("format", f"{meta['format']} version {meta['format_version']}"),
            ("mnistnet", meta.get("mnistnet_version")),
            ("created", meta.get("created")),
        ],
    )
    kv(
        "Architecture",
        [
            ("task", meta["task"]),
            (
                "classes",
                ", ".join(
                    f"{c} ({n})" if str(c) != n else str(c)
                    for c, n in zip(meta["classes"], names, strict=False)
                ),
            ),
            ("layers", "-".join(str(v) for v in meta["layers"])),
            ("parameters", f"{doc['n_params']:,}"),
            ("activations", meta.get("activations")),
            ("loss", meta.get("loss")),
            ("pixels", meta["pixels"]),
            ("dtype", meta["dtype"]),
        ],
    )
    config = meta.get("config")
    if isinstance(config, dict) and config:
        kv("Training config", list(config.items()))
    training = [
        ("epochs trained", meta.get("epochs_trained")),
        ("interrupted", meta.get("interrupted")),
    ]
    if meta.get("seconds") is not None:
        training.append(("seconds", f"{meta['seconds']:.1f}"))
    kv("Training", training)

    results = meta.get("metrics")
    if isinstance(results, dict) and results:
        table = Table(title="Final metrics", title_justify="left")
        for col in ("split", "images", "loss", "accuracy"):
            table.add_column(col, justify="left" if col == "split" else "right")
        for split, m in results.items():
            if isinstance(m, dict):
                table.add_row(
                    split,
                    _fmt(m.get("n")),
                    f"{m['loss']:.5f}" if isinstance(m.get("loss"), float) else _fmt(m.get("loss")),
                    f"{100 * m['accuracy']:.2f}%"
                    if isinstance(m.get("accuracy"), float)
                    else _fmt(m.get("accuracy")),
                )
        out.print(table)

    dataset = meta.get("dataset")
    if isinstance(dataset, dict):
        table = Table(title=f"Data: {dataset.get('name', '?')}", title_justify="left")
        for col in ("role", "file", "sha256", "verified"):
            table.add_column(col)
        seen = set()
        for f in dataset.get("files") or []:
            # mnist-sample's two splits come from the same two files: list each once.
            key = (f.get("role"), f.get("sha256")) if isinstance(f, dict) else None
            if key is None or key in seen:
                continue
            seen.add(key)
            sha = f.get("sha256")
            table.add_row(
                _fmt(f.get("role")),
                _fmt(f.get("name")),
                sha[:16] + "…" if isinstance(sha, str) else "-",
                _fmt(f.get("verified")),
            )
        out.print(table)


def _fmt(value):
    from rich.markup import escape

    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return escape(str(value))
