"""``mnistnet evaluate`` and ``mnistnet info`` through click's CliRunner."""

import json
import os
import shutil

import numpy as np
import pytest
from helpers import copy_model, run, strict_json

from mnistnet.checkpoint import load_model
from mnistnet.datasets import DATASETS, DatasetSpec
from mnistnet.pipeline import load_task_data


def _independent_scores(path):
    """Accuracy and mean loss straight from the saved arrays, without mnistnet's model code."""
    with np.load(path, allow_pickle=False) as npz:
        W1, b1, W2, b2 = (npz[k] for k in ("W1", "b1", "W2", "b2"))
        meta = json.loads(str(npz["metadata"]))
    data = load_task_data("mnist-sample", "test", meta["classes"])  # raw 0..255 pixels
    X = data.images.reshape(len(data.images), -1) / 255.0
    A1 = 0.5 * (1 + np.tanh((X @ W1 + b1) / 2))
    Z2 = A1 @ W2 + b2
    if meta["task"] == "binary":
        pred = (Z2[:, 0] >= 0).astype(int)
        z, y = Z2[:, 0], data.y
        loss = np.mean(np.logaddexp(0, z) - y * z)  # BCE from logits
    else:
        pred = Z2.argmax(axis=1)
        log_p = Z2 - Z2.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        loss = -np.mean(log_p[np.arange(len(pred)), data.y])
    return float(np.mean(pred == data.y)), float(loss), len(pred)


# The documented --json schema (README), checked without a jsonschema dependency.
# A type, a tuple of types, a dict (an object with exactly these keys), or a list of
# one schema (an array of them).
NUM = (int, float)
FILE = {
    "role": str,
    "name": str,
    "path": str,
    "size": int,
    "sha256": str,
    "content_sha256": str,
    "verified": bool,
}
SCHEMA = {
    "schema": str,
    "model": {
        "path": str,
        "sha256": str,
        "format_version": int,
        "mnistnet_version": str,
        "layers": [int],
        "pixels": str,
        "dtype": str,
    },
    "task": str,
    "classes": [int],
    "class_names": [str],
    "dataset": {"name": str, "split": str, "files": [FILE]},
    "n": int,
    "accuracy": NUM,
    "loss": NUM,
    "confusion_matrix": [[int]],
    "binary": (
        {"negative": int, "positive": int, "tp": int, "tn": int, "fp": int, "fn": int},
        type(None),
    ),
    "per_class": [
        {"class": int, "name": str, "precision": NUM, "recall": NUM, "f1": NUM, "support": int}
    ],
    "macro_avg": {"precision": NUM, "recall": NUM, "f1": NUM},
    "top_confusions": [{"true": int, "predicted": int, "count": int}],
    "min_accuracy": (float, int, type(None)),
    "passed": (bool, type(None)),
}
OPTIONAL = {"plots": [str], "tta": {"shift": int, "copies": int}}


def check_schema(value, schema, where="$", optional=None):
    if isinstance(schema, dict):
        assert isinstance(value, dict), f"{where}: expected an object"
        optional = optional or {}
        assert set(schema) <= set(value), f"{where}: lacks {set(schema) - set(value)}"
        extra = set(value) - set(schema) - set(optional)
        assert not extra, f"{where}: unexpected keys {extra}"
        for key, sub in {**schema, **optional}.items():
            if key in value:
                check_schema(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(value, list), f"{where}: expected an array"
        for i, item in enumerate(value):
            check_schema(item, schema[0], f"{where}[{i}]")
    elif isinstance(schema, tuple) and any(isinstance(s, dict) for s in schema):
        errors = []
        for option in schema:
            try:
                check_schema(value, option, where)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{where}: matches no option: {errors}")
    else:
        ok = isinstance(value, schema) and not (isinstance(value, bool) and schema in (int, NUM))
        assert ok, f"{where}: {value!r} is not {schema}"


def evaluate_json(model, *extra):
    result = run("evaluate", model, "--json", *extra)
    return result, strict_json(result.stdout)


# --- help and usage ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["evaluate", "info"])
def test_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "MODEL.npz" in result.output


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_tta_shift_help_states_its_default_and_range_once(command):
    result = run(command, "--help", terminal_width=200, max_content_width=200)
    assert result.output.count("0<=x<=8") == 1 and "[default: 0; 0<=x<=8]" in result.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["--min-accuracy", "1.5"], "--min-accuracy"),
        (["--min-accuracy", "-0.1"], "--min-accuracy"),
        (["--split", "validation"], "--split"),
        (["--dataset", "cifar"], "--dataset"),
        (["--min-accuracy", "nan"], "--min-accuracy"),  # NaN compares false with everything
    ],
)
def test_usage_errors_exit_2(binary_model, args, words):
    result = run("evaluate", binary_model, *args)
    assert result.exit_code == 2
    assert words in result.stderr


