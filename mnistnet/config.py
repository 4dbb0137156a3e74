"""Training settings: defaults, then a TOML file, then command-line flags.

One vocabulary everywhere (Python, TOML, CLI, JSON): ``lr``, ``epochs``,
``batch_size``, ``hidden``, ``seed``, ``samples_per_class``, ... A flag
``--batch-size`` is the key ``batch_size``.

The defaults are the course notebook's recipe, so a bare
``mnistnet train-binary --digits 5 8`` is its experiment.
"""

import dataclasses
import math
import os
import sys
from dataclasses import dataclass

from mnistnet.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the backport of the same module
    import tomli as tomllib

TASKS = ("binary", "multiclass")
DATASETS = ("mnist", "fashion-mnist", "mnist-sample", "idx")
CHOICES = {
    "dataset": DATASETS,
    "optimizer": ("gd", "sgd", "momentum", "adam"),
    "lr_schedule": ("constant", "cosine", "step"),
    "reduction": ("sum", "mean"),
    "pixels": ("raw", "unit"),
    "dtype": ("float64", "float32"),
    "init": ("notebook", "xavier"),
}
MINI_BATCH_DEFAULT = 128
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (see the README for each)."""

    task: str
    digits: tuple | None = None  # binary: (A, B), A -> label 0, B -> label 1
    dataset: str = "mnist"
    data_dir: str | None = None
    samples_per_class: int | None = 1000  # None: every training image
    hidden: int = 256
    epochs: int = 100
    lr: float = 1e-5
    optimizer: str = "gd"
    batch_size: int | None = None  # None: the full batch
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    reduction: str = "sum"
    pixels: str = "raw"
    dtype: str = "float64"
    init: str = "notebook"
    seed: int = 3
    augment_shift: int = 0
    log_every: int | None = None  # None: about ten rows per run
    out: str | None = None  # None: runs/binary-A-B or runs/multiclass

    @property
    def classes(self):
        return tuple(self.digits) if self.task == "binary" else tuple(range(10))

    @property
    def out_dir(self):
        if self.out is not None:
            return self.out
        if self.task == "binary":
            return f"runs/binary-{self.digits[0]}-{self.digits[1]}"
        return "runs/multiclass"

    @property
    def log_interval(self):
        return self.log_every or max(1, math.ceil(self.epochs / 10))

    def to_dict(self):
        """The resolved settings in the TOML vocabulary ("all", "full", the real out folder).

        Every value but ``task`` can be written back into a config file.
        """
        d = dataclasses.asdict(self)
        if d["digits"] is not None:
            d["digits"] = list(d["digits"])
        if d["samples_per_class"] is None:
            d["samples_per_class"] = "all"
        if d["batch_size"] is None:
            d["batch_size"] = "full"
        d["out"] = self.out_dir
        d["log_every"] = self.log_interval
        return d


# The notebook's recipe, per task.
DEFAULTS = {
    "binary": {"epochs": 100, "lr": 1e-5, "seed": 3},
    "multiclass": {"epochs": 200, "lr": 1.7e-5, "seed": 29},
}

FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} - {"task"}


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check(key, value, where):
    """Check one value's type and range; return it normalised. ``where`` names its source."""

    def bad(expected):
        return ConfigError(f"{where}: '{key}' must be {expected}, got {value!r}")

    if key in CHOICES:
        if value not in CHOICES[key]:
            raise bad("one of " + ", ".join(CHOICES[key]))
        return value
    if key == "digits":
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or not all(_is_int(d) and 0 <= d <= 9 for d in value)
        ):
            raise bad("two digits from 0 to 9")
        if value[0] == value[1]:
            raise bad("two different digits")
        return tuple(value)
    if isinstance(value, str) and key in ("samples_per_class", "batch_size"):
        value = value.lower()
    if key == "samples_per_class":
        if value == "all" or value is None:
            return None
        if not _is_int(value) or value < 1:
            raise bad('a whole number >= 1 or "all"')
        return value
    if key == "batch_size":
        if value == "full" or value is None:
            return None
        if not _is_int(value) or value < 1:
            raise bad('a whole number >= 1 or "full"')
        return value
    if key in ("hidden", "epochs"):
        if not _is_int(value) or value < 1:
            raise bad("a whole number >= 1")
        return value
    if key in ("seed", "augment_shift"):
        if not _is_int(value) or value < 0:
            raise bad("a whole number >= 0")
        if key == "seed" and value > MAX_SEED:
            raise bad(f"at most {MAX_SEED} (NumPy's RandomState takes 32-bit seeds)")
        if key == "augment_shift" and value > 8:
            raise bad("at most 8 pixels")
        return value
    if key == "log_every":
        if value is None:
            return None
        if not _is_int(value) or value < 1:
            raise bad("a whole number >= 1")
        return value
    if key in ("lr", "momentum", "weight_decay"):
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise bad("a number")
        if key == "lr" and value <= 0:
            raise bad("a number > 0")
        if key == "momentum" and not 0 <= value < 1:
            raise bad("a number in [0, 1)")
        if key == "weight_decay" and value < 0:
            raise bad("a number >= 0")
        return float(value)
    if key in ("data_dir", "out"):
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise bad("a path (a non-empty string)")
        if key == "data_dir":  # recorded in the model: make it usable from anywhere
            return os.path.abspath(os.path.expanduser(value))
        return value
    raise ConfigError(f"{where}: unknown key '{key}'")


