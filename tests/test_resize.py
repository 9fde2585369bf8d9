"""pyimgdir._core.resize against tf.image.resize(img_uint8, size, method, antialias=False).

Every interpolation Keras accepts, upscaling and downscaling, 1-pixel sources and targets and
extreme aspect ratios. TensorFlow is the oracle: float32 (uint8 for nearest), unclipped.
"""

from __future__ import annotations

import os
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from pyimgdir import _core

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.tf

METHODS = ["bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic"]
TOL = 1e-3

# (src_h, src_w, dst_h, dst_w, channels)
CASES = [
    (17, 23, 17, 23, 3),  # same size: TF still resamples
    (12, 10, 24, 20, 1),  # 2x up
    (60, 45, 20, 15, 4),  # 3x down
    (37, 50, 23, 71, 3),  # non-integer ratios, down one axis and up the other
    (101, 64, 30, 47, 3),  # non-integer downscale
    (29, 31, 50, 44, 4),  # non-integer upscale
    (1, 1, 9, 4, 3),  # 1x1 source
    (1, 1, 1, 1, 1),
    (40, 30, 1, 1, 3),  # 1-pixel targets
    (40, 30, 1, 13, 4),
    (25, 19, 6, 1, 1),
    (3, 200, 7, 5, 3),  # extreme aspect ratios
    (200, 3, 2, 50, 3),
    (1, 57, 5, 20, 1),
    (250, 180, 7, 9, 3),  # large downscale factor
    (48, 64, 224, 224, 3),
    (375, 500, 224, 224, 3),  # a typical photo to the default image_size
]


def content(seed: int, h: int, w: int, c: int) -> np.ndarray:
    """Smooth gradients with mild noise, plus a block of pure noise and a hard edge."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.empty((h, w, c))
    for k in range(c):
        fy, fx = rng.uniform(0.5, 3.0, 2)
        img[..., k] = 127.5 + 120 * np.sin(fy * np.pi * y / max(h, 2) + k) * np.cos(fx * np.pi * x / max(w, 2))
    img += rng.normal(0, 10, img.shape)
    img[: (h + 1) // 2, : (w + 1) // 3] = rng.integers(0, 256, ((h + 1) // 2, (w + 1) // 3, c))
    img[:, (2 * w) // 3 :] = np.where(img[:, (2 * w) // 3 :] > 127, 255, 0)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def tf_resize(img: np.ndarray, h: int, w: int, method: str) -> np.ndarray:
    return tf.image.resize(img, (h, w), method=method, antialias=False).numpy()


def shrink_cases(n=80, seed=15):
    """Random bilinear downscales of 1x to 5x (3 and 4 channels): the passes that read bytes
    at the taps (AVX2 two pixels at a time, or SSE2) instead of widening the row first."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        dh, dw = (int(v) for v in rng.integers(1, 130, 2))
        sh, sw = int(dh * rng.uniform(1.0, 5.0)) + 1, int(dw * rng.uniform(1.0, 5.0)) + 1
        out.append((sh, sw, dh, dw, int(rng.choice([3, 4]))))
    return out


