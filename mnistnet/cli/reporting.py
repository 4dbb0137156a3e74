"""Training progress for people: a live bar on a terminal, plain lines elsewhere.

The training loop hands each :class:`~mnistnet.training.EpochRecord` to
:meth:`TrainingReporter.on_epoch`; everything goes to stderr.
"""

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mnistnet.console import is_interactive, literal

HEADER = f"{'epoch':>7}  {'loss':>10}  {'train acc':>9}  {'test acc':>9}  {'seconds':>8}"


def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def format_row(record, epochs):
    epoch = f"{record.epoch}/{epochs}"
    return (
        f"{epoch:>7}  {record.loss:>10.5f}  {_pct(record.train_acc):>9}  "
        f"{_pct(record.test_acc):>9}  {record.seconds:>8.1f}"
    )


class TrainingReporter:
    """Prints a row every ``log_every`` epochs (and the last); a live bar on a terminal."""

    def __init__(self, console, epochs, log_every, title):
        self.console = console
        self.epochs = epochs
        self.log_every = log_every
        self.title = title
        self.rows = []
        self.progress = None
        self.task = None

    def __enter__(self):
        self.console.print(f"Training {self.title}")
        self.console.print(HEADER, style="bold", highlight=False)
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
            self.task = self.progress.add_task("epochs", total=self.epochs, metrics="")
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False

    def on_epoch(self, record):
        if self.progress is not None:
            metrics = (
                f"loss {record.loss:.4f}  train {_pct(record.train_acc)}  "
                f"test {_pct(record.test_acc)}"
            )
            self.progress.update(self.task, completed=record.epoch, metrics=metrics)
        if record.epoch % self.log_every == 0 or record.epoch == self.epochs or record.epoch == 1:
            self.rows.append(record)
            self.console.print(format_row(record, self.epochs), highlight=False)


def summary_table(result, paths):
    """The final summary: metrics on both splits and the files written."""
    table = Table(title="Result", show_header=True, header_style="bold")
    table.add_column("split")
    table.add_column("images", justify="right")
    table.add_column("loss", justify="right")
    table.add_column("accuracy", justify="right")
    for split in ("train", "test"):
        m = result.metrics[split]
        table.add_row(split, str(m["n"]), f"{m['loss']:.5f}", _pct(m["accuracy"]))
    files = Table(show_header=False, box=None)
    for kind, path in paths.items():
        files.add_row(kind, literal(path))  # a path is data, never markup
    return table, files
