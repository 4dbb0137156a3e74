"""mnistnet.evaluation from Python: the report, the info document, which data to score on."""

import json

import pytest
from helpers import run, strict_json

from mnistnet import evaluation
from mnistnet.checkpoint import load_model
from mnistnet.errors import ConfigError

# The README's order of the `evaluate --json` fields.
FIELDS = [
    "schema", "model", "task", "classes", "class_names", "dataset", "n", "accuracy", "loss",
    "confusion_matrix", "binary", "per_class", "macro_avg", "top_confusions", "min_accuracy",
    "passed",
]  # fmt: skip


def _report(path, min_accuracy=None):
    params, meta = load_model(path)
    data = evaluation.load_data(meta, "test")
    return evaluation.evaluate(path, params, meta, data, min_accuracy)


@pytest.mark.parametrize("fixture", ["binary_model", "multiclass_model"])
def test_the_report_is_what_evaluate_json_prints(fixture, request):
    path = request.getfixturevalue(fixture)
    report = _report(path, min_accuracy=0.5)
    doc = report.to_dict()
    assert list(doc) == FIELDS
    assert doc["passed"] is (report.accuracy >= 0.5)
    cli = strict_json(run("evaluate", path, "--json", "--min-accuracy", "0.5").stdout)
    assert json.loads(json.dumps(doc)) == cli


def test_plots_appear_in_the_document_only_when_drawn(binary_model):
    report = _report(binary_model)
    assert "plots" not in report.to_dict() and report.passed is None
    report.plots = ["a.png"]
    assert list(report.to_dict()) == [*FIELDS, "plots"]


def test_model_info_is_what_info_json_prints(binary_model):
    doc = evaluation.model_info(binary_model)
    assert doc == strict_json(run("info", binary_model, "--json").stdout)
    assert doc["sha256"] == evaluation.file_sha256(binary_model)
    assert doc["size"] == binary_model.stat().st_size


# --- resolve_source: pure decisions on metadata and folders -----------------------------


def _meta(dataset="idx", data_dir=None):
    return {"dataset": {"name": dataset}, "config": {"data_dir": data_dir}}


def test_the_recorded_dataset_is_the_default():
    assert evaluation.resolve_source(_meta("mnist-sample"), "test") == ("mnist-sample", None)
    assert evaluation.resolve_source(_meta("mnist-sample"), "test", "mnist") == ("mnist", None)


def test_no_dataset_anywhere_names_the_setting():
    with pytest.raises(ConfigError) as info:
        evaluation.resolve_source({"config": {}}, "test")
    assert info.value.setting == "dataset"
    assert "--" not in str(info.value)  # the library speaks of settings in words


def test_recorded_folder_is_used_only_when_it_holds_the_split(tmp_path, make_idx_dataset):
    full = make_idx_dataset(tmp_path / "full", gz=False)
    assert evaluation.resolve_source(_meta(data_dir=str(full)), "train") == ("idx", str(full))
    half = make_idx_dataset(tmp_path / "half")
    for path in half.glob("t10k-*"):  # the test split's files are gone
        path.unlink()
    assert evaluation.holds_split("idx", "train", half)
    assert not evaluation.holds_split("idx", "test", half)
    for folder in (half, tmp_path / "missing", "", "bad\0path"):
        with pytest.raises(ConfigError) as info:
            evaluation.resolve_source(_meta(data_dir=str(folder)), "test")
        assert info.value.setting == "data_dir"
    assert not (tmp_path / "missing").exists()


def test_an_explicit_dataset_never_takes_the_models_folder(idx_dataset):
    # As before: the recorded folder is a default only when the dataset is too.
    with pytest.raises(ConfigError) as info:
        evaluation.resolve_source(_meta("idx", str(idx_dataset)), "test", dataset="idx")
    assert info.value.setting == "data_dir"
    given = evaluation.resolve_source(_meta("idx", "elsewhere"), "test", "idx", str(idx_dataset))
    assert given == ("idx", str(idx_dataset))
