"""jpeg_downscale=True: DCT-domain 1/2, 1/4, 1/8 only while the result still covers the
target, then the usual resize. Checked against TensorFlow's own scaled decode."""

from __future__ import annotations

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image


@pytest.mark.parametrize(
    "src,target,ratio",
    [((800, 600), (180, 180), 2), ((1600, 1200), (180, 180), 4), ((2000, 1700), (200, 200), 8),
     ((300, 200), (180, 180), 1), ((800, 600), (400, 100), 2), ((800, 600), (401, 100), 1)],
)
def test_scaled_decode_equals_tf_ratio_decode(tf, tmp_path, src, target, ratio):
    rng = np.random.default_rng(4)
    h, w = src
    path = write_image(tmp_path / "d" / "c" / "big.jpg", photo_like(rng, h, w), quality=90)
    ds = pyimgdir.image_dataset_from_directory(
        tmp_path / "d", image_size=target, shuffle=False, verbose=False, format="numpy", jpeg_downscale=True
    )
    got = next(iter(ds))[0][0]
    data = path.read_bytes()
    scaled = tf.io.decode_jpeg(data, channels=3, ratio=ratio, dct_method="INTEGER_FAST")
    ref = tf.image.resize(scaled, target).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-3, rtol=0)
    assert scaled.shape[0] >= target[0] and scaled.shape[1] >= target[1]


def smooth(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 100 * np.sin(x / 90), 128 + 100 * np.cos(y / 70), 128 + 80 * np.sin((x + y) / 120)], -1)
    return img.astype(np.uint8)


def test_downscale_with_crop_and_pad_keeps_the_geometry(tmp_path):
    # On smooth content the scaled decode must give nearly the same picture: the crop box
    # and the padding are those of the full-size image (nothing shifted or stretched).
    # (On fine detail the values differ more: Keras' resize samples without antialiasing,
    # while the DCT-scaled decode averages; see README.)
    rng = np.random.default_rng(5)
    write_image(tmp_path / "d" / "c" / "a.jpg", smooth(1200, 900), quality=92)
    write_image(tmp_path / "d" / "c" / "b.png", photo_like(rng, 900, 1200))
    for fit in (dict(crop_to_aspect_ratio=True), dict(pad_to_aspect_ratio=True), {}):
        kw = dict(image_size=(120, 160), shuffle=False, verbose=False, format="numpy", **fit)
        full = next(iter(pyimgdir.image_dataset_from_directory(tmp_path / "d", **kw)))[0]
        fast = next(iter(pyimgdir.image_dataset_from_directory(tmp_path / "d", jpeg_downscale=True, **kw)))[0]
        assert full.shape == fast.shape
        np.testing.assert_array_equal(full[1], fast[1])  # PNG: unaffected
        # JPEG: a different (smaller) source, so small differences, no misplaced content
        diff = np.abs(full[0] - fast[0])
        assert diff.mean() < 2.5 and diff.max() < 10  # a one-pixel shift would give ~8 on average
