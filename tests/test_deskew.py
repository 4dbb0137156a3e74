"""Deskewing: moments, an independent per-pixel implementation, and the models that use it."""

import json

import numpy as np
import pytest
from helpers import run

from mnistnet import deskew as deskew_module
from mnistnet.data import prepare_inputs
from mnistnet.deskew import deskew, moments
from mnistnet.pipeline import load_task_data

H = 13.5  # the centre of a 28-pixel side


def _slanted_bar(slope, r0=13.5, c0=13.5):
    """A line of slope ``slope`` columns per row through ``(r0, c0)``, two pixels wide."""
    image = np.zeros((28, 28))
    for r in range(4, 24):
        c = c0 + slope * (r - r0)
        left = int(np.floor(c))
        image[r, left : left + 2] = 1.0
    return image.reshape(1, -1)


def _reference(image):
    """Deskew one image the slow way: moments by loops, bilinear reads pixel by pixel."""
    img = image.reshape(28, 28).astype(np.float64)
    total = img.sum()
    rows, cols = np.mgrid[:28, :28]
    r0, c0 = (rows * img).sum() / total, (cols * img).sum() / total
    m_rr = ((rows - r0) ** 2 * img).sum() / total
    m_rc = ((rows - r0) * (cols - c0) * img).sum() / total
    alpha = m_rc / m_rr
    out = np.zeros((28, 28))
    for r in range(28):
        for c in range(28):
            y, x = r + r0 - H, c + alpha * (r - H) + c0 - H
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            fy, fx = y - y0, x - x0
            value = 0.0
            for dy, wy in ((0, 1 - fy), (1, fy)):
                for dx, wx in ((0, 1 - fx), (1, fx)):
                    yy, xx = y0 + dy, x0 + dx
                    if 0 <= yy < 28 and 0 <= xx < 28:
                        value += wy * wx * img[yy, xx]
            out[r, c] = value
    return out.reshape(-1)


def test_matches_the_slow_reference_on_real_digits():
    images = load_task_data("mnist-sample", "train", range(10)).images[:6]
    X = images.reshape(6, -1).astype(np.float64) / 255
    got = deskew(X)
    for i in range(6):
        np.testing.assert_allclose(got[i], _reference(X[i]), atol=1e-9)


@pytest.mark.parametrize("slope", [-0.6, -0.25, 0.3, 0.7])
def test_a_slanted_bar_comes_out_upright_and_centred(slope):
    X = _slanted_bar(slope, r0=12.0, c0=10.0)
    before = moments(X)
    assert abs(before[4] / before[3]) > 0.2  # skewed to start with
    mass, r0, c0, m_rr, m_rc = moments(deskew(X))
    assert abs(m_rc[0] / m_rr[0]) < 0.03  # the main axis is now the vertical
    assert r0[0] == pytest.approx(H, abs=0.3) and c0[0] == pytest.approx(H, abs=0.3)
    assert mass[0] == pytest.approx(before[0][0], rel=0.05)  # no ink lost


def test_an_upright_centred_digit_is_left_exactly_as_it_is():
    image = np.zeros((28, 28), np.float32)
    image[8:20, 12:16] = 1.0  # symmetric about the centre: no skew, centre of mass at 13.5
    image[12:16, 9:19] = 0.5
    X = image.reshape(1, -1)
    np.testing.assert_array_equal(deskew(X), X)


def test_blank_images_stay_blank_and_values_stay_in_range():
    rng = np.random.default_rng(0)
    X = rng.random((5, 784)).astype(np.float32)
    X[2] = 0.0
    out = deskew(X)
    assert out.dtype == np.float32 and out.shape == X.shape
    assert not out[2].any()
    assert out.min() >= 0.0 and out.max() <= X.max()


def test_in_place_and_in_chunks_give_the_same_images(monkeypatch):
    images = load_task_data("mnist-sample", "train", range(10)).images[:50]
    X = images.reshape(50, -1).astype(np.float32) / 255
    whole = deskew(X)
    monkeypatch.setattr(deskew_module, "CHUNK", 7)
    in_place = X.copy()
    assert deskew(in_place, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, whole)


