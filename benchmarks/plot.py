"""Bar chart of images/s per loader from a results JSON written by run.py.

    python benchmarks/plot.py benchmarks/results/photos-standard.json
    python benchmarks/plot.py benchmarks/results/*.json      # one PNG per JSON

Writes benchmarks/results/<name>.png next to the JSON (or --out). Bars are the median
epoch; the thin line on each bar spans the slowest to the fastest timed epoch; labels give
images/s, the ratio to Keras, CPU ms per image and the other processes' load during the
run. The dashed line is the decode-only ceiling.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COLOURS = {"anchor": "#d62728", "peer": "#7f7f7f", "ceiling": "#bcbd22", "pyimgdir": "#1f77b4"}


def plot(path: Path, out: Path = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = json.loads(path.read_text())
    rows = [r for r in d["results"] if "images_per_s" in r]
    if not rows:
        raise SystemExit(f"{path}: no results to plot")
    keras = d.get("keras_images_per_s")
    names = [r["loader"] for r in rows]
    rates = [r["images_per_s"] for r in rows]
    lo = [r["images_per_s"] - min(e["images_per_s"] for e in r["epochs"]) for r in rows]
    hi = [max(e["images_per_s"] for e in r["epochs"]) - r["images_per_s"] for r in rows]
    colours = [COLOURS.get(r.get("group"), "#7f7f7f") for r in rows]

    fig, ax = plt.subplots(figsize=(10, 0.42 * len(rows) + 1.9), dpi=110)
    y = list(range(len(rows)))[::-1]
    ax.barh(y, rates, color=colours, xerr=[lo, hi], error_kw=dict(ecolor="#333333", lw=0.8, capsize=2))
    ax.set_yticks(y, names)
    xmax = max(r + h for r, h in zip(rates, hi))
    for yi, r, h, row in zip(y, rates, hi, rows):
        label = f"{r:,.0f}"
        if keras:
            label += f"  ({r / keras:.2f}x Keras)"
        ax.text(r + h + xmax * 0.01, yi + 0.12, label, va="center", fontsize=8)
        ax.text(r + h + xmax * 0.01, yi - 0.25, f"{row['cpu_ms_per_image']:.2f} CPU ms/img, "
                f"other load {row.get('other_load_cores', 0):.1f}", va="center", fontsize=6.5, color="#555555")
    ceiling = next((r for r in rows if r["loader"] == d.get("ceiling")), None)
    if ceiling:
        ax.axvline(ceiling["images_per_s"], color=COLOURS["ceiling"], ls="--", lw=1)
    ax.set_xlim(0, xmax * 1.32)
    ax.set_xlabel("images / s (median epoch; whiskers: slowest and fastest epoch; dashed: decode-only ceiling)\n"
                  "grey text: loader CPU time per image, and cores used by other processes during the run")
    spec = d["spec"]
    m = d["machine"]
    s = d.get("dataset_summary") or {}
    size = f", median {s['median_width']}x{s['median_height']}" if s else ""
    ax.set_title(
        f"{d['dataset']} ({d['files']} JPEGs{size}) -> {spec['height']}x{spec['width']} bilinear, "
        f"batch {spec['batch_size']}\n"
        f"{m['cpu']}, {m['cores']} cores; load avg {d['loadavg_before'][0]:.1f} -> {d['loadavg_after'][0]:.1f}; "
        f"{d['epochs']} epochs after warm-up{'; median of every epoch of %d interleaved rounds' % d['rounds'] if d.get('rounds', 1) > 1 else ''}",
        fontsize=9,
    )
    from matplotlib.patches import Patch

    groups = [g for g in COLOURS if any(r.get("group") == g for r in rows)]
    ax.legend(handles=[Patch(color=COLOURS[g], label=g) for g in groups], loc="lower left",
              bbox_to_anchor=(1.01, 0.0), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    out = out or path.with_suffix(".png")
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="PNG path (one JSON only)")
    a = ap.parse_args(argv)
    for p in a.json:
        print(plot(p, a.out if len(a.json) == 1 else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
