"""The JPEG path that decodes straight from the entropy-coded data at 1/8 scale (DC terms) and
at 1/4: for regions (random crops) by default, for whole images only when asked
(`fast_quarter`; libjpeg is faster there) (csrc/core/decode_jpeg_eighth.cpp).

It must give exactly libjpeg-turbo's pixels at that scale (and so
tf.io.decode_jpeg(ratio=8 or 4)'s), take every baseline file it claims, and on anything
damaged behave exactly as libjpeg does (it hands such files back to libjpeg)."""

from __future__ import annotations

import io
from pathlib import Path

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
    "440": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440,
}


def cv2_jpeg(rgb: np.ndarray, quality: int, sampling: str = "420", restart: int = 0) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_RST_INTERVAL, restart]
    if rgb.ndim == 3:
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, SAMPLING[sampling]]
        img = rgb[..., ::-1]
    else:
        img = rgb
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), params)
    assert ok
    return buf.tobytes()


def pil_jpeg(rgb: np.ndarray, **kw) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", **kw)
    return out.getvalue()


def both(data: bytes, channels: int, scale: int = 8, region=None):
    """(fast result, whether the fast path took it, libjpeg result) at 1/`scale`; results are
    arrays or the DecodeError message."""

    def run(fast):
        try:
            return _core.decode_jpeg_scaled(data, channels, scale, fast, fast, region, region_scan=False)
        except _core.DecodeError as e:
            return str(e), False

    (a, took), (b, _) = run(True), run(False)
    return a, took, b


def assert_same(a, b):
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
    else:
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a, b), f"max difference {np.abs(a.astype(int) - b).max()}"


def cases():
    rng = np.random.default_rng(8)
    sizes = [(1, 1), (7, 9), (8, 8), (9, 17), (16, 16), (17, 33), (31, 64), (120, 90), (257, 129), (600, 803)]
    out = []
    for i, (h, w) in enumerate(sizes):
        q = [5, 30, 75, 90, 100][i % 5]
        img = photo_like(rng, h, w)
        for s in SAMPLING:
            out.append((f"cv2-{h}x{w}-q{q}-{s}", cv2_jpeg(img, q, s)))
        out.append((f"cv2-{h}x{w}-q{q}-gray", cv2_jpeg(img[..., 0], q)))
        out.append((f"cv2-{h}x{w}-q{q}-rst", cv2_jpeg(img, q, "420", restart=1 + i % 3)))
        out.append((f"pil-{h}x{w}-q{q}-optimized", pil_jpeg(img, quality=q, optimize=True, subsampling=2)))
        out.append((f"pil-{h}x{w}-q{q}-422", pil_jpeg(img, quality=q, subsampling=1)))
    # Pure noise at quality 100: large coefficients, long codes, many stuffed 0xFF bytes.
    noise = rng.integers(0, 256, (200, 248, 3), dtype=np.uint8)
    out.append(("noise-q100", pil_jpeg(noise, quality=100, subsampling=0)))
    out.append(("noise-q100-420-rst", cv2_jpeg(noise, 100, "420", restart=2)))
    return out


CASES = cases()


def quarter_cases():
    """More files at ordinary qualities for 1/4, where every AC term counts."""
    rng = np.random.default_rng(4)
    sizes = [(5, 3), (15, 23), (33, 17), (66, 94), (131, 257), (479, 641)]
    out = []
    for i, (h, w) in enumerate(sizes):
        q = [50, 60, 85, 95, 100, 70][i]
        img = photo_like(rng, h, w)
        for s in ("420", "444"):
            out.append((f"cv2-{h}x{w}-q{q}-{s}", cv2_jpeg(img, q, s)))
        out.append((f"cv2-{h}x{w}-q{q}-gray", cv2_jpeg(img[..., 2], q)))
        out.append((f"cv2-{h}x{w}-q{q}-444-rst", cv2_jpeg(img, q, "444", restart=1 + i % 4)))
        out.append((f"pil-{h}x{w}-q{q}-444", pil_jpeg(img, quality=q, subsampling=0)))
    return CASES + out


