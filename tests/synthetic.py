"""Pictures made from the bundled MNIST digits, standing in for a person's own handwriting.

Used by ``tests/test_predict.py`` and ``benchmarks/predict_evidence.py``.

``photo`` turns a 28x28 digit into what a phone photo of it looks like:
scaled up 10 to 20 times, dark ink on light paper, placed off-centre with
wide margins, a little uneven light, mild blur and noise, saved as JPEG at
quality 85; a third of them in colour (blue or black ink on cream paper).
``number_page`` pastes a row of digits, with gaps, on one light page.
"""

import io

import numpy as np
from PIL import Image, ImageFilter


def photo(digit, rng):
    """JPEG bytes of a photo of ``digit`` ((28, 28) uint8, white on black)."""
    scale = rng.uniform(10, 20)
    size = round(28 * scale)
    w, h = (round(size * rng.uniform(1.3, 1.8)) for _ in range(2))
    ink = Image.new("L", (w, h), 0)
    where = (int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1)))
    ink.paste(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), where)
    ink = ink.filter(ImageFilter.GaussianBlur(radius=0.1 * scale))  # mild: a tenth of a pixel
    alpha = np.asarray(ink, np.float32)[..., None] / 255
    colour = rng.random() < 1 / 3
    tint = np.array([1.0, 0.97, 0.88] if colour else [1.0], np.float32)
    pen = np.array([35, 45, 120] if colour and rng.random() < 0.5 else [40] * len(tint))
    # Paper lit unevenly: up to 12% darker towards the right.
    light = 1 - rng.uniform(0, 0.12) * np.linspace(0, 1, w, dtype=np.float32)[:, None]
    paper = rng.uniform(190, 240) * tint * light
    pixels = paper + (pen - paper) * alpha
    pixels += 4 * rng.standard_normal((h, w, 1), dtype=np.float32)
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels if colour else pixels[..., 0])
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()


def number_page(digits, rng, scale=1, noise=2.0):
    """A grey page (uint8) with ``digits`` (k, 28, 28) in a row, dark on light, with gaps."""
    k = len(digits)
    gaps = rng.integers(2, 10, size=k - 1)
    margin = 12
    width = 2 * margin + 28 * k + int(gaps.sum())
    ink = np.zeros((28 + 2 * margin, width), np.float32)
    x = margin
    for i, digit in enumerate(digits):
        ink[margin : margin + 28, x : x + 28] = digit / 255
        x += 28 + (int(gaps[i]) if i < k - 1 else 0)
    paper = rng.uniform(200, 240)
    grey = paper - (paper - 30) * ink + rng.normal(0, noise, size=ink.shape)
    img = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.BICUBIC)
    return np.asarray(img)
