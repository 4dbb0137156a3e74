"""Selecting classes, scaling, targets, and the shift augmentation."""

import numpy as np

from mnistnet.data import prepare_inputs, select_indices, shift_images, targets


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