QUARTER_CASES = quarter_cases()


def quarter_expected(name: str) -> bool:
    """Whether the 1/4 path takes a file: libjpeg upsamples 4:2:2 and 4:4:0 chroma fancily."""
    return not name.endswith(("-422", "-440"))


@pytest.mark.parametrize("name,data", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_dc_path_takes_baseline_files_and_matches_libjpeg(name, data, channels):
    fast, took, ref = both(data, channels)
    assert took, "a baseline file fell back to libjpeg"
    assert_same(fast, ref)


@pytest.mark.parametrize("name,data", CASES[::3], ids=[c[0] for c in CASES[::3]])
def test_dc_path_matches_tf_ratio_8(tf, name, data):
    for channels in (1, 3):
        got, took = _core.decode_jpeg_scaled(data, channels, 8)
        assert took
        ref = tf.io.decode_jpeg(data, channels=channels, ratio=8, dct_method="INTEGER_FAST").numpy()
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("name,data", QUARTER_CASES, ids=[c[0] for c in QUARTER_CASES])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_quarter_path_takes_baseline_420_444_grey_and_matches_libjpeg(name, data, channels):
    fast, took, ref = both(data, channels, 4)
    assert took == quarter_expected(name)
    assert_same(fast, ref)


def test_quarter_path_takes_regions_and_whole_images_only_when_asked():
    data = next(d for n, d in CASES if n.startswith("cv2-600x803") and n.endswith("-420"))
    assert _core.decode_jpeg_scaled(data, 3, 4, fast_quarter=True)[1]
    assert not _core.decode_jpeg_scaled(data, 3, 4)[1]
    h, w = _core.decode_jpeg_scaled(data, 3, 4)[0].shape[:2]
    region = (h // 4, w // 3, h // 2, w // 3)
    fast, took = _core.decode_jpeg_scaled(data, 3, 4, region=region, region_scan=False)
    assert took
    ref, took_ref = _core.decode_jpeg_scaled(data, 3, 4, False, region=region, region_scan=False)
    assert not took_ref and np.array_equal(fast, ref)


@pytest.mark.parametrize("name,data", QUARTER_CASES[::3], ids=[c[0] for c in QUARTER_CASES[::3]])
def test_quarter_path_matches_tf_ratio_4(tf, name, data):
    for channels in (1, 3):
        got, took = _core.decode_jpeg_scaled(data, channels, 4, fast_quarter=True)
        assert took == quarter_expected(name)
        ref = tf.io.decode_jpeg(data, channels=channels, ratio=4, dct_method="INTEGER_FAST").numpy()
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("scale", [8, 4])
def test_regions_match_libjpeg(scale):
    """Random regions (what random-resized crops decode) equal libjpeg's cropped decode: the
    MCU range, the rows below the region and, with restart markers, skipped segments."""
    rng = np.random.default_rng(scale)
    files = [c for c in QUARTER_CASES if quarter_expected(c[0]) and c[0].startswith(("cv2-257", "cv2-600", "cv2-131", "cv2-479", "noise"))]
    assert len(files) >= 10
    for name, data in files:
        full = _core.decode_jpeg_scaled(data, 3, scale, False)[0]
        h, w = full.shape[:2]
        for _ in range(6):
            rh, rw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
            region = (int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1)), rh, rw)
            for channels in (1, 3):
                fast, took, ref = both(data, channels, scale, region)
                assert took, (name, region)
                assert_same(fast, ref)
            y, x = region[:2]
            np.testing.assert_array_equal(both(data, 3, scale, region)[0], full[y : y + rh, x : x + rw])


