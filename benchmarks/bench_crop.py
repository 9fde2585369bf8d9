"""Training input: random-resized crop + horizontal flip, pyimgdir against TensorFlow's
reference pipeline and torchvision, with the full-size decode ceiling, same files, same run.

    python benchmarks/bench_crop.py --dataset photos --rounds 3
    python benchmarks/bench_crop.py --dataset camera --rounds 3 --epochs 2

Runs benchmarks/run.py's harness (each loader in its own subprocess, page cache warmed,
the loader list repeated ``--rounds`` times interleaved, each loader's median epoch of its
least-disturbed rounds, CPU seconds per image, the CPU model recorded) over the loaders of
loaders_train.py plus ``ceiling pyimgdir.decode``, then prints the comparison the targets
are stated in: images/s relative to the TF pipeline and to torchvision, and CPU ms per image
relative to the full-size decode ceiling. Results: benchmarks/results/crop-<dataset>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402

LOADERS = ["pyimgdir train", "pyimgdir train uint8", "pyimgdir train exact", "pyimgdir train tf",
           "tf train", "torchvision train", "ceiling pyimgdir.decode"]


def _rows(doc: dict):
    """(name, result, × TF pipeline, × torchvision, CPU / ceiling's) per loader that ran, in
    LOADERS order; a ratio is NaN when its peer did not run."""
    rows = {r["loader"]: r for r in doc["results"] if "error" not in r and "skipped" not in r}
    tf, tv, ceil = rows.get("tf train"), rows.get("torchvision train"), rows.get("ceiling pyimgdir.decode")
    nan = float("nan")
    for name in LOADERS:
        r = rows.get(name)
        if r is None:
            continue
        yield (name, r, r["images_per_s"] / tf["images_per_s"] if tf else nan,
               r["images_per_s"] / tv["images_per_s"] if tv else nan,
               r["cpu_ms_per_image"] / ceil["cpu_ms_per_image"] if ceil else nan)


def markdown(doc: dict) -> str:
    """The summary as a Markdown table (for benchmarks/README.md)."""
    out = ["| loader | images/s | CPU ms/image | × TF pipeline | × torchvision | CPU / ceiling's | peak RSS MB |",
           "|---|--:|--:|--:|--:|--:|--:|"]
    for name, r, *ratios in _rows(doc):
        cells = " | ".join("" if x != x else f"{x:.2f}" for x in ratios)  # blank where a peer is missing
        out.append(f"| {name} | {r['images_per_s']:,.0f} | {r['cpu_ms_per_image']:.2f} | {cells} | "
                   f"{r['peak_rss_mb']:,.0f} |")
    return "\n".join(out)


def summary(doc: dict) -> str:
    lines = [f"{'loader':<24} {'img/s':>8} {'CPU ms/img':>11} {'x TF':>6} {'x torchvision':>14} "
             f"{'CPU vs ceiling':>15}"]
    for name, r, x_tf, x_tv, x_ceil in _rows(doc):
        lines.append(f"{name:<24} {r['images_per_s']:>8,.0f} {r['cpu_ms_per_image']:>11.2f} "
                     f"{x_tf:>6.2f} {x_tv:>14.2f} {x_ceil:>15.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="photos")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--loaders", default=",".join(LOADERS))
    ap.add_argument("--wait-quiet", type=float, default=10)
    ap.add_argument("--show", type=Path, default=None, metavar="JSON", help="print a saved result and exit")
    ap.add_argument("--markdown", action="store_true", help="with --show: as a Markdown table")
    a = ap.parse_args(argv)
    if a.show:
        doc = json.loads(a.show.read_text())
        print(markdown(doc) if a.markdown else summary(doc))
        return 0
    out = run.RESULTS / f"crop-{a.dataset}.json"
    rc = run.main(["--dataset", a.dataset, "--loaders", a.loaders, "--rounds", str(a.rounds),
                   "--epochs", str(a.epochs), "--wait-quiet", str(a.wait_quiet), "--out", str(out)])
    if rc:
        return rc
    doc = json.loads(out.read_text())
    doc["benchmark"] = "bench_crop.py: random_resized_crop + horizontal flip to 224x224, batch 64"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print()
    print(summary(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
