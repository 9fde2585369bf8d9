"""Decoded-sample cache: epoch 1 (decode + fill) against epochs 2+ (served from the cache),
for pyimgdir's cache="memory" and cache=<file>, and Keras' loader with tf.data .cache().

Each loader runs in its own subprocess on a warm page cache.

    python benchmarks/bench_cache.py [--dataset photos] [--epochs 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
which, root, epochs, cache_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
shuffle = "shuffled" in which
kw = dict(image_size=(224, 224), batch_size=64, shuffle=shuffle, seed=1, verbose=False)
import numpy as np
if which.startswith("keras"):
    import tensorflow as tf, keras
    ds = keras.utils.image_dataset_from_directory(root, **kw).cache().prefetch(tf.data.AUTOTUNE)
else:
    import pyimgdir
    cache = "memory" if "memory" in which else cache_file
    ds = pyimgdir.image_dataset_from_directory(root, format="numpy", cache=cache, **kw)
rates = []
for e in range(epochs):
    t = time.perf_counter(); n = 0
    for x, y in ds:
        x = np.asarray(x)          # the consumer gets numpy (a copy out of a tf tensor)
        float(x[:, ::16, ::16].sum())  # and reads it
        n += len(x)
    rates.append(n / (time.perf_counter() - t))
print(json.dumps({"rates": rates, "files": n,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# Keras' .cache() on the batched, shuffled dataset replays epoch 1's batches (its window
# shuffle happens before the cache); pyimgdir reshuffles globally every epoch, so its
# shuffled runs gather each batch from the cache (a copy).
LOADERS = ["keras + .cache()", "keras + .cache() shuffled", "pyimgdir cache=memory",
           "pyimgdir cache=memory shuffled", "pyimgdir cache=file"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="photos")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--json")
    args = ap.parse_args()
    root = HERE / "data" / args.dataset if not os.path.isdir(args.dataset) else Path(args.dataset)
    for p in root.rglob("*"):  # warm the page cache
        if p.is_file():
            p.read_bytes()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for which in LOADERS:
            out = subprocess.run([sys.executable, "-c", CHILD, which, str(root), str(args.epochs),
                                  os.path.join(tmp, "samples.cache")], check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            later = sorted(r["rates"][1:])[len(r["rates"][1:]) // 2]
            rows.append({"loader": which, "epoch1": r["rates"][0], "later_median": later,
                         "speedup_later_vs_epoch1": later / r["rates"][0], "peak_rss_mib": r["peak_rss_mib"],
                         "rates": r["rates"]})
    keras_later = rows[0]["later_median"]
    print(f"{'loader':<24}{'epoch 1 img/s':>14}{'epochs 2+ img/s':>17}{'2+ vs 1':>9}{'2+ vs Keras 2+':>16}{'peak RSS MiB':>14}")
    for r in rows:
        print(f"{r['loader']:<24}{r['epoch1']:>14.0f}{r['later_median']:>17.0f}{r['speedup_later_vs_epoch1']:>8.1f}x"
              f"{r['later_median'] / keras_later:>15.2f}x{r['peak_rss_mib']:>14.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"dataset": str(root), "cpus": os.cpu_count(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