def test_progressive_and_other_scales_go_through_libjpeg():
    img = photo_like(np.random.default_rng(1), 160, 200)
    prog = pil_jpeg(img, quality=90, progressive=True)
    # 4:1:1 (a sampling factor of 4) is left to libjpeg too.
    wide = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_411])[1].tobytes()
    for data in (prog, wide):
        for scale in (8, 4):
            fast, took, ref = both(data, 3, scale)
            assert not took
            assert_same(fast, ref)
    base = pil_jpeg(img, quality=90)
    for scale in (1, 2, 4):
        assert not _core.decode_jpeg_scaled(base, 3, scale)[1]
    for scale in (1, 2):
        assert not _core.decode_jpeg_scaled(base, 3, scale, fast_quarter=True)[1]
    assert _core.decode_jpeg_scaled(base, 3, 8)[1]


def mutations(data: bytes, rng: np.random.Generator, n: int):
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    for _ in range(n):
        kind = rng.integers(0, 5)
        b = bytearray(data)
        if kind == 0:  # truncate inside the scan, with or without an EOI after it
            cut = int(rng.integers(start, len(b) - 2))
            b = b[:cut] + (b"\xff\xd9" if rng.integers(0, 2) else b"")
        elif kind == 1:  # flip bits in the entropy-coded data
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.integers(start, len(b) - 2))
                b[i] ^= 1 << int(rng.integers(0, 8))
        elif kind == 2:  # a stray marker inside the scan
            i = int(rng.integers(start, len(b) - 2))
            b[i : i + 2] = bytes([0xFF, int(rng.choice([0xD0, 0xD3, 0xD7, 0xC4, 0xFE, 0xFF]))])
        elif kind == 3:  # drop a run of bytes (restart markers, stuffed zeros, ...)
            i = int(rng.integers(start, len(b) - 2))
            del b[i : i + int(rng.integers(1, 6))]
        else:  # garbage after the scan
            b = b[:-2] + bytes(rng.integers(0, 256, 20, dtype=np.uint8)) + b"\xff\xd9"
        yield bytes(b)


@pytest.mark.parametrize("scale", [8, 4])
def test_damaged_files_behave_exactly_as_libjpeg(scale):
    rng = np.random.default_rng(99)
    img = photo_like(rng, 96, 136)
    sources = [cv2_jpeg(img, 90, "420"), cv2_jpeg(img, 75, "444", restart=3), cv2_jpeg(img[..., 1], 60)]
    taken = 0
    for data in sources:
        for bad in mutations(data, rng, 150):
            for channels in (1, 3):
                fast, took, ref = both(bad, channels, scale)
                taken += took
                assert_same(fast, ref)
    # Harmless damage (garbage after the scan, flips that still decode) stays on the fast path.
    assert taken > 0


@pytest.mark.parametrize("scale", [8, 4])
def test_restart_markers_out_of_order_fall_back(scale):
    img = photo_like(np.random.default_rng(3), 64, 64)
    data = bytearray(cv2_jpeg(img, 90, "420", restart=1))
    rst = [i for i in range(len(data) - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7]
    assert len(rst) >= 2
    data[rst[0] + 1], data[rst[1] + 1] = data[rst[1] + 1], data[rst[0] + 1]
    fast, took, ref = both(bytes(data), 3, scale)
    assert not took
    assert_same(fast, ref)


CORPUS = sorted((Path(__file__).parent / "data" / "fuzz_corpus").glob("*"))


@pytest.mark.parametrize("scale", [8, 4])
def test_fuzz_corpus_jpegs_same_through_both_paths(scale):
    """Every corpus JPEG (including inputs the differential fuzzer once flagged: a chroma
    block whose 2x2 IDCT overflows libjpeg-turbo's 16-bit SIMD) at scales 1/8 and 1/4."""
    jpegs = [p for p in CORPUS if p.is_file() and _core.sniff_format(p.read_bytes()) == "JPEG"]
    assert len(jpegs) >= 20
    taken = 0
    for p in jpegs:
        for channels in (1, 3, 4):
            fast, took, ref = both(p.read_bytes(), channels, scale)
            taken += took
            assert_same(fast, ref)
    assert taken > 0
