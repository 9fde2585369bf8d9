"""Shared fixtures: small image trees written with real encoders into tmp_path."""

from __future__ import annotations

import io
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest


def photo_like(rng: np.random.Generator, h: int, w: int, channels: int = 3) -> np.ndarray:
    """Smooth gradients, a few shapes and mild noise: content with real JPEG statistics."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = []
    for c in range(channels):
        fx, fy, ph = rng.uniform(0.01, 0.15), rng.uniform(0.01, 0.15), rng.uniform(0, 6.28)
        base.append(127 + 100 * np.sin(fx * x + ph) * np.cos(fy * y - ph))
    img = np.stack(base, -1)
    for _ in range(3):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(2, max(3, min(h, w) // 2))
        mask = (y - cy) ** 2 + (x - cx) ** 2 < r * r
        img[mask] = rng.integers(0, 256, channels)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    from PIL import Image

    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


def write_image(path: Path, arr: np.ndarray, fmt: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt is None:
        ext = path.suffix.lower()
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF"}[ext]
    path.write_bytes(encode(arr, fmt, **kw))
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def make_tree(tmp_path, rng):
    """make_tree({"a": 3, "b/sub": 2}, ext=".jpg") writes photo-like images of varied sizes."""

    def _make(layout: dict, ext: str = ".jpg", root: Path | None = None, size_range=(16, 90)):
        root = root or tmp_path / "data"
        root.mkdir(parents=True, exist_ok=True)
        exts = [ext] if isinstance(ext, str) else list(ext)
        k = 0
        for rel, count in layout.items():
            for i in range(count):
                h, w = (int(v) for v in rng.integers(size_range[0], size_range[1], 2))
                e = exts[k % len(exts)]
                k += 1
                write_image(root / rel / f"img_{i:03d}{e}", photo_like(rng, h, w))
        return root

    return _make


@pytest.fixture(scope="session")
def tf():
    tf = pytest.importorskip("tensorflow")
    return tf


@pytest.fixture(scope="session")
def keras(tf):
    return pytest.importorskip("keras")


def pytest_terminal_summary(terminalreporter):
    """Prints how many Keras-vs-pyimgdir comparisons ran and the largest pixel difference
    seen per interpolation method (the parity suite's figures)."""
    try:
        from parity_util import Stats
    except ImportError:
        return
    if not Stats.cases:
        return
    tr = terminalreporter
    tr.section("pyimgdir vs Keras")
    tr.write_line(f"dataset calls compared against Keras: {Stats.cases}; samples compared: {Stats.samples}")
    for method, diff in sorted(Stats.max_diff.items()):
        tr.write_line(f"  {method:<14} largest |pixel difference|: {diff:g}")


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 for the whole session (installed by the test extra)."""
    from object_stores import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server():
    """gcp-storage-emulator on 127.0.0.1 for the whole session (installed by the test extra)."""
    from object_stores import GCSServer

    server = GCSServer()
    yield server
    server.stop()
