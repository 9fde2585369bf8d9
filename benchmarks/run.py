"""Throughput harness: pyimgdir against Keras and other loaders, same files, same run.

    python benchmarks/run.py --dataset photos                     # standard spec, all loaders
    python benchmarks/run.py --dataset photos --spec keras-default
    python benchmarks/run.py --dataset camera
    python benchmarks/run.py --dataset photos --threads           # num_threads 1 vs 2
    python benchmarks/run.py --dataset photos --memory-epochs 20  # RSS per epoch
    python benchmarks/run.py --dataset photos-small --epochs 1 --loaders keras,"pyimgdir numpy"

Each loader runs in its own subprocess (its imports, threads and peak RSS are its own),
on a page cache warmed by reading every file once. A subprocess builds its dataset, runs
one warm-up epoch (which also gives the time to the first batch, from the dataset call),
then `--epochs` timed epochs; the reported rate is the median. Results go to a table on
stdout and to benchmarks/results/<dataset>-<spec>[-threads|-memory].json.

Besides wall-clock images/s the harness records the loader process's CPU seconds per image
(less sensitive to other work on the machine than wall time) and, from /proc/stat, how
many cores' worth of *other* processes ran during each measurement ("other load").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

DEFAULT_LOADERS = [
    "keras", "simplejpeg+cv2", "simplejpeg+cv2 downscale", "pillow", "torchvision",
    "ceiling pyimgdir.decode", "ceiling simplejpeg",
    "pyimgdir tf", "pyimgdir numpy", "pyimgdir numpy uint8", "pyimgdir numpy downscale",
]

# modules imported before the dataset is built (so build time and time to first batch do
# not include import time)
PREIMPORT = {
    "keras": ["tensorflow", "keras"],
    "pyimgdir tf": ["tensorflow", "pyimgdir"],
    "simplejpeg+cv2": ["simplejpeg", "cv2"],
    "simplejpeg+cv2 downscale": ["simplejpeg", "cv2"],
    "pillow": ["PIL.Image"],
    # (torchvision itself is imported by the loader, through loaders_train.import_torchvision)
    "torchvision": ["torch"],
    "torchvision train": ["torch"],
    "tf train": ["tensorflow"],
    "pyimgdir train tf": ["tensorflow", "pyimgdir"],
    "ceiling pyimgdir.decode": ["pyimgdir"],
    "ceiling simplejpeg": ["simplejpeg"],
    "keras grain": ["keras", "grain"],
    "pyimgdir grain": ["keras", "grain", "pyimgdir"],
    "keras grain jax": ["keras", "grain"],
    "pyimgdir grain jax": ["keras", "grain", "pyimgdir"],
}


# ---------------------------------------------------------------------------- worker


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(cfg: dict) -> dict:
    import importlib

    import loaders as L

    name = cfg["loader"]
    factory, kw, group = L.LOADERS[name]
    kw = dict(kw)
    if "backend" in kw:  # a Keras backend is chosen before keras is first imported
        os.environ["KERAS_BACKEND"] = kw.pop("backend")
    if cfg.get("threads"):
        kw["threads"] = cfg["threads"]
    spec = L.SPECS[cfg["spec"]]
    out = dict(loader=cfg["label"], base_loader=name, group=group, threads=cfg.get("threads"))

    t0 = time.perf_counter()
    for m in PREIMPORT.get(name, []) + (["pyimgdir"] if name.startswith("pyimgdir") else []):
        importlib.import_module(m)
    out["import_s"] = round(time.perf_counter() - t0, 3)
    out["rss_after_import_mb"] = round(_rss_bytes() / 2**20, 1)
    if "pyimgdir" in sys.modules:
        so = sys.modules["pyimgdir"]._core.__file__
        out["pyimgdir_core"] = dict(path=os.path.relpath(so, REPO), mtime=time.ctime(os.path.getmtime(so)))

    state: dict = {}
    t_build = time.perf_counter()
    loader = factory(cfg["directory"], spec, state, **kw)
    out["build_s"] = round(time.perf_counter() - t_build, 4)
    out["notes"] = loader.notes

    # warm-up epoch; its first batch gives the time to first batch
    first = None
    n_warm = 0
    for n in loader.epoch():
        if first is None:
            first = time.perf_counter()
        n_warm += n
    warm_s = time.perf_counter() - t_build
    out["time_to_first_batch_s"] = round(first - t_build, 4) if first else None
    out["warmup_epoch_s"] = round(warm_s, 3)

    epochs = []
    rss_per_epoch = []
    for e in range(cfg["epochs"]):
        # loaders working in child processes (DataLoader workers) report their CPU too
        child_cpu = state.get("child_cpu_s", lambda: 0.0)
        c0, w0 = _cpu_s() + child_cpu(), time.perf_counter()
        n_img = 0
        for n in loader.epoch():
            n_img += n
        dt, cpu = time.perf_counter() - w0, _cpu_s() + child_cpu() - c0
        epochs.append(dict(images=n_img, seconds=round(dt, 4), cpu_seconds=round(cpu, 4),
                           images_per_s=round(n_img / dt, 2)))
        rss_per_epoch.append(round(_rss_bytes() / 2**20, 1))
        if n_img != n_warm:
            raise SystemExit(f"{name}: epoch {e} gave {n_img} images, warm-up gave {n_warm}")

    rates = [e["images_per_s"] for e in epochs]
    total_img = sum(e["images"] for e in epochs)
    out.update(
        images_per_epoch=n_warm,
        epochs=epochs,
        images_per_s=round(statistics.median(rates), 1) if rates else None,
        cpu_ms_per_image=round(1000 * sum(e["cpu_seconds"] for e in epochs) / total_img, 3) if total_img else None,
        cores_used=round(sum(e["cpu_seconds"] for e in epochs) / sum(e["seconds"] for e in epochs), 2) if epochs else None,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        rss_per_epoch_mb=rss_per_epoch,
        first_batch=dict(mean=state.get("first_batch_mean"), shape=state.get("batch_shape"),
                         dtype=state.get("batch_dtype")),
    )
    if "megapixels_per_epoch" in state:
        out["megapixels_per_epoch"] = state["megapixels_per_epoch"]
    return out


# ---------------------------------------------------------------------------- parent


def _proc_stat_busy() -> float:
    """Seconds of CPU time all processes have used since boot (all cores, not idle/iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_quiet(threshold: float, max_wait: float) -> tuple:
    """Waits (at most max_wait s) until other processes use <= threshold cores over 1 s.
    Returns (seconds waited, cores in use by others in the last sample)."""
    t0 = time.perf_counter()
    load = None
    while True:
        b0, w0 = _proc_stat_busy(), time.perf_counter()
        time.sleep(1.0)
        load = (_proc_stat_busy() - b0) / (time.perf_counter() - w0)
        waited = time.perf_counter() - t0
        if load <= threshold or waited >= max_wait:
            return round(waited, 1), round(load, 2)


SNAPSHOT_DIR: Optional[Path] = None


def run_one(cfg: dict, timeout: float) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    if SNAPSHOT_DIR is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(SNAPSHOT_DIR), os.environ.get("PYTHONPATH", "")])
    busy0, kid0, w0, la0 = _proc_stat_busy(), _children_cpu(), time.perf_counter(), os.getloadavg()[0]
    p = subprocess.run([sys.executable, __file__, "--_worker", json.dumps(cfg)], capture_output=True,
                       text=True, env=env, timeout=timeout, cwd=REPO)
    wall = time.perf_counter() - w0
    busy, kid = _proc_stat_busy() - busy0, _children_cpu() - kid0
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-12:]
        return dict(loader=cfg["label"], error=f"exit {p.returncode}: " + " | ".join(tail))
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("@@RESULT ")][-1]
    res = json.loads(line[len("@@RESULT "):])
    # cores' worth of other processes during the subprocess (imports and warm-up included)
    res["other_load_cores"] = round(max(0.0, busy - kid) / wall, 2)
    res["loadavg_1min_before_after"] = [round(la0, 2), round(os.getloadavg()[0], 2)]
    res["subprocess_wall_s"] = round(wall, 2)
    return res


