"""Benchmark datasets: JPEG class folders cut from real photographs, deterministic.

The source pictures are the photographs bundled inside the scikit-image and scikit-learn
wheels (no network is needed: images that scikit-image would download through pooch are
not used). Each output file is a crop of one source at a random position and scale,
rescaled to the output size, lightly augmented (flip, brightness/contrast/saturation
jitter, a little gamma) and given mild sensor-like noise, then encoded by Pillow with a
per-file JPEG quality, chroma subsampling and baseline/progressive mode.

The noise matters: the sources are small (at most 1411 px), so every crop is upscaled,
and an upscaled crop is smoother than a camera photograph. Smooth pictures compress to
few bits per pixel and decode faster than real photos (libjpeg-turbo's cost grows with
the compressed bits, see shared/docs/PERFORMANCE_NOTES.md §4). The noise brings the bits
per pixel up to the range of real photographs; the manifest records the result.

    python benchmarks/make_datasets.py                 # photos and camera
    python benchmarks/make_datasets.py photos-small    # one set
    python benchmarks/make_datasets.py --force camera  # rebuild

Sets are written to benchmarks/data/<name>/<class>/<file>.jpg with a MANIFEST.json; a set
whose manifest matches its recipe is reused as it is.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
RECIPE_VERSION = 3  # bump when the generator's output changes


@dataclass(frozen=True)
class Recipe:
    name: str
    count: int
    classes: int
    seed: int
    # size: fixed (w, h), or a median long side with a log-normal spread
    fixed_size: Optional[Tuple[int, int]] = None
    long_side_median: int = 495
    long_side_sigma: float = 0.22
    long_side_range: Tuple[int, int] = (256, 1024)
    portrait_p: float = 0.2
    quality: Tuple[int, int] = (75, 95)  # inclusive range, uniform
    progressive_p: float = 0.10
    subsampling_444_p: float = 0.15
    grayscale_p: float = 0.07
    noise_sigma: Tuple[float, float] = (1.5, 4.0)  # luminance noise, 0-255 scale
    crop_scale: Tuple[float, float] = (0.35, 1.0)  # crop width / widest crop of that aspect


RECIPES: Dict[str, Recipe] = {
    # ImageNet-like: ~2,000 files in 10 classes, median about 480x360, mixed encodings
    "photos": Recipe("photos", count=2000, classes=10, seed=20240601),
    # phone-camera-like: 4032x3024, quality 90, baseline 4:2:0, colour
    "camera": Recipe(
        "camera", count=100, classes=4, seed=20240602, fixed_size=(4032, 3024),
        portrait_p=0.0, quality=(90, 90), progressive_p=0.0, subsampling_444_p=0.0,
        grayscale_p=0.0, noise_sigma=(3.5, 5.5), crop_scale=(0.75, 1.0),
    ),
    # small versions of both, for developing the harness
    "photos-small": Recipe("photos-small", count=200, classes=10, seed=20240601),
    "camera-small": Recipe(
        "camera-small", count=8, classes=2, seed=20240602, fixed_size=(4032, 3024),
        portrait_p=0.0, quality=(90, 90), progressive_p=0.0, subsampling_444_p=0.0,
        grayscale_p=0.0, noise_sigma=(3.5, 5.5), crop_scale=(0.75, 1.0),
    ),
}

# Bundled colour photographs (scikit-image 0.26 / scikit-learn wheels; all load offline).
_SKIMAGE_COLOUR = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                   "immunohistochemistry", "retina"]
_SKIMAGE_GRAY = ["camera", "moon", "coins", "clock", "grass", "gravel", "brick"]

_sources_cache: Optional[List[np.ndarray]] = None


def load_sources() -> List[np.ndarray]:
    """The source photographs as HxWx3 uint8 arrays (grayscale ones replicated)."""
    global _sources_cache
    if _sources_cache is not None:
        return _sources_cache
    try:
        import skimage.data as skd
        from sklearn.datasets import load_sample_images
    except ImportError as e:  # pragma: no cover
        raise SystemExit(
            "make_datasets needs scikit-image and scikit-learn for their bundled photographs: "
            "pip install scikit-image scikit-learn"
        ) from e
    out = []
    for name in _SKIMAGE_COLOUR:
        out.append(np.ascontiguousarray(getattr(skd, name)()[..., :3]))
    left, right, _ = skd.stereo_motorcycle()
    out += [left, right]
    out += [np.ascontiguousarray(a) for a in load_sample_images().images]  # china, flower
    for name in _SKIMAGE_GRAY:
        g = getattr(skd, name)()
        out.append(np.repeat(g[..., None], 3, axis=2))
    _sources_cache = out
    return out


def _output_size(r: Recipe, rng: np.random.Generator) -> Tuple[int, int]:
    if r.fixed_size is not None:
        w, h = r.fixed_size
    else:
        lo, hi = r.long_side_range
        long_side = int(np.clip(r.long_side_median * np.exp(rng.normal(0, r.long_side_sigma)), lo, hi))
        aspect = rng.choice([4 / 3, 3 / 2, 1.0, 16 / 9, 5 / 4], p=[0.5, 0.2, 0.1, 0.1, 0.1])
        w, h = long_side, int(round(long_side / aspect))
    if rng.random() < r.portrait_p:
        w, h = h, w
    return int(w), int(h)


def make_image(r: Recipe, index: int) -> Tuple[bytes, dict]:
    """The encoded JPEG for file `index` of recipe `r` and its encoding parameters."""
    from PIL import Image, ImageEnhance

    rng = np.random.default_rng([r.seed, index])
    sources = load_sources()
    # colour sources twice as likely as grayscale ones
    weights = np.array([2.0 if i < len(sources) - len(_SKIMAGE_GRAY) else 1.0 for i in range(len(sources))])
    src = sources[rng.choice(len(sources), p=weights / weights.sum())]
    w, h = _output_size(r, rng)

    # crop: the output aspect ratio, a random share of the largest such crop, random position
    sh, sw = src.shape[:2]
    aspect = w / h
    cw_max = min(sw, int(sh * aspect))
    scale = rng.uniform(*r.crop_scale)
    cw = max(16, int(cw_max * scale))
    ch = max(16, min(sh, int(round(cw / aspect))))
    x0 = int(rng.integers(0, sw - cw + 1))
    y0 = int(rng.integers(0, sh - ch + 1))
    im = Image.fromarray(src[y0 : y0 + ch, x0 : x0 + cw])
    im = im.resize((w, h), Image.Resampling.BICUBIC)

    if rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.8, 1.2))
    im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.8, 1.25))
    im = ImageEnhance.Color(im).enhance(rng.uniform(0.7, 1.3))

    a = np.asarray(im, dtype=np.float32)
    gamma = rng.uniform(0.85, 1.15)
    a = 255.0 * (a / 255.0) ** gamma
    # sensor-like noise: mostly luminance, a little chroma
    sigma = rng.uniform(*r.noise_sigma)
    nrng = np.random.default_rng([r.seed, index, 1])
    lum = nrng.standard_normal((h, w, 1), dtype=np.float32) * sigma
    chroma = nrng.standard_normal((h, w, 3), dtype=np.float32) * (sigma * 0.35)
    a += lum
    a += chroma
    np.clip(a, 0, 255, out=a)
    im = Image.fromarray((a + 0.5).astype(np.uint8))

    gray = rng.random() < r.grayscale_p
    if gray:
        im = im.convert("L")
    quality = int(rng.integers(r.quality[0], r.quality[1] + 1))
    progressive = bool(rng.random() < r.progressive_p)
    s444 = bool(rng.random() < r.subsampling_444_p)
    buf = io.BytesIO()
    kw = dict(quality=quality, progressive=progressive)
    if not gray:
        kw["subsampling"] = 0 if s444 else 2
    im.save(buf, "JPEG", **kw)
    data = buf.getvalue()
    meta = dict(w=w, h=h, quality=quality, progressive=progressive, grayscale=gray,
                subsampling="4:4:4" if (s444 and not gray) else ("gray" if gray else "4:2:0"),
                bytes=len(data))
    return data, meta


def _file_path(root: Path, r: Recipe, index: int) -> Path:
    return root / f"class_{index % r.classes:02d}" / f"img_{index:05d}.jpg"


def _write_one(args):
    r, root, index = args
    data, meta = make_image(r, index)
    p = _file_path(root, r, index)
    p.write_bytes(data)
    return meta


def _summary(metas: List[dict]) -> dict:
    ws = np.array([m["w"] for m in metas])
    hs = np.array([m["h"] for m in metas])
    by = np.array([m["bytes"] for m in metas])
    bpp = by * 8 / (ws * hs)
    return dict(
        files=len(metas),
        median_width=int(np.median(ws)), median_height=int(np.median(hs)),
        median_megapixels=round(float(np.median(ws * hs) / 1e6), 3),
        total_megabytes=round(float(by.sum() / 1e6), 1),
        median_kilobytes=round(float(np.median(by) / 1e3), 1),
        median_bits_per_pixel=round(float(np.median(bpp)), 2),
        bits_per_pixel_p10_p90=[round(float(np.percentile(bpp, 10)), 2), round(float(np.percentile(bpp, 90)), 2)],
        progressive=int(sum(m["progressive"] for m in metas)),
        subsampling_444=int(sum(m["subsampling"] == "4:4:4" for m in metas)),
        grayscale=int(sum(m["grayscale"] for m in metas)),
        quality_range=[int(min(m["quality"] for m in metas)), int(max(m["quality"] for m in metas))],
    )


def _manifest_ok(root: Path, r: Recipe) -> Optional[dict]:
    mf = root / "MANIFEST.json"
    if not mf.exists():
        return None
    try:
        m = json.loads(mf.read_text())
    except ValueError:
        return None
    want = dict(asdict(r), version=RECIPE_VERSION)
    want = json.loads(json.dumps(want))  # tuples -> lists, as stored
    if m.get("recipe") != want:
        return None
    if sum(1 for _ in root.rglob("*.jpg")) != r.count:
        return None
    return m


def ensure(name: str, data_dir: Path = DATA_DIR, force: bool = False, workers: Optional[int] = None,
           quiet: bool = False) -> Path:
    """Makes set `name` under `data_dir` unless an up-to-date copy is there; returns its path."""
    if name not in RECIPES:
        raise SystemExit(f"unknown dataset {name!r}; known: {', '.join(RECIPES)}")
    r = RECIPES[name]
    root = data_dir / name
    if not force and _manifest_ok(root, r) is not None:
        return root
    if root.exists():
        shutil.rmtree(root)
    for c in range(r.classes):
        (root / f"class_{c:02d}").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    jobs = [(r, root, i) for i in range(r.count)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            metas = list(ex.map(_write_one, jobs, chunksize=8))
    else:
        metas = [_write_one(j) for j in jobs]
    summary = _summary(metas)
    manifest = dict(recipe=json.loads(json.dumps(dict(asdict(r), version=RECIPE_VERSION))),
                    summary=summary, seconds_to_make=round(time.perf_counter() - t0, 1))
    (root / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if not quiet:
        print(f"made {name}: {json.dumps(summary)} in {manifest['seconds_to_make']} s", file=sys.stderr)
    return root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=["photos", "camera"], help=f"sets: {', '.join(RECIPES)}")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--force", action="store_true", help="rebuild even if an up-to-date copy exists")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    a = ap.parse_args(argv)
    for n in a.names:
        root = ensure(n, a.data_dir, force=a.force, workers=a.workers)
        m = json.loads((root / "MANIFEST.json").read_text())
        print(f"{n}: {root}\n  {json.dumps(m['summary'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
