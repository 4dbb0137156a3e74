"""``mnistnet predict`` end to end: JSON, tables, files, exit codes, and the evidence.

The evidence (issue 10) uses one ten-class model trained once per session
from ``configs/multiclass-fast.toml`` (fewer epochs) on the bundled digits:
- round trip: the 2,000 test digits as 28x28 PNG agree with the network on
  the raw digits for at least 99.5% of them;
- photos: the same digits turned into phone-photo-like JPEGs
  (``synthetic.photo``) are classified within 1.5 points of the originals;
- numbers: rows of 3 to 6 digits on a page are split into the right count
  at least 98% of the time and read exactly at a rate no more than 3
  points below the rate at which all their originals are right.
"""

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import run, strict_json
from PIL import Image
from synthetic import number_page, photo
from test_evaluate import check_schema

from mnistnet import checkpoint, prediction
from mnistnet.data import prepare_inputs
from mnistnet.datasets import load_split
from mnistnet.idx import write_idx
from mnistnet.imagefiles import ImageError
from mnistnet.images import to_mnist
from mnistnet.model import predict_proba as model_proba

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 15  # of configs/multiclass-fast.toml's 100: ~93% instead of ~97%, in 2 s


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The ten-class recipe of configs/multiclass-fast.toml, shortened, trained once."""
    out = tmp_path_factory.mktemp("predict-model")
    result = run(
        "train-multiclass",
        "--config",
        ROOT / "configs" / "multiclass-fast.toml",
        "--dataset",
        "mnist-sample",
        "--epochs",
        EPOCHS,
        "--out",
        out,
        "--no-plots",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    return out / "model.npz"


@pytest.fixture(scope="module")
def test_digits():
    split = load_split("mnist-sample", "test")
    return split.images, split.labels


def predict_json(*args):
    result = run("predict", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def save_png(path, pixels):
    Image.fromarray(pixels).save(path)
    return path


def network_labels(model_path, images):
    """What the network answers on images given to it as they are."""
    params, meta = checkpoint.load_model(model_path)
    return np.array(meta["classes"])[prediction.predict_proba(params, meta, images).argmax(1)]


# --- the JSON document -------------------------------------------------------------------

NUM = (int, float)
ANSWER = {
    "prediction": int,
    "class_name": str,
    "probability": NUM,
    "top": [{"class": int, "probability": NUM}],
}
DIGIT = {"position": int, "box": [int], **ANSWER}
SCHEMA = {
    "schema": str,
    "model": {"path": str, "sha256": str, "task": str, "classes": [int]},
    "preprocess": str,
    "convention": str,
    "predictions": [
        (
            {"path": str, "index": (int, type(None)), **ANSWER},
            {
                "path": str,
                "index": (int, type(None)),
                "prediction": type(None),
                "class_name": type(None),
                "probability": NUM,
                "top": [dict],
                "text": str,
                "digits": [DIGIT],
            },
        )
    ],
    "errors": [{"path": str, "index": (int, type(None)), "error": str}],
}


def test_help():
    result = run("predict", "--help")
    assert result.exit_code == 0
    for word in ("MODEL.npz", "PATH...", "--split-digits", "--show", "--preprocess"):
        assert word in result.output


def test_json_document(model, test_digits, tmp_path):
    images, _ = test_digits
    png = save_png(tmp_path / "seven.png", images[0])
    np.save(tmp_path / "stack.npy", images[1:4])
    doc = predict_json(model, png, tmp_path / "stack.npy", "--top", "3")
    check_schema(doc, SCHEMA)
    assert doc["schema"] == "mnistnet-predictions/1"
    assert doc["model"]["path"] == os.path.abspath(model)
    assert (doc["preprocess"], doc["convention"]) == ("auto", "mnist")
    assert doc["errors"] == []
    entries = doc["predictions"]
    assert [(e["path"], e["index"]) for e in entries] == [
        (str(png), None),
        *((str(tmp_path / "stack.npy"), i) for i in range(3)),
    ]
    for e in entries:
        assert len(e["top"]) == 3
        probs = [t["probability"] for t in e["top"]]
        assert probs == sorted(probs, reverse=True)
        assert (e["prediction"], e["probability"]) == (e["top"][0]["class"], probs[0])
    # The command calls the library: the same numbers as to_mnist + predict_proba,
    # to float32 rounding: the command scores the four images as one batch, and a
    # product of 4 rows and one of 1 row round differently in BLAS.
    params, meta = checkpoint.load_model(model)
    P = prediction.predict_proba(params, meta, to_mnist(png)[None])[0]
    assert entries[0]["probability"] == pytest.approx(P.max(), rel=1e-6)


def test_binary_model_answers_with_its_digits(binary_model, test_digits, tmp_path):
    images, labels = test_digits
    eight = images[np.flatnonzero(labels == 8)[0]]
    doc = predict_json(binary_model, save_png(tmp_path / "eight.png", eight))
    (e,) = doc["predictions"]
    assert doc["model"]["classes"] == [5, 8]
    assert {t["class"] for t in e["top"]} == {5, 8}
    assert sum(t["probability"] for t in e["top"]) == pytest.approx(1)
    # P(8), the second digit, is the network's own sigmoid output.
    params, meta = checkpoint.load_model(binary_model)
    X = prepare_inputs(to_mnist(eight)[None], meta["pixels"], np.dtype(meta["dtype"]).type)
    p8 = model_proba(params, X, "binary")[0, 0]
    assert dict((t["class"], t["probability"]) for t in e["top"])[8] == pytest.approx(p8)


def test_split_digits_json(model, test_digits, tmp_path):
    images, labels = test_digits
    page = number_page(images[[0, 1, 2]], np.random.default_rng(0))
    doc = predict_json(model, save_png(tmp_path / "number.png", page), "--split-digits")
    check_schema(doc, SCHEMA)
    (e,) = doc["predictions"]
    assert [d["position"] for d in e["digits"]] == [0, 1, 2]
    assert e["text"] == "".join(d["class_name"] for d in e["digits"])
    assert e["probability"] == pytest.approx(np.prod([d["probability"] for d in e["digits"]]))
    lefts = [d["box"][0] for d in e["digits"]]
    assert lefts == sorted(lefts)


def test_fashion_model_uses_fashion_convention(model, tmp_path):
    params, meta = checkpoint.load_model(model)
    meta = {**meta, "dataset": {**meta["dataset"], "name": "fashion-mnist"}}
    fashion = tmp_path / "fashion.npz"
    checkpoint.save_model(fashion, params, meta)
    item = np.full((60, 90), 255, np.uint8)
    item[10:50, 20:60] = 30  # a dark square item on white
    path = save_png(tmp_path / "item.png", item)
    out = tmp_path / "seen"
    doc = predict_json(fashion, path, "--save-preprocessed", out)
    assert doc["convention"] == "fashion"
    seen = np.asarray(Image.open(out / "item.png"))
    assert np.array_equal(seen, to_mnist(path, "fashion"))
    assert seen[0].any() and seen[:, 0].any()  # filled to the frame's edges


# --- tables, folders, files --------------------------------------------------------------


def test_table_prints_file_names_literally(model, test_digits, tmp_path):
    images, _ = test_digits
    folder = tmp_path / "in"
    folder.mkdir()
    save_png(folder / "b[red].png", images[0])
    save_png(folder / "a.png", images[1])
    (folder / "[bold]notes.txt").write_text("not a picture")
    result = run("predict", model, folder, "--top", "3")
    assert result.exit_code == 0, result.output
    assert "b[red].png" in result.stdout
    assert result.stdout.index("a.png") < result.stdout.index("b[red].png")  # by name
    assert "top 3" in result.stdout
    assert "Skipped" in result.stderr and "[bold]notes.txt" in result.stderr


def test_save_preprocessed_and_show(model, test_digits, tmp_path):
    images, _ = test_digits
    np.save(tmp_path / "two.npy", images[:2])
    page = save_png(tmp_path / "n.png", number_page(images[2:5], np.random.default_rng(1)))
    show = tmp_path / "pics" / "show.png"
    out = tmp_path / "seen"
    result = run("predict", model, tmp_path / "two.npy", "--save-preprocessed", out, "--show", show)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(out)) == ["two-0.png", "two-1.png"]
    assert np.array_equal(np.asarray(Image.open(out / "two-1.png")), to_mnist(images[1]))
    with Image.open(show) as picture:
        assert picture.format == "PNG" and picture.width >= 600
    result = run("predict", model, page, "--split-digits", "--save-preprocessed", out)
    assert result.exit_code == 0, result.output
    assert {"n-digit1.png", "n-digit2.png", "n-digit3.png"} <= set(os.listdir(out))


def test_preprocess_none_takes_images_as_they_are(model, test_digits, tmp_path):
    images, _ = test_digits
    np.save(tmp_path / "raw.npy", images[:50])
    doc = predict_json(model, tmp_path / "raw.npy", "--preprocess", "none")
    predicted = [e["prediction"] for e in doc["predictions"]]
    assert predicted == list(network_labels(model, images[:50]))
    big = save_png(tmp_path / "big.png", np.zeros((40, 40), np.uint8))
    result = run("predict", model, big, "--preprocess", "none")
    assert result.exit_code == 1
    assert "big.png: is 40x40" in result.stderr


def test_tta_shift_averages_over_shifted_copies(model, test_digits, tmp_path):
    from mnistnet import tta
    from mnistnet.checkpoint import load_model
    from mnistnet.data import prepare_inputs

    images, _ = test_digits
    np.save(tmp_path / "raw.npy", images[:20])
    doc = predict_json(model, tmp_path / "raw.npy", "--preprocess", "none", "--tta-shift", "2")
    assert doc["tta"] == {"shift": 2, "copies": 5}
    params, meta = load_model(model)
    X = prepare_inputs(images[:20], meta["pixels"], np.dtype(meta["dtype"]).type)
    P = tta.predict_proba(params, X, meta["task"], 2)
    got = [e["probability"] for e in doc["predictions"]]
    np.testing.assert_allclose(got, P.max(axis=1), rtol=1e-6)
    plain = predict_json(model, tmp_path / "raw.npy", "--preprocess", "none")
    assert "tta" not in plain
    assert [e["probability"] for e in plain["predictions"]] != got


# --- errors and exit codes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (["--top", "0"], "--top"),
        (["--preprocess", "magic"], "--preprocess"),
        (["--split-digits", "--preprocess", "none"], "--split-digits"),
    ],
)
def test_usage_errors_exit_2(model, tmp_path, args, words):
    path = save_png(tmp_path / "x.png", np.zeros((28, 28), np.uint8))
    result = run("predict", model, path, *args)
    assert result.exit_code == 2
    assert words in result.stderr


def test_no_path_is_a_usage_error(model):
    assert run("predict", model).exit_code == 2


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("empty.png", b"", "empty.png: an empty file"),
        ("text.png", b"hello", "text.png: not a picture"),
        ("white.png", "white", "white.png: no ink found"),
        ("missing.png", None, "missing.png: no such file"),
    ],
)
def test_bad_images_exit_1_with_one_line(model, tmp_path, name, content, words):
    path = tmp_path / name
    if content == "white":
        save_png(path, np.full((30, 30), 255, np.uint8))
    elif content is not None:
        path.write_bytes(content)
    result = run("predict", model, path, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {path}: ")
    assert words in result.stderr and result.stderr.count("\n") == 1


# --- some images cannot be read: the others are still classified -------------------------

NO_INK = "no ink found (the picture is uniform"


@pytest.fixture
def mixed(test_digits, tmp_path, monkeypatch):
    """A folder ``in`` (relative: short paths keep the table on one line per row) of
    good and bad images, in name order: ``blank.png`` (no ink), ``corrupt.png`` (a
    truncated PNG), ``good.png``, ``stack.npy`` (digit, blank, digit)."""
    images, _ = test_digits
    monkeypatch.chdir(tmp_path)
    folder = Path("in")
    folder.mkdir()
    save_png(folder / "blank.png", np.full((30, 30), 255, np.uint8))
    whole = io.BytesIO()
    Image.fromarray(images[3]).save(whole, format="PNG")
    (folder / "corrupt.png").write_bytes(whole.getvalue()[:-60])  # cut short in its data
    save_png(folder / "good.png", images[0])
    np.save(folder / "stack.npy", np.stack([images[1], np.zeros((28, 28), np.uint8), images[2]]))
    return folder


GOOD = [("in/good.png", None), ("in/stack.npy", 0), ("in/stack.npy", 2)]
BAD = [("in/blank.png", None), ("in/corrupt.png", None), ("in/stack.npy", 1)]


def good_only(model, test_digits, tmp_path):
    """predict --json on the three good images alone: what the mixed runs must show."""
    images, _ = test_digits
    save_png(tmp_path / "good.png", images[0])
    np.save(tmp_path / "two.npy", images[[1, 2]])
    return predict_json(model, tmp_path / "good.png", tmp_path / "two.npy")["predictions"]


def test_mixed_folder_json_carries_predictions_and_errors(model, mixed, test_digits, tmp_path):
    result = run("predict", model, mixed, "--json")
    assert result.exit_code == 1
    doc = strict_json(result.stdout)  # one strict document, nothing else on stdout
    check_schema(doc, SCHEMA)
    assert [(e["path"], e["index"]) for e in doc["predictions"]] == GOOD
    assert [(e["path"], e["index"]) for e in doc["errors"]] == BAD
    blank, corrupt, in_stack = (e["error"] for e in doc["errors"])
    assert blank.startswith(NO_INK) and in_stack.startswith(NO_INK)
    assert corrupt.startswith("cannot decode the picture")
    # The good images get exactly the answers they get without the bad ones around.
    alone = good_only(model, test_digits, tmp_path)
    for e, a in zip(doc["predictions"], alone, strict=True):
        assert (e["prediction"], e["top"]) == (a["prediction"], a["top"])
    assert result.stderr == (
        'Error: could not read 3 of 6 images; the rest were classified (see "errors" in the JSON)\n'
    )


def test_mixed_folder_table_shows_every_image_and_writes_the_good(model, mixed, tmp_path):
    seen, show = Path("seen"), Path("show.png")
    result = run("predict", model, mixed, "--save-preprocessed", seen, "--show", show)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    names = [f"{path}[{index}]" if index is not None else path for path, index in GOOD + BAD]
    rows = {name: next(i for i, line in enumerate(lines) if f" {name} " in line) for name in names}
    assert sorted(rows, key=rows.get) == [
        "in/blank.png",
        "in/corrupt.png",
        "in/good.png",
        "in/stack.npy[0]",
        "in/stack.npy[1]",
        "in/stack.npy[2]",
    ]
    for name in ("in/blank.png", "in/stack.npy[1]"):
        assert NO_INK in lines[rows[name]]
    assert "cannot decode the picture" in lines[rows["in/corrupt.png"]]
    json_doc = strict_json(run("predict", model, mixed, "--json").stdout)
    for e in json_doc["predictions"]:  # the good rows show their answers, as always
        name = e["path"] if e["index"] is None else f"{e['path']}[{e['index']}]"
        assert f" {e['class_name']} " in lines[rows[name]]
        assert f"{e['probability']:.3f}" in lines[rows[name]]
    last = result.stderr.splitlines()[-1]
    assert last == "Error: could not read 3 of 6 images; the rest were classified (see the table)"
    # The files hold the good images, each written whole (no temporary names left).
    assert sorted(os.listdir(seen)) == ["good.png", "stack-0.png", "stack-2.png"]
    assert sorted(os.listdir(tmp_path)) == ["in", "seen", "show.png"]
    with Image.open(show) as picture:
        assert picture.format == "PNG"


def test_mixed_folder_quiet_lists_the_errors_on_stderr(model, mixed):
    result = run("predict", model, mixed, "--quiet")
    assert result.exit_code == 1
    assert result.stdout == ""
    head, *listed = result.stderr.splitlines()
    assert head == "Error: could not read 3 of 6 images; the rest were classified:"
    assert [line.split(": ", 1)[0] for line in listed] == [
        "  in/blank.png",
        "  in/corrupt.png",
        "  in/stack.npy[1]",
    ]
    assert listed[0].endswith("grey levels)")


def test_when_every_image_fails_nothing_is_printed_or_written(model, mixed):
    seen, show = Path("seen"), Path("show.png")
    args = ("--save-preprocessed", seen, "--show", show, "--json")
    result = run("predict", model, mixed / "blank.png", mixed / "corrupt.png", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    head, *listed = result.stderr.splitlines()
    assert head == "Error: could not read any of the 2 images:"
    assert listed[0].startswith(f"  in/blank.png: {NO_INK}")
    assert listed[1].startswith("  in/corrupt.png: cannot decode the picture")
    assert not seen.exists() and not show.exists()


def test_an_idx_file_the_reader_rejects_is_one_failure(model, mixed):
    bad = mixed / "short.idx"  # the header promises five 28x28 images; 100 bytes follow
    bad.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(100))
    result = run("predict", model, bad, mixed / "good.png", "--json")
    assert result.exit_code == 1
    doc = strict_json(result.stdout)
    assert [e["path"] for e in doc["predictions"]] == ["in/good.png"]
    (error,) = doc["errors"]
    assert (error["path"], error["index"]) == ("in/short.idx", None)
    assert error["error"].startswith("truncated: header says 5x28x28")


def test_prepare_collects_failures_as_data(mixed):
    files = sorted(str(p) for p in mixed.iterdir())
    with pytest.raises(ImageError, match="in/blank.png: no ink found"):
        list(prediction.prepare(files))
    failures = []
    prepared = list(prediction.prepare(files, failures=failures))
    assert [(p.path, p.index) for p in prepared] == GOOD
    at = [(f.path, f.index, f.at) for f in failures]
    assert at == [("in/blank.png", None, 0), ("in/corrupt.png", None, 0), ("in/stack.npy", 1, 2)]
    assert failures[2].message == f"in/stack.npy[1]: {failures[2].reason}"
    assert failures[2].reason.startswith(NO_INK)


def test_in_reading_order_puts_each_failure_where_it_was_read():
    def failure(name, at):
        return prediction.Failure(name, None, f"{name}: bad", at)

    entries = [{"path": "e0"}, {"path": "e1"}, {"path": "e2"}]
    failures = [failure("f0", 0), failure("f1", 0), failure("f2", 2), failure("f3", 3)]
    rows = prediction.in_reading_order(entries, failures)
    assert [r["path"] for r in rows] == ["f0", "f1", "e0", "e1", "f2", "e2", "f3"]
    assert rows[0] == {"path": "f0", "index": None, "error": "bad"}


def test_bad_model_exits_1(tmp_path):
    path = save_png(tmp_path / "x.png", np.zeros((28, 28), np.uint8))
    (tmp_path / "model.npz").write_text("not a model")
    result = run("predict", tmp_path / "model.npz", path)
    assert result.exit_code == 1
    assert "model.npz" in result.stderr


# --- evidence ----------------------------------------------------------------------------


def test_round_trip_png_agrees_with_the_idx_digits(model, test_digits, tmp_path):
    images, _ = test_digits
    write_idx(tmp_path / "test-images.idx", images)
    raw = predict_json(model, tmp_path / "test-images.idx", "--preprocess", "none")
    direct = [e["prediction"] for e in raw["predictions"]]
    # `evaluate` scores the same network on the same digits: same accuracy.
    report = json.loads(run("evaluate", model, "--dataset", "mnist-sample", "--json").stdout)
    assert np.mean(np.array(direct) == test_digits[1]) == pytest.approx(report["accuracy"])

    folder = tmp_path / "png"
    folder.mkdir()
    for i, image in enumerate(images):
        save_png(folder / f"{i:04d}.png", image)
    doc = predict_json(model, folder)
    via_png = [e["prediction"] for e in doc["predictions"]]
    assert len(via_png) == len(images) == 2000
    assert np.mean(np.array(via_png) == np.array(direct)) >= 0.995


def test_photos_read_as_well_as_the_originals(model, test_digits, tmp_path):
    images, labels = test_digits
    n = 300  # ~5 s; one digit is a third of a point
    rng = np.random.default_rng(2026)
    for i in range(n):
        (tmp_path / f"{i:03d}.jpg").write_bytes(photo(images[i], rng))
    doc = predict_json(model, tmp_path)
    on_photos = np.mean([e["prediction"] for e in doc["predictions"]] == labels[:n])
    on_originals = np.mean(network_labels(model, images[:n]) == labels[:n])
    assert on_photos >= on_originals - 0.015, (on_photos, on_originals)


def test_numbers_are_split_and_read(model, test_digits, tmp_path):
    images, labels = test_digits
    rng = np.random.default_rng(7)
    picks = [rng.choice(len(images), size=rng.integers(3, 7), replace=False) for _ in range(100)]
    for i, pick in enumerate(picks):
        save_png(tmp_path / f"{i:03d}.png", number_page(images[pick], rng))
    doc = predict_json(model, tmp_path, "--split-digits")
    counted = read = originals_right = 0
    for e, pick in zip(doc["predictions"], picks, strict=True):
        counted += len(e["digits"]) == len(pick)
        read += e["text"] == "".join(map(str, labels[pick]))
        originals_right += np.array_equal(network_labels(model, images[pick]), labels[pick])
    assert counted >= 98
    assert read >= originals_right - 3, (read, originals_right)
