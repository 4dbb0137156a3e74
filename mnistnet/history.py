"""A run's history: one :class:`EpochRecord` per epoch, and its forms on disk.

The same columns everywhere: ``history.csv``, ``--jsonl``, the progress
table, the pictures and the resume state in ``model.npz``. A value that
does not apply (``val_loss`` without a validation split, ``test_acc``
without a test set) is None in Python, an empty cell in CSV, null in JSON
and NaN in the resume state's array: never zero.
"""

import csv
import io
import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from mnistnet.errors import MnistnetError

COLUMNS = (
    "epoch",
    "loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "seconds",
    "lr",
)
CSV_COLUMNS = COLUMNS[:-1]  # history.csv leaves the learning rate out (--jsonl has it)
OPTIONAL = ("val_loss", "val_acc", "test_loss", "test_acc")  # None when they do not apply
_FORMATS = {"loss": ".8g", "val_loss": ".8g", "test_loss": ".8g", "seconds": ".4f", "lr": ".8g"}


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch measured.

    ``loss`` (mean per sample) and ``train_acc`` come from the epoch's own
    forward passes (for ``gd``, the weights before the epoch's update);
    ``val_*`` and ``test_*`` are measured after the epoch's updates (None
    without that split). ``seconds`` is the time since training started
    (a resumed run goes on counting from the saved run's last epoch);
    ``lr`` is the epoch's learning rate.
    """

    epoch: int
    loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    test_loss: float | None
    test_acc: float | None
    seconds: float
    lr: float

    def to_dict(self):
        return asdict(self)


assert tuple(f.name for f in fields(EpochRecord)) == COLUMNS


@dataclass
class History:
    """What :func:`mnistnet.training.fit` hands back.

    ``stop_reason``: ``"epochs"`` (all of them ran), ``"early_stopping"``,
    ``"target_accuracy"`` or ``"interrupted"``. ``weights_epoch``: the epoch
    whose weights the parameters hold at the end (the best one with early
    stopping, else the last). ``target_epoch``: the first epoch that reached
    the target accuracy (None: not reached, or no target). ``state``: the
    :class:`~mnistnet.trainstate.TrainingState` after the last finished epoch,
    what a resumed run starts from.
    """

    records: list = field(default_factory=list)
    interrupted: bool = False
    stop_reason: str | None = None
    weights_epoch: int | None = None
    target_epoch: int | None = None
    state: object = None

    @property
    def last(self):
        return self.records[-1] if self.records else None

    def column(self, name):
        return [getattr(r, name) for r in self.records]

    def record(self, epoch):
        """The record of 1-based ``epoch``."""
        return self.records[epoch - 1]


def csv_text(records, run_id=None):
    """history.csv: a header of :data:`CSV_COLUMNS`, one row per epoch, empty cells for None.

    With ``run_id``, a last column ``run_id`` repeats it on every row.
    """
    out = io.StringIO()
    tail = [] if run_id is None else ["run_id"]
    out.write(",".join([*CSV_COLUMNS, *tail]) + "\n")
    for r in records:
        cells = [_cell(name, getattr(r, name)) for name in CSV_COLUMNS]
        out.write(",".join(cells + ([] if run_id is None else [str(run_id)])) + "\n")
    return out.getvalue()


def _cell(name, value):
    if value is None:
        return ""
    if name == "epoch":
        return str(value)
    return format(value, _FORMATS.get(name, ".6f"))


def read_csv(path):
    """The columns of a history.csv, as ``{name: list}`` (None for empty cells).

    The numeric columns (:data:`CSV_COLUMNS`) become numbers; any other
    (``run_id``) is kept as text. An older file (without ``val_*`` or
    ``test_loss``) simply lacks them.

    Raises
    ------
    MnistnetError naming the file when it cannot be read or a cell is not a number.
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise MnistnetError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MnistnetError(f"{path}: not a history.csv ({exc})") from None
    if not rows or "epoch" not in rows[0]:
        raise MnistnetError(f"{path}: not a history.csv (no epoch rows)")
    columns = {name: [] for name in rows[0] if name is not None}
    for line, row in enumerate(rows, start=2):
        for name in columns:
            value = row.get(name)
            columns[name].append(_number(value, path, line, name) if name in CSV_COLUMNS else value)
    return columns


def _number(text, path, line, name):
    if text is None or text.strip() == "":
        return None
    try:
        value = int(text) if name == "epoch" else float(text)
    except ValueError:
        raise MnistnetError(f"{path}: line {line}: {name} is not a number ({text!r})") from None
    return value


def to_array(records):
    """The records as a float64 array of shape (epochs, len(COLUMNS)), NaN for None."""
    out = np.full((len(records), len(COLUMNS)), np.nan)
    for i, r in enumerate(records):
        for j, name in enumerate(COLUMNS):
            value = getattr(r, name)
            if value is not None:
                out[i, j] = value
    return out


def from_array(array):
    """The records back from :func:`to_array`'s array (exactly: float64 keeps every bit).

    Raises ValueError when the array is not such a table: the wrong shape,
    epochs that do not count 1, 2, 3, ..., NaN where a value is required.
    """
    if array.ndim != 2 or array.shape[1] != len(COLUMNS) or array.dtype != np.float64:
        raise ValueError(f"is not a float64 table of {len(COLUMNS)} columns")
    records = []
    for i, row in enumerate(array.tolist()):
        values = dict(zip(COLUMNS, row, strict=True))
        if values["epoch"] != i + 1:
            raise ValueError(f"row {i + 1} is epoch {values['epoch']!r}, not {i + 1}")
        for name, value in values.items():
            if math.isinf(value) or (math.isnan(value) and name not in OPTIONAL):
                raise ValueError(f"row {i + 1} has no finite {name}")
        values = {k: (None if math.isnan(v) else v) for k, v in values.items()}
        values["epoch"] = i + 1
        records.append(EpochRecord(**values))
    return records
