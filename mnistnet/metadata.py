"""A model file's metadata: parsed within limits, checked against its schema once.

The metadata is one JSON object (see the README, "The model file").
:func:`parse` reads it within limits on size, nesting and numbers, so a file
cannot make the parser, or anything after it, costly. :func:`validate` checks
it against :data:`SCHEMA`, the one table of what each key holds, and the task
against classes, layers and names. Whatever passes can be trusted: code that
reads ``meta["classes"]`` or ``meta["dataset"]["name"]`` needs no checks of
its own. Optional keys (absent from older files) may be absent or null.

Both raise :class:`MetadataError` with the problem in words; the loader adds
the file's name.
"""

import json
import math

from mnistnet import trainstate
from mnistnet.config import DTYPES, SETTINGS
from mnistnet.data import PIXEL_SCALINGS
from mnistnet.functions import HEADS
from mnistnet.tasks import N_CLASSES, N_INPUTS, N_OUTPUTS, TASKS

FORMAT = "mnistnet-model"
FORMAT_VERSION = 1

MAX_CHARS = 2**20  # the JSON text; training writes about 3,000 characters
MAX_DEPTH = 16  # objects and arrays inside each other; the schema needs 4
MAX_INT_DIGITS = 20  # any count or size fits in 20 digits
MAX_HIDDEN = SETTINGS["hidden"].kind.high  # what training may make (65,536: W1 takes 411 MB)
MAX_EPOCHS = SETTINGS["epochs"].kind.high  # a resumed run's too: --epochs counts them all


class MetadataError(ValueError):
    """The metadata breaks a limit or the schema (the message says how)."""


# --- parsing within limits ----------------------------------------------------------------


def _parse_int(text):
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise MetadataError(f"holds an integer of {len(text):,} digits")
    return int(text)


def _parse_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise MetadataError(f"holds a number too large for a float: {text[:20]}")
    return value


def _reject_constant(name):
    raise MetadataError(f"holds {name}, which is not JSON")