def test_deskewed_pixels_are_unit_pixels_deskewed():
    images = load_task_data("mnist-sample", "test", range(10)).images[:20]
    unit = prepare_inputs(images, "unit", np.float32)
    np.testing.assert_array_equal(prepare_inputs(images, "deskewed", np.float32), deskew(unit))


def test_evaluate_and_predict_prepare_images_as_a_deskewed_model_was_trained(tmp_path):
    args = ["train-multiclass", "--dataset", "mnist-sample", "--samples-per-class", 100,
            "--pixels", "deskewed", "--optimizer", "adam", "--lr", "0.003", "--batch-size", 64,
            "--init", "xavier", "--hidden", 32, "--epochs", 4, "--out", tmp_path / "run",
            "--json", "--no-plots", "--quiet"]  # fmt: skip
    trained = json.loads(run(*args).stdout)
    assert trained["config"]["pixels"] == "deskewed"
    test = trained["metrics"]["test"]
    assert test["accuracy"] > 0.7
    model = tmp_path / "run" / "model.npz"
    evaluated = json.loads(run("evaluate", model, "--json").stdout)
    assert evaluated["accuracy"] == test["accuracy"]  # the same preparation, the same score
    assert evaluated["loss"] == pytest.approx(test["loss"], rel=1e-5)
    # predict: test images written as a file, read back as they are and deskewed
    images = load_task_data("mnist-sample", "test", range(10)).images[:3]
    np.save(tmp_path / "three.npy", images)
    predicted = json.loads(
        run("predict", model, tmp_path / "three.npy", "--preprocess", "none", "--json").stdout
    )
    from mnistnet.checkpoint import load_model
    from mnistnet.model import predict_proba

    params, _ = load_model(model)
    P = predict_proba(params, deskew(images.reshape(3, -1).astype(np.float32) / 255), "multiclass")
    rows = predicted["predictions"]
    assert [row["prediction"] for row in rows] == [int(p) for p in P.argmax(axis=1)]
    expected = P.max(axis=1)
    assert [row["probability"] for row in rows] == pytest.approx(expected.tolist(), rel=1e-5)


def test_the_pictures_of_a_deskewed_model_show_the_deskewed_image(tmp_path):
    """predict --save-preprocessed and serve's ``image`` are what the network read."""
    import io

    from PIL import Image

    from mnistnet.images import to_mnist
    from mnistnet.webapp import DigitReader

    args = ["train-multiclass", "--dataset", "mnist-sample", "--samples-per-class", 20,
            "--pixels", "deskewed", "--hidden", 8, "--epochs", 1, "--out", tmp_path / "run",
            "--no-plots", "--quiet"]  # fmt: skip
    run(*args)
    model = tmp_path / "run" / "model.npz"
    images = load_task_data("mnist-sample", "test", range(10)).images[:2]
    np.save(tmp_path / "two.npy", images)
    run("predict", model, tmp_path / "two.npy", "--preprocess", "none",
        "--save-preprocessed", tmp_path / "seen", "--quiet")  # fmt: skip
    expected = np.rint(deskew(images.reshape(2, -1).astype(np.float32) / 255) * 255)
    for k in range(2):
        saved = np.asarray(Image.open(tmp_path / "seen" / f"two-{k}.png"))
        np.testing.assert_array_equal(saved.reshape(-1), expected[k])
        assert not np.array_equal(saved, images[k])  # not the image as it was given
    # serve: a drawn slanted stroke comes back upright
    picture = np.zeros((100, 100), np.uint8)
    for r in range(15, 85):
        c = 30 + (r - 15) * 0.5
        picture[r, int(c) : int(c) + 8] = 255
    body = io.BytesIO()
    Image.fromarray(picture).save(body, format="PNG")
    answer = DigitReader(str(model)).read(body.getvalue(), "image/png")
    seen = np.array(answer["predictions"][0]["image"], np.uint8)
    plain = to_mnist(picture, "mnist")
    expected = np.rint(deskew(plain.reshape(1, -1).astype(np.float32) / 255) * 255)
    np.testing.assert_array_equal(seen, expected[0])
    assert not np.array_equal(seen, plain.reshape(-1))
