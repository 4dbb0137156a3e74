"""Distortions: the warp reads where its formula says, keeps pixels in range and labels with
their images, repeats for a seed, and the elastic field has Simard's covariance."""

import math

import numpy as np
import pytest

from mnistnet.augment import (
    SIDE,
    Distortion,
    WarpWorkspace,
    bilinear,
    elastic_field,
    gaussian_matrix,
)
from mnistnet.data import shift_images
from mnistnet.training import Batches

STRONG = Distortion(rotate=30, scale=0.3, shear=0.5, elastic_alpha=40, elastic_sigma=3)
CENTRE = (SIDE - 1) / 2


def _images(n=20, seed=0, high=1.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.random((n, SIDE * SIDE)) * high).astype(dtype)


def test_no_distortion_and_no_shift_gives_the_images_back():
    X = _images()
    assert not Distortion().active
    assert np.array_equal(Distortion().apply(X, np.random.default_rng(0)), X)


def test_shifts_inside_the_warp_are_the_shifts_of_shift_images():
    X = _images(dtype=np.float64)
    warped = Distortion().apply(X, np.random.default_rng(3), shift=3)
    assert np.array_equal(warped, shift_images(X, 3, np.random.default_rng(3)))


def test_bilinear_reads_a_weighted_average_of_four_pixels_and_zero_outside():
    X = np.arange(2 * SIDE * SIDE, dtype=np.float64).reshape(2, -1) % 97
    image = X[1].reshape(SIDE, SIDE)
    sy = np.full((2, SIDE * SIDE), 3.0)
    sx = np.full((2, SIDE * SIDE), -5.0)  # far outside: 0
    sy[1, 0], sx[1, 0] = 2.25, 5.5
    sy[1, 1], sx[1, 1] = -0.5, 0.0  # half in the background above row 0
    sy[1, 2], sx[1, 2] = 27.0, 27.0  # the last pixel
    out = bilinear(X, sy, sx)
    upper = 0.5 * image[2, 5] + 0.5 * image[2, 6]
    lower = 0.5 * image[3, 5] + 0.5 * image[3, 6]
    assert out[1, 0] == pytest.approx(0.75 * upper + 0.25 * lower, rel=1e-12)
    assert out[1, 1] == pytest.approx(0.5 * image[0, 0])
    assert out[1, 2] == image[27, 27]
    assert not out[0].any() and not out[1, 3:].any()


def test_a_rotation_keeps_every_distance_to_the_centre_and_turns_by_at_most_the_angle():
    n = 50
    sy, sx = Distortion(rotate=20).source_coordinates(n, np.random.default_rng(1), ws=None)
    i, j = np.divmod(np.arange(SIDE * SIDE), SIDE)
    dy, dx = sy - CENTRE, sx - CENTRE
    radius = np.broadcast_to(np.hypot(i - CENTRE, j - CENTRE), dy.shape)
    np.testing.assert_allclose(np.hypot(dy, dx), radius, atol=1e-4)
    corner = SIDE - 1  # the bottom-right pixel: at 45 degrees from the centre
    turn = np.degrees(np.arctan2(dy[:, corner * SIDE + corner], dx[:, corner * SIDE + corner]))
    turn -= 45
    assert np.abs(turn).max() <= 20 + 1e-3 and np.abs(turn).max() > 10  # drawn, not fixed
    assert len(np.unique(np.round(turn, 3))) == n  # each image its own angle


def test_a_scaling_scales_every_distance_by_one_factor_per_image_within_bounds():
    sy, sx = Distortion(scale=0.2).source_coordinates(40, np.random.default_rng(2))
    i, j = np.divmod(np.arange(SIDE * SIDE), SIDE)
    ratio = np.hypot(sy - CENTRE, sx - CENTRE) / np.hypot(i - CENTRE, j - CENTRE)[None]
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), rtol=1e-4)
    assert ratio.min() >= 0.8 - 1e-5 and ratio.max() <= 1.2 + 1e-5


def test_flip_mirrors_left_right_with_its_probability():
    X = _images(n=400)
    mirrored = X.reshape(-1, SIDE, SIDE)[:, :, ::-1].reshape(len(X), -1)
    assert np.array_equal(Distortion(flip=1).apply(X, np.random.default_rng(0)), mirrored)
    half = Distortion(flip=0.5).apply(X, np.random.default_rng(1))
    flipped = np.all(half == mirrored, axis=1)
    assert np.array_equal(flipped, ~np.all(half == X, axis=1))  # each image one or the other
    assert 150 < flipped.sum() < 250


def test_a_shear_moves_x_by_the_shear_times_y_and_keeps_y():
    sy, sx = Distortion(shear=0.3).source_coordinates(30, np.random.default_rng(4))
    i, j = np.divmod(np.arange(SIDE * SIDE), SIDE)
    np.testing.assert_allclose(sy, np.broadcast_to(i, sy.shape), atol=1e-4)
    shear = (sx - j)[:, SIDE * SIDE - 1] / (SIDE - 1 - CENTRE)  # the bottom row's pixel
    np.testing.assert_allclose(sx - j, shear[:, None] * (i - CENTRE)[None], atol=1e-4)
    assert np.abs(shear).max() <= 0.3 + 1e-6


