"""Tables for people: an evaluation report (``evaluate``) and a model file (``info``).

Every string that comes from a file or a path (class names, paths, config
values, creation times) goes through :func:`mnistnet.console.literal`: it is
shown as is, never read as rich markup or obeyed as a terminal command.
"""

from rich.table import Table
from rich.text import Text

from mnistnet.console import escape_control, literal
from mnistnet.tasks import display_names, task_title

# --- evaluate ---------------------------------------------------------------------------


def print_report(out, report):
    """Print an :class:`~mnistnet.evaluation.EvaluationReport` on the rich console ``out``."""
    m, ds = report.model, report.dataset
    layers = "-".join(str(v) for v in m["layers"])
    # Text, not markup: a class name ending in a backslash must not escape a closing tag.
    header = Text(escape_control(task_title(report.task, report.class_names)), style="bold")
    details = f" ({layers}, pixels {m['pixels']}, {m['dtype']}) on {ds['name']} {ds['split']}"
    header.append(escape_control(details))
    out.print(header)
    out.print(_result_table(report))
    if report.binary is not None:
        out.print(_binary_confusion_table(report))
    else:
        out.print(_confusion_table(report))
    out.print(_per_class_table(report))
    _print_top_confusions(out, report)
    if report.min_accuracy is not None:
        verdict = "[green]passed[/]" if report.passed else "[red]failed[/]"
        out.print(f"--min-accuracy {report.min_accuracy:g}: {verdict}")
    for path in report.plots or []:
        out.print(f"  wrote {literal(path)}")


def _result_table(report):
    table = Table(title="Result", title_justify="left")
    table.add_column("images", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("mean loss", justify="right")
    table.add_row(f"{report.n:,}", f"{100 * report.accuracy:.2f}%", f"{report.loss:.5f}")
    return table


def _binary_confusion_table(report):
    neg, pos = (literal(name) for name in report.class_names)
    b = report.binary
    table = Table(title=f"Confusion matrix (positive = {pos})", title_justify="left")
    table.add_column("true \\ predicted")
    table.add_column(f"pred {neg}", justify="right")
    table.add_column(f"pred {pos}", justify="right")
    table.add_row(f"true {neg}", f"TN {b['tn']:,}", f"FP {b['fp']:,}")
    table.add_row(f"true {pos}", f"FN {b['fn']:,}", f"TP {b['tp']:,}")
    return table


def _confusion_table(report):
    names = [literal(_short(name)) for name in report.class_names]
    table = Table(title="Confusion matrix (rows: true, columns: predicted)", title_justify="left")
    table.add_column("")
    for name in names:
        table.add_column(name, justify="right")
    for i, row in enumerate(report.confusion_matrix):
        cells = (
            f"[bold]{v}[/]" if i == j else (str(v) if v else "[dim]·[/]") for j, v in enumerate(row)
        )
        table.add_row(names[i], *cells)
    return table


def _per_class_table(report):
    table = Table(title="Per class", title_justify="left")
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for row in report.per_class:
        table.add_row(literal(row["name"]), *_scores(row), f"{row['support']:,}")
    table.add_row("macro avg", *_scores(report.macro_avg), f"{report.n:,}", style="dim")
    return table


def _scores(row):
    return (f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}")


def _print_top_confusions(out, report):
    if not report.top_confusions:
        out.print("No confusions: every image was classified correctly.")
        return
    name_of = dict(zip(report.classes, report.class_names, strict=True))
    out.print("Most frequent confusions (true -> predicted):")
    for c in report.top_confusions:
        true, predicted = literal(name_of[c["true"]]), literal(name_of[c["predicted"]])
        out.print(f"  {true} -> {predicted}: {c['count']:,}")


def _short(name, width=7):
    return name if len(name) <= width else name[: width - 1] + "…"


# --- info -------------------------------------------------------------------------------


def print_info(out, doc):
    """Print the ``info`` document of :func:`mnistnet.evaluation.model_info` on ``out``."""
    meta = doc["metadata"]
    out.print(_key_value_table("Model", _file_rows(doc)))
    out.print(_key_value_table("Architecture", _architecture_rows(doc)))
    config = meta.get("config")
    if isinstance(config, dict) and config:
        out.print(_key_value_table("Training config", list(config.items())))
    out.print(_key_value_table("Training", _training_rows(meta)))
    results = meta.get("metrics")
    if isinstance(results, dict) and results:
        out.print(_metrics_table(results))
    dataset = meta.get("dataset")
    if isinstance(dataset, dict):
        out.print(_data_files_table(dataset))


def _key_value_table(title, rows):
    """A two-column table of ``(key, value)`` rows; rows whose value is None are left out."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        if value is not None:
            table.add_row(literal(key), _fmt(value))
    return table


def _file_rows(doc):
    meta = doc["metadata"]
    return [
        ("file", doc["path"]),
        ("sha256", doc["sha256"]),
        ("size", f"{doc['size']:,} bytes"),
        ("format", f"{meta['format']} version {meta['format_version']}"),
        ("mnistnet", meta.get("mnistnet_version")),
        ("created", meta.get("created")),
    ]


def _architecture_rows(doc):
    meta = doc["metadata"]
    classes = ", ".join(
        str(c) if str(c) == name else f"{c} ({name})"
        for c, name in zip(meta["classes"], display_names(meta), strict=True)
    )
    return [
        ("task", meta["task"]),
        ("classes", classes),
        ("layers", "-".join(str(v) for v in meta["layers"])),
        ("parameters", f"{doc['n_params']:,}"),
        ("activations", meta.get("activations")),
        ("loss", meta.get("loss")),
        ("pixels", meta["pixels"]),
        ("dtype", meta["dtype"]),
    ]


def _training_rows(meta):
    rows = [
        ("epochs trained", meta.get("epochs_trained")),
        ("interrupted", meta.get("interrupted")),
    ]
    seconds = meta.get("seconds")
    if _is_number(seconds):
        rows.append(("seconds", f"{seconds:.1f}"))
    elif seconds is not None:
        rows.append(("seconds", seconds))
    return rows


def _metrics_table(results):
    table = Table(title="Final metrics", title_justify="left")
    for col in ("split", "images", "loss", "accuracy"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split, m in results.items():
        if isinstance(m, dict):
            loss, accuracy = m.get("loss"), m.get("accuracy")
            table.add_row(
                literal(split),
                _fmt(m.get("n")),
                f"{loss:.5f}" if isinstance(loss, float) else _fmt(loss),
                f"{100 * accuracy:.2f}%" if isinstance(accuracy, float) else _fmt(accuracy),
            )
    return table


def _data_files_table(dataset):
    table = Table(title=f"Data: {literal(dataset.get('name', '?'))}", title_justify="left")
    for col in ("role", "file", "sha256", "verified"):
        table.add_column(col)
    seen = set()
    for f in dataset.get("files") or []:
        # mnist-sample's two splits come from the same two files: list each once.
        key = (_fmt(f.get("role")), _fmt(f.get("sha256"))) if isinstance(f, dict) else None
        if key is None or key in seen:
            continue
        seen.add(key)
        sha = f.get("sha256")
        table.add_row(
            key[0],
            _fmt(f.get("name")),
            literal(sha[:16]) + "…" if isinstance(sha, str) else "-",
            _fmt(f.get("verified")),
        )
    return table


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value):
    """A metadata value as table text: "-" for None, yes/no, 1,234, lists joined."""
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
    return literal(value)