def snapshot_pyimgdir(dest: Path) -> dict:
    """Copies the pyimgdir package (with its built _core) to `dest` and checks that the copy
    imports, so every loader of a run uses the same build even if the tree is rebuilt
    meanwhile. Retries while a build is being written."""
    import hashlib
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("pyimgdir")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pyimgdir is not importable")
    src = Path(list(spec.submodule_search_locations)[0])
    probe = "import pyimgdir, pyimgdir._core as c; print(c.__file__)"
    last = ""
    for attempt in range(12):
        target = dest / "pyimgdir"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.tmp"))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(dest), os.environ.get("PYTHONPATH", "")]))
        p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=dest)
        so = Path(p.stdout.strip()) if p.returncode == 0 else None
        if so is not None and dest in so.parents:
            return dict(source=str(src), core=so.name, core_sha256=hashlib.sha256(so.read_bytes()).hexdigest()[:16],
                        core_mtime=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((src / so.name).stat().st_mtime)))
        last = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["?"]
        time.sleep(10)
    raise SystemExit(f"could not snapshot an importable pyimgdir from {src}: {last[0]}")


def warm_page_cache(files: List[str]) -> float:
    n = 0
    for p in files:
        with open(p, "rb") as f:
            n += len(f.read())
    return n / 1e6