def grow_cases(n=30, seed=17):
    """Random bilinear resizes of 0.3x to 1x (3 and 4 channels): with AVX2 the byte-reading
    pass serves these too; the SSE2 build widens each row to float first."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        sh, sw = (int(v) for v in rng.integers(1, 100, 2))
        dh, dw = int(sh / rng.uniform(0.3, 1.0)), int(sw / rng.uniform(0.3, 1.0))
        out.append((sh, sw, dh, dw, int(rng.choice([3, 4]))))
    return out


def row_cases():
    return shrink_cases() + grow_cases()


def test_bilinear_rows_match_tensorflow_with_and_without_avx2(tmp_path):
    import subprocess
    import sys

    cases = row_cases()
    for i, (sh, sw, dh, dw, c) in enumerate(cases):
        img = content(i, sh, sw, c)
        np.testing.assert_array_equal(_core.resize(img, dh, dw, "bilinear"), tf_resize(img, dh, dw, "bilinear"),
                                      err_msg=str(cases[i]))
    # the same cases with the SSE2 pass (as on a CPU without AVX2): identical bytes, mirrored too
    code = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[2]); from test_resize import content, row_cases;"
        "from pyimgdir import _core;"
        "np.savez(sys.argv[1], *[_core.resize(content(i, sh, sw, c), dh, dw, 'bilinear', flip_horizontal=fh)"
        " for i, (sh, sw, dh, dw, c) in enumerate(row_cases()) for fh in (False, True)])"
    )
    out = tmp_path / "sse2.npz"
    env = dict(os.environ, PYIMGDIR_NO_AVX2="1")
    r = subprocess.run([sys.executable, "-c", code, str(out), os.path.dirname(__file__)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with np.load(out) as sse2:
        for i, (sh, sw, dh, dw, c) in enumerate(cases):
            img = content(i, sh, sw, c)
            np.testing.assert_array_equal(sse2[f"arr_{2 * i}"], _core.resize(img, dh, dw, "bilinear"))
            np.testing.assert_array_equal(sse2[f"arr_{2 * i + 1}"],
                                          _core.resize(img, dh, dw, "bilinear", flip_horizontal=True))
            np.testing.assert_array_equal(sse2[f"arr_{2 * i + 1}"], tf_resize(img, dh, dw, "bilinear")[:, ::-1])


@pytest.mark.parametrize("flip_h,flip_v", [(True, False), (False, True), (True, True)])
def test_flips_fused_into_the_bilinear_resize_equal_resize_then_flip(flip_h, flip_v):
    # Every value is computed as without the flip and stored at its mirrored place: equal to
    # tf.image.flip_* after tf.image.resize, bit for bit, on shrinking rows (the byte-reading
    # passes, whose scalar edge pixels come first when mirrored) and growing ones (widened rows).
    cases = shrink_cases(n=40, seed=16) + [c for c in CASES if c[-1] in (1, 3, 4)]
    for i, (sh, sw, dh, dw, c) in enumerate(cases):
        img = content(100 + i, sh, sw, c)
        want = tf_resize(img, dh, dw, "bilinear")
        if flip_h:
            want = want[:, ::-1]
        if flip_v:
            want = want[::-1]
        got = _core.resize(img, dh, dw, "bilinear", flip_horizontal=flip_h, flip_vertical=flip_v)
        np.testing.assert_array_equal(got, want, err_msg=str(cases[i]))
    with pytest.raises(ValueError, match="bilinear"):
        _core.resize(content(0, 8, 8, 3), 4, 4, "area", flip_horizontal=True)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "{}x{}-{}x{}-c{}".format(*c))
@pytest.mark.parametrize("method", METHODS)
def test_matches_tensorflow(method, case):
    sh, sw, dh, dw, c = case
    img = content(sh * 1000 + sw * 10 + c, sh, sw, c)
    got = _core.resize(img, dh, dw, method)
    want = tf_resize(img, dh, dw, method)
    assert got.shape == want.shape == (dh, dw, c)
    assert got.dtype == want.dtype == (np.uint8 if method == "nearest" else np.float32)
    if method == "nearest":
        np.testing.assert_array_equal(got, want)
    else:
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        assert diff <= TOL, f"{method} {case}: max abs diff {diff}"


@pytest.mark.parametrize("method", ["bicubic", "lanczos3", "lanczos5", "mitchellcubic"])
def test_not_clipped(method):
    # A hard 0 -> 255 step rings on both sides with these kernels; TF keeps the overshoot.
    img = np.zeros((12, 12, 3), np.uint8)
    img[:, 6:] = 255
    img[6:, :, 1] = 255 - img[6:, :, 1]
    got = _core.resize(img, 31, 29, method)
    want = tf_resize(img, 31, 29, method)
    assert want.min() < 0 and want.max() > 255  # the oracle overshoots...
    assert got.min() < 0 and got.max() > 255  # ...and so do we, by the same amounts
    assert float(np.max(np.abs(got - want))) <= TOL
    # Downscaling rings too (no antialiasing, so the kernel keeps its negative lobes).
    got = _core.resize(img, 5, 7, method)
    np.testing.assert_allclose(got, tf_resize(img, 5, 7, method), rtol=0, atol=TOL)


def test_unknown_method():
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError):
        _core.resize(img, 2, 2, "bicubic2")


def test_thread_safe():
    # The core resizes in worker threads; concurrent calls must not interfere.
    img = content(7, 90, 70, 3)
    serial = {m: _core.resize(img, 33, 41, m) for m in METHODS}
    errors: list[str] = []

    def work(m: str) -> None:
        for _ in range(20):
            if not np.array_equal(_core.resize(img, 33, 41, m), serial[m]):
                errors.append(m)

    threads = [threading.Thread(target=work, args=(m,)) for m in METHODS for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
