"""Full-scale crops decoded from a smaller JPEG of their MCUs (csrc/core/jpeg_region_scan.cpp).

A crop of a baseline JPEG is rewritten as a JPEG holding only the MCUs libjpeg needs for it
(bits copied, one DC difference per component and row re-encoded), and libjpeg decodes that
with the same region calls. Every crop must come out exactly as libjpeg decodes it from the
original file (region_scan=False), and as TensorFlow's decode_and_crop_jpeg does, whether the
file's checkpoints are being recorded or already kept; files the rewrite does not handle
(progressive, restart markers, damaged or truncated data) decode as before.
"""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import photo_like
from pyimgdir import _core


FRESH = itertools.count()  # seeds for content not decoded before in this process


def jpeg(seed, h: int, w: int, subsampling: int = 2, grey: bool = False, quality: int = 90,
         optimize: bool = False, progressive: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    img = photo_like(rng, h, w)
    # strong noise in every channel: neighbouring chroma samples differ, so an upsampler
    # that saw other edges (a column or row more or less) would give other pixels
    img = np.clip(img.astype(np.int16) + rng.normal(0, 40, img.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    pil = Image.fromarray(img[..., 0] if grey else img)
    kw = dict(quality=quality, optimize=optimize, progressive=progressive)
    if not grey:
        kw["subsampling"] = subsampling
    pil.save(buf, "JPEG", **kw)
    return buf.getvalue()


def boxes(rng, h: int, w: int, n: int):
    """Random crops plus the edges: the first and last MCU, a one-pixel crop, whole rows, the
    bottom-right corner, crops starting on and just after an MCU boundary, crops whose
    first or last row is the first or last of an MCU row (4:2:0 then needs the MCU row
    above or below for the chroma upsampling), and crops whose cropped rows hold 2 chroma
    samples (where libjpeg's choice of upsampler depends on the whole image's width)."""
    out = [(0, 0, 1, 1), (h - 1, w - 1, 1, 1), (0, 0, h, w), (h // 2, 0, 17, w), (h - 20, w - 33, 20, 33),
           (16, 16, 40, 40), (17, 15, 40, 40), (32, 31, h - 40, 2), (3, w // 2, h - 3, w - w // 2),
           (16, 5, 16, 30), (15, 5, 17, 30), (1, 40, 15, 30), (32, 0, 1, w), (47, 3, 1, 60), (48, 3, 2, 60),
           (64, 70, 32, 90), (63, 70, 34, 90), (5, 16, 20, 3), (5, 16, 20, 4), (5, 18, 20, 2), (5, 32, 20, 5)]
    for _ in range(n):
        a = rng.uniform(0.08, 1.0) * h * w
        r = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
        bw, bh = min(w, max(1, int(round((a * r) ** 0.5)))), min(h, max(1, int(round((a / r) ** 0.5))))
        out.append((int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1)), bh, bw))
    return out


def decode(data: bytes, box, channels: int = 3, region_scan: bool = True, scale: int = 1):
    # fast_eighth off: at 1/4 the reference is libjpeg itself, not the entropy-data decoder
    try:
        return _core.decode_jpeg_scaled(data, channels, scale, False, region=box, region_scan=region_scan)[0]
    except _core.DecodeError as e:
        return str(e)


def same(data: bytes, box, channels: int = 3, scale: int = 1) -> None:
    got = decode(data, box, channels, scale=scale)
    ref = decode(data, box, channels, region_scan=False, scale=scale)
    if isinstance(ref, str):
        assert got == ref, box
    else:
        assert not isinstance(got, str), (box, got)
        assert got.shape == ref.shape == (box[2], box[3], channels)
        assert np.array_equal(got, ref), (box, int(np.abs(got.astype(int) - ref).max()))


def rewrites() -> int:
    return _core.jpeg_checkpoint_stats()["rewrites"]


@pytest.mark.parametrize("h,w,subsampling,grey", [(389, 517, 2, False), (500, 375, 1, False),
                                                   (333, 450, 0, False), (401, 299, 2, True),
                                                   (1030, 777, 2, False)])
def test_crops_equal_libjpeg_while_checkpoints_are_recorded_and_used(h, w, subsampling, grey):
    # the checkpoint table is process-wide: content no earlier test (or run of this one) decoded
    data = jpeg([h * w, next(FRESH)], h, w, subsampling, grey)
    rng = np.random.default_rng(h + w)
    before, scans = rewrites(), _core.jpeg_checkpoint_stats()["scans"]
    first = boxes(rng, h, w, 30)
    for box in first:  # the first crop records the checkpoints down to its rows
        same(data, box)
    for box in boxes(rng, h, w, 30):  # later ones start at them
        for channels in (3, 1, 4):
            same(data, box, channels)
    assert _core.jpeg_checkpoint_stats()["scans"] == scans + 1
    # Most crops are rewritten; those keeping most of the MCUs libjpeg walks are left to it.
    assert rewrites() - before >= 60


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("subsampling,grey", [(2, False), (1, False), (0, False), (2, True)])
def test_dct_scaled_crops_equal_libjpeg(scale, subsampling, grey):
    # At 1/2 and 1/4 libjpeg decodes the rewritten file with its scaled IDCTs; at 1/4 4:2:0
    # chroma needs no upsampling (so no context rows), 4:2:2 still does horizontally.
    h, w = 1101, 1467
    data = jpeg(scale * 10 + subsampling, h, w, subsampling, grey)
    oh, ow = -(-h // scale), -(-w // scale)
    before = rewrites()
    for box in boxes(np.random.default_rng(scale), oh, ow, 25):
        for channels in (3, 1):
            same(data, box, channels, scale)
    assert rewrites() - before >= 25


def test_quarter_scale_crops_prefer_the_rewrite_and_match_the_entropy_decoder():
    # The loader's default path at 1/4 (fast_eighth on) takes the rewrite first; its pixels
    # equal the entropy-data decoder's (which tests/test_jpeg_eighth.py ties to libjpeg).
    data = jpeg(31, 1200, 1600)
    before = rewrites()
    for box in boxes(np.random.default_rng(31), 300, 400, 15):
        got, _ = _core.decode_jpeg_scaled(data, 3, 4, True, region=box)
        ref, dc = _core.decode_jpeg_scaled(data, 3, 4, True, region=box, region_scan=False)
        assert dc  # the reference came from the entropy-data decoder
        np.testing.assert_array_equal(got, ref, err_msg=str(box))
    assert rewrites() > before


def test_crops_equal_tensorflow_decode_and_crop():
    tf = pytest.importorskip("tensorflow")
    for seed, (h, w, sub) in enumerate([(389, 517, 2), (480, 640, 1), (300, 401, 0)]):
        data = jpeg(seed, h, w, sub)
        before = rewrites()
        bs = boxes(np.random.default_rng(seed), h, w, 12)
        for box in bs:
            ref = tf.io.decode_and_crop_jpeg(data, list(box), channels=3).numpy()
            np.testing.assert_array_equal(decode(data, box), ref, err_msg=str(box))
        assert rewrites() - before >= len(bs) // 2


def test_optimized_tables_without_every_dc_category_still_decode_exactly():
    # Optimized Huffman tables hold codes only for the DC categories the encoder used; a
    # re-encoded difference may need another one, and the crop then goes to libjpeg.
    for seed in range(4):
        data = jpeg(50 + seed, 360, 480, 2, quality=70, optimize=True)
        before = rewrites()
        for box in boxes(np.random.default_rng(seed), 360, 480, 25):
            same(data, box)
        assert rewrites() > before


def test_files_the_rewrite_does_not_handle_decode_as_before():
    rng = np.random.default_rng(8)
    img = photo_like(rng, 400, 520)
    ok, rst = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_RST_INTERVAL, 5])
    assert ok
    progressive = jpeg(9, 400, 520, progressive=True)
    before = rewrites()
    for data in (rst.tobytes(), progressive):
        for box in boxes(rng, 400, 520, 10):
            same(data, box)
    assert rewrites() == before


def test_truncated_and_damaged_files_behave_as_libjpeg():
    data = jpeg(10, 420, 560)
    for box in boxes(np.random.default_rng(10), 420, 560, 5):
        same(data, box)  # checkpoints for the intact file
    cut = data[: len(data) * 2 // 3]
    damaged = bytearray(data)
    mid = len(damaged) // 2
    for i in range(mid, mid + 40):
        if damaged[i] not in (0xFF, 0x00) and damaged[i - 1] != 0xFF:
            damaged[i] ^= 0x24
    for variant in (cut, bytes(damaged)):
        for box in [(0, 0, 30, 560), (300, 0, 120, 560), (200, 100, 150, 200), (0, 0, 420, 560)] + \
                boxes(np.random.default_rng(11), 420, 560, 10):
            same(variant, box)


CAP_CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_jpeg_region_scan import jpeg, boxes, same
    import numpy as np
    from pyimgdir import _core
    files = [jpeg(70 + i, 389, 517) for i in range(8)]
    for data in files:
        for box in boxes(np.random.default_rng(1), 389, 517, 4):
            same(data, box)
    st = _core.jpeg_checkpoint_stats()
    print(st["scans"], st["bytes"], st["budget"], st["rewrites"])
""")


@pytest.mark.parametrize("mb", ["0", "0.01", "1"])
def test_past_the_checkpoint_cap_crops_go_to_libjpeg(mb):
    code = CAP_CHILD.format(tests=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYIMGDIR_JPEG_CHECKPOINT_MB=mb),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    scans, used, budget, rewritten = map(int, out.stdout.split())
    assert used <= budget == int(float(mb) * 1048576)
    # a 389x517 4:2:0 file: 25 MCU rows of 9 checkpoints of 12 bytes (about 2.8 KB)
    expect = {"0": 0, "0.01": 3, "1": 8}[mb]
    assert scans == expect
    per_file = len(boxes(np.random.default_rng(1), 389, 517, 4))
    assert (rewritten > 0) == (expect > 0) and rewritten <= per_file * expect
