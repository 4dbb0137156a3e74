"""What a run needs to go on exactly where it stopped, and its form in ``model.npz``.

A :class:`TrainingState` is taken after every finished epoch: the weights,
the optimizer's state (:func:`mnistnet.optimizers.get_state`), the number
of epochs finished (the learning-rate schedule's position) and the random
generator's state (mini-batch order and shifts). With the history so far
it is everything: a run resumed from it computes the same numbers, bit for
bit, as one that never stopped.

In a model file (see the README, "The model file") it is the ``resume``
section of the metadata plus arrays named ``resume_<name>``:

=================  ============================  ====================================
array              shape, dtype                  what
=================  ============================  ====================================
resume_history     (epochs, 9) float64           :data:`mnistnet.history.COLUMNS`, NaN for None
resume_velocity    (n_params,) the model's       ``momentum``: the velocity
resume_m, _v       (n_params,) the model's       ``adam``: the moment estimates
resume_weights     (n_params,) the model's       the last epoch's weights, only when
                                                 ``W1..b2`` hold another (the best) epoch's
=================  ============================  ====================================

Vectors are laid out as :func:`mnistnet.model.pack` lays out the parameters.
:func:`check_section` validates the metadata section, :func:`from_file` the
arrays against it; both raise ValueError with the problem in words.
"""

from dataclasses import dataclass

import numpy as np

from mnistnet import history as hist
from mnistnet.optimizers import OPTIMIZERS, get_state, make_optimizer

VERSION = 1
PREFIX = "resume_"
BIT_GENERATOR = "PCG64"  # np.random.default_rng's


@dataclass
class TrainingState:
    """The state after ``epoch`` finished epochs (copies, never the live arrays)."""

    epoch: int
    theta: np.ndarray
    optimizer: dict
    rng: dict

    @classmethod
    def take(cls, epoch, theta, optimizer, rng):
        return cls(epoch, theta.copy(), get_state(optimizer), rng.bit_generator.state)


@dataclass
class Resume:
    """Where :func:`mnistnet.training.fit` starts a resumed run.

    ``records``: the history so far (``state.epoch`` records). ``best``:
    ``(epoch, val_loss, theta)`` of the best epoch so far, for early
    stopping, or None.
    """

    state: TrainingState
    records: list
    best: tuple | None = None


def to_file(state, records, weights_epoch, optimizer_name):
    """The ``resume`` metadata section and the arrays for a model file.

    ``weights_epoch`` is the epoch whose weights the file's ``W1..b2`` hold;
    when it is not ``state.epoch``, the last weights are saved as well.
    """
    ints = {k: v for k, v in state.optimizer.items() if not isinstance(v, np.ndarray)}
    arrays = {PREFIX + k: v for k, v in state.optimizer.items() if isinstance(v, np.ndarray)}
    arrays[PREFIX + "history"] = hist.to_array(records[: state.epoch])
    if weights_epoch != state.epoch:
        arrays[PREFIX + "weights"] = state.theta
    rng = state.rng
    section = {
        "version": VERSION,
        "epoch": state.epoch,
        "weights_epoch": weights_epoch,
        "optimizer": optimizer_name,
        "optimizer_state": ints,
        "rng": {
            "bit_generator": rng["bit_generator"],
            "state": hex(rng["state"]["state"]),
            "inc": hex(rng["state"]["inc"]),
            "has_uint32": rng["has_uint32"],
            "uinteger": rng["uinteger"],
        },
        "history_columns": list(hist.COLUMNS),
        "arrays": sorted(arrays),
    }
    return section, arrays


def expected_arrays(section):
    """The array names a valid ``section`` needs (after :func:`check_section`)."""
    names = [PREFIX + "history"]
    optimizer = make_optimizer(section["optimizer"])
    names += [PREFIX + k for k in optimizer.STATE if k not in section["optimizer_state"]]
    if section["weights_epoch"] != section["epoch"]:
        names.append(PREFIX + "weights")
    return sorted(names)


