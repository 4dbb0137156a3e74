"""Training settings: declared once in :data:`SETTINGS`; defaults, then a TOML file, then flags.

One vocabulary everywhere (Python, TOML, CLI, JSON): ``lr``, ``epochs``,
``batch_size``, ``hidden``, ``seed``, ``samples_per_class``, ... A flag
``--batch-size`` is the key ``batch_size``.

Each setting is one row of :data:`SETTINGS`, as scikit-learn declares its
``_parameter_constraints``: its key, the kind of value it takes (allowed
values come from the module that owns them), its default per task and its
help. :class:`TrainConfig`'s fields, the checks of config-file values and
flags, the options of ``train-binary`` / ``train-multiclass`` and the README
test are all derived from that table: adding a setting is adding a row.

The defaults are the course notebook's recipe, so a bare
``mnistnet train-binary --digits 5 8`` is its experiment.
"""

import dataclasses
import math
import os
import re
import reprlib
import sys
from dataclasses import dataclass

from mnistnet.data import PIXEL_SCALINGS
from mnistnet.datasets import DATASETS
from mnistnet.errors import ConfigError
from mnistnet.model import INIT_METHODS, REDUCTIONS
from mnistnet.optimizers import OPTIMIZERS, SCHEDULES
from mnistnet.tasks import TASKS

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the backport of the same module
    import tomli as tomllib

MAX_SEED = 2**32 - 1  # NumPy's RandomState takes 32-bit seeds
MINI_BATCH_DEFAULT = 128  # batch_size of sgd, momentum and adam unless set
DTYPES = ("float64", "float32")


class InvalidValue(ValueError):
    """A value its setting does not take; ``expected`` says what it takes ("a number > 0")."""

    def __init__(self, expected):
        super().__init__(expected)
        self.expected = expected


# Kinds of value. Each checks a value as TOML gives it and returns it normalised
# (``check``), turns a flag's text into such a value (``from_flag``) and
# describes what it takes, for people (``expected``) and for the README (``values``).


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _number(x):
    """``1e-05`` -> ``1e-5``: numbers as people write them in TOML and on the command line."""
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + m[1].replace("+", "") + m[2], f"{x:g}")


@dataclass(frozen=True)
class Choice:
    """One of a few words."""

    choices: tuple
    annotation = str
    nargs = 1

    @property
    def expected(self):
        return "one of " + ", ".join(self.choices)

    @property
    def values(self):
        return ", ".join(f"`{c}`" for c in self.choices)

    @property
    def metavar(self):
        return "[" + "|".join(self.choices) + "]"

    def check(self, value):
        if not isinstance(value, str) or value not in self.choices:
            raise InvalidValue(self.expected)
        return value

    def from_flag(self, text):
        return self.check(text)


@dataclass(frozen=True)
class Int:
    """A whole number from ``low`` to ``high``; or ``word`` ("all", any case), which means None."""

    low: int
    high: int
    word: str | None = None
    nargs = 1

    @property
    def annotation(self):
        return int if self.word is None else int | None

    @property
    def expected(self):
        word = f' or "{self.word}"' if self.word else ""
        return f"a whole number from {self.low} to {self.high}{word}"

    @property
    def values(self):
        return f"{self.low}..{self.high}" + (f" or `{self.word}`" if self.word else "")

    @property
    def metavar(self):
        return f"N|{self.word}" if self.word else "N"

    def check(self, value):
        if self.word and (value is None or (isinstance(value, str) and value.lower() == self.word)):
            return None
        if not _is_int(value) or not self.low <= value <= self.high:
            raise InvalidValue(self.expected)
        return value

    def from_flag(self, text):
        """The number, or the word in lower case (a flag never means "unset")."""
        if self.word and text.strip().lower() == self.word:
            return self.word
        return self.check(_parse(text, (int,), self.expected))


def _parse(text, types, expected):
    """``text`` read as the first of ``types`` that takes it; else :class:`InvalidValue`."""
    for convert in types:
        try:
            return convert(text)
        except ValueError:
            continue
    raise InvalidValue(expected)


