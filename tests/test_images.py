"""MNIST's preprocessing, step by step, on synthetic pictures whose answer is known."""

import numpy as np
import pytest

from mnistnet import images, ink
from mnistnet.datasets import load_split
from mnistnet.images import NoInkError, split_digits, to_mnist


def page(h, w, shapes, paper=0, pen=255):
    """A grey (h, w) uint8 picture with rectangles ``(y0, y1, x0, x1)`` drawn in ``pen``."""
    pixels = np.full((h, w), paper, np.uint8)
    for y0, y1, x0, x1 in shapes:
        pixels[y0:y1, x0:x1] = pen
    return pixels


def box_of(frame):
    y0, y1, x0, x1 = ink.bounding_box(frame > 0)
    return y1 - y0, x1 - x0


def test_white_square_on_black_lands_centred():
    out = to_mnist(page(100, 80, [(10, 40, 45, 75)]))  # 30x30, far off-centre
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert box_of(out) == (20, 20)
    assert ink.centre_of_mass(out.astype(float)) == pytest.approx((14, 14), abs=0.5)
    assert out.max() == 255 and out[out > 0].min() == 255  # a solid square stays solid


def test_longer_side_becomes_20_and_aspect_ratio_is_kept():
    tall = to_mnist(page(200, 200, [(20, 180, 90, 130)]))  # 160 x 40
    assert box_of(tall) == (20, 5)
    wide = to_mnist(page(50, 300, [(20, 35, 30, 270)]))  # 15 x 240
    height, width = box_of(wide)
    assert width == 20 and height in (1, 2)
    # The centre of mass of the short side also lands on 14.
    assert ink.centre_of_mass(tall.astype(float)) == pytest.approx((14, 14), abs=0.5)


@pytest.mark.parametrize("paper, pen", [(0, 255), (255, 0), (200, 40), (40, 200)])
def test_polarity_either_way_gives_white_ink_on_black(paper, pen):
    picture = page(60, 60, [(10, 50, 25, 35), (10, 20, 25, 50)], paper=paper, pen=pen)
    assert images.ink_polarity(picture) == (pen < paper)
    reference = to_mnist(page(60, 60, [(10, 50, 25, 35), (10, 20, 25, 50)]))
    assert np.array_equal(to_mnist(picture), reference)


def test_polarity_comes_from_the_border_even_when_ink_covers_most_pixels():
    # Ink is the majority of pixels, but the border is paper: still dark ink on light.
    picture = page(40, 40, [(2, 38, 2, 38)], paper=230, pen=20)
    assert images.ink_polarity(picture)


def test_contrast_stretch_maps_paper_to_0_and_ink_to_255():
    rng = np.random.default_rng(0)
    grey = page(60, 60, [(20, 40, 20, 40)], paper=150, pen=110)
    noisy = np.clip(grey + rng.normal(0, 2, grey.shape), 0, 255).astype(np.uint8)
    bright = images.normalise(noisy)
    assert bright.dtype == np.float32
    assert np.mean(bright[:15] == 0) > 0.99  # paper noise is gone
    pen = bright[22:38, 22:38]
    assert np.percentile(pen, images.INK_PERCENTILE) == pytest.approx(255, abs=0.5)
    assert np.median(pen) > 200
    low_contrast = to_mnist(noisy)
    assert box_of(low_contrast) == (20, 20)


def test_ink_box_drops_specks_and_keeps_the_soft_rim():
    picture = page(100, 100, [(30, 70, 40, 60)])
    picture[5, 5] = 255  # a speck of dust far away
    picture[29, 40:60] = 60  # a faint rim row, touching the ink
    picture[80, 90] = 30  # faint noise far away
    bright = images.normalise(picture)
    mask = images.ink_mask(bright)
    assert not mask[5, 5]
    assert images.ink_box(bright, mask) == (29, 70, 40, 60)


