"""Entropy-data checkpoints of the DC-term JPEG path (csrc/core/decode_jpeg_eighth.cpp).

A region decode of a large scan records, every 4 or 16 MCUs of each MCU row it walks, the bit
position and DC predictors; later region decodes of the same scan start each row at the
checkpoint left of the region. Every decode, whether it builds, extends or uses the
checkpoints, must give libjpeg's pixels for that region (which tests/test_crop.py and
tests/test_jpeg_eighth.py tie to TensorFlow's decode_and_crop_jpeg)."""

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

SAMPLING = {
    "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
}


FRESH = itertools.count()  # seeds for content not decoded before in this process


def big_jpeg(seed, h: int, w: int, sampling: str = "420", grey: bool = False, quality: int = 95) -> bytes:
    """A scan well above the 256 KiB below which no checkpoints are kept."""
    rng = np.random.default_rng(seed)
    img = photo_like(rng, h, w)
    img = np.clip(img.astype(np.int16) + rng.normal(0, 14, img.shape), 0, 255).astype(np.uint8)
    if grey:
        ok, buf = cv2.imencode(".jpg", img[..., 0], [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality,
                                                        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, SAMPLING[sampling]])
    assert ok
    data = buf.tobytes()
    assert len(data) > 400_000, len(data)
    return data


def regions(rng, oh: int, ow: int, n: int):
    """Random boxes plus the ones that stress the bookkeeping: bottom rows first (the walk
    reaches the end before any checkpoint is used), a thin top strip, boxes starting exactly
    on and beside a checkpoint column (every 4 MCUs here), the last column, the whole image."""
    out = [(oh - 3, ow - 50, 3, 50), (0, 0, 2, ow), (5, 64, 10, 1), (5, 63, 10, 2), (7, 65, 9, 30),
           (0, ow - 1, oh, 1), (0, 0, oh, ow)]
    for _ in range(n):
        h, w = int(rng.integers(1, oh + 1)), int(rng.integers(1, ow + 1))
        out.append((int(rng.integers(0, oh - h + 1)), int(rng.integers(0, ow - w + 1)), h, w))
    return out


def check(data: bytes, channels: int, boxes, scale: int = 8) -> int:
    """Decodes each box (in 1/`scale` pixels) through the fast path and through libjpeg;
    returns how many the fast path took."""
    took = 0
    for y, x, h, w in boxes:
        # region_scan off: this tests the entropy-data decoder against libjpeg on the file
        fast, t = _core.decode_jpeg_scaled(data, channels, scale, True, region=(y, x, h, w), region_scan=False)
        ref, _ = _core.decode_jpeg_scaled(data, channels, scale, False, region=(y, x, h, w), region_scan=False)
        assert fast.shape == ref.shape == (h, w, channels)
        assert np.array_equal(fast, ref), (y, x, h, w, int(np.abs(fast.astype(int) - ref).max()))
        took += t
    return took


@pytest.mark.parametrize("sampling,grey", [("420", False), ("444", False), ("422", False), ("420", True)])
def test_every_region_decode_matches_libjpeg_while_checkpoints_build_and_are_used(sampling, grey):
    H, W = 1400, 2100  # 1/8: 175 x 263 (132 MCU columns at 4:2:0: checkpoints at 0, 16, ..., 128)
    # The checkpoint table is process-wide: an image no earlier test (nor an earlier run of
    # this one, as under pytest's --count or a rerun) has decoded, so this scan is a new entry.
    data = big_jpeg([3, next(FRESH)], H, W, sampling, grey)
    # 1/8 and 1/4 share one scan's checkpoints (the walk does not depend on the scale); 4:2:2
    # at 1/4 needs fancy upsampling and stays on libjpeg
    before = _core.jpeg_checkpoint_stats()
    for seed, scale in ((5, 8), (7, 4), (9, 8)):
        oh, ow = (H + scale - 1) // scale, (W + scale - 1) // scale
        boxes = regions(np.random.default_rng(seed), oh, ow, 25)
        for channels in (3, 1, 4):
            expect = 0 if (scale == 4 and sampling == "422" and not grey) else len(boxes)
            assert check(data, channels, boxes, scale) == expect
    after = _core.jpeg_checkpoint_stats()
    assert after["scans"] == before["scans"] + 1 and after["bytes"] > before["bytes"]  # this scan's