def parse(text):
    """The metadata object in ``text`` (a JSON string), within the limits above."""
    if len(text) > MAX_CHARS:
        raise MetadataError(f"is {len(text):,} characters long (at most {MAX_CHARS:,})")
    try:
        meta = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as exc:
        raise MetadataError(f"is not valid JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:
        raise MetadataError(f"is nested more than {MAX_DEPTH} levels deep") from None
    if not isinstance(meta, dict):
        raise MetadataError("is not a JSON object")
    _check_plain(meta, "", 1)
    return meta


def _check_plain(value, where, depth):
    """Nesting within MAX_DEPTH; strings that a terminal and a file system can take."""
    if isinstance(value, str):
        if "\0" in value or not _encodable(value):
            raise MetadataError(f"{_at(where)}holds a NUL character or an unpaired surrogate")
    elif isinstance(value, (dict, list)):
        if depth > MAX_DEPTH:
            raise MetadataError(f"is nested more than {MAX_DEPTH} levels deep")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                _check_plain(key, where, depth)
            _check_plain(item, _join(where, key), depth + 1)


def _encodable(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- the schema: one checker per key ------------------------------------------------------


def _join(where, key):
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else key


def _at(where):
    return f"'{where}' " if where else ""


def _kind(value):
    """How JSON would name ``value``'s type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    for kinds, name in ((str, "a string"), (int, "an integer"), (float, "a number")):
        if isinstance(value, kinds):
            return f"{name} ({value!r})" if len(repr(value)) <= 40 else name
    return "a list" if isinstance(value, list) else "an object"


def _expected(where, what, value):
    return MetadataError(f"'{where}' must be {what}, not {_kind(value)}")


def _string(value, where):
    if not isinstance(value, str):
        raise _expected(where, "a string", value)


def _boolean(value, where):
    if not isinstance(value, bool):
        raise _expected(where, "true or false", value)


def _integer(low=0, high=None):
    def check(value, where):
        if type(value) is not int or value < low or (high is not None and value > high):
            bounds = f"from {low:,} to {high:,}" if high is not None else f">= {low:,}"
            raise _expected(where, f"an integer {bounds}", value)

    return check


def _number(low=0.0, high=None):
    def check(value, where):
        ok = type(value) in (int, float) and value >= low and (high is None or value <= high)
        if not ok:
            bounds = f"from {low:g} to {high:g}" if high is not None else f">= {low:g}"
            raise _expected(where, f"a number {bounds}", value)

    return check


def _one_of(*choices):
    def check(value, where):
        if not (isinstance(value, str) and value in choices):
            raise _expected(where, "one of " + ", ".join(map(repr, choices)), value)

    return check


def _list_of(item, length=None):
    def check(value, where):
        if not isinstance(value, list) or (length is not None and len(value) != length):
            raise _expected(where, f"a list of {length}" if length else "a list", value)
        for i, element in enumerate(value):
            item(element, f"{where}[{i}]")

    return check


def _object(fields=None, values=None):
    """An object: the keys of ``fields`` checked by theirs, any other key by ``values``."""

    def check(value, where):
        if not isinstance(value, dict):
            raise _expected(where, "an object", value)
        for key, element in value.items():
            checker = (fields or {}).get(key, values)
            if element is not None and checker is not None:
                checker(element, _join(where, key))

    return check


def _setting(value, where):
    """A training setting: a string, number, true/false, null, or a list of those."""
    if isinstance(value, list):
        for i, element in enumerate(value):
            _setting(element, f"{where}[{i}]")
    elif isinstance(value, dict):
        raise _expected(where, "a setting's value", value)


_FILE = _object(
    {
        "role": _string,
        "name": _string,
        "path": _string,
        "size": _integer(),
        "sha256": _string,
        "content_sha256": _string,
        "verified": _boolean,
    }
)
_SCORES = _object({"loss": _number(), "accuracy": _number(0.0, 1.0), "n": _integer()})
_VALIDATION = _object(
    {"requested": _number(), "n": _integer(), "per_class": _list_of(_integer()), "rule": _string}
)
_STOPPING = _object(
    {
        "reason": _string,
        "weights_epoch": _integer(),
        "best_epoch": _integer(),
        "early_stopping": _integer(),
        "target_accuracy": _number(0.0, 1.0),
        "target_metric": _string,
        "target_epoch": _integer(),
        "target_seconds": _number(),
    }
)
_RESUMED_FROM = _object({"model": _string, "run_id": _string, "epoch": _integer()})


def _resume(value, where):
    """The resume section: its own rules (:func:`mnistnet.trainstate.check_section`)."""
    try:
        trainstate.check_section(value)
    except ValueError as exc:
        raise MetadataError(f"'{where}' {exc}") from None
    if value["epoch"] > MAX_EPOCHS:
        raise _expected(f"{where}.epoch", f"at most {MAX_EPOCHS:,} (--epochs)", value["epoch"])


#: key -> (checker, required). Keys not listed are kept and not checked.
SCHEMA = {
    "format": (_one_of(FORMAT), True),
    "format_version": (_integer(1, FORMAT_VERSION), True),
    "mnistnet_version": (_string, False),
    "task": (_one_of(*TASKS), True),
    "classes": (_list_of(_integer(0, 9)), True),
    "class_names": (_list_of(_string), False),
    "layers": (_list_of(_integer(1), length=3), True),
    "activations": (_list_of(_string, length=2), False),
    "loss": (_string, False),
    "pixels": (_one_of(*PIXEL_SCALINGS), True),
    "dtype": (_one_of(*DTYPES), True),
    "config": (_object({"data_dir": _string, "out": _string}, values=_setting), False),
    "dataset": (_object({"name": _string, "files": _list_of(_FILE)}), False),
    "metrics": (_object(values=_SCORES), False),
    "created": (_string, False),
    "epochs_trained": (_integer(), False),
    "interrupted": (_boolean, False),
    "seconds": (_number(), False),
    "threads": (_integer(1), False),
    "run_id": (_string, False),
    "validation": (_VALIDATION, False),
    "stopping": (_STOPPING, False),
    "resume": (_resume, False),
    "resumed_from": (_RESUMED_FROM, False),
}
REQUIRED = tuple(key for key, (_, required) in SCHEMA.items() if required)


def validate(meta):
    """Check ``meta`` (from :func:`parse`) against :data:`SCHEMA` and its task; return it."""
    if meta.get("format") != FORMAT:
        raise MetadataError(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # JSON true == 1: reject it
        raise MetadataError(
            f"has unknown format version {version!r} "
            f"(this mnistnet reads version {FORMAT_VERSION}); upgrade mnistnet?"
        )
    absent = [key for key in REQUIRED if meta.get(key) is None]
    if absent:
        raise MetadataError(f"lacks {', '.join(absent)}")
    for key, (check, _) in SCHEMA.items():
        if meta.get(key) is not None:
            check(meta[key], key)
    _check_task(meta)
    return meta


def _check_task(meta):
    """What the task implies for classes, layers, names, activations and loss."""
    task, classes = meta["task"], meta["classes"]
    n_classes, n_out = N_CLASSES[task], N_OUTPUTS[task]
    if len(classes) != n_classes or len(set(classes)) != n_classes:
        raise MetadataError(f"'classes' must be {n_classes} different digits for a {task} model")
    layers = meta["layers"]
    if layers[0] != N_INPUTS or layers[2] != n_out:
        raise MetadataError(f"'layers' {layers} do not fit a {task} model on 28x28 images")
    if layers[1] > MAX_HIDDEN:
        raise MetadataError(
            f"'layers' has {layers[1]:,} hidden units, more than mnistnet loads ({MAX_HIDDEN:,})"
        )
    names = meta.get("class_names")
    if names is not None and len(names) != n_classes:
        raise MetadataError(f"'class_names' must name the {n_classes} classes, not {len(names)}")
    head = HEADS[task]
    expected = {"activations": ["sigmoid", head["activation"]], "loss": head["loss"]}
    for key, value in expected.items():
        if meta.get(key) is not None and meta[key] != value:
            raise MetadataError(f"'{key}' is {meta[key]!r}; a {task} model has {value!r}")
