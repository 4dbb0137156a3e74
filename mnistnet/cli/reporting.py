"""Training progress for people: a live bar on a terminal, plain lines elsewhere.

The training loop hands each :class:`~mnistnet.training.EpochRecord` to
:meth:`TrainingReporter.on_epoch`; everything goes to stderr.
"""

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mnistnet.console import is_interactive, literal

# (heading, the record's field, width, format); the val_* columns only with a validation split
_COLUMNS = (
    ("loss", "loss", 8, "loss"),
    ("train acc", "train_acc", 9, "pct"),
    ("val loss", "val_loss", 8, "loss"),
    ("val acc", "val_acc", 8, "pct"),
    ("test loss", "test_loss", 9, "loss"),
    ("test acc", "test_acc", 8, "pct"),
)


def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def _cell(value, kind):
    if value is None:
        return "-"
    return _pct(value) if kind == "pct" else f"{value:.5f}"


def _columns(validation):
    return [c for c in _COLUMNS if validation or not c[1].startswith("val_")]


def header(validation=False):
    """The progress table's heading row."""
    cells = [f"{'epoch':>7}"] + [f"{h:>{w}}" for h, _, w, _ in _columns(validation)]
    return "  ".join(cells + [f"{'seconds':>7}"])


def format_row(record, epochs, validation=False):
    """One row of the progress table: ``-`` where a split was not scored."""
    epoch = f"{record.epoch}/{epochs}"
    cells = [f"{epoch:>7}"]
    cells += [f"{_cell(getattr(record, f), k):>{w}}" for _, f, w, k in _columns(validation)]
    return "  ".join(cells + [f"{record.seconds:>7.1f}"])


class TrainingReporter:
    """Prints a row every ``log_every`` epochs (and the last); a live bar on a terminal.

    ``validation``: the run scores a validation split (its columns are shown).
    A resumed run starts its bar at ``first_epoch - 1``.
    """

    def __init__(self, console, epochs, log_every, title, validation=False, first_epoch=1):
        self.console = console
        self.epochs = epochs
        self.log_every = log_every
        self.title = title
        self.validation = validation
        self.first_epoch = first_epoch
        self.rows = []
        self.last = None
        self.progress = None
        self.task = None

    def __enter__(self):
        self.console.print(f"Training {self.title}")
        self.console.print(header(self.validation), style="bold", highlight=False)
        if is_interactive(self.console):
            self.progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[metrics]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "epochs", total=self.epochs, completed=self.first_epoch - 1, metrics=""
            )
        return self

    def __exit__(self, exc_type, *exc):
        if self.progress is not None:
            self.progress.stop()
        if exc_type is None and self.last is not None and self.last not in self.rows:
            self._print(self.last)  # a run stopped early: its last epoch's row too
        return False

    def _print(self, record):
        self.rows.append(record)
        self.console.print(format_row(record, self.epochs, self.validation), highlight=False)

    def on_epoch(self, record):
        if self.progress is not None:
            val = f"val {_pct(record.val_acc)}  " if self.validation else ""
            metrics = (
                f"loss {record.loss:.4f}  train {_pct(record.train_acc)}  {val}"
                f"test {_pct(record.test_acc)}"
            )
            self.progress.update(self.task, completed=record.epoch, metrics=metrics)
        self.last = record
        first = record.epoch == self.first_epoch
        if record.epoch % self.log_every == 0 or record.epoch == self.epochs or first:
            self._print(record)


def stopping_lines(result):
    """Why the run stopped, which epoch's weights were saved, and the time to the target."""
    from mnistnet.stopping import TARGET_METRICS

    config, history = result.config, result.history
    lines = []
    if history.stop_reason == "early_stopping":
        lines.append(
            f"Stopped early after epoch {history.last.epoch}: the validation loss had not "
            f"improved for {config.early_stopping} epochs."
        )
    if config.early_stopping and history.weights_epoch:
        lines.append(
            f"Saved the weights of epoch {history.weights_epoch}, the lowest validation loss "
            f"({history.record(history.weights_epoch).val_loss:.5f})."
        )
    if config.target_accuracy is not None:
        what = TARGET_METRICS[result.target_metric]
        if result.target_metric == "test_acc":
            what += " (no validation split)"
        target = f"Target {_pct(config.target_accuracy)} {what}"
        if history.target_epoch is None:
            lines.append(f"{target}: not reached in {len(history.records)} epochs.")
        else:
            seconds = history.record(history.target_epoch).seconds
            lines.append(
                f"{target}: reached at epoch {history.target_epoch}, after {seconds:.1f} s."
            )
    return lines


def summary_table(result, paths):
    """The final summary: metrics on every split and the files written."""
    table = Table(title="Result", show_header=True, header_style="bold")
    table.add_column("split")
    table.add_column("images", justify="right")
    table.add_column("loss", justify="right")
    table.add_column("accuracy", justify="right")
    for split in ("train", "validation", "test"):
        if split not in result.metrics:
            continue
        m = result.metrics[split]
        table.add_row(split, str(m["n"]), f"{m['loss']:.5f}", _pct(m["accuracy"]))
    files = Table(show_header=False, box=None)
    for kind, path in paths.items():
        files.add_row(kind, literal(path))  # a path is data, never markup
    return table, files