@dataclass(frozen=True)
class Float:
    """A finite number within bounds (``None``: unbounded on that side)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    annotation = float
    nargs = 1
    metavar = "X"

    @property
    def values(self):
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{left}{_number(self.low)}, {_number(self.high)}{right}"

    @property
    def expected(self):
        return ("a number in " if self.high is not None else "a number ") + self.values

    def _inside(self, x):
        above_low = self.low is None or (x > self.low if self.low_open else x >= self.low)
        below_high = self.high is None or (x < self.high if self.high_open else x <= self.high)
        return above_low and below_high

    def check(self, value):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InvalidValue(self.expected)
        try:
            x = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise InvalidValue(self.expected) from None
        if not math.isfinite(x) or not self._inside(x):
            raise InvalidValue(self.expected)
        return x

    def from_flag(self, text):
        return self.check(_parse(text, (float,), self.expected))


@dataclass(frozen=True)
class Holdout:
    """A number of images from 0 to ``high``, or a fraction of them in (0, 1)."""

    high: int = 1_000_000
    annotation = int | float
    nargs = 1
    metavar = "N|FRACTION"

    @property
    def expected(self):
        return f"a whole number from 0 to {self.high} or a fraction in (0, 1)"

    @property
    def values(self):
        return f"0..{self.high} or a fraction in (0, 1)"

    def check(self, value):
        if _is_int(value) and 0 <= value <= self.high:
            return value
        if isinstance(value, float) and 0 < value < 1:
            return value
        raise InvalidValue(self.expected)

    def from_flag(self, text):
        return self.check(_parse(text, (int, float), self.expected))


@dataclass(frozen=True)
class Folder:
    """A folder's path (None: the setting's computed default). ``absolute``: made absolute."""

    absolute: bool = False
    annotation = str | None
    nargs = 1
    metavar = "DIR"
    expected = "a path (a non-empty string)"
    values = "a folder"

    def check(self, value):
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise InvalidValue(self.expected)
        if "\0" in value:  # the operating system could not open it
            raise InvalidValue("a path without NUL characters")
        path = os.path.expanduser(value)
        if os.path.isfile(path):
            raise InvalidValue("a folder")
        # data_dir is recorded in the model: absolute, it works from anywhere
        return os.path.abspath(path) if self.absolute else value

    def from_flag(self, text):
        self.check(text)
        return text


@dataclass(frozen=True)
class Digits:
    """Two different digits from 0 to 9 (a flag takes them as two words)."""

    annotation = tuple | None
    nargs = 2
    metavar = "A B"
    expected = "two digits from 0 to 9"
    values = "two different digits 0..9"

    def check(self, value):
        if value is None:
            return None
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or not all(_is_int(d) and 0 <= d <= 9 for d in value)
        ):
            raise InvalidValue(self.expected)
        if value[0] == value[1]:
            raise InvalidValue("two different digits")
        return tuple(value)

    def from_flag(self, text):
        """One of the two words (click hands them over one at a time)."""
        if text.strip() not in tuple("0123456789"):
            raise InvalidValue("a digit; --digits takes two digits from 0 to 9, e.g. --digits 5 8")
        return int(text)


@dataclass(frozen=True)
class Setting:
    """One training setting, declared once.

    ``default`` is one value, or a dict task -> value. ``shown`` is how help
    and README show a default that is worked out later (None: ``default``).
    ``tasks`` are the tasks whose command has its flag; ``required`` means
    it must be given (as a flag or in the config file) for those tasks.
    ``resumable``: the setting may take another value when a run is resumed
    (``--resume``); every other setting must keep the saved run's value.
    """

    name: str
    kind: object
    default: object
    help: str
    shown: object = None
    tasks: tuple = TASKS
    required: bool = False
    resumable: bool = False

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    def default_for(self, task):
        return self.default[task] if isinstance(self.default, dict) else self.default

    def default_text(self, task):
        """The default as help and README show it: ``1e-5``, ``mnist``, ``epochs/10``."""
        if self.required:
            return "required"
        shown = self.shown if self.shown is not None else self.default
        value = shown[task] if isinstance(shown, dict) else shown
        return _number(value) if isinstance(value, float) else str(value)


_LR_HELP = (
    "Learning rate. The default suits the notebook's gd on the summed loss of raw pixels; "
    "with --reduction mean --pixels unit try 0.1 (sgd, momentum) or 0.001 (adam)."
)
_SETTINGS = (
    Setting("digits", Digits(), None, "Two different digits; A -> label 0, B -> label 1.",
            tasks=("binary",), required=True),
    Setting("dataset", Choice(tuple(DATASETS)), "mnist",
            "Dataset to train on; fetched if missing."),
    Setting("data_dir", Folder(absolute=True), None,
            "Folder holding (or to receive) the IDX files.",
            shown="$MNISTNET_DATA_DIR/<dataset>, else the user cache", resumable=True),
    Setting("samples_per_class", Int(1, 1_000_000, word="all"), 1000,
            "First N training images of each class, or all of them."),
    Setting("hidden", Int(1, 65_536), 256, "Hidden units."),
    Setting("epochs", Int(1, 100_000), {"binary": 100, "multiclass": 200}, "Epochs.",
            resumable=True),
    Setting("lr", Float(0, low_open=True), {"binary": 1e-5, "multiclass": 1.7e-5}, _LR_HELP),
    Setting("optimizer", Choice(OPTIMIZERS), "gd",
            "gd = full batch (the notebook); sgd, momentum, nesterov, adam = mini-batches."),
    Setting("batch_size", Int(1, 1_000_000, word="full"), None,
            "Mini-batch size, or the full batch.",
            shown=f"full for gd, {MINI_BATCH_DEFAULT} otherwise"),
    Setting("momentum", Float(0, 1, high_open=True), 0.9,
            "Momentum (for --optimizer momentum and nesterov)."),
    Setting("weight_decay", Float(0), 0.0,
            "L2 penalty on the weights (weight_decay/2 * ||W||^2)."),
    Setting("lr_schedule", Choice(SCHEDULES), "constant", "Learning rate over the epochs."),
    Setting("warmup_epochs", Float(0), 0.0,
            "Raise the learning rate linearly from 0 over the first X epochs."),
    Setting("reduction", Choice(REDUCTIONS), "sum",
            "Gradient of the sum (the notebook) or the mean of per-sample losses; example = "
            "the sum, with the weight decay counted once per example: lr and weight decay "
            "per example, so they transfer across batch sizes."),
    Setting("pixels", Choice(PIXEL_SCALINGS), "raw",
            "raw = 0..255 (the notebook), unit = divided by 255, deskewed = divided by 255 "
            "and each digit sheared upright and centred by its moments."),
    Setting("dtype", Choice(DTYPES), "float64", "Float type."),
    Setting("init", Choice(INIT_METHODS), "notebook",
            "notebook = N(0, 0.01) from RandomState(seed); xavier = N(0, 1/fan_in)."),
    Setting("seed", Int(0, MAX_SEED), {"binary": 3, "multiclass": 29},
            "Random seed (32 bits): initial weights, mini-batch order, shifts."),
    Setting("augment_shift", Int(0, 8), 0,
            "Shift each training image by up to N pixels, anew every epoch."),
    Setting("augment_rotate", Float(0, 90), 0.0,
            "Rotate each training image by up to X degrees, anew every epoch."),
    Setting("augment_scale", Float(0, 1, high_open=True), 0.0,
            "Scale each training image by a factor from 1-X to 1+X, anew every epoch."),
    Setting("augment_shear", Float(0, 1), 0.0,
            "Shear each training image by up to X, anew every epoch."),
    Setting("elastic_alpha", Float(0), 0.0,
            "Elastic distortion of each training image, anew every epoch: its strength "
            "(Simard's alpha, pixels); 0 = none."),
    Setting("elastic_sigma", Float(0, 28, low_open=True), 4.0,
            "Smoothness of the elastic distortion (Simard's sigma, pixels)."),
    Setting("augment_flip", Float(0, 1), 0.0,
            "Mirror each training image left-right with this probability, anew every epoch "
            "(for clothes, not digits)."),
    Setting("label_smoothing", Float(0, 1, high_open=True), 0.0,
            "Train towards targets moved this share of the way to uniform."),
    Setting("dropout", Float(0, 1, high_open=True), 0.0,
            "Drop each hidden unit with this probability at every training step "
            "(inverted dropout); scoring uses every unit. 0 = off."),
    Setting("ema", Float(0, 1, high_open=True), 0.0,
            "The model is the moving average of the weights with this decay per step; 0 = off."),
    Setting("validation", Holdout(), 0,
            "Hold out N training images (or a fraction) for validation: the last ones of "
            "each class, never trained on."),
    Setting("early_stopping", Int(0, 100_000), 0,
            "Stop when the validation loss has not improved for N epochs and keep the best "
            "epoch's weights (0: off; needs --validation).", resumable=True),
    Setting("target_accuracy", Float(0, 1, low_open=True), None,
            "Stop at the first epoch whose validation accuracy (test accuracy without "
            "--validation) reaches X.", shown="off", resumable=True),
    Setting("threads", Int(1, 1024, word="auto"), None,
            "Threads (cores) for training and scoring; auto: one per core, at most 4, "
            "and one for small steps.",
            shown="auto", resumable=True),
    Setting("log_every", Int(1, 100_000), None, "Print a row every N epochs.",
            shown="epochs/10", resumable=True),
    Setting("out", Folder(), None, "Output folder.",
            shown={"binary": "runs/binary-A-B", "multiclass": "runs/multiclass"},
            resumable=True),
)  # fmt: skip
SETTINGS = {s.name: s for s in _SETTINGS}


class _TrainConfigMethods:
    """What :class:`TrainConfig` computes from its settings."""

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}")
        for s in _SETTINGS:  # unset per-task defaults: the task's
            if isinstance(s.default, dict) and getattr(self, s.name) is None:
                object.__setattr__(self, s.name, s.default[self.task])

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
        if d["threads"] is None:
            d["threads"] = "auto"
        d["out"] = self.out_dir
        d["log_every"] = self.log_interval
        return d


def _field(setting):
    default = None if isinstance(setting.default, dict) else setting.default
    return setting.name, setting.kind.annotation, dataclasses.field(default=default)


TrainConfig = dataclasses.make_dataclass(
    "TrainConfig",
    [("task", str)] + [_field(s) for s in _SETTINGS],
    bases=(_TrainConfigMethods,),
    frozen=True,
)
TrainConfig.__module__ = __name__
TrainConfig.__doc__ = """Every setting of a training run: one field per row of :data:`SETTINGS`.

