"""Every format through the whole pipeline against Keras: JPEG (baseline, progressive,
4:2:0/4:2:2/4:4:4, grayscale, CMYK), PNG (8/16-bit, gray, gray+alpha, palette with and
without transparency, RGBA), BMP (24/32-bit), GIF (still, animated), per color_mode,
wherever Keras succeeds; where Keras fails pyimgdir's answer is checked on its own."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import pyimgdir
from conftest import photo_like
from parity_util import compare

pytestmark = pytest.mark.tf


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """One class folder per decoder family, so class_names picks what each color_mode
    can be compared on."""
    rng = np.random.default_rng(404)
    root = tmp_path_factory.mktemp("formats") / "data"
    p = lambda h, w: Image.fromarray(photo_like(rng, h, w))  # noqa: E731
    files = {
        "jpeg/420.jpg": _save(p(40, 52), "JPEG", quality=90),
        "jpeg/422.jpg": _save(p(37, 29), "JPEG", quality=85, subsampling=1),
        "jpeg/444.jpg": _save(p(33, 61), "JPEG", quality=95, subsampling=0),
        "jpeg/prog.jpg": _save(p(45, 45), "JPEG", quality=80, progressive=True),
        "jpeg/gray.jpg": _save(p(30, 20).convert("L"), "JPEG", quality=88),
        "cmyk/cmyk.jpg": _save(p(28, 36).convert("CMYK"), "JPEG", quality=90),
        "png/rgb.png": _save(p(21, 34), "PNG"),
        "png/rgba.png": _save(Image.fromarray(np.dstack([photo_like(rng, 26, 19), rng.integers(0, 256, (26, 19), dtype=np.uint8)])), "PNG"),
        "png/gray.png": _save(p(17, 23).convert("L"), "PNG"),
        "png/la.png": _save(p(19, 27).convert("LA"), "PNG"),
        "png/palette.png": _save(p(31, 22).convert("P", palette=Image.Palette.ADAPTIVE, colors=40), "PNG"),
        "png/palette_trns.png": _save(p(31, 22).convert("P", palette=Image.Palette.ADAPTIVE, colors=40), "PNG", transparency=3),
        "png/gray16.png": _save(Image.fromarray((rng.integers(0, 65536, (20, 24))).astype(np.uint16)), "PNG"),
        "bmp/rgb24.bmp": _save(p(23, 31), "BMP"),
        "bmp/rgba32.bmp": _save(Image.fromarray(np.dstack([photo_like(rng, 22, 18), rng.integers(0, 256, (22, 18), dtype=np.uint8)])), "BMP"),
        "bmp/odd.bmp": _save(p(13, 7), "BMP"),
        "gif/still.gif": _save(p(25, 30).convert("P", palette=Image.Palette.ADAPTIVE, colors=64), "GIF"),
    }
    frames = [p(24, 28).convert("P", palette=Image.Palette.ADAPTIVE, colors=32) for _ in range(3)]
    files["gif/anim.gif"] = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


# (color_mode, classes Keras decodes in that mode)
KERAS_OK = {
    "rgb": ["bmp", "cmyk", "gif", "jpeg", "png"],
    "rgba": ["bmp", "png"],
    "grayscale": ["jpeg", "png"],
}


@pytest.mark.parametrize("color_mode", list(KERAS_OK))
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "area"])
def test_formats_match_keras(keras, formats, color_mode, interpolation):
    compare(
        keras, str(formats), class_names=KERAS_OK[color_mode], color_mode=color_mode,
        interpolation=interpolation, shuffle=False, image_size=(16, 21), batch_size=4,
    )


def test_formats_with_crop_pad_and_channels_first(keras, formats):
    for extra in (dict(crop_to_aspect_ratio=True), dict(pad_to_aspect_ratio=True), dict(data_format="channels_first")):
        compare(keras, str(formats), class_names=KERAS_OK["rgb"], shuffle=False, image_size=(12, 18), **extra)


def _load(root, **kw):
    ds = pyimgdir.image_dataset_from_directory(
        root, shuffle=False, verbose=False, format="numpy", image_size=(16, 21), labels=None, **kw
    )
    return ds.file_paths, np.concatenate(list(ds))


def test_where_keras_fails_rgba_adds_opaque_alpha(formats):
    # Keras: "JPEG does not support 4 channels", "channels must be 0 or 3 for GIF"
    for cls in ("jpeg", "gif"):
        _, rgb = _load(formats / cls, interpolation="nearest")
        _, rgba = _load(formats / cls, interpolation="nearest", color_mode="rgba")
        np.testing.assert_array_equal(rgba[..., :3], rgb)
        assert (rgba[..., 3] == 255).all()


def test_where_keras_fails_grayscale_is_luma(formats):
    # Keras: "`channels` must be 0, 3 or 4 for BMP", "channels must be 0 or 3 for GIF"
    for cls in ("bmp", "gif"):
        _, rgb = _load(formats / cls, interpolation="nearest")
        _, gray = _load(formats / cls, interpolation="nearest", color_mode="grayscale")
        r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
        np.testing.assert_array_equal(gray[..., 0], ((9797 * r + 19234 * g + 3737 * b) >> 15).astype(np.uint8))


def test_cmyk_grayscale_is_refused_naming_the_file(formats):
    with pytest.raises(pyimgdir.ImageLoadError, match="cmyk.jpg.*CMYK"):
        _load(formats / "cmyk", color_mode="grayscale")


@pytest.mark.parametrize("label_mode", ["int", "categorical", "binary", None])
@pytest.mark.parametrize("batch_size", [3, None])
def test_element_spec_every_label_mode(keras, formats, label_mode, batch_size):
    compare(
        keras, str(formats), class_names=["png", "bmp"], label_mode=label_mode, batch_size=batch_size,
        shuffle=False, image_size=(9, 7),
    )
