"""CPU per JPEG crop: libjpeg on the whole file (jpeg_crop_scanline + jpeg_skip_scanlines,
TensorFlow's decode_and_crop_jpeg calls) against the crop rewritten as a smaller JPEG of its
MCUs (csrc/core/jpeg_region_scan.cpp), the first time (recording the file's checkpoints) and
later (using them); at 1/4 also against the entropy-data decoder.

    python benchmarks/crop_rewrite_cost.py --dataset photos            # full-scale crops
    python benchmarks/crop_rewrite_cost.py --dataset camera --scale 4  # 1/4 crops

Crops are random-resized boxes (torchvision's ranges) over the dataset's baseline files, one
thread, decode only (no resize). The variants run interleaved, `--rounds` times each; the
table gives the median CPU µs per crop and the min-max over rounds. Every rewritten crop is
checked against libjpeg's pixels. Writes benchmarks/results/crop-rewrite-<dataset>-<scale>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402


def boxes_for(rng, h: int, w: int, scale: int, area: tuple):
    """A random-resized box in 1/`scale` pixels."""
    a = rng.uniform(*area) * h * w
    r = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    bw, bh = min(w, max(1, round((a * r) ** 0.5))), min(h, max(1, round((a / r) ** 0.5)))
    y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    oh, ow = -(-h // scale), -(-w // scale)
    y, x = y // scale, x // scale
    return (y, x, max(1, min(oh - y, bh // scale)), max(1, min(ow - x, bw // scale)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="photos")
    ap.add_argument("--scale", type=int, default=1, choices=[1, 2, 4])
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)

    from PIL import Image

    from pyimgdir import _core

    # 1/4 crops are the boxes DCT scaling sends to 1/4 (8-26% of a 12 MP photo); full scale
    # and 1/2 take torchvision's whole range.
    area = (0.08, 0.26) if a.scale == 4 else (0.08, 1.0)
    rng = np.random.default_rng(0)
    items = []
    for f in sorted((HERE / "data" / a.dataset).glob("*/*"))[: a.files]:
        im = Image.open(f)
        if im.format != "JPEG" or im.info.get("progressive"):
            continue
        items.append((f.read_bytes(), boxes_for(rng, im.size[1], im.size[0], a.scale, area)))

    def run_variant(fast_eighth: bool, region_scan: bool):
        t = time.process_time()
        outs = [_core.decode_jpeg_scaled(d, 3, a.scale, fast_eighth, region=b, region_scan=region_scan)[0]
                for d, b in items]
        return (time.process_time() - t) / len(items) * 1e6, outs

    variants = {"libjpeg on the file": (False, False), "rewrite, checkpoints kept": (False, True)}
    if a.scale == 4:
        variants["entropy-data decoder"] = (True, False)
    plain = run_variant(False, False)[1]  # warms up caches and allocations
    before = _core.jpeg_checkpoint_stats()["rewrites"]
    first, ref = run_variant(False, True)  # records every file's checkpoints
    rewritten = _core.jpeg_checkpoint_stats()["rewrites"] - before
    assert all(np.array_equal(x, y) for x, y in zip(ref, plain)), "a rewritten crop differs from libjpeg's"
    times = {k: [] for k in variants}
    for _ in range(a.rounds):
        for k, (fe, rs) in variants.items():
            times[k].append(run_variant(fe, rs)[0])

    info = run.machine_info()
    print(run.machine_line(info))
    print(f"{a.dataset}, scale 1/{a.scale}: {len(items)} baseline files, one crop each, "
          f"{rewritten} rewritten; {a.rounds} interleaved rounds, CPU µs per crop, one thread")
    rows = {"rewrite, first crop of each file": {"median_us": first, "min_us": first, "max_us": first}}
    for k, v in times.items():
        rows[k] = {"median_us": statistics.median(v), "min_us": min(v), "max_us": max(v)}
    base = rows["libjpeg on the file"]["median_us"]
    for k, r in rows.items():
        print(f"  {k:34s} {r['median_us']:9.0f}  ({r['min_us']:.0f}-{r['max_us']:.0f})  "
              f"{r['median_us'] / base:5.2f}x libjpeg")
    out = HERE / "results" / f"crop-rewrite-{a.dataset}-{a.scale}.json"
    out.write_text(json.dumps(dict(machine=info, dataset=a.dataset, scale=a.scale, files=len(items),
                                   rewritten=rewritten, rounds=a.rounds, rows=rows), indent=1) + "\n")
    print(f"wrote {out.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
