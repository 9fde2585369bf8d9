"""A built-in sample dataset: photo-like JPEGs (and some PNGs) in class folders.

The images are synthetic but have photographic statistics (smooth shading, edges, noise),
so decode and resize costs are realistic. Encoded with Pillow, OpenCV or TensorFlow,
whichever is installed.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Callable

import numpy as np


def _encoder() -> Callable[[np.ndarray, str, int], bytes]:
    try:
        from PIL import Image

        def enc(arr, fmt, quality):
            buf = io.BytesIO()
            kw = {"quality": quality} if fmt == "JPEG" else {}
            Image.fromarray(arr).save(buf, fmt, **kw)
            return buf.getvalue()

        return enc
    except ImportError:
        pass
    try:
        import cv2

        def enc(arr, fmt, quality):
            ext = ".jpg" if fmt == "JPEG" else ".png"
            params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "JPEG" else []
            ok, buf = cv2.imencode(ext, arr[:, :, ::-1], params)
            if not ok:
                raise RuntimeError("OpenCV could not encode the sample image")
            return buf.tobytes()

        return enc
    except ImportError:
        pass
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        def enc(arr, fmt, quality):
            if fmt == "JPEG":
                return tf.io.encode_jpeg(arr, quality=quality).numpy()
            return tf.io.encode_png(arr).numpy()

        return enc
    except ImportError:
        pass
    raise ImportError("Making the sample needs Pillow, OpenCV or TensorFlow to encode images")


def photo_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = []
    for _ in range(3):
        fx, fy, ph = rng.uniform(0.005, 0.05), rng.uniform(0.005, 0.05), rng.uniform(0, 6.28)
        chans.append(127 + 90 * np.sin(fx * x + ph) * np.cos(fy * y - ph))
    img = np.stack(chans, -1)
    for _ in range(6):
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        r = int(rng.integers(4, max(5, min(h, w) // 3)))
        mask = (y - cy) ** 2 + (x - cx) ** 2 < r * r
        img[mask] = img[mask] * 0.3 + rng.uniform(0, 255, 3) * 0.7
    img += rng.normal(0, 5, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_sample(root, classes: int = 5, per_class: int = 100, seed: int = 0,
                size_range=(240, 520), png_fraction: float = 0.05) -> Path:
    """Writes ``classes`` folders of ``per_class`` images under ``root`` (kept if present)."""
    root = Path(root)
    marker = root / f".pyimgdir-sample-{classes}-{per_class}-{seed}"
    if marker.exists():
        return root
    enc = _encoder()
    rng = np.random.default_rng(seed)
    for c in range(classes):
        d = root / f"class_{c}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = (int(v) for v in rng.integers(size_range[0], size_range[1], 2))
            img = photo_like(rng, h, w)
            if rng.random() < png_fraction:
                (d / f"img_{i:04d}.png").write_bytes(enc(img, "PNG", 0))
            else:
                q = int(rng.integers(75, 96))
                (d / f"img_{i:04d}.jpg").write_bytes(enc(img, "JPEG", q))
    marker.write_text("complete\n")
    return root
