"""Micro-benchmarks of the core stages: decode, resize, one sample, one batch.

Run on demand (not part of the test suite: the project's testpaths is tests/):

    python -m pytest benchmarks/test_micro.py --benchmark-only
    python -m pytest benchmarks/test_micro.py --benchmark-only -k decode --benchmark-columns=min,median,ops

Each stage is timed for pyimgdir next to the obvious alternative (simplejpeg, OpenCV,
Pillow) on the same bytes. The images are made in memory by make_datasets.py's generator:
a median-size "photos" file (baseline 4:2:0 and progressive) and one 4032x3024 "camera"
file. Single-threaded except the batch benchmarks, which use all cores.
"""

from __future__ import annotations

import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_datasets as md  # noqa: E402

import pyimgdir  # noqa: E402
from pyimgdir import _core  # noqa: E402

cv2 = pytest.importorskip("cv2")
simplejpeg = pytest.importorskip("simplejpeg")
Image = pytest.importorskip("PIL.Image")

H = W = 224


def _photo_recipe(**kw):
    # one typical "photos" file: 4:3, 480 px long side, quality 90, colour
    return replace(md.RECIPES["photos"], long_side_sigma=0.0, long_side_median=480, portrait_p=0.0,
                   quality=(90, 90), grayscale_p=0.0, subsampling_444_p=0.0, **kw)


def _reencode_4_3(data: bytes, progressive: bool) -> bytes:
    im = Image.open(io.BytesIO(data)).convert("RGB").resize((480, 360))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, progressive=progressive)
    return buf.getvalue()


@pytest.fixture(scope="session")
def images():
    photo, _ = md.make_image(_photo_recipe(progressive_p=0.0), 7)
    photo = _reencode_4_3(photo, progressive=False)  # fixed 480x360 whatever aspect was drawn
    progressive = _reencode_4_3(photo, progressive=True)
    camera, _ = md.make_image(md.RECIPES["camera-small"], 0)
    return {"photo 480x360": photo, "photo 480x360 progressive": progressive, "camera 4032x3024": camera}


KINDS = ["photo 480x360", "photo 480x360 progressive", "camera 4032x3024"]


# ----------------------------------------------------------------------------- decode

DECODERS = {
    "pyimgdir": lambda d: _core.decode(d, 3),
    "simplejpeg": lambda d: simplejpeg.decode_jpeg(d, colorspace="RGB"),
    "cv2": lambda d: cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR),
    "pillow": lambda d: np.asarray(Image.open(io.BytesIO(d)).convert("RGB")),
}


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("kind", KINDS)
def test_decode(benchmark, images, kind, decoder):
    cv2.setNumThreads(1)
    benchmark.group = f"decode {kind}"
    data = images[kind]
    out = benchmark(DECODERS[decoder], data)
    assert out.shape[2] == 3 and out.shape[0] in (360, 3024)


# ------------------------------------------------------------- 1/8-scale decode (jpeg_downscale)

SCALED = {
    "pyimgdir, DC terms": lambda d: _core.decode_jpeg_scaled(d, 3, 8, True)[0],
    "pyimgdir, through libjpeg": lambda d: _core.decode_jpeg_scaled(d, 3, 8, False)[0],
    "simplejpeg": lambda d: simplejpeg.decode_jpeg(d, colorspace="RGB", min_height=378, min_width=504),
}


@pytest.mark.parametrize("decoder", list(SCALED))
def test_decode_eighth(benchmark, images, decoder):
    benchmark.group = "decode camera 4032x3024 at 1/8"
    out = benchmark(SCALED[decoder], images["camera 4032x3024"])
    assert out.shape == (378, 504, 3)


# ----------------------------------------------------------------------------- resize


def _decoded(images, kind):
    return np.ascontiguousarray(simplejpeg.decode_jpeg(images[kind], colorspace="RGB"))


RESIZERS = {
    "pyimgdir bilinear -> float32": lambda a: _core.resize(a, H, W, "bilinear"),
    "cv2 INTER_LINEAR -> uint8": lambda a: cv2.resize(a, (W, H), interpolation=cv2.INTER_LINEAR),
    "cv2 INTER_LINEAR -> float32": lambda a: cv2.resize(a, (W, H), interpolation=cv2.INTER_LINEAR).astype(np.float32),
    "cv2 INTER_AREA -> uint8": lambda a: cv2.resize(a, (W, H), interpolation=cv2.INTER_AREA),
    "pillow BILINEAR (antialiased)": lambda a: np.asarray(Image.fromarray(a).resize((W, H), Image.Resampling.BILINEAR)),
}