def test_a_large_crop_is_made_bilevel_before_shrinking():
    crop = np.full((200, 100), 128, np.float32)
    mask = np.zeros(crop.shape, bool)
    mask[:, 40:60] = True
    sharp = images.sharpen(crop, mask, 20)
    assert set(np.unique(sharp)) == {0, 255}
    small = np.full((20, 10), 128, np.float32)
    assert images.sharpen(small, np.zeros((20, 10), bool), 20) is small


def test_fashion_convention_fills_the_frame_and_centres_the_box():
    out = to_mnist(page(80, 120, [(10, 70, 20, 50)]), convention="fashion")  # 60 x 30
    y0, y1, x0, x1 = ink.bounding_box(out > 0)
    assert (y1 - y0, x1 - x0) == (28, 14)
    assert (x0, 28 - x1) == (7, 7)


def test_an_mnist_digit_comes_out_essentially_unchanged():
    digits = load_split("mnist-sample", "test").images[:200]
    out = np.stack([to_mnist(d) for d in digits])
    diff = np.abs(out.astype(int) - digits)
    assert np.mean(diff.max(axis=(1, 2)) <= 3) > 0.95  # contrast-stretch rounding
    assert np.mean(diff) < 1


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((30, 30)), np.full((30, 30), 255), np.zeros((1, 1)), np.full((1, 1), 255)],
    ids=["black", "white", "1x1 black", "1x1 white"],
)
def test_no_ink_is_said_not_guessed(pixels):
    with pytest.raises(NoInkError, match="no ink found"):
        to_mnist(pixels.astype(np.uint8))


def test_faint_noise_alone_is_no_ink():
    noise = np.random.default_rng(1).normal(200, 3, (50, 50))
    with pytest.raises(NoInkError, match="no ink found"):
        to_mnist(np.clip(noise, 0, 255).astype(np.uint8))


def test_arrays_of_floats_and_bad_shapes():
    square = page(40, 40, [(10, 30, 10, 30)])
    assert np.array_equal(to_mnist(square / 255.0), to_mnist(square))
    with pytest.raises(images.ImageError, match="expected one grey image"):
        to_mnist(np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="convention"):
        to_mnist(square, convention="cifar")


# --- splitting a row of digits -----------------------------------------------------------


def test_split_finds_separate_digits_left_to_right():
    strokes = [(10, 50, 70, 78), (10, 50, 10, 30), (10, 50, 120, 150)]  # out of order
    digits = split_digits(page(60, 170, strokes, paper=255, pen=0))
    assert [d.box for d in digits] == [(10, 10, 30, 50), (70, 10, 78, 50), (120, 10, 150, 50)]
    assert all(d.image.shape == (28, 28) for d in digits)


def test_split_keeps_a_two_stroke_digit_together():
    five = [(10, 14, 22, 40), (16, 50, 10, 30)]  # a top bar over a body, not touching
    dot = [(30, 35, 44, 49)]  # a stray dot close by: joins its neighbour
    one = [(10, 50, 70, 75)]
    digits = split_digits(page(60, 90, five + dot + one, paper=230, pen=30))
    assert len(digits) == 2
    assert digits[0].box == (10, 10, 49, 50)


def test_split_merges_tall_strokes_that_overlap_horizontally():
    bracket = [(10, 50, 10, 14), (10, 13, 10, 22), (47, 50, 10, 22)]  # [ : x 10..22
    hook = [(10, 50, 26, 30), (20, 23, 15, 30)]  # -| : x 15..30, one column from [
    assert len(split_digits(page(60, 50, bracket + hook))) == 1
    # Slanted neighbours whose boxes overlap by 3 of their 20 columns stay two digits.
    left = [(10, 30, 10, 30), (30, 50, 10, 20)]
    right = [(32, 50, 27, 47), (10, 32, 37, 47)]
    assert len(split_digits(page(60, 60, left + right))) == 2


def test_split_digits_each_is_preprocessed_like_a_single_digit():
    row = page(60, 140, [(10, 50, 10, 30), (10, 50, 90, 130)])
    left, right = split_digits(row)
    assert np.array_equal(left.image, to_mnist(page(60, 60, [(10, 50, 10, 30)])))
    assert np.array_equal(right.image, to_mnist(page(60, 60, [(10, 50, 10, 50)])))