def test_a_changed_file_of_the_same_size_is_walked_afresh():
    H, W = 1200, 1600
    a = big_jpeg(11, H, W)
    b = bytearray(a)
    # Flip bits in the middle of the scan: same length, same header, other data; the decode
    # of `b` must not reuse `a`'s checkpoints (it either matches libjpeg or is refused alike).
    mid = len(b) // 2
    for i in range(mid, mid + 64):
        if b[i] not in (0xFF, 0x00) and b[i - 1] != 0xFF:
            b[i] ^= 0x10
    b = bytes(b)
    oh, ow = (H + 7) // 8, (W + 7) // 8
    assert check(a, 3, [(0, 0, oh, ow), (oh - 10, 0, 10, ow)]) == 2  # a's checkpoints cover every row
    for box in [(oh - 10, 0, 10, ow), (oh // 2, 10, oh // 2, 50), (0, 0, oh, ow)]:
        def run(fast):
            try:
                return _core.decode_jpeg_scaled(b, 3, 8, fast, region=box)[0]
            except _core.DecodeError as e:
                return str(e)

        got, ref = run(True), run(False)
        if isinstance(ref, str):
            assert got == ref
        else:
            assert np.array_equal(got, ref)


def test_truncated_copy_of_an_indexed_file_behaves_as_libjpeg():
    H, W = 1200, 1600
    data = big_jpeg(12, H, W)
    oh, ow = (H + 7) // 8, (W + 7) // 8
    check(data, 3, [(0, 0, oh, ow)])
    cut = data[: len(data) * 2 // 3]
    for box in [(0, 0, 20, ow), (oh - 20, 0, 20, ow)]:
        try:
            got = _core.decode_jpeg_scaled(cut, 3, 8, True, region=box)[0]
        except _core.DecodeError as e:
            got = str(e)
        try:
            ref = _core.decode_jpeg_scaled(cut, 3, 8, False, region=box)[0]
        except _core.DecodeError as e:
            ref = str(e)
        if isinstance(ref, str):
            assert got == ref
        else:
            assert np.array_equal(got, ref)


def test_restart_markers_and_progressive_files_still_decode_exactly():
    rng = np.random.default_rng(4)
    img = photo_like(rng, 1300, 1700)
    img = np.clip(img.astype(np.int16) + rng.normal(0, 14, img.shape), 0, 255).astype(np.uint8)
    ok, rst = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_RST_INTERVAL, 7])
    assert ok
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=95, progressive=True)
    oh, ow = (1300 + 7) // 8, (1700 + 7) // 8
    boxes = regions(np.random.default_rng(6), oh, ow, 10)
    assert check(rst.tobytes(), 3, boxes) == len(boxes)  # restart segments: the DC path, no checkpoints
    assert check(buf.getvalue(), 3, boxes) == 0  # progressive: libjpeg


BUDGET_CHILD = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {tests!r})
    from test_jpeg_entropy_index import big_jpeg, check
    from pyimgdir import _core
    files = [big_jpeg(20 + i, 1200, 1700) for i in range(6)]
    oh, ow = 150, 213
    for data in files:
        assert check(data, 3, [(0, 0, oh, ow), (oh // 2, ow // 3, oh // 2, ow // 3)]) == 2
    st = _core.jpeg_checkpoint_stats()
    print(st["scans"], st["bytes"], st["budget"])
""")


@pytest.mark.parametrize("mb", ["0", "0.05", "1"])
def test_the_memory_cap(mb):
    """PYIMGDIR_JPEG_CHECKPOINT_MB caps the table (0: no checkpoints); decodes past the cap,
    without checkpoints, still give libjpeg's pixels."""
    env = dict(os.environ, PYIMGDIR_JPEG_CHECKPOINT_MB=mb)
    code = BUDGET_CHILD.format(tests=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    scans, used, budget = map(int, out.stdout.split())
    assert budget == int(float(mb) * 1048576) and used <= budget
    # a scan: 75 MCU rows of 27 checkpoints (every 4 of 107 MCUs) of 12 bytes, 24,300 bytes
    per_scan = 75 * 27 * 12
    expect = {"0": 0, "0.05": 2, "1": 6}[mb]  # 52,428 bytes hold two
    assert scans == expect
    assert expect * per_scan <= used <= expect * (per_scan + 200)