def machine_info() -> dict:
    model = platform.processor()
    try:
        for ln in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if ln.startswith("Model name:"):
                model = ln.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            mem_gb = int(f.readline().split()[1]) / 2**20
    except OSError:
        mem_gb = None
    git = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                         cwd=REPO).stdout.strip()
    return dict(cpu=model, cores=os.cpu_count(), memory_gb=round(mem_gb, 1) if mem_gb else None,
                python=platform.python_version(), platform=platform.platform(), git=git)


def fmt_table(rows: List[dict], keras_rate: Optional[float], ceiling_rate: Optional[float]) -> str:
    hdr = ["loader", "img/s", "best", "x Keras", "% ceil", "CPU ms/img", "cores", "peak RSS MB",
           "RSS import MB", "1st batch s", "other load"]
    lines = []
    for r in rows:
        if "skipped" in r:
            continue
        if "error" in r:
            lines.append([r["loader"], "ERROR"] + ["-"] * (len(hdr) - 2))
            continue
        rate = r["images_per_s"]
        lines.append([
            r["loader"], f"{rate:,.0f}", f"{max(e['images_per_s'] for e in r['epochs']):,.0f}",
            f"{rate / keras_rate:.2f}" if keras_rate else "-",
            f"{100 * rate / ceiling_rate:.0f}" if ceiling_rate else "-",
            f"{r['cpu_ms_per_image']:.2f}", f"{r['cores_used']:.2f}",
            f"{r['peak_rss_mb']:,.0f}", f"{r['rss_after_import_mb']:,.0f}",
            f"{r['time_to_first_batch_s']:.3f}", f"{r['other_load_cores']:.2f}",
        ])
    w = [max(len(str(x)) for x in col) for col in zip(hdr, *lines)]
    fmt = lambda row: "  ".join(str(c).ljust(w[0]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(row))
    out = [fmt(hdr), fmt(["-" * x for x in w])] + [fmt(r) for r in lines]
    out += [f"(not run: {r['loader']}: {r['skipped']})" for r in rows if "skipped" in r]
    out += [f"(ERROR: {r['loader']}: {r['error'][-400:]})" for r in rows if "error" in r]
    return "\n".join(out)


def combine_rounds(results: List[dict]) -> dict:
    """One row from several rounds of the same loader. Other work on the machine only ever
    slows a loader down, so rounds with more "other load" than the quietest (by over 0.1
    core) are set aside; the epochs of the remaining rounds are pooled and the row reports
    their median (images/s), their CPU ms per image and cores, the largest peak RSS and the
    median time to first batch. Pooling, not picking the fastest round, keeps a loader whose
    epochs alternate between two speeds (Keras on 2 cores) at its typical epoch rather than
    its luckiest round. Every round is kept in `rounds_detail`."""
    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[0]
    if len(ok) == 1:
        return ok[0]
    quietest = min(r["other_load_cores"] for r in ok)
    pooled = [r for r in ok if r["other_load_cores"] <= quietest + 0.1]
    row = dict(max(pooled, key=lambda r: r["images_per_s"]))
    epochs = [e for r in pooled for e in r["epochs"]]
    total_img = sum(e["images"] for e in epochs)
    row.update(
        epochs=epochs,
        images_per_s=round(statistics.median(e["images_per_s"] for e in epochs), 1),
        cpu_ms_per_image=round(1000 * sum(e["cpu_seconds"] for e in epochs) / total_img, 3),
        cores_used=round(sum(e["cpu_seconds"] for e in epochs) / sum(e["seconds"] for e in epochs), 2),
        peak_rss_mb=max(r["peak_rss_mb"] for r in pooled),
        time_to_first_batch_s=round(statistics.median(r["time_to_first_batch_s"] for r in pooled), 4),
        other_load_cores=round(max(r["other_load_cores"] for r in pooled), 2),
    )
    row["rounds_detail"] = [
        dict(images_per_s=r["images_per_s"], epochs=[e["images_per_s"] for e in r["epochs"]],
             other_load_cores=r["other_load_cores"], cpu_ms_per_image=r["cpu_ms_per_image"],
             peak_rss_mb=r["peak_rss_mb"], time_to_first_batch_s=r["time_to_first_batch_s"],
             pooled=r in pooled)
        for r in ok
    ]
    return row


def resolve_dataset(arg: str, make: bool):
    """(name, directory): a recipe name from make_datasets (made if missing), or a directory."""
    import make_datasets

    if arg in make_datasets.RECIPES:
        return arg, make_datasets.ensure(arg, quiet=not make)
    p = Path(arg)
    if p.is_dir():
        return p.name, p.resolve()
    raise SystemExit(f"--dataset: not a directory and not one of {', '.join(make_datasets.RECIPES)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="photos", help="photos, camera, photos-small, camera-small, or a directory")
    ap.add_argument("--spec", default="standard", help="standard (224x224, batch 64), keras-default "
                    "(256x256, batch 32), or all")
    ap.add_argument("--loaders", default=None, help="comma-separated loader names (default: all that can run); "
                    f"known: {', '.join(DEFAULT_LOADERS)}")
    ap.add_argument("--skip", default="", help="comma-separated loader names to leave out")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs after the warm-up (default 3)")
    ap.add_argument("--rounds", type=int, default=1, help="run the whole loader list this many times, "
                    "interleaved, and report the median epoch of each loader's least-disturbed rounds, pooled (all rounds kept in the JSON)")
    ap.add_argument("--threads", action="store_true", help="scaling mode: num_threads 1 and 2 (see --thread-counts)")
    ap.add_argument("--thread-counts", default=None, help="thread counts for --threads (default 1,...,cores)")
    ap.add_argument("--memory-epochs", type=int, default=0, help="memory mode: RSS after each of N epochs")
    ap.add_argument("--wait-quiet", type=float, default=10, metavar="S",
                    help="before each loader, wait up to S seconds for other processes to use less than "
                    "--quiet-threshold cores (0: don't wait; default 10)")
    ap.add_argument("--quiet-threshold", type=float, default=0.3, metavar="CORES")
    ap.add_argument("--retries", type=int, default=0, metavar="N",
                    help="rerun (up to N times) each loader whose every round had other load above "
                    "--max-other-load (default 0: no reruns)")
    ap.add_argument("--max-other-load", type=float, default=0.3, metavar="CORES")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per loader subprocess")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON path (default benchmarks/results/<dataset>-<spec>[-mode].json)")
    ap.add_argument("--no-save", action="store_true", help="print only")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="use pyimgdir from the tree as it is (default: a copy taken at the start of the run)")
    ap.add_argument("--show", type=Path, nargs="+", default=None, metavar="JSON",
                    help="print the table of saved results and exit")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a._worker:
        res = worker(json.loads(a._worker))
        print("@@RESULT " + json.dumps(res), flush=True)
        return 0
    if a.show:
        for p in a.show:
            d = json.loads(p.read_text())
            ceil = next((r["images_per_s"] for r in d["results"] if r["loader"] == d.get("ceiling")), None)
            print(f"== {d['dataset']} / {d['spec']['name']} ({d['mode']}, {d['epochs']} epochs, {d['rounds']} rounds, "
                  f"{d['date']}; load average {d['loadavg_before']} -> {d['loadavg_after']})")
            print(fmt_table(d["results"], d.get("keras_images_per_s"), ceil))
        return 0

    import loaders as L

    global SNAPSHOT_DIR
    snapshot = None
    if not a.no_snapshot:
        import tempfile

        SNAPSHOT_DIR = Path(tempfile.mkdtemp(prefix="pyimgdir-bench-"))
        snapshot = snapshot_pyimgdir(SNAPSHOT_DIR)
        sys.path.insert(0, str(SNAPSHOT_DIR))
        print(f"pyimgdir snapshot: {snapshot['core']} sha256 {snapshot['core_sha256']} built {snapshot['core_mtime']}")

    ds_name, ds_dir = resolve_dataset(a.dataset, make=True)
    files = L.list_files(str(ds_dir))
    specs = list(L.SPECS) if a.spec == "all" else [a.spec]
    for s in specs:
        if s not in L.SPECS:
            raise SystemExit(f"--spec: unknown {s!r}; known: {', '.join(L.SPECS)}, all")

    mode = "threads" if a.threads else ("memory" if a.memory_epochs else "compare")
    if mode == "threads":
        base = a.loaders.split(",") if a.loaders else ["pyimgdir numpy", "simplejpeg+cv2"]
        counts = [int(x) for x in (a.thread_counts or ",".join(str(i) for i in range(1, (os.cpu_count() or 1) + 1))).split(",")]
        plan = [(f"{b} t{t}", b, t) for b in base for t in counts]
    elif mode == "memory":
        base = a.loaders.split(",") if a.loaders else ["pyimgdir numpy"]
        plan = [(b, b, None) for b in base]
    else:
        base = a.loaders.split(",") if a.loaders else DEFAULT_LOADERS
        skip = set(x for x in a.skip.split(",") if x)
        plan = [(b, b, None) for b in base if b not in skip]
    for _, b, _ in plan:
        if b not in L.LOADERS:
            raise SystemExit(f"unknown loader {b!r}; known: {', '.join(L.LOADERS)}")
    epochs = a.memory_epochs if mode == "memory" else a.epochs

    mb = warm_page_cache(files)
    print(f"dataset {ds_name}: {len(files)} files, {mb:.1f} MB (page cache warmed) at {ds_dir}")
    manifest = ds_dir / "MANIFEST.json"
    ds_summary = json.loads(manifest.read_text())["summary"] if manifest.exists() else None
    if ds_summary:
        print("  " + ", ".join(f"{k}={v}" for k, v in ds_summary.items()))
    info = machine_info()
    info["pyimgdir_snapshot"] = snapshot
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB; git {info['git']}")

    for spec_name in specs:
        spec = L.SPECS[spec_name]
        print(f"\n== {ds_name} / {spec_name}: {spec.height}x{spec.width} RGB bilinear, batch {spec.batch_size}, "
              f"no shuffle; {mode}; warm-up + {epochs} epochs" + (f", {a.rounds} rounds" if a.rounds > 1 else ""))
        la_before = os.getloadavg()
        t_all = time.perf_counter()
        by_label: Dict[str, List[dict]] = {}
        skipped = {}
        def measure(label, b, t, note=""):
            cfg = dict(loader=b, label=label, threads=t, spec=spec_name, directory=str(ds_dir), epochs=epochs)
            quiet = wait_quiet(a.quiet_threshold, a.wait_quiet) if a.wait_quiet > 0 else None
            try:
                r = run_one(cfg, a.timeout)
            except subprocess.TimeoutExpired:
                r = dict(loader=label, error=f"timed out after {a.timeout} s")
            if quiet:
                r["waited_for_quiet_s"], r["other_load_at_start_cores"] = quiet
            by_label.setdefault(label, []).append(r)
            if "error" in r:
                print(f"  {label}: ERROR {r['error']}", file=sys.stderr)
            else:
                print(f"  {label:<28} {r['images_per_s']:>9,.1f} img/s  (epochs: "
                      + ", ".join(f"{e['images_per_s']:,.0f}" for e in r["epochs"])
                      + f"; other load {r['other_load_cores']:.2f} cores){note}", flush=True)

        for rnd in range(a.rounds):
            for label, b, t in plan:
                why = L.available(b)
                if why:
                    skipped[label] = why
                    continue
                measure(label, b, t)
        # loaders that no round measured undisturbed get up to --retries more tries
        for attempt in range(a.retries):
            for label, b, t in plan:
                ok = [r for r in by_label.get(label, []) if "error" not in r]
                if ok and min(r["other_load_cores"] for r in ok) > a.max_other_load:
                    measure(label, b, t, note=f"  [retry {attempt + 1}]")
        rows = [combine_rounds(by_label[label]) for label, _, _ in plan if label in by_label]
        rows += [dict(loader=k, skipped=v) for k, v in skipped.items()]
        la_after = os.getloadavg()

        good = [r for r in rows if "error" not in r and "skipped" not in r]
        keras = next((r["images_per_s"] for r in good if r["base_loader"] == "keras"), None)
        ceilings = [r for r in good if r["group"] == "ceiling"]
        ceiling = max(ceilings, key=lambda r: r["images_per_s"]) if ceilings else None
        for r in good:
            r["best_epoch_images_per_s"] = max(e["images_per_s"] for e in r["epochs"])
            r["ratio_to_keras"] = round(r["images_per_s"] / keras, 3) if keras else None
            r["fraction_of_ceiling"] = round(r["images_per_s"] / ceiling["images_per_s"], 3) if ceiling else None

        print()
        print(fmt_table(rows, keras, ceiling["images_per_s"] if ceiling else None))
        if ceiling:
            print(f"ceiling = {ceiling['loader']} (the faster of the ceiling rows): full-size decode only, all cores")
        extra = {}
        if mode == "threads":
            extra["scaling"] = {}
            for b in base:
                rs = {r["threads"]: r["images_per_s"] for r in good if r["base_loader"] == b}
                if 1 in rs:
                    extra["scaling"][b] = {f"t{t}": dict(images_per_s=v, speedup=round(v / rs[1], 2))
                                           for t, v in sorted(rs.items())}
            for b, s in extra["scaling"].items():
                print(f"scaling {b}: " + ", ".join(f"{k}: {v['images_per_s']:,.0f} img/s ({v['speedup']:.2f}x)"
                                                   for k, v in s.items()))
        if mode == "memory":
            extra["memory"] = {}
            for r in good:
                rss = r["rss_per_epoch_mb"]
                k = min(2, len(rss) - 1)
                m = dict(rss_per_epoch_mb=rss, first=rss[0], last=rss[-1], max=max(rss),
                         growth_since_epoch_3_mb=round(rss[-1] - rss[k], 1), peak_rss_mb=r["peak_rss_mb"])
                extra["memory"][r["loader"]] = m
                print(f"RSS per epoch, {r['loader']} (MB): " + " ".join(f"{x:.0f}" for x in rss))
                print(f"  first {m['first']:.1f}, last {m['last']:.1f}, max {m['max']:.1f}, "
                      f"growth since epoch {k + 1}: {m['growth_since_epoch_3_mb']:+.1f} MB, peak RSS {m['peak_rss_mb']:.1f}")
        wall = time.perf_counter() - t_all
        print(f"load average before {la_before[0]:.2f}/{la_before[1]:.2f}/{la_before[2]:.2f}, "
              f"after {la_after[0]:.2f}/{la_after[1]:.2f}/{la_after[2]:.2f}; {wall:.0f} s")

        doc = dict(
            dataset=ds_name, dataset_dir=os.path.relpath(ds_dir, REPO), dataset_summary=ds_summary,
            files=len(files), spec=dict(name=spec.name, height=spec.height, width=spec.width,
                                        batch_size=spec.batch_size, interpolation="bilinear", shuffle=False),
            mode=mode, epochs=epochs, rounds=a.rounds, machine=info,
            loadavg_before=[round(x, 2) for x in la_before], loadavg_after=[round(x, 2) for x in la_after],
            wall_s=round(wall, 1), date=time.strftime("%Y-%m-%d %H:%M:%S %z"),
            keras_images_per_s=keras, ceiling=ceiling["loader"] if ceiling else None,
            results=rows, **extra,
        )
        if not a.no_save:
            suffix = "" if mode == "compare" else f"-{mode}"
            out = a.out if (a.out and len(specs) == 1) else RESULTS / f"{ds_name}-{spec_name}{suffix}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(doc, indent=1) + "\n")
            print(f"wrote {os.path.relpath(out, Path.cwd())}")
    if SNAPSHOT_DIR is not None:
        import shutil

        shutil.rmtree(SNAPSHOT_DIR, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
