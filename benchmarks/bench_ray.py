"""Ray Data: pyimgdir's Ray dataset against Ray's own image reader and against pyimgdir
in-process, on the same files, the same cores, 224x224.

Loaders, interleaved over rounds (the order rotates each round), one epoch per round each,
after one untimed warm-up epoch each, in one local Ray cluster (``--cpus``, default every
core) started here:

- ``ray.data.read_images``: ``ray.data.read_images(files, size=(224, 224), mode="RGB")``
  over pyimgdir's own file list (Pillow decode and resize in its read tasks), uint8.
- ``pyimgdir.ray_dataset``: the same files, ``image_size=(224, 224)``, uint8 (as
  read_images gives), and the default float32 (Keras' pixels).
- ``format="numpy"`` in-process: ``image_dataset_from_directory(..., format="numpy",
  batch_size=64)`` in this process (the Ray cluster idles meanwhile), uint8 and float32.

Every loader is consumed the same way: ``iter_batches(batch_size=64, batch_format="numpy")``
for the Ray datasets, the batches for numpy, each batch read (a strided sum). Nothing is
shuffled, so every loader reads the files in the same order. CPU ms per image counts this
process and every process it started (Ray's GCS, raylet and workers), so Ray's own work
(scheduling, object store, the driver's executor) is charged to the Ray loaders.

    python benchmarks/bench_ray.py [--dataset photos] [--rounds 3] [--json results/ray.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402

SIZE = (224, 224)
BATCH = 64


def cluster_cpu(proc) -> float:
    """CPU seconds of this process and every process it started (and their reaped children)."""
    import psutil

    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def consume_ray(ds) -> int:
    n = 0
    for b in ds.iter_batches(batch_size=BATCH, batch_format="numpy"):
        x = b["image"]
        float(x[:, ::16, ::16].sum())
        n += len(x)
    return n


def consume_numpy(ds) -> int:
    n = 0
    for x, _ in ds:
        float(x[:, ::16, ::16].sum())
        n += len(x)
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="photos", help="a set under benchmarks/data, or a directory")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    ap.add_argument("--rows-per-block", type=int, default=64)
    ap.add_argument("--skip", default="", help="comma-separated loader names to leave out")
    ap.add_argument("--json", default=str(HERE / "results" / "ray.json"))
    args = ap.parse_args()
    root = Path(args.dataset) if os.path.isdir(args.dataset) else HERE / "data" / args.dataset
    if not root.is_dir():
        print(f"{root} not found: python benchmarks/make_datasets.py {args.dataset}", file=sys.stderr)
        return 2
    import psutil
    import ray
    import ray.data

    import pyimgdir

    for p in root.rglob("*"):  # warm the page cache
        if p.is_file():
            p.read_bytes()
    info = run.machine_info()
    load_before = os.getloadavg()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    me = psutil.Process()

    common = dict(image_size=SIZE, shuffle=False, verbose=False)
    files = list(pyimgdir.image_dataset_from_directory(root, format="numpy", **common).file_paths)
    loaders = {}
    loaders["ray.data.read_images"] = (
        ray.data.read_images(files, size=SIZE, mode="RGB"), consume_ray)
    loaders["pyimgdir.ray_dataset uint8"] = (
        pyimgdir.ray_dataset(root, dtype="uint8", rows_per_block=args.rows_per_block, **common), consume_ray)
    loaders["pyimgdir.ray_dataset float32"] = (
        pyimgdir.ray_dataset(root, rows_per_block=args.rows_per_block, **common), consume_ray)
    loaders["numpy in-process uint8"] = (
        pyimgdir.image_dataset_from_directory(root, format="numpy", batch_size=BATCH, dtype="uint8", **common),
        consume_numpy)
    loaders["numpy in-process float32"] = (
        pyimgdir.image_dataset_from_directory(root, format="numpy", batch_size=BATCH, **common), consume_numpy)
    for name in filter(None, args.skip.split(",")):
        loaders.pop(name.strip())

    results = {name: [] for name in loaders}
    names = list(loaders)
    for name in names:  # warm-up: worker processes, imports, page cache
        ds, consume = loaders[name]
        consume(ds)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            ds, consume = loaders[name]
            c0, t0 = cluster_cpu(me), time.perf_counter()
            n = consume(ds)
            wall, cpu = time.perf_counter() - t0, cluster_cpu(me) - c0
            results[name].append({"images": n, "images_per_s": n / wall, "cpu_ms_per_image": 1000 * cpu / n})
            print(f"round {r + 1} {name:<30} {n / wall:8.0f} img/s {1000 * cpu / n:6.2f} CPU ms/img", flush=True)
    ray.shutdown()

    rows = []
    for name in names:
        rates = [x["images_per_s"] for x in results[name]]
        cpus = [x["cpu_ms_per_image"] for x in results[name]]
        rows.append({"loader": name, "images_per_s": statistics.median(rates), "range": [min(rates), max(rates)],
                     "cpu_ms_per_image": statistics.median(cpus), "cpu_range": [min(cpus), max(cpus)],
                     "rounds": results[name]})
    by = {row["loader"]: row for row in rows}

    def ratio(a, b):
        return by[a]["images_per_s"] / by[b]["images_per_s"] if a in by and b in by else None

    ratios = {
        "ray_dataset uint8 / read_images": ratio("pyimgdir.ray_dataset uint8", "ray.data.read_images"),
        "ray_dataset float32 / read_images": ratio("pyimgdir.ray_dataset float32", "ray.data.read_images"),
        "ray_dataset uint8 / numpy uint8": ratio("pyimgdir.ray_dataset uint8", "numpy in-process uint8"),
        "ray_dataset float32 / numpy float32": ratio("pyimgdir.ray_dataset float32", "numpy in-process float32"),
    }
    print(f"\n{run.machine_line(info)}")
    print(f"{root.name}: {len(files)} files, {SIZE[0]}x{SIZE[1]}, Ray {ray.__version__}, {args.cpus} CPUs, "
          f"{args.rounds} rounds; load average before: {load_before[0]:.1f}, after: {os.getloadavg()[0]:.1f}")
    print(f"{'loader':<30}{'img/s (range)':>24}{'CPU ms/img (range)':>26}")
    for row in rows:
        lo, hi = row["range"]
        clo, chi = row["cpu_range"]
        print(f"{row['loader']:<30}{row['images_per_s']:>9.0f} ({lo:.0f}-{hi:.0f}){'':>4}"
              f"{row['cpu_ms_per_image']:>10.2f} ({clo:.2f}-{chi:.2f})")
    for k, v in ratios.items():
        if v is not None:
            print(f"{k}: {v:.2f}x")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "dataset": root.name, "files": len(files), "image_size": list(SIZE), "cpus": args.cpus,
            "ray": ray.__version__, "rows_per_block": args.rows_per_block, "machine": info,
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows, "ratios": ratios,
        }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
