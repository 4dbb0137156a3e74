"""Selecting classes, scaling, targets, and the shift augmentation."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnistnet.data import (
    prepare_inputs,
    select_indices,
    shift_images,
    targets,
    validation_split,
)


def test_select_indices_first_n_class_after_class():
    labels = np.array([8, 5, 1, 5, 8, 5, 8], dtype=np.uint8)
    index, y = select_indices(labels, (5, 8), samples_per_class=2)
    assert index.tolist() == [1, 3, 0, 4]
    assert y.tolist() == [0, 0, 1, 1]
    index, y = select_indices(labels, (5, 8))
    assert index.tolist() == [1, 3, 5, 0, 4, 6]
    assert y.tolist() == [0, 0, 0, 1, 1, 1]


def test_prepare_inputs_scaling_and_dtype():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    raw = prepare_inputs(images, "raw", np.float64)
    assert raw.tolist() == [[0, 255, 51, 102]] and raw.dtype == np.float64
    unit = prepare_inputs(images, "unit", np.float32)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit, [[0, 1, 0.2, 0.4]], rtol=1e-6)


def test_targets():
    y = np.array([0, 2, 1])
    assert targets(y, 3).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert targets(np.array([0, 1]), 1, np.float32).tolist() == [[0], [1]]


def test_label_smoothing_moves_targets_towards_uniform():
    Y = targets(np.array([0, 2]), 3, smoothing=0.3)
    np.testing.assert_allclose(Y, [[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(Y.sum(axis=1), 1)
    # the one sigmoid output: two classes, y = 1 -> 0.85, y = 0 -> 0.15
    np.testing.assert_allclose(targets(np.array([1, 0]), 1, smoothing=0.3), [[0.85], [0.15]])


def test_shift_images_moves_pixels_and_pads_with_zero():
    X = np.zeros((200, 784))
    X[:, 14 * 28 + 14] = 1  # one bright pixel in the middle of each image
    rng = np.random.default_rng(0)
    out = shift_images(X, 2, rng)
    img = out.reshape(-1, 28, 28)
    assert np.all(img.sum(axis=(1, 2)) == 1)
    ys, xs = np.nonzero(img)[1], np.nonzero(img)[2]
    assert set(ys - 14) <= set(range(-2, 3)) and set(xs - 14) <= set(range(-2, 3))
    assert len(set(zip(ys, xs, strict=True))) > 15  # many different offsets were drawn
    # A pixel on the edge shifted outwards disappears; nothing wraps around.
    edge = np.zeros((50, 784))
    edge[:, 0] = 1
    moved = shift_images(edge, 1, np.random.default_rng(1))
    assert moved.sum() < 50 and moved.reshape(-1, 28, 28)[:, 27, :].sum() == 0


def test_shift_images_is_reproducible():
    X = np.random.default_rng(3).random((30, 784))
    a = shift_images(X, 3, np.random.default_rng(7))
    b = shift_images(X, 3, np.random.default_rng(7))
    assert np.array_equal(a, b)


def test_shift_images_equals_a_pixel_by_pixel_shift():
    X = np.random.default_rng(2).random((40, 784))
    out = shift_images(X, 3, np.random.default_rng(5))
    offsets = np.random.default_rng(5).integers(-3, 4, size=(40, 2))  # the same draws
    expected = np.zeros((40, 28, 28))
    images = X.reshape(40, 28, 28)
    for t, (dy, dx) in enumerate(offsets):
        for i in range(28):
            for j in range(28):
                if 0 <= i - dy < 28 and 0 <= j - dx < 28:
                    expected[t, i, j] = images[t, i - dy, j - dx]
    assert np.array_equal(out, expected.reshape(40, 784))


# --- the validation split -----------------------------------------------------------------


def test_validation_split_takes_the_last_images_of_each_class_in_proportion():
    y = np.repeat([0, 1, 2], [60, 30, 10])  # class after class, as select_indices gives them
    train, held, per_class = validation_split(y, 3, 20)
    assert per_class == [12, 6, 2]  # 20 * 60/100, 20 * 30/100, 20 * 10/100
    assert held.tolist() == [*range(48, 60), *range(84, 90), *range(98, 100)]
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(100))
    assert validation_split(y, 3, 0.2)[2] == per_class  # a fraction: 0.2 of 100 images
    assert len(validation_split(y, 3, 0)[1]) == 0


def test_validation_split_gives_remainders_to_the_largest_shares():
    y = np.repeat([0, 1, 2], [5, 3, 2])
    # shares of 4 images: 2.0, 1.2, 0.8 -> 2, 1, 0, and the one left to class 2 (0.8)
    assert validation_split(y, 3, 4)[2] == [2, 1, 1]


@given(
    counts=st.lists(st.integers(2, 40), min_size=2, max_size=10),
    fraction=st.floats(0.01, 0.45),
    seed=st.integers(0, 2**32 - 1),
)
def test_validation_split_is_stratified_disjoint_and_complete(counts, fraction, seed):
    y = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))
    n = len(y)
    total = int(round(fraction * n))
    if total == 0:
        return
    train, held, per_class = validation_split(y, len(counts), total)
    assert len(held) == total == sum(per_class)
    assert not set(train) & set(held) and len(train) + len(held) == n
    for c, k in enumerate(per_class):
        assert abs(k - total * counts[c] / n) < 1  # its share, rounded
        of_class = np.flatnonzero(y == c)
        assert set(held[y[held] == c]) == set(of_class[len(of_class) - k :])  # the last k
        assert (y[train] == c).sum() >= 1


@pytest.mark.parametrize(
    "requested,message",
    [
        (10, "cannot hold out 10 of the 10 training images"),
        (0.01, "a validation fraction of 0.01 of 10 images is no image"),
        (9, "leaves class 1 without a training image"),
    ],
)
def test_validation_split_refuses_what_cannot_be_done(requested, message):
    y = np.array([0] * 8 + [1] * 2)
    with pytest.raises(ValueError, match=message):
        validation_split(y, 2, requested)
