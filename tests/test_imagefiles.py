"""Reading pictures, stacks and folders; hostile files fail with one named error."""

import gzip
import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from mnistnet import imagefiles
from mnistnet.idx import write_idx
from mnistnet.imagefiles import ImageError, expand_paths, read_picture, read_pictures

# An L-shaped mark: any rotation or mirror of it is a different array.
MARK = np.zeros((6, 10), np.uint8)
MARK[1:5, 1] = 255
MARK[4, 1:8] = 255


def png_bytes(width, height, payload=b"\0" * 100):
    """A PNG whose header claims ``width`` x ``height`` grey pixels (the data is not checked)."""

    def chunk(kind, data):
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(payload))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "orientation, turn",
    [
        (1, lambda a: a),
        (3, lambda a: np.rot90(a, 2)),
        (6, lambda a: np.rot90(a, -1)),  # stored sideways: shown turned clockwise
        (8, lambda a: np.rot90(a, 1)),
        (2, lambda a: a[:, ::-1]),
    ],
)
def test_exif_orientation_is_applied(tmp_path, orientation, turn):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.png"
    Image.fromarray(MARK).save(path, exif=exif)
    assert np.array_equal(read_picture(path), turn(MARK))


def test_exif_orientation_survives_shrinking_a_large_picture(tmp_path, monkeypatch):
    monkeypatch.setattr(imagefiles, "MAX_SIDE", 5)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "big.png"
    Image.fromarray(np.kron(MARK, np.ones((2, 2), np.uint8))).save(path, exif=exif)
    pixels = read_picture(path)
    assert pixels.shape == (5, 3)  # 12x20 shrunk to fit 5x5, then turned
    assert pixels.shape[0] > pixels.shape[1]


def test_alpha_is_flattened_onto_white(tmp_path):
    rgba = np.zeros((6, 10, 4), np.uint8)  # transparent everywhere...
    rgba[MARK > 0] = (0, 0, 0, 255)  # ...but the opaque black mark
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.array_equal(read_picture(tmp_path / "a.png"), 255 - MARK)
    palette = Image.fromarray(255 - MARK).convert("P")
    palette.save(tmp_path / "p.png", transparency=255)  # white -> transparent
    assert np.array_equal(read_picture(tmp_path / "p.png"), 255 - MARK)


def test_colour_and_16_bit_become_grey(tmp_path):
    rgb = np.stack([MARK, MARK // 2, np.zeros_like(MARK)], axis=-1)
    Image.fromarray(rgb, "RGB").save(tmp_path / "c.png")
    grey = read_picture(tmp_path / "c.png")
    assert grey.dtype == np.uint8 and grey.shape == MARK.shape
    assert grey[4, 4] == round(0.299 * 255 + 0.587 * 127)
    deep = MARK.astype(np.uint16) * 257  # 0..65535
    Image.fromarray(deep).save(tmp_path / "16.png")
    assert np.array_equal(read_picture(tmp_path / "16.png"), MARK)


@pytest.mark.parametrize("mode", ["RGB", "CMYK", "YCbCr", "LAB", "I", "F", "I;16", "LA", "RGBA"])
def test_every_kind_of_pixel_becomes_grey_0_to_255(tmp_path, mode):
    ramp = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (4, 1))
    img = Image.fromarray(ramp).convert("RGB")
    img = img.convert("L").convert(mode) if mode.startswith("I") else img.convert(mode)
    img.save(tmp_path / "ramp.tiff")
    grey = read_picture(tmp_path / "ramp.tiff")
    assert grey.dtype == np.uint8
    assert np.all(np.diff(grey[0].astype(int)) > 0)
    assert np.abs(grey.astype(int) - ramp).max() <= 10  # LAB's lightness is not quite luma


def test_first_frame_of_an_animation(tmp_path):
    frames = [Image.fromarray(MARK), Image.fromarray(255 - MARK)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert np.array_equal(read_picture(tmp_path / "a.gif"), MARK)


def test_a_file_object_is_read_like_a_file():
    out = io.BytesIO()
    Image.fromarray(MARK).save(out, format="PNG")
    out.seek(0)
    assert np.array_equal(read_picture(out, name="upload"), MARK)
    with pytest.raises(ImageError, match="^upload: an empty file$"):
        read_picture(io.BytesIO(b""), name="upload")


# --- hostile files -----------------------------------------------------------------------


def test_a_header_claiming_100000_squared_pixels_is_refused(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes(100_000, 100_000))
    with pytest.raises(ImageError, match=r"huge.png: refused: more than [\d,]+ pixels"):
        read_picture(path)


@pytest.mark.parametrize("limit", [100, 60])  # over the limit (Pillow warns), over twice it
def test_decompression_bombs_are_errors_not_warnings(tmp_path, monkeypatch, limit):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    Image.fromarray(np.zeros((11, 11), np.uint8)).save(tmp_path / "bomb.png")  # 121 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as outside pytest: Pillow's warning alone passes
        with pytest.raises(ImageError, match=f"more than {limit} pixels"):
            read_picture(tmp_path / "bomb.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF", "WEBP"])
def test_truncated_files_fail_with_their_name(tmp_path, fmt):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    full = io.BytesIO()
    Image.fromarray(noise).save(full, format=fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    with pytest.raises(ImageError, match=f"cut.{fmt.lower()}: "):
        read_pictures(path)


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "an empty file"),
        (b"hello, world", "not a picture in a format Pillow reads"),
        (png_bytes(10, 10, payload=b"broken"), "cannot decode"),
    ],
)
def test_not_pictures(tmp_path, content, words):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=f"x.png: {words}"):
        read_pictures(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="nothing.png: no such file"):
        read_pictures(tmp_path / "nothing.png")
    with pytest.raises(ImageError, match="is a folder"):
        read_picture(tmp_path)