# --- scores ------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["binary_model", "multiclass_model"])
def test_reported_scores_match_an_independent_computation(fixture, request):
    path = request.getfixturevalue(fixture)
    result, report = evaluate_json(path)
    assert result.exit_code == 0, result.stderr
    accuracy, loss, n = _independent_scores(path)
    assert report["n"] == n
    assert report["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert report["loss"] == pytest.approx(loss, rel=1e-9)
    cm = np.array(report["confusion_matrix"])
    assert cm.sum() == n
    assert np.trace(cm) / n == pytest.approx(accuracy)


def test_json_follows_the_documented_schema_binary(binary_model):
    result, report = evaluate_json(binary_model)
    check_schema(report, SCHEMA, optional=OPTIONAL)
    assert report["schema"] == "mnistnet-evaluation/1"
    assert report["task"] == "binary" and report["classes"] == [5, 8]
    assert report["dataset"]["name"] == "mnist-sample" and report["dataset"]["split"] == "test"
    assert report["model"]["path"] == os.path.abspath(binary_model)
    import hashlib

    assert report["model"]["sha256"] == hashlib.sha256(binary_model.read_bytes()).hexdigest()
    b = report["binary"]
    assert (b["negative"], b["positive"]) == (5, 8)
    cm = report["confusion_matrix"]
    assert [[b["tn"], b["fp"]], [b["fn"], b["tp"]]] == cm
    assert [r["support"] for r in report["per_class"]] == [sum(row) for row in cm]
    assert report["min_accuracy"] is None and report["passed"] is None
    assert result.stderr == ""  # --json: nothing but JSON, and no chatter either


def test_json_follows_the_documented_schema_multiclass(multiclass_model):
    _, report = evaluate_json(multiclass_model, "--split", "train")
    check_schema(report, SCHEMA, optional=OPTIONAL)
    assert report["binary"] is None
    assert report["n"] == 8000 and report["dataset"]["split"] == "train"
    assert np.array(report["confusion_matrix"]).shape == (10, 10)
    assert len(report["per_class"]) == 10
    counts = [c["count"] for c in report["top_confusions"]]
    assert counts == sorted(counts, reverse=True) and len(counts) <= 5


def test_min_accuracy_just_above_and_below(binary_model):
    _, report = evaluate_json(binary_model)
    acc = report["accuracy"]
    assert 0 < acc < 1
    result, above = evaluate_json(binary_model, "--min-accuracy", repr(acc + 1e-9))
    assert result.exit_code == 3
    assert above["passed"] is False  # the results are printed before exit 3
    result, below = evaluate_json(binary_model, "--min-accuracy", repr(acc - 1e-9))
    assert result.exit_code == 0 and below["passed"] is True
    result, _ = evaluate_json(binary_model, "--min-accuracy", repr(acc))
    assert result.exit_code == 0  # "below" is strict


def test_min_accuracy_human_output(binary_model):
    result = run("evaluate", binary_model, "--min-accuracy", "0.999")
    assert result.exit_code == 3
    assert "failed" in result.stdout
    assert "is below --min-accuracy 0.999" in result.stderr


def test_human_output_binary(binary_model):
    result = run("evaluate", binary_model)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for words in (
        "binary 5 vs 8",
        "accuracy",
        "mean loss",
        "positive = 8",
        "TP ",
        "TN ",
        "FP ",
        "FN ",
        "precision",
        "recall",
        "F1",
        "support",
        "5 -> 8:",
    ):
        assert words in out or (words == "5 -> 8:" and "No confusions" in out), words
    assert "Scoring" in result.stderr  # chatter on stderr, results on stdout
    assert "Scoring" not in out


def test_human_output_multiclass(multiclass_model):
    result = run("evaluate", multiclass_model)
    assert result.exit_code == 0, result.stderr
    assert "rows: true, columns: predicted" in result.stdout
    assert "Most frequent confusions" in result.stdout
    assert " -> " in result.stdout


def test_quiet_prints_nothing(binary_model):
    result = run("evaluate", binary_model, "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""


def test_dataset_option_overrides_the_recorded_one(binary_model):
    # "idx" needs --data-dir: proves --dataset was used instead of the model's mnist-sample.
    result = run("evaluate", binary_model, "--dataset", "idx")
    assert result.exit_code == 2  # a usage error, as for download and training
    assert "Error: --dataset idx needs --data-dir" in result.stderr


def test_plots_dir(binary_model, tmp_path):
    result, report = evaluate_json(binary_model, "--plots-dir", tmp_path / "pics")
    assert result.exit_code == 0, result.stderr
    names = sorted(os.path.basename(p) for p in report["plots"])
    assert names == ["examples-test.png", "hidden-units.png"]  # the scored split only
    assert sorted(os.listdir(tmp_path / "pics")) == names


# --- which data: the model says what, never where anything is created -----------------


def _recording(src, dst, dataset, data_dir):
    """A copy of the model ``src`` that says it was trained on ``dataset`` from ``data_dir``."""
    _, meta = load_model(src)
    return copy_model(
        src,
        dst,
        dataset={**meta["dataset"], "name": dataset},
        config={**meta["config"], "dataset": dataset, "data_dir": str(data_dir)},
    )


def test_recorded_data_dir_is_used_when_it_holds_the_data(binary_model, idx_dataset, tmp_path):
    model = _recording(binary_model, tmp_path / "m.npz", "idx", idx_dataset)
    result, report = evaluate_json(model)
    assert result.exit_code == 0, result.stderr
    assert report["dataset"]["name"] == "idx"
    assert [os.path.dirname(f["path"]) for f in report["dataset"]["files"]] == [
        str(idx_dataset)
    ] * 2


def test_recorded_data_dir_without_the_data_is_not_used(binary_model, tmp_path):
    (tmp_path / "empty").mkdir()
    model = _recording(binary_model, tmp_path / "m.npz", "idx", tmp_path / "empty")
    result = run("evaluate", model)
    assert result.exit_code == 2  # as if the model named no folder
    assert "Error: --dataset idx needs --data-dir" in result.stderr


def test_a_model_file_never_chooses_where_data_is_created(
    binary_model, pinned_idx_dataset, server, monkeypatch, tmp_path
):
    from werkzeug import Response

    chosen = tmp_path / "chosen" / "by" / "file"
    payload, files = pinned_idx_dataset
    existed = []  # whether the recorded folder existed while each file was downloaded

    def handler(request):
        existed.append(chosen.exists())
        return Response(payload[request.path.rsplit("/", 1)[1]])

    for name in payload:
        server.expect_request(f"/m/{name}").respond_with_handler(handler)
    mirror = server.url_for("/m/")
    monkeypatch.setitem(DATASETS, "mnist", DatasetSpec("mnist", files, mirrors=(mirror,)))
    model = _recording(binary_model, tmp_path / "m.npz", "mnist", chosen)
    result, report = evaluate_json(model)
    assert result.exit_code == 0, result.stderr
    assert existed == [False, False]  # the test split's two files
    assert not (tmp_path / "chosen").exists()
    cache = os.path.join(os.environ["MNISTNET_DATA_DIR"], "mnist")  # the usual lookup
    assert {os.path.dirname(f["path"]) for f in report["dataset"]["files"]} == {cache}


# --- file contents are data, never markup or terminal commands ---------------------------


def test_class_names_are_shown_literally(binary_model, tmp_path):
    model = copy_model(binary_model, tmp_path / "m.npz", class_names=["[bold red]5", "8[/]"])
    result = run("evaluate", model)
    assert result.exit_code == 0, result.output
    for text in ("binary [bold red]5 vs 8[/]", "pred [bold red]5", "true 8[/]", "8[/] -> "):
        assert text in result.stdout, text
    info = run("info", model)
    assert info.exit_code == 0, info.output
    assert "5 ([bold red]5), 8 (8[/])" in info.stdout


def test_control_characters_from_a_model_file_never_reach_the_terminal(binary_model, tmp_path):
    model = copy_model(
        binary_model,
        tmp_path / "m.npz",
        created="\x1b[2J2024",  # clears the screen
        class_names=["\x1b]0;title\x07", "8"],  # sets the terminal's title
    )
    for command in ("info", "evaluate"):
        result = run(command, model)
        assert result.exit_code == 0, result.output
        out = result.stdout + result.stderr
        assert "\x1b" not in out and "\x07" not in out
        assert "\\x1b]0;title\\x07" in out  # spelled out instead
    assert "\\x1b[2J2024" in run("info", model).stdout


def test_model_path_is_shown_literally(binary_model, tmp_path):
    folder = tmp_path / "[red]x"
    folder.mkdir()
    model = folder / "model.npz"
    shutil.copy(binary_model, model)
    result = run("evaluate", model)
    assert result.exit_code == 0, result.output
    assert f"Scoring {model} on" in " ".join(result.stderr.split())  # rich folds at 80


def test_nan_in_the_metadata_is_refused_so_no_json_output_holds_it(binary_model, tmp_path):
    # JSON has no NaN or Infinity: the loader refuses such metadata (mnistnet.metadata),
    # so none reaches `info --json` (whose output is strict JSON in any case).
    _, meta = load_model(binary_model)
    train = {**meta["metrics"]["train"], "loss": float("inf")}
    for changes in ({"seconds": float("nan")}, {"metrics": {**meta["metrics"], "train": train}}):
        model = copy_model(binary_model, tmp_path / "m.npz", **changes)
        for args in (("--json",), ()):
            result = run("info", model, *args)
            assert result.exit_code == 1 and result.stdout == ""
            assert result.stderr.startswith(f"Error: model file {model}: metadata holds ")
            assert "which is not JSON" in result.stderr and result.stderr.count("\n") == 1


# --- bad model files ---------------------------------------------------------------------


def _write_tampered(src, dst, case):
    with np.load(src) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["metadata"]))
    if case == "object array":
        arrays["W1"] = np.array([{"x": 1}], dtype=object)
    elif case == "wrong shape":
        arrays["W2"] = np.zeros((3, 1))
    elif case == "bad metadata JSON":
        arrays["metadata"] = np.array("{not json")
    elif case == "unknown format version":
        arrays["metadata"] = np.array(json.dumps({**meta, "format_version": 7}))
    elif case == "truncated":
        dst.write_bytes(src.read_bytes()[:1000])
        return dst
    elif case == "not an npz":
        dst.write_text("hello")
        return dst
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


