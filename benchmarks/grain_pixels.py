"""Pixel differences between pyimgdir's format="grain" and Keras' own format="grain".

    python benchmarks/grain_pixels.py [--backends tensorflow,jax] [--out FILE]

Keras' grain path decodes with Pillow and resizes with keras.ops.image.resize of the active
backend. pyimgdir decodes with Pillow's conventions and resizes with TensorFlow's numerics,
so under the TensorFlow backend the two are equal bit for bit; under JAX and torch the
backend's own resize differs. For each backend (one subprocess each: the backend is fixed per process)
this builds one sample tree with every colour mode and format (tests/test_grain.py's
mixed tree) plus photo-like JPEGs, loads it with both functions for each color_mode and
method, and records the largest and mean absolute difference (0-255 scale), per colour
mode and method. Results: benchmarks/results/grain-pixels.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5")
MODES = ("rgb", "grayscale", "rgba")
FITS = ("stretch", "crop_to_aspect_ratio", "pad_to_aspect_ratio")


def make_tree(root: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    import numpy as np
    from PIL import Image

    import test_grain
    from conftest import photo_like

    class _Factory:
        def mktemp(self, name):
            p = root / name
            p.mkdir(parents=True, exist_ok=True)
            return p

    data = test_grain.mixed_tree.__wrapped__(_Factory())
    rng = np.random.default_rng(21)
    for i in range(16):  # photo-sized JPEGs, downscaled to the target
        h, w = int(rng.integers(200, 420)), int(rng.integers(200, 420))
        Image.fromarray(photo_like(rng, h, w)).save(data / "b" / f"photo_{i:02d}.jpg", quality=int(rng.integers(75, 95)))
    return data


def measure(backend: str, directory: str) -> dict:
    os.environ["KERAS_BACKEND"] = backend
    import numpy as np
    from keras.src.utils import image_dataset_utils

    import pyimgdir

    def epoch(ds):
        return np.concatenate([np.asarray(el[0] if isinstance(el, tuple) else el) for el in ds])

    import keras

    out = {}
    for mode in MODES:
        for method in METHODS:
            try:
                keras.ops.image.resize(np.zeros((2, 2, 1), np.float32), size=(1, 1), interpolation=method)
            except ValueError:
                out[f"{mode}/{method}"] = "refused by keras.ops.image.resize on this backend (by both)"
                continue
            for fit in FITS:
                kw = dict(color_mode=mode, interpolation=method, image_size=(96, 128), batch_size=8,
                          shuffle=False, label_mode=None, verbose=False)
                if fit != "stretch":
                    kw[fit] = True
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    k = epoch(image_dataset_utils.image_dataset_from_directory(directory, format="grain", **kw))
                    p = epoch(pyimgdir.image_dataset_from_directory(directory, format="grain", **kw))
                d = np.abs(k.astype(np.float64) - p.astype(np.float64))
                out[f"{mode}/{method}/{fit}"] = dict(
                    max=round(float(d.max()), 4), mean=round(float(d.mean()), 5),
                    share_equal=round(float((d == 0).mean()), 4), values=int(d.size),
                )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="tensorflow,jax,torch")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "grain-pixels.json")
    ap.add_argument("--_measure", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._measure:
        print(json.dumps(measure(*args._measure)))
        return 0
    result = {"files": None, "image_size": [96, 128], "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        directory = make_tree(Path(tmp))
        result["files"] = sorted(p.name for p in directory.rglob("*") if p.is_file())
        for backend in args.backends.split(","):
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
                       PYTHONPATH=os.pathsep.join([str(REPO)] + [os.environ.get("PYTHONPATH", "")]))
            proc = subprocess.run([sys.executable, __file__, "--_measure", backend, str(directory)],
                                  env=env, capture_output=True, text=True)
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            rows = json.loads(proc.stdout.strip().splitlines()[-1])
            result["backends"][backend] = rows
            for mode in MODES:
                sel = [v for k, v in rows.items() if k.startswith(mode + "/") and isinstance(v, dict)]
                print(f"{backend:10s} {mode:9s} max {max(v['max'] for v in sel):8.4f}  "
                      f"mean {sum(v['mean'] for v in sel) / len(sel):.5f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