# --- stacks and folders ------------------------------------------------------------------


def test_npy_and_idx_stacks(tmp_path):
    stack = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "s.npy", stack)
    np.save(tmp_path / "one.npy", stack[0] / 255.0)  # floats in 0..1
    write_idx(tmp_path / "s-idx", stack)
    (tmp_path / "s-idx.gz").write_bytes(gzip.compress((tmp_path / "s-idx").read_bytes()))
    for name in ("s.npy", "s-idx", "s-idx.gz"):
        pictures = read_pictures(tmp_path / name)
        assert [p.index for p in pictures] == [0, 1, 2]
        assert [p.name for p in pictures][2] == f"{tmp_path / name}[2]"
        assert np.array_equal(np.stack([p.pixels for p in pictures]), stack)
    (one,) = read_pictures(tmp_path / "one.npy")
    assert one.index is None and np.array_equal(one.pixels, stack[0])


@pytest.mark.parametrize(
    "array, words",
    [
        (np.zeros((2, 3, 4, 5)), "found shape"),
        (np.zeros((0, 28, 28)), "found shape"),
        (np.array([[np.nan]]), "NaN"),
        (np.array([["a"]]), "must be numbers"),
    ],
)
def test_bad_npy_arrays(tmp_path, array, words):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(ImageError, match=words):
        read_pictures(tmp_path / "bad.npy")


def test_pickled_npy_is_never_loaded(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError, match="pickled"):
        read_pictures(tmp_path / "obj.npy")


def test_a_folder_gives_its_pictures_by_name_and_lists_the_rest(tmp_path):
    for name in ("b.png", "a.JPG", "c.npy"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    files, skipped = expand_paths([tmp_path, tmp_path / "given.txt"])
    assert files == [str(tmp_path / n) for n in ("a.JPG", "b.png", "c.npy", "given.txt")]
    assert sorted(skipped) == sorted(str(tmp_path / n) for n in (".hidden.png", "notes.txt", "sub"))


def _npy_header(path, shape, descr="|u1", data=b""):
    from numpy.lib import format as npy

    with open(path, "wb") as f:
        npy.write_array_header_1_0(f, {"shape": shape, "fortran_order": False, "descr": descr})
        f.write(data)
    return path


@pytest.mark.parametrize(
    "shape, data, problem",
    [
        ((10**6, 28, 2800), b"", "claims 78,400,000,000 values"),  # read before any data
        ((100, 28, 28), b"\0" * 10, "claims 78,400 bytes of data, the file holds 10"),
    ],
)
def test_npy_headers_are_checked_before_any_data_is_read(tmp_path, shape, data, problem):
    path = _npy_header(tmp_path / "stack.npy", shape, data=data)
    with pytest.raises(ImageError, match=problem):
        read_pictures(path)


def test_npy_of_objects_is_never_unpickled(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError, match="pickled objects"):
        read_pictures(path)


def test_a_corrupt_npy_header_is_one_named_error(tmp_path):
    path = tmp_path / "broken.npy"
    path.write_bytes(b'\x93NUMPY\x01\x00\x10\x00{"descr": <<<   ')  # tokenize fails on it
    with pytest.raises(ImageError, match="broken.npy: the array has a corrupt .npy header"):
        read_pictures(path)