@pytest.mark.parametrize(
    "case, message",
    [
        ("object array", "holds pickled object arrays, which are never loaded (unsafe)"),
        ("truncated", "corrupt or truncated .npz archive"),
        ("wrong shape", "array W2 has shape (3, 1), the metadata says (16, 1)"),
        ("bad metadata JSON", "metadata is not valid JSON"),
        ("unknown format version", "unknown format version 7"),
        ("not an npz", "not an .npz archive"),
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "info"])
def test_tampered_files_exit_1_with_their_own_message(
    binary_model, tmp_path, case, message, command
):
    path = _write_tampered(binary_model, tmp_path / "bad.npz", case)
    result = run(command, path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: model file {path}: " + result.stderr.split(": ", 2)[2]
    assert message in result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback


def test_missing_model_is_a_failure_not_a_usage_error(tmp_path):
    result = run("evaluate", tmp_path / "nope.npz")
    assert result.exit_code == 1
    assert result.stderr == f"Error: model file {tmp_path / 'nope.npz'}: no such file\n"


# --- info --------------------------------------------------------------------------------


def test_info_human(binary_model):
    result = run("info", binary_model)
    assert result.exit_code == 0, result.stderr
    for words in (
        "784-16-1",
        "binary",
        "pixels",
        "unit",
        "Training config",
        "adam",
        "Final metrics",
        "mnist-sample",
        "train-images",
    ):
        assert words in result.stdout, words


def test_info_human_shows_every_setting_training_recorded(binary_model):
    _, meta = load_model(binary_model)
    result = run("info", binary_model)
    assert result.exit_code == 0, result.stderr
    for key, value in meta["config"].items():
        if value is not None:  # unset settings (data_dir) are left out
            assert f" {key} " in result.stdout, key


def test_info_json(multiclass_model):
    result = run("info", multiclass_model, "--json")
    assert result.exit_code == 0
    doc = strict_json(result.stdout)
    assert doc["schema"] == "mnistnet-info/1"
    assert doc["metadata"]["task"] == "multiclass"
    assert doc["arrays"]["W1"] == {"shape": [784, 16], "dtype": "float64"}
    assert doc["n_params"] == 784 * 16 + 16 + 16 * 10 + 10
    assert doc["metadata"]["dataset"]["files"][0]["sha256"]


def test_evaluate_info_flag_is_info(binary_model):
    a = run("evaluate", binary_model, "--info", "--json")
    b = run("info", binary_model, "--json")
    assert a.exit_code == b.exit_code == 0
    assert json.loads(a.stdout) == json.loads(b.stdout)
