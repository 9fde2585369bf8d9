"""What indexing a large folder costs, per file: memory and CPU of pyimgdir's formats and
of Keras, on the same trees, in the same run; and the private memory each extra torch
DataLoader / Grain mp_prefetch worker adds.

Trees have 1,000 class folders (``class_0042/img_0000042.jpg``); every file is a hard link
to its class's one 8x8 JPEG, so a million files take a thousand inodes, indexing opens no
file, and the first batch decodes real images. Each measurement is a fresh process: CPU
time (all threads) from before the imports to the first batch, and resident memory
(VmRSS) growth over the same span. Per file is the difference between a large and a small
tree over the difference in files, so fixed costs (imports, TensorFlow's start-up, the
batch buffers) cancel. Calls are Keras' defaults with ``image_size=(8, 8)``, ``seed=1``
(shuffled).

Workers: a TorchDataset under ``DataLoader(num_workers=2)`` (fork) and a Grain dataset
under ``mp_prefetch`` (2 workers); after the first batch, each worker's private memory
(USS: pages only it holds). Per file again as large minus small tree.

    python benchmarks/bench_index.py                      # 20k and 200k files
    python benchmarks/bench_index.py --sizes 100000 1000000 --json benchmarks/results/index-1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "index"
CLASSES = 1000
FORMATS = ["numpy", "tf", "grain", "torch", "keras"]


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def make_tree(files: int) -> Path:
    root = DATA / f"links-{files}"
    marker = root / ".complete"
    if marker.exists():
        return root
    import numpy as np
    from PIL import Image

    per_class = -(-files // CLASSES)
    made = 0
    src_dir = DATA / "sources"
    src_dir.mkdir(parents=True, exist_ok=True)
    for c in range(CLASSES):
        src = src_dir / f"class_{c:04d}.jpg"
        if not src.exists():
            Image.fromarray(np.full((8, 8, 3), c % 256, np.uint8)).save(src, quality=90)
        d = root / f"class_{c:04d}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(min(per_class, files - made)):
            os.link(src, d / f"img_{c * per_class + i:07d}.jpg")
        made += min(per_class, files - made)
    marker.write_text("ok\n")
    return root


CHILD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

def uss(pid):
    total = 0
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            total += int(line.split()[1]) * 1024
    return total

which, root = sys.argv[1], sys.argv[2]
rss0, cpu0 = rss(), time.process_time()
kw = dict(image_size=(8, 8), seed=1, verbose=False)
out = {}
if which == "keras":
    import keras
    ds = keras.utils.image_dataset_from_directory(root, **kw)
    next(iter(ds))
    n = len(ds.file_paths)
elif which in ("numpy", "tf", "grain"):
    import pyimgdir
    if which == "tf":
        import tensorflow  # noqa: F401  (the tf format needs it; Keras' row imports it too)
    ds = pyimgdir.image_dataset_from_directory(root, format=which, **kw)
    next(iter(ds))
    n = len(ds.file_paths)
elif which == "torch":
    import pyimgdir, torch
    ds = pyimgdir.TorchDataset(root, **kw)
    next(iter(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0)))
    n = len(ds.file_paths)
elif which == "torch-workers":
    import pyimgdir, torch
    ds = pyimgdir.TorchDataset(root, **kw)
    it = iter(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, prefetch_factor=1))
    next(it)
    time.sleep(0.5)  # let every worker reach its first batch
    n = len(ds.file_paths)
    out["worker_uss"] = [uss(w.pid) for w in it._workers]
    out["worker_cpu"] = []
elif which == "grain-workers":
    import grain, psutil, pyimgdir
    from absl import flags
    if not flags.FLAGS.is_parsed():  # Grain's worker code reads its absl flags
        flags.FLAGS.mark_as_parsed()
    ds = pyimgdir.image_dataset_from_directory(root, format="grain", **kw)
    it = iter(ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=2)))
    next(it)
    time.sleep(0.5)
    n = len(ds.file_paths)
    kids = [p for p in psutil.Process().children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]
    out["worker_uss"] = [uss(p.pid) for p in kids]
    for p in psutil.Process().children(recursive=True):  # spawned: they would outlive os._exit
        p.kill()
out.update(files=n, cpu_s=time.process_time() - cpu0, rss_growth=rss() - rss0)
print("RESULT " + json.dumps(out))
sys.stdout.flush()
if "pyimgdir.batches.source" in sys.modules:  # shared index files (os._exit skips their removal)
    import shutil
    for shared in sys.modules["pyimgdir.batches.source"]._WRITTEN:
        shutil.rmtree(shared.dir, ignore_errors=True)
os._exit(0)  # workers and TensorFlow threads: no slow teardown
"""


