"""Otsu's threshold, blobs, dilation and centre of mass, against plain reference versions."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mnistnet import ink


def reference_otsu(image):
    """Between-class variance for every t, written out the textbook way."""
    x = image.ravel().astype(float)
    scores = []
    for t in range(255):
        low, high = x[x <= t], x[x > t]
        if len(low) == 0 or len(high) == 0:
            scores.append(0.0)
            continue
        w0, w1 = len(low) / len(x), len(high) / len(x)
        scores.append(w0 * w1 * (low.mean() - high.mean()) ** 2)
    return np.array(scores)


def reference_blobs(mask):
    """Blob sizes by flood fill, 8-connected."""
    h, w = mask.shape
    seen = np.zeros(mask.shape, bool)
    sizes = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        stack, size = [start], 0
        while stack:
            y, x = stack.pop()
            size += 1
            around = [(y + dy, x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            for p in around:
                if 0 <= p[0] < h and 0 <= p[1] < w and mask[p] and not seen[p]:
                    seen[p] = True
                    stack.append(p)
        sizes.append(size)
    return sorted(sizes)


@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_otsu_maximises_between_class_variance(image):
    scores = reference_otsu(image)
    t = ink.otsu_threshold(image)
    assert scores[t] == pytest.approx(scores.max(), rel=1e-9, abs=1e-9)


def test_otsu_splits_two_peaks_in_the_middle_of_the_gap():
    image = np.array([[20] * 30 + [200] * 10], np.uint8)
    assert ink.otsu_threshold(image) == (20 + 199) // 2
    noisy = np.random.default_rng(0).normal([[60] * 500 + [180] * 100], 8)
    t = ink.otsu_threshold(np.clip(noisy, 0, 255).astype(np.uint8))
    assert 90 < t < 150


@pytest.mark.parametrize("seed", range(5))
def test_blobs_agree_with_flood_fill(seed):
    mask = np.random.default_rng(seed).random((40, 50)) < 0.35
    blobs = ink.find_blobs(mask)
    assert sorted(blobs.area.tolist()) == reference_blobs(mask)
    assert np.array_equal(blobs.mask(), mask)
    for b in range(len(blobs)):
        part = blobs.mask([b])
        box = (blobs.y0[b], blobs.y1[b], blobs.x0[b], blobs.x1[b])
        assert part.sum() == blobs.area[b]
        assert ink.bounding_box(part) == box
        y0, y1, x0, x1 = box
        assert np.array_equal(blobs.mask([b], window=box), part[y0:y1, x0:x1])


def test_blobs_touching_at_a_corner_are_one():
    mask = np.zeros((5, 5), bool)
    mask[1, 1] = mask[2, 2] = mask[3, 1] = True  # a diagonal chain
    mask[0, 4] = True  # alone
    blobs = ink.find_blobs(mask)
    assert sorted(blobs.area.tolist()) == [1, 3]
    assert len(ink.find_blobs(np.zeros((3, 3), bool))) == 0


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_dilate_is_a_square_neighbourhood(radius):
    mask = np.random.default_rng(radius).random((15, 17)) < 0.05
    padded = np.pad(mask, radius)
    size = 2 * radius + 1
    expected = np.lib.stride_tricks.sliding_window_view(padded, (size, size)).any(axis=(2, 3))
    assert np.array_equal(ink.dilate(mask, radius), expected)


def test_bounding_box_and_centre_of_mass():
    image = np.zeros((10, 12))
    image[2:5, 3:9] = 1.0
    assert ink.bounding_box(image > 0) == (2, 5, 3, 9)
    assert ink.bounding_box(image > 1) is None
    assert ink.centre_of_mass(image) == pytest.approx((3.0, 5.5))
