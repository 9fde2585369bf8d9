"""How far DCT-scaled random crops (the default with random_resized_crop) are from the exact
ones (jpeg_downscale=False, equal to TensorFlow's decode_and_crop_jpeg + resize).

    python benchmarks/crop_dct_difference.py --dataset photos --epochs 2

Same seed, same boxes; for each sample the DCT scale the rule picked (from the boxes and
image sizes) and the absolute difference of the float32 outputs (0-255 scale).
Writes benchmarks/results/crop-dct-difference-<dataset>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def dct_scale(H, W, box, out):
    """The rule (README): the largest d of 8, 4, 2 at which the crop mapped onto the 1/d
    image (edges rounded to the nearest pixel) still covers the output; else 1."""
    for d in (8, 4, 2):
        y, x, h, w = box
        oh, ow = -(-H // d), -(-W // d)
        rd = lambda a: (2 * a + d) // (2 * d)  # noqa: E731
        y1, x1 = max(min(oh, rd(y + h)), 1), max(min(ow, rd(x + w)), 1)
        if y1 - min(rd(y), y1 - 1) >= out[0] and x1 - min(rd(x), x1 - 1) >= out[1]:
            return d
    return 1


def main(argv=None) -> int:
    import pyimgdir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="photos")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args(argv)
    root = HERE / "data" / a.dataset
    size = (a.size, a.size)
    kw = dict(format="numpy", image_size=size, batch_size=64, shuffle=False, seed=1, verbose=False,
              random_resized_crop=True, random_flip="horizontal")
    fast = pyimgdir.image_dataset_from_directory(root, **kw)
    exact = pyimgdir.image_dataset_from_directory(root, jpeg_downscale=False, **kw)
    per_scale = {}
    for epoch in range(a.epochs):
        boxes = exact.crop_boxes(epoch)
        f = np.concatenate([x for x, _ in fast.epoch(epoch)])
        e = np.concatenate([x for x, _ in exact.epoch(epoch)])
        for i in range(len(f)):
            box = [int(boxes[k][i]) for k in ("y", "x", "height", "width")]
            d = dct_scale(int(boxes["image_height"][i]), int(boxes["image_width"][i]), box, size)
            diff = np.abs(f[i].astype(np.float64) - e[i])
            per_scale.setdefault(d, []).append((diff.mean(), diff.max()))
    out = {"dataset": a.dataset, "output": list(size), "epochs": a.epochs, "by_scale": {}}
    all_means = []
    for d in sorted(per_scale):
        v = np.array(per_scale[d])
        all_means += list(v[:, 0])
        out["by_scale"][f"1/{d}"] = dict(samples=len(v), mean_abs_diff=round(float(v[:, 0].mean()), 3),
                                         max_abs_diff=round(float(v[:, 1].max()), 2))
    out["all_samples_mean_abs_diff"] = round(float(np.mean(all_means)), 3)
    print(json.dumps(out, indent=1))
    path = HERE / "results" / f"crop-dct-difference-{a.dataset}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