def measure(which: str, root: Path, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        p = subprocess.run([sys.executable, "-c", CHILD, which, str(root)], capture_output=True, text=True)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
        if p.returncode != 0 or not lines:
            raise RuntimeError(f"{which} on {root} failed:\n{p.stderr[-3000:]}")
        runs.append(json.loads(lines[-1][7:]))
    runs.sort(key=lambda r: r["cpu_s"])
    best = dict(runs[len(runs) // 2])
    best["cpu_s_all"] = [round(r["cpu_s"], 3) for r in runs]
    best["rss_growth_median"] = statistics.median(r["rss_growth"] for r in runs)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs=2, type=int, default=[20_000, 200_000], metavar=("SMALL", "LARGE"))
    ap.add_argument("--formats", nargs="+", default=FORMATS, choices=FORMATS)
    ap.add_argument("--workers", nargs="*", default=["torch-workers", "grain-workers"],
                    choices=["torch-workers", "grain-workers"])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    small, large = args.sizes
    trees = {}
    for n in (small, large):
        t = time.perf_counter()
        trees[n] = make_tree(n)
        print(f"tree of {n} files ready ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
        subprocess.run(["find", str(trees[n]), "-type", "d"], capture_output=True)  # warm the dentries
    results = {}
    for which in args.formats + list(args.workers or []):
        results[which] = {}
        for n in (small, large):
            print(f"{which} at {n} files ...", file=sys.stderr)
            results[which][n] = measure(which, trees[n], args.repeat)
    dn = large - small
    print(f"\nCPU: {cpu_model()} ({os.cpu_count()} cores); trees of {small:,} and {large:,} files, "
          f"{CLASSES} classes")
    print(f"{'':<8}{'small: CPU s':>14}{'MiB':>8}{'large: CPU s':>14}{'MiB':>8}{'bytes/file':>12}"
          f"{'us/file':>9}{'x numpy CPU':>13}")
    per_file = {}
    for which in args.formats:
        s, big = results[which][small], results[which][large]
        b = (big["rss_growth_median"] - s["rss_growth_median"]) / dn
        us = (big["cpu_s"] - s["cpu_s"]) / dn * 1e6
        per_file[which] = {"bytes": b, "cpu_us": us}
    for which in args.formats:
        s, big = results[which][small], results[which][large]
        ratio = per_file[which]["cpu_us"] / per_file["numpy"]["cpu_us"] if "numpy" in per_file else float("nan")
        print(f"{which:<8}{s['cpu_s']:>14.2f}{s['rss_growth_median'] / 2**20:>8.0f}{big['cpu_s']:>14.2f}"
              f"{big['rss_growth_median'] / 2**20:>8.0f}{per_file[which]['bytes']:>12.0f}"
              f"{per_file[which]['cpu_us']:>9.2f}{ratio:>13.2f}")
    for which in args.workers or []:
        s, big = results[which][small], results[which][large]
        per_worker = [(b - a) / dn for a, b in zip(s["worker_uss"], big["worker_uss"])]
        per_file[which] = {"private_bytes_per_worker": per_worker}
        print(f"{which}: private memory per worker {[round(v / 2**20) for v in big['worker_uss']]} MiB at "
              f"{large:,} files; per file {[round(v, 1) for v in per_worker]} bytes")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "cpu": cpu_model(), "cores": os.cpu_count(), "python": sys.version.split()[0],
            "sizes": [small, large], "classes": CLASSES, "results": results, "per_file": per_file,
        }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
