"""Resuming a saved run: which file, which settings, and the same data.

``train-multiclass --resume RUN_DIR_OR_MODEL.npz [--epochs N]`` goes through
here: :func:`load_saved_run` reads the model file with its resume state,
:func:`resumed_config` makes the run's settings (the saved ones; a flag or
config file may change only the settings marked ``resumable`` in
:data:`mnistnet.config.SETTINGS`), and :func:`check_same_data` refuses data
files whose content differs from the ones the saved run trained on.
"""

import os
from dataclasses import dataclass

from mnistnet import checkpoint, trainstate
from mnistnet.config import SETTINGS, check_value, resolve_config
from mnistnet.errors import ConfigError, MnistnetError
from mnistnet.model import pack

MODEL_FILE = "model.npz"


@dataclass
class SavedRun:
    """A model file's weights, metadata and resume state (with its best epoch filled in)."""

    path: str
    params: dict
    meta: dict
    resume: trainstate.Resume

    @property
    def epochs_done(self):
        return self.resume.state.epoch

    @property
    def folder(self):
        """The folder that holds the model file (absolute)."""
        return os.path.dirname(os.path.realpath(self.path))

    def is_in(self, folder):
        """True when ``folder`` is the one that holds the model file."""
        return os.path.realpath(folder) == self.folder

    def describe(self):
        """What a resumed run's metadata records about where it came from."""
        return {
            "model": os.path.abspath(self.path),
            "run_id": self.meta.get("run_id"),
            "epoch": self.epochs_done,
        }


def model_path(path):
    """The model file of ``path``: a run folder (its model.npz) or the file itself."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    return path


def load_saved_run(path):
    """Read the run at ``path`` (a run folder or a model file) to resume it.

    The best epoch so far, for early stopping, is the one whose weights the
    file holds (``weights_epoch``), when it was scored on a validation split.

    Raises
    ------
    ModelFileError when the file is missing, bad, or holds no resume state.
    """
    path = model_path(path)
    params, meta, resume = checkpoint.load_resume(path)
    weights_epoch = meta["resume"]["weights_epoch"]
    val_loss = resume.records[weights_epoch - 1].val_loss
    if val_loss is not None:
        resume.best = (weights_epoch, val_loss, pack(params)[0])
    return SavedRun(path, params, meta, resume)


def resumed_config(task, saved, file_values=None, flag_values=None, config_path=None):
    """The settings of the resumed run: the saved run's, and what may change.

    ``file_values`` (checked values of ``config_path``) and ``flag_values``
    (flags given; None for absent ones) may repeat a saved setting, or change
    one marked ``resumable`` (epochs, early_stopping, target_accuracy,
    log_every, out, data_dir). Any other difference is a :class:`ConfigError`
    naming the setting, its saved value and the one given. The output folder
    defaults to the folder of the model file (the continued run replaces the
    saved one there); the progress interval is worked out again from the epochs.
    """
    saved_task = saved.meta["task"]
    if saved_task != task:
        raise ConfigError(
            f"--resume {saved.path}: a {saved_task} run; resume it with train-{saved_task}",
            setting="resume",
        )
    values = _saved_settings(saved)
    if values.get("ema"):  # the moving average is not part of the saved state
        raise ConfigError(
            f"--resume {saved.path}: the run was trained with --ema (a moving average of "
            "the weights), which a resumed run cannot continue; train it again",
            setting="resume",
        )
    given = [(k, v, f"config file {config_path}: '{k}'") for k, v in (file_values or {}).items()]
    given += [(k, v, SETTINGS[k].flag) for k, v in (flag_values or {}).items() if v is not None]
    for key, value, source in given:
        value = check_value(key, value, source)
        before = values.get(key, SETTINGS[key].default_for(task))
        if value != before and not SETTINGS[key].resumable:
            may_change = ", ".join(s.flag for s in SETTINGS.values() if s.resumable)
            raise ConfigError(
                f"{source}: the run being resumed has {key} = {_show(before)}, not "
                f"{_show(value)}; a resumed run keeps its settings (only {may_change} "
                "may change)",
                setting=key,
            )
    values.setdefault("out", os.path.dirname(saved.path) or ".")
    file_part = {**values, **dict(file_values or {})}
    config = resolve_config(task, file_part, flag_values, config_path=config_path)
    if config.epochs <= saved.epochs_done:
        raise ConfigError(
            f"--epochs: the run being resumed has trained {saved.epochs_done} epochs; "
            f"give --epochs N with N > {saved.epochs_done} to train more",
            setting="epochs",
        )
    return config


def _saved_settings(saved):
    """The saved run's settings, checked as a config file's would be."""
    config = saved.meta.get("config")
    if not isinstance(config, dict):
        raise MnistnetError(f"model file {saved.path}: its metadata records no config")
    values = {}
    for key, value in config.items():
        if key in ("task", "out", "log_every") or value is None:  # this run's, or unset
            continue
        values[key] = check_value(key, value, f"model file {saved.path}: config")
    return values


def _show(value):
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_same_data(saved, splits):
    """Raise unless ``splits`` (train, test) come from files of the saved run's content.

    The content's sha256 decides: the same digits gzipped or not, in another
    folder, are the same data.
    """
    before = saved.meta.get("dataset", {}).get("files", [])
    now = [f for split in (splits.train, splits.test) for f in split.files]
    if [f.get("role") for f in before] != [f.role for f in now]:
        raise MnistnetError(
            f"--resume {saved.path}: the saved run records other data files "
            f"({len(before)}) than these ({len(now)}); a resumed run must see the same data",
            setting="data_dir",
        )
    for old, new in zip(before, now, strict=True):
        if old.get("content_sha256") != new.content_sha256:
            raise MnistnetError(
                f"--resume {saved.path}: {new.path} is not the file the saved run "
                f"trained on (its {new.role} had content sha256 "
                f"{str(old.get('content_sha256'))[:12]}..., this one "
                f"{new.content_sha256[:12]}...); a resumed run must see the same data",
                setting="data_dir",
            )