def read_config_file(path):
    """Read a TOML config file into a dict of checked values.

    Unknown keys and wrong types are errors that name the file and the key.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")  # tolerate the byte-order mark some editors add
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: not UTF-8 text (save it as UTF-8)") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML ({exc})") from None
    values = {}
    for key, value in raw.items():
        if key not in FIELDS:
            known = ", ".join(sorted(FIELDS))
            raise ConfigError(f"config file {path}: unknown key '{key}' (known keys: {known})")
        values[key] = _check(key, value, f"config file {path}")
    return values


def resolve_config(task, file_values=None, flag_values=None, config_path=None):
    """Defaults for ``task``, updated by a config file's values, then by flags.

    ``flag_values`` holds only the flags given on the command line (None
    values are ignored). Cross-setting rules are checked on the result; an
    error names where the offending value came from (the flag, or the key
    in ``config_path``).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    values = dict(DEFAULTS[task])
    sources = {}
    for key, value in (file_values or {}).items():
        values[key] = value
        sources[key] = f"config file {config_path}: '{key}'" if config_path else f"'{key}'"
    for key, value in (flag_values or {}).items():
        if value is not None:
            flag = "--" + key.replace("_", "-")
            values[key] = _check(key, value, flag)
            sources[key] = flag

    def source(key):
        return sources.get(key, "--" + key.replace("_", "-"))

    if task == "binary":
        if values.get("digits") is None:
            raise ConfigError("--digits: train-binary needs two digits, e.g. --digits 5 8")
    elif values.get("digits") is not None:
        raise ConfigError(
            f"{source('digits')}: digits are for train-binary; train-multiclass uses all ten "
            "classes"
        )
    if values.get("optimizer", "gd") == "gd":
        if values.get("batch_size") is not None:
            raise ConfigError(
                f"{source('batch_size')}: optimizer 'gd' is full-batch; use --optimizer sgd, "
                "momentum or adam for mini-batches"
            )
    elif "batch_size" not in values:
        values["batch_size"] = MINI_BATCH_DEFAULT
    if values.get("dataset") == "idx" and not values.get("data_dir"):
        raise ConfigError(
            f"{source('dataset')}: dataset 'idx' needs --data-dir (a folder holding the four "
            "IDX files)"
        )
    return TrainConfig(task=task, **values)
