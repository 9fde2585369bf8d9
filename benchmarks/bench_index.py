"""Directory indexing at scale: pyimgdir against Keras' own indexing on the same trees.

Trees of empty ``.jpg`` files (indexing never opens them):
  classes  200,000 files in 100 class folders
  flat     200,000 files in one class folder
  million  1,000,000 files in 1,000 class folders (time and peak memory)
  flatmillion 1,000,000 files in one folder

Each measurement runs in a fresh subprocess (page cache warm from a first listing); the
median of ``--repeat`` runs is reported with the peak RSS. Two levels are timed:
``index`` (Keras ``dataset_utils.index_directory`` vs ``pyimgdir.sources.index.index_directory``
plus the global shuffle, i.e. file list, labels and class names) and ``call`` (the whole
``image_dataset_from_directory`` call with ``format="tf"``, which also builds the dataset).

    python benchmarks/bench_index.py --trees classes flat [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "index"
TREES = {
    "classes": (100, 2000),
    "flat": (1, 200_000),
    "million": (1000, 1000),
    "flatmillion": (1, 1_000_000),
}


def make_tree(name: str) -> Path:
    classes, per_class = TREES[name]
    root = DATA / name
    marker = root / ".complete"
    if marker.exists():
        return root
    for c in range(classes):
        d = root / f"class_{c:04d}"
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d, os.O_RDONLY)
        try:
            for i in range(per_class):
                os.close(os.open(f"img_{i:07d}.jpg", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
        finally:
            os.close(fd)
    marker.write_text("ok\n")
    return root


CHILD = r"""
import json, os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
which, level, root = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy as np
if which == "keras":
    import tensorflow as tf, keras
    from keras.src.utils import dataset_utils
else:
    if level == "call":
        import tensorflow as tf  # imported before timing, as for Keras
    import pyimgdir
    from pyimgdir.sources.index import index_directory
    from pyimgdir.order import global_shuffle
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if level == "index":
    if which == "keras":
        paths, labels, names = dataset_utils.index_directory(
            root, "inferred", formats=(".bmp", ".gif", ".jpeg", ".jpg", ".png"), shuffle=True, seed=1, verbose=False)
        n = len(paths)
    else:
        idx = index_directory(root, "inferred", formats=(".bmp", ".gif", ".jpeg", ".jpg", ".png"), verbose=False)
        perm = global_shuffle(len(idx.file_paths), 1)
        paths = [idx.file_paths[i] for i in perm.tolist()]
        labels = idx.labels[perm]
        n = len(paths)
else:
    mod = keras.utils if which == "keras" else pyimgdir
    ds = mod.image_dataset_from_directory(root, seed=1, verbose=False)
    n = len(ds.file_paths)
dt = time.perf_counter() - t
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "files": n, "peak_rss_mib": rss1 / 1024, "import_rss_mib": rss0 / 1024}))
"""


def measure(which: str, level: str, root: Path, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", CHILD, which, level, str(root)], check=True,
                             capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    best = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    best["seconds_all"] = [round(r["seconds"], 3) for r in runs]
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trees", nargs="+", default=["classes", "flat"], choices=list(TREES))
    ap.add_argument("--levels", nargs="+", default=["index", "call"], choices=["index", "call"])
    ap.add_argument("--loaders", nargs="+", default=["pyimgdir", "keras"], choices=["pyimgdir", "keras"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    results = []
    for tree in args.trees:
        t = time.perf_counter()
        root = make_tree(tree)
        print(f"{tree}: tree ready ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
        for p in root.iterdir():  # warm the dentry cache
            pass
        for level in args.levels:
            row = {"tree": tree, "level": level}
            for which in args.loaders:
                row[which] = measure(which, level, root, args.repeat)
            if "keras" in row and "pyimgdir" in row:
                row["speedup"] = row["keras"]["seconds"] / row["pyimgdir"]["seconds"]
            results.append(row)
    print(f"\n{'tree':<12}{'level':<7}{'files':>10}{'pyimgdir s':>12}{'keras s':>10}{'speedup':>9}"
          f"{'pyimgdir MiB':>14}{'keras MiB':>11}")
    for r in results:
        p, k = r.get("pyimgdir", {}), r.get("keras", {})
        print(f"{r['tree']:<12}{r['level']:<7}{p.get('files', k.get('files', 0)):>10}"
              f"{p.get('seconds', float('nan')):>12.3f}{k.get('seconds', float('nan')):>10.3f}"
              f"{r.get('speedup', float('nan')):>8.1f}x{p.get('peak_rss_mib', float('nan')):>14.0f}"
              f"{k.get('peak_rss_mib', float('nan')):>11.0f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": os.uname()._asdict() if hasattr(os.uname(), "_asdict") else str(os.uname()),
                                               "cpus": os.cpu_count(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