A per-task default left unset (None) becomes the task's. Values are taken
as given: :func:`resolve_config` checks them.
"""

_show = reprlib.Repr()
_show.maxstring = _show.maxother = 60


def _shown(value):
    """``value`` as a message shows it: TOML's spelling of booleans, else a short repr."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _show.repr(value)


def check_value(key, value, where):
    """``value`` of setting ``key`` checked and normalised; ``where`` names its source."""
    setting = SETTINGS.get(key)
    if setting is None:
        raise ConfigError(f"{where}: unknown key {_show.repr(key)}")
    try:
        return setting.kind.check(value)
    except InvalidValue as exc:
        message = f"{where}: '{key}' must be {exc.expected}, got {_shown(value)}"
        raise ConfigError(message, setting=key) from None


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
    except RecursionError:  # arrays or tables nested thousands deep
        raise ConfigError(f"config file {path}: not valid TOML (nested too deeply)") from None
    where = f"config file {path}"
    for key in raw:
        if key not in SETTINGS:
            known = ", ".join(sorted(SETTINGS))
            raise ConfigError(f"{where}: unknown key {_show.repr(key)} (known keys: {known})")
    return {key: check_value(key, value, where) for key, value in raw.items()}


def resolve_config(task, file_values=None, flag_values=None, config_path=None):
    """Defaults for ``task``, updated by a config file's values, then by flags.

    ``flag_values`` holds only the flags given on the command line (None
    values are ignored). Cross-setting rules are checked on the result; an
    error names where the offending value came from (the flag, or the key
    in ``config_path``).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    values, sources = {}, {}
    for key, value in (file_values or {}).items():
        values[key] = value
        sources[key] = f"config file {config_path}: '{key}'" if config_path else f"'{key}'"
    for key, value in (flag_values or {}).items():
        if value is not None:
            flag = SETTINGS[key].flag if key in SETTINGS else key
            values[key] = check_value(key, value, flag)
            sources[key] = flag
    _check_combination(task, values, lambda key: sources.get(key, SETTINGS[key].flag))
    return TrainConfig(task=task, **values)


def _check_combination(task, values, source):
    """The rules between settings; fills in the mini-batch size. ``source(key)`` names a value."""
    if task == "binary":
        if values.get("digits") is None:
            raise ConfigError(
                "--digits: train-binary needs two digits, e.g. --digits 5 8", setting="digits"
            )
    elif values.get("digits") is not None:
        raise ConfigError(
            f"{source('digits')}: digits are for train-binary; train-multiclass uses all ten "
            "classes",
            setting="digits",
        )
    if values.get("optimizer", "gd") == "gd":
        if values.get("batch_size") is not None:
            raise ConfigError(
                f"{source('batch_size')}: optimizer 'gd' is full-batch; use --optimizer sgd, "
                "momentum or adam for mini-batches",
                setting="batch_size",
            )
    elif "batch_size" not in values:
        values["batch_size"] = MINI_BATCH_DEFAULT
    if values.get("early_stopping") and not values.get("validation"):
        raise ConfigError(
            f"{source('early_stopping')}: early stopping watches the validation loss; "
            "hold out a validation split with --validation N (or a fraction)",
            setting="early_stopping",
        )
    if values.get("dataset") == "idx" and not values.get("data_dir"):
        raise ConfigError(
            f"{source('dataset')}: dataset 'idx' needs --data-dir (a folder holding the four "
            "IDX files)",
            setting="data_dir",
        )
