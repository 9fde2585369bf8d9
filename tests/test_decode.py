"""JPEG and PNG decoding: bit-identical to TensorFlow's decode_image, checked against
independent decoders (simplejpeg, OpenCV, Pillow) where they share TF's settings."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import encode, photo_like
from pyimgdir import _core

JPEG_VARIANTS = [
    dict(quality=90),
    dict(quality=75, subsampling=0),  # 4:4:4
    dict(quality=85, subsampling=1),  # 4:2:2
    dict(quality=95, subsampling=2),  # 4:2:0
    dict(quality=80, progressive=True),
    dict(quality=60, optimize=True),
]


@pytest.fixture(scope="module")
def photo():
    return photo_like(np.random.default_rng(7), 97, 131)


def test_sniffing_ignores_extension(photo):
    assert _core.sniff_format(encode(photo, "JPEG")) == "JPEG"
    assert _core.sniff_format(encode(photo, "PNG")) == "PNG"
    assert _core.sniff_format(b"GIF89a....") == "GIF"
    assert _core.sniff_format(b"BM......") == "BMP"
    assert _core.sniff_format(b"hello") == "unknown"


@pytest.mark.parametrize("variant", JPEG_VARIANTS, ids=lambda v: "-".join(f"{k}{v[k]}" for k in v))
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_matches_tensorflow(tf, photo, variant, channels):
    data = encode(photo, "JPEG", **variant)
    ref = tf.image.decode_image(data, channels=channels).numpy()
    got = _core.decode(data, channels)
    assert got.dtype == np.uint8 and got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("variant", JPEG_VARIANTS[:4], ids=str)
def test_jpeg_matches_simplejpeg_fastdct(photo, variant):
    simplejpeg = pytest.importorskip("simplejpeg")
    data = encode(photo, "JPEG", **variant)
    ref = simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=False)
    np.testing.assert_array_equal(_core.decode(data, 3), ref)


def test_grayscale_jpeg(tf, photo):
    gray = photo[:, :, :1]
    data = encode(gray, "JPEG", quality=88)
    for channels in (1, 3):
        np.testing.assert_array_equal(
            _core.decode(data, channels), tf.image.decode_image(data, channels=channels).numpy()
        )


def test_cmyk_jpeg(tf, photo):
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.fromarray(photo).convert("CMYK").save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    np.testing.assert_array_equal(_core.decode(data, 3), tf.image.decode_image(data, channels=3).numpy())
    with pytest.raises(_core.DecodeError, match="CMYK"):
        _core.decode(data, 1)


def test_jpeg_rgba_adds_opaque_alpha(photo):
    data = encode(photo, "JPEG", quality=90)
    rgba = _core.decode(data, 4)
    np.testing.assert_array_equal(rgba[:, :, :3], _core.decode(data, 3))
    assert (rgba[:, :, 3] == 255).all()


@pytest.mark.parametrize(
    "mode,bits",
    [("RGB", 8), ("RGBA", 8), ("L", 8), ("LA", 8), ("P", 8), ("P-trns", 8), ("I;16", 16), ("RGB16", 16)],
)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_matches_tensorflow(tf, photo, mode, bits, channels):
    data = _png_variant(photo, mode)
    ref = tf.image.decode_image(data, channels=channels).numpy()
    got = _core.decode(data, channels)
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


def _png_variant(photo, mode):
    import io
    from PIL import Image

    rng = np.random.default_rng(3)
    if mode == "RGB16":
        # Pillow cannot write 16-bit RGB; OpenCV can (BGR order).
        cv2 = pytest.importorskip("cv2")
        arr16 = photo.astype(np.uint16) * 257 + rng.integers(0, 200, photo.shape).astype(np.uint16)
        ok, buf = cv2.imencode(".png", arr16[:, :, ::-1])
        assert ok
        return buf.tobytes()
    if mode == "I;16":
        arr16 = (photo[:, :, 0].astype(np.uint16) << 8) | rng.integers(0, 256, photo.shape[:2]).astype(np.uint16)
        img = Image.fromarray(arr16)
    elif mode == "RGBA":
        alpha = rng.integers(0, 256, photo.shape[:2], dtype=np.uint8)
        img = Image.fromarray(np.dstack([photo, alpha]))
    elif mode == "LA":
        img = Image.fromarray(photo).convert("LA")
    elif mode == "L":
        img = Image.fromarray(photo).convert("L")
    elif mode in ("P", "P-trns"):
        img = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
        if mode == "P-trns":
            img.info["transparency"] = 5
    else:
        img = Image.fromarray(photo)
    buf = io.BytesIO()
    img.save(buf, "PNG", **({"transparency": 5} if mode == "P-trns" else {}))
    return buf.getvalue()


def test_png_against_opencv(photo):
    cv2 = pytest.importorskip("cv2")
    data = encode(photo, "PNG")
    ref = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    np.testing.assert_array_equal(_core.decode(data, 3), ref)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_raise(photo, fmt):
    data = encode(photo, fmt)
    for cut in (0, 1, 10, len(data) // 3, len(data) // 2, len(data) - 40):
        with pytest.raises(_core.DecodeError):
            _core.decode(data[:cut], 3)


def test_garbage_raises():
    with pytest.raises(_core.DecodeError, match="unknown image file format"):
        _core.decode(b"this is not an image at all", 3)
    with pytest.raises(_core.DecodeError, match="empty"):
        _core.decode(b"", 3)


def test_max_pixels_refused_before_decoding(photo):
    data = encode(photo, "JPEG")
    with pytest.raises(_core.DecodeError, match="max_pixels"):
        _core.decode(data, 3, max_pixels=100)
    data = encode(photo, "PNG")
    with pytest.raises(_core.DecodeError, match="max_pixels"):
        _core.decode(data, 3, max_pixels=100)