def _jacobian_determinants(sy, sx):
    """det of d(sy, sx) / d(i, j) for each image, from the pixels (0, 0), (1, 0) and (0, 1)."""
    dy_di, dx_di = sy[:, SIDE] - sy[:, 0], sx[:, SIDE] - sx[:, 0]
    dy_dj, dx_dj = sy[:, 1] - sy[:, 0], sx[:, 1] - sx[:, 0]
    return dy_di * dx_dj - dy_dj * dx_di


def test_rotation_and_shear_together_keep_areas_and_scaling_scales_them():
    rng = np.random.default_rng(6)
    sy, sx = Distortion(rotate=40, shear=0.5).source_coordinates(30, rng)
    np.testing.assert_allclose(_jacobian_determinants(sy, sx), 1, rtol=1e-4)
    sy, sx = Distortion(rotate=40, shear=0.5, scale=0.3).source_coordinates(30, rng)
    zoom = np.hypot(sy[:, 1] - sy[:, 0], sx[:, 1] - sx[:, 0])  # along a row: the zoom only
    sheared = np.hypot(sy[:, SIDE] - sy[:, 0], sx[:, SIDE] - sx[:, 0])  # down: sheared too
    assert np.all(sheared >= zoom * (1 - 1e-4))
    np.testing.assert_allclose(_jacobian_determinants(sy, sx), zoom**2, rtol=1e-4)


@pytest.mark.parametrize("high", [1.0, 255.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strong_distortions_keep_pixels_in_range(high, dtype):
    X = _images(n=200, high=high, dtype=dtype)
    X[:, ::7] = high  # some pixels at the very top of the range
    out = STRONG.apply(X, np.random.default_rng(5), shift=3)
    assert out.dtype == dtype and out.shape == X.shape
    assert out.min() >= 0 and out.max() <= high
    assert not np.array_equal(out, X)


def test_the_same_seed_gives_the_same_images_and_another_seed_others():
    X = _images()
    ws = WarpWorkspace(32)  # a workspace, reused, gives what fresh arrays give
    a = STRONG.apply(X, np.random.default_rng(7), shift=2, ws=ws)
    b = STRONG.apply(X, np.random.default_rng(7), shift=2)
    c = STRONG.apply(X, np.random.default_rng(8), shift=2, ws=ws)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_elastic_fields_have_the_covariance_of_a_smoothed_uniform_field():
    """Simard's field alpha * G U G^T, U uniform(-1, 1), has covariance
    (alpha^2 / 3) (G G^T)[i, i'] (G G^T)[j, j'] between pixels (i, j) and (i', j')."""
    alpha, sigma, n = 10.0, 4.0, 4000
    fields = elastic_field(n, np.random.default_rng(0), alpha, sigma, np.float64)
    K = gaussian_matrix(sigma) @ gaussian_matrix(sigma).T
    pairs = [((14, 14), (14, 14)), ((3, 20), (3, 20)), ((14, 14), (16, 11)), ((0, 0), (0, 0))]
    for (i, j), (k, m) in pairs:
        expected = alpha**2 / 3 * K[i, k] * K[j, m]
        measured = np.mean(fields[:, i * SIDE + j] * fields[:, k * SIDE + m])
        assert measured == pytest.approx(expected, rel=0.1), (i, j, k, m)
    assert abs(fields.mean()) < 0.05 * math.sqrt(alpha**2 / 3 * K[14, 14] ** 2)


def test_the_direct_construction_has_the_same_covariance():
    """The formula the test above trusts: smoothing uniform noise with G on both sides."""
    alpha, sigma, n = 10.0, 4.0, 3000
    rng = np.random.default_rng(1)
    G = gaussian_matrix(sigma)
    U = rng.uniform(-1, 1, (n, SIDE, SIDE))
    direct = alpha * (G @ U @ G.T)
    K = G @ G.T
    assert np.var(direct[:, 14, 14]) == pytest.approx(alpha**2 / 3 * K[14, 14] ** 2, rel=0.1)
    assert np.mean(direct[:, 14, 14] * direct[:, 16, 11]) == pytest.approx(
        alpha**2 / 3 * K[14, 16] * K[14, 11], rel=0.1
    )


def test_gaussian_matrix_rows_are_the_normalised_kernel():
    G = gaussian_matrix(2.0)
    assert G[14].sum() == pytest.approx(1.0)  # far from the edges: the whole kernel
    assert G[0].sum() < 0.7  # at the edge, half of it falls outside (counts as 0)
    assert G[14, 14] > G[14, 15] > G[14, 16] and G[14, 13] == G[14, 15]
    assert G[14, 14 + 9] == 0  # cut at 4 sigma


def test_batches_keep_each_label_with_its_distorted_image():
    """Each image says its label in a block around the centre that mild warps keep there."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 300)
    X = np.zeros((300, SIDE, SIDE), np.float32)
    X[:, 9:19, 9:19] = ((y + 1) / 10)[:, None, None]
    X = X.reshape(300, -1)
    mild = Distortion(rotate=10, scale=0.1, shear=0.1, elastic_alpha=3)
    batches = Batches(X, y, 10, batch_size=64, augment_shift=1, rng=rng, distortion=mild)
    seen = []
    for Xb, Yb, yb in batches:
        centre = Xb.reshape(-1, SIDE, SIDE)[:, 14, 14]
        assert np.array_equal(np.round(centre * 10).astype(int) - 1, yb)
        assert np.array_equal(Yb.argmax(1), yb)
        assert len(np.unique(Xb)) > 11  # warped: values between the blocks' levels
        seen.append(len(yb))
    assert sum(seen) == 300