@pytest.mark.parametrize("resizer", list(RESIZERS))
@pytest.mark.parametrize("kind", ["photo 480x360", "camera 4032x3024"])
def test_resize(benchmark, images, kind, resizer):
    cv2.setNumThreads(1)
    benchmark.group = f"resize {kind} -> {H}x{W}"
    a = _decoded(images, kind)
    out = benchmark(RESIZERS[resizer], a)
    assert out.shape == (H, W, 3)


# ------------------------------------------------- one sample: read + decode + resize + write


@pytest.fixture(scope="session")
def files(tmp_path_factory, images):
    """64 photo files (one batch) and 4 camera files, on disk."""
    root = tmp_path_factory.mktemp("micro")
    out = {}
    for kind, n in (("photo 480x360", 64), ("camera 4032x3024", 4)):
        d = root / kind.split()[0] / "class_a"
        d.mkdir(parents=True)
        r = _photo_recipe(progressive_p=0.1) if kind.startswith("photo") else md.RECIPES["camera-small"]
        for i in range(n):
            data = images[kind] if not kind.startswith("photo") else md.make_image(r, i)[0]
            (d / f"{i:03d}.jpg").write_bytes(data)
        out[kind] = sorted(str(p) for p in d.iterdir())
    return out


SAMPLE_VARIANTS = {
    "pyimgdir float32": dict(dtype="float32"),
    "pyimgdir uint8": dict(dtype="uint8"),
    "pyimgdir float32 jpeg_downscale": dict(dtype="float32", jpeg_downscale=True),
}


@pytest.mark.parametrize("variant", list(SAMPLE_VARIANTS) + ["simplejpeg+cv2 float32", "simplejpeg+cv2 downscale float32"])
@pytest.mark.parametrize("kind", ["photo 480x360", "camera 4032x3024"])
def test_one_sample(benchmark, files, kind, variant):
    """Read one file, decode, resize to 224x224 and write the sample (one thread)."""
    cv2.setNumThreads(1)
    benchmark.group = f"one sample {kind} -> {H}x{W}"
    path = files[kind][0]
    if variant.startswith("pyimgdir"):
        try:
            loader = _core.Loader([path], H, W, 3, num_threads=1, **SAMPLE_VARIANTS[variant])
        except TypeError as e:  # an older core without the option
            pytest.skip(str(e))
        out = benchmark(loader.load, 0)
    else:
        kw = dict(min_height=H, min_width=W, min_factor=2) if "downscale" in variant else {}
        buf = np.empty((H, W, 3), np.float32)

        def one():
            with open(path, "rb") as f:
                img = simplejpeg.decode_jpeg(f.read(), colorspace="RGB", **kw)
            buf[...] = cv2.resize(img, (W, H), interpolation=cv2.INTER_LINEAR)
            return buf

        out = benchmark(one)
    assert out.shape == (H, W, 3)


# ------------------------------------------------------------------ one batch, all cores


@pytest.mark.parametrize("variant", ["pyimgdir numpy float32", "pyimgdir numpy uint8", "simplejpeg+cv2 pool float32"])
def test_batch_fill(benchmark, files, variant):
    """One 64-image batch of photos (one epoch of a 64-file dataset), all cores."""
    benchmark.group = f"batch of 64 photos -> {H}x{W}, {os.cpu_count()} threads"
    paths = files["photo 480x360"]
    if variant.startswith("pyimgdir"):
        ds = pyimgdir.image_dataset_from_directory(
            str(Path(paths[0]).parent.parent), image_size=(H, W), batch_size=64, shuffle=False,
            verbose=False, format="numpy", dtype=variant.split()[-1])

        def batch():
            return [x for x, _ in ds][0]
    else:
        cv2.setNumThreads(1)
        pool = ThreadPoolExecutor(os.cpu_count())

        def fill(out, i, p):
            with open(p, "rb") as f:
                img = simplejpeg.decode_jpeg(f.read(), colorspace="RGB")
            out[i] = cv2.resize(img, (W, H), interpolation=cv2.INTER_LINEAR)

        def batch():
            out = np.empty((len(paths), H, W, 3), np.float32)
            for f in [pool.submit(fill, out, i, p) for i, p in enumerate(paths)]:
                f.result()
            return out

    out = benchmark(batch)
    assert out.shape == (64, H, W, 3)