def check_section(section, optimizer_name=None):
    """Raise ValueError unless ``section`` is a valid ``resume`` section.

    ``optimizer_name``: the optimizer the model's config names, which the
    section must agree with.
    """
    if not isinstance(section, dict):
        raise ValueError("is not an object")
    if section.get("version") != VERSION or type(section.get("version")) is not int:
        raise ValueError(f"has version {section.get('version')!r}; this mnistnet reads {VERSION}")
    epoch, weights_epoch = section.get("epoch"), section.get("weights_epoch")
    if type(epoch) is not int or epoch < 1:
        raise ValueError("'epoch' must be a whole number >= 1")
    if type(weights_epoch) is not int or not 1 <= weights_epoch <= epoch:
        raise ValueError(f"'weights_epoch' must be a whole number from 1 to {epoch}")
    name = section.get("optimizer")
    if name not in OPTIMIZERS or (optimizer_name is not None and name != optimizer_name):
        raise ValueError(f"'optimizer' is {name!r}, the model's config says {optimizer_name!r}")
    ints = section.get("optimizer_state")
    allowed = make_optimizer(name).STATE
    if not isinstance(ints, dict) or not all(
        k in allowed and type(v) is int and 0 <= v < 2**63 for k, v in ints.items()
    ):
        raise ValueError(f"'optimizer_state' must map names of {allowed} to whole numbers")
    if section.get("history_columns") != list(hist.COLUMNS):
        raise ValueError(f"'history_columns' must be {list(hist.COLUMNS)}")
    _check_rng(section.get("rng"))
    if section.get("arrays") != expected_arrays(section):
        raise ValueError(f"'arrays' must be {expected_arrays(section)}")


def _check_rng(rng):
    if not isinstance(rng, dict) or rng.get("bit_generator") != BIT_GENERATOR:
        raise ValueError(f"'rng' must be the state of a {BIT_GENERATOR} generator")
    for key in ("state", "inc"):
        if not _is_hex128(rng.get(key)):
            raise ValueError(f"'rng.{key}' must be a 128-bit number in hexadecimal")
    if rng.get("has_uint32") not in (0, 1) or type(rng.get("has_uint32")) is not int:
        raise ValueError("'rng.has_uint32' must be 0 or 1")
    uinteger = rng.get("uinteger")
    if type(uinteger) is not int or not 0 <= uinteger < 2**32:
        raise ValueError("'rng.uinteger' must be a 32-bit whole number")


def _is_hex128(text):
    if not isinstance(text, str) or not text.startswith("0x") or len(text) > 34:
        return False
    try:
        return 0 <= int(text, 16) < 2**128
    except ValueError:
        return False


def from_file(section, arrays, theta):
    """The :class:`TrainingState` and the history records a file's section and arrays hold.

    ``theta`` is the file's ``W1..b2`` packed (the weights of
    ``weights_epoch``); ``arrays`` maps ``resume_*`` names to arrays. Call
    :func:`check_section` first. Raises ValueError for arrays of the wrong
    shape or dtype, non-finite values, or a history that does not fit.
    """
    for name in expected_arrays(section):
        if name not in arrays:
            raise ValueError(f"lacks the array {name}")
    records = hist.from_array(arrays[PREFIX + "history"])
    if len(records) != section["epoch"]:
        raise ValueError(f"holds {len(records)} epochs of history, not {section['epoch']}")
    vectors = {k: v for k, v in arrays.items() if k != PREFIX + "history"}
    for name, value in vectors.items():
        if value.shape != theta.shape or value.dtype != theta.dtype:
            raise ValueError(f"array {name} must be {theta.dtype} of shape {theta.shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"array {name} holds NaN or infinite values")
    optimizer = dict(section["optimizer_state"])
    for key in make_optimizer(section["optimizer"]).STATE:
        if key not in optimizer:
            optimizer[key] = vectors[PREFIX + key].copy()
    last = vectors.get(PREFIX + "weights", theta)
    rng = section["rng"]
    rng_state = {
        "bit_generator": rng["bit_generator"],
        "state": {"state": int(rng["state"], 16), "inc": int(rng["inc"], 16)},
        "has_uint32": rng["has_uint32"],
        "uinteger": rng["uinteger"],
    }
    return TrainingState(section["epoch"], last.copy(), optimizer, rng_state), records
