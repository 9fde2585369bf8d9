"""decoder="pillow": the core's decode against Pillow itself (the conversions Keras' grain
path makes with ``Image.convert``) on every colour mode and format, byte for byte."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import photo_like
from pyimgdir import _core


def pillow_reference(data: bytes, channels: int) -> np.ndarray:
    """What Keras' _load_image_grain gets from Pillow before converting to float."""
    img = Image.open(io.BytesIO(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # palette + byte transparency
        if channels == 1:
            if img.mode not in ("L", "I;16", "I"):
                img = img.convert("L")
        elif channels == 4:
            if img.mode != "RGBA":
                img = img.convert("RGBA")
        elif img.mode != "RGB":
            img = img.convert("RGB")
    a = np.array(img)
    return a if a.ndim == 3 else a[..., None]


def _enc(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _cases():
    rng = np.random.default_rng(3)
    rgb = photo_like(rng, 37, 53)
    grey = photo_like(rng, 29, 41, 1)[..., 0]
    rgba = photo_like(rng, 31, 22, 4)
    pal = Image.fromarray(rgb).convert("P")
    return {
        "jpeg 4:2:0": _enc(Image.fromarray(rgb), "JPEG", quality=90),
        "jpeg 4:4:4": _enc(Image.fromarray(rgb), "JPEG", quality=75, subsampling=0),
        "jpeg 4:2:2": _enc(Image.fromarray(rgb), "JPEG", quality=60, subsampling=1),
        "jpeg progressive": _enc(Image.fromarray(rgb), "JPEG", progressive=True),
        "jpeg grey": _enc(Image.fromarray(grey), "JPEG"),
        "jpeg cmyk": _enc(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "png rgb": _enc(Image.fromarray(rgb), "PNG"),
        "png rgba": _enc(Image.fromarray(rgba), "PNG"),
        "png grey": _enc(Image.fromarray(grey), "PNG"),
        "png grey+alpha": _enc(Image.fromarray(np.dstack([grey, grey[::-1]]), mode="LA"), "PNG"),
        "png palette": _enc(pal, "PNG"),
        "png palette+tRNS": _enc(pal, "PNG", transparency=bytes(range(0, 256, 7))),
        "png grey+tRNS": _enc(Image.fromarray(grey), "PNG", transparency=int(grey[0, 0])),
        "png rgb+tRNS": _enc(Image.fromarray(rgb), "PNG", transparency=tuple(int(v) for v in rgb[0, 0])),
        "png 1-bit": _enc(Image.fromarray(grey > 127), "PNG"),
        "png 16-bit grey (rgb/rgba)": _enc(
            Image.frombytes("I;16", (41, 29), (grey.astype(np.uint16) * 3).tobytes()), "PNG"),
        "gif": _enc(pal, "GIF"),
        "gif transparent": _enc(pal, "GIF", transparency=3),
        "bmp rgb": _enc(Image.fromarray(rgb), "BMP"),
        "bmp palette": _enc(pal, "BMP"),
        "bmp grey": _enc(Image.fromarray(grey), "BMP"),
        "bmp 32-bit": _enc(Image.fromarray(rgba), "BMP"),
    }


CASES = _cases()


# (16-bit grey as grayscale stays 16-bit in Pillow: test_16bit_grey_is_clipped)
@pytest.mark.parametrize(
    "name,channels",
    [(n, c) for n in sorted(CASES) for c in (1, 3, 4) if not (n.startswith("png 16-bit") and c == 1)],
)
def test_decode_matches_pillow(name, channels):
    data = CASES[name]
    np.testing.assert_array_equal(_core.decode(data, channels, decoder="pillow"), pillow_reference(data, channels))


def test_16bit_grey_is_clipped():
    """Pillow keeps I;16 (0..65535) for grayscale; the core's images are 8-bit, so it clips
    at 255 as Pillow's own I;16 -> RGB conversion does (a README difference)."""
    data = CASES["png 16-bit grey (rgb/rgba)"]
    ref = pillow_reference(data, 1)
    assert ref.dtype == np.uint16 and ref.max() > 255
    np.testing.assert_array_equal(_core.decode(data, 1, decoder="pillow"), np.minimum(ref, 255).astype(np.uint8))


def test_tensorflow_decoder_differs_where_pillow_does():
    """The two conventions really differ (fast vs accurate DCT; luma weights)."""
    jpeg = CASES["jpeg 4:2:0"]
    assert not np.array_equal(_core.decode(jpeg, 3), _core.decode(jpeg, 3, decoder="pillow"))
    png = CASES["png rgb"]
    assert not np.array_equal(_core.decode(png, 1), _core.decode(png, 1, decoder="pillow"))
    with pytest.raises(ValueError, match="decoder"):
        _core.decode(png, 3, decoder="opencv")
