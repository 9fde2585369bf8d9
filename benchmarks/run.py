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
then `--epochs` timed epochs. The loaders run interleaved, round by round (A B C A B C ...,
`--rounds`, default 3), and each row gives the median and the range over rounds, so a
drift of the machine's speed shows up as spread instead of as a difference between
loaders. Results go to a table on stdout and to
benchmarks/results/<dataset>-<spec>[-threads|-memory].json.

Besides wall-clock images/s the harness records CPU seconds per image of the loader's
processes (less sensitive to other work on the machine than wall time), the CPU model and
its vector extensions, the load average, and, from /proc, how many cores' worth of *other*
processes ran during each measurement and which ones. A row whose spread across rounds is
too wide to conclude from is flagged, and the speed targets are checked on ratios paired
within each round.
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
    "keras", "simplejpeg+cv2", "simplejpeg+cv2 downscale", "pillow",
    "ceiling pyimgdir.decode", "ceiling simplejpeg",
    "pyimgdir tf", "pyimgdir numpy", "pyimgdir numpy uint8", "pyimgdir numpy downscale",
    "pyimgdir numpy channels_first",
    "torchvision", "torch TorchDataset threads", "torch TorchDataset workers",
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
    "torch TorchDataset threads": ["torch", "pyimgdir"],
    "torch TorchDataset workers": ["torch", "pyimgdir"],
    "torch TorchDataset workers oversubscribed": ["torch", "pyimgdir"],
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


def _proc_table() -> Dict[int, tuple]:
    """pid -> (ppid, command name, CPU seconds so far) of every process readable in /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(d)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def _live_descendants(pid: int) -> List[int]:
    """Processes started by `pid` (and by them) that are still running."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def _proc_cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_s() -> float:
    """CPU seconds (user + sys, all threads) of this process and of every process it started:
    live ones (DataLoader workers) from /proc, finished ones from RUSAGE_CHILDREN."""
    kids = _live_descendants(os.getpid())
    live = sum(_proc_cpu_s(p) for p in kids)
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime + live


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
    mods = PREIMPORT.get(name, []) + (["pyimgdir"] if name.startswith(("pyimgdir", "torch ")) else [])
    for m in mods:
        importlib.import_module(m)
    out["python"] = sys.executable
    out["versions"] = {m.split(".")[0]: getattr(sys.modules[m.split(".")[0]], "__version__", None) for m in mods}
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
        # _cpu_s() counts live child processes (DataLoader workers) too, so a loader's own
        # state["child_cpu_s"] (loaders_train.py) is not added again
        c0, w0 = _cpu_s(), time.perf_counter()
        n_img = 0
        for n in loader.epoch():
            n_img += n
        dt, cpu = time.perf_counter() - w0, _cpu_s() - c0
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


def other_processes(before: Dict[int, tuple], after: Dict[int, tuple], wall: float, top: int = 4) -> List[dict]:
    """The processes other than this harness that used the most CPU between two /proc
    snapshots, by command name, in cores. Processes that started and ended in between are
    not seen here; the "other load" figure (from /proc/stat) includes them."""
    mine = {os.getpid()}
    by_name: Dict[str, float] = {}
    for pid, (ppid, name, cpu) in after.items():
        if pid in mine or pid not in before or before[pid][1] != name:
            continue
        d = cpu - before[pid][2]
        if d > 0:
            by_name[name] = by_name.get(name, 0.0) + d
    best = sorted(by_name.items(), key=lambda kv: -kv[1])[:top]
    return [dict(name=n, cores=round(c / wall, 2)) for n, c in best if c / wall >= 0.01]


SNAPSHOT_DIR: Optional[Path] = None


def run_one(cfg: dict, timeout: float, python: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    if SNAPSHOT_DIR is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(SNAPSHOT_DIR), os.environ.get("PYTHONPATH", "")])
    table0 = _proc_table()
    busy0, kid0, w0, la0 = _proc_stat_busy(), _children_cpu(), time.perf_counter(), os.getloadavg()
    p = subprocess.run([python, __file__, "--_worker", json.dumps(cfg)], capture_output=True,
                       text=True, env=env, timeout=timeout, cwd=REPO)
    wall = time.perf_counter() - w0
    busy, kid = _proc_stat_busy() - busy0, _children_cpu() - kid0
    others = other_processes(table0, _proc_table(), wall)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-12:]
        return dict(loader=cfg["label"], error=f"exit {p.returncode}: " + " | ".join(tail))
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("@@RESULT ")][-1]
    res = json.loads(line[len("@@RESULT "):])
    # cores' worth of other processes during the subprocess (imports and warm-up included)
    res["other_load_cores"] = round(max(0.0, busy - kid) / wall, 2)
    res["other_processes"] = others
    res["loadavg_before_after"] = [[round(x, 2) for x in la0], [round(x, 2) for x in os.getloadavg()]]
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


# CPU features that decide which code paths libjpeg-turbo, OpenCV, TF and pyimgdir take
FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "bmi2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                     "avx512_bf16", "avx512_fp16", "amx_tile", "erms", "fsrm", "hypervisor")


def machine_info() -> dict:
    info: Dict[str, object] = dict(cpu=platform.processor(), cores=os.cpu_count())
    try:
        with open("/proc/cpuinfo") as f:
            block = f.read().split("\n\n")[0]
        kv = {}
        for ln in block.splitlines():
            if ":" in ln:
                k, v = ln.split(":", 1)
                kv[k.strip()] = v.strip()
        info["cpu"] = kv.get("model name", info["cpu"])
        info["cpu_family_model_stepping"] = [kv.get("cpu family"), kv.get("model"), kv.get("stepping")]
        info["cpu_mhz"] = kv.get("cpu MHz")
        flags = set(kv.get("flags", "").split())
        info["cpu_flags"] = [f for f in FLAGS_OF_INTEREST if f in flags]
    except OSError:
        pass
    try:
        for ln in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            k, _, v = ln.partition(":")
            if k.strip() in ("L2 cache", "L3 cache", "Hypervisor vendor", "Thread(s) per core"):
                info[k.strip().lower().replace(" ", "_").replace("(s)", "s")] = v.strip()
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["memory_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    info.update(python=platform.python_version(), platform=platform.platform(),
                git=subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                                   cwd=REPO).stdout.strip())
    return info


def machine_line(info: dict) -> str:
    return (f"{info['cpu']} (family/model/stepping {'/'.join(str(x) for x in info.get('cpu_family_model_stepping', []))}), "
            f"{info['cores']} cores, {info.get('threads_per_core', '?')} thread(s) per core, "
            f"L2 {info.get('l2_cache', '?')}, L3 {info.get('l3_cache', '?')}, {info.get('memory_gb')} GB"
            + (f", {info['hypervisor_vendor']} guest" if info.get("hypervisor_vendor") else "")
            + f"; flags: {' '.join(info.get('cpu_flags', []))}")


# ------------------------------------------------------------------------- statistics


def _spread_pct(lo: float, hi: float, mid: float) -> float:
    return round(100 * (hi - lo) / mid, 1) if mid else 0.0


def summarize_rounds(results: List[dict], max_spread: float) -> dict:
    """One row from the rounds of one loader. Every round counts (none is dropped); the row
    gives the median and the range over rounds of images/s (each round's median epoch) and
    of CPU ms per image (each round's CPU time over its images), Keras-style typical (median
    of every epoch) and best epoch, and flags a spread too wide to conclude from. Every round
    is kept in `rounds_detail`."""
    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[0]
    row = dict(ok[-1])
    epochs = [e for r in ok for e in r["epochs"]]
    rates = [r["images_per_s"] for r in ok]
    cpus = [r["cpu_ms_per_image"] for r in ok]
    med_rate, med_cpu = statistics.median(rates), statistics.median(cpus)
    row.update(
        rounds=len(ok),
        epochs=epochs,
        images_per_s=round(statistics.median(e["images_per_s"] for e in epochs), 1),
        images_per_s_rounds=dict(median=round(med_rate, 1), min=min(rates), max=max(rates),
                                 spread_pct=_spread_pct(min(rates), max(rates), med_rate)),
        best_epoch_images_per_s=max(e["images_per_s"] for e in epochs),
        cpu_ms_per_image=round(med_cpu, 3),
        cpu_ms_per_image_rounds=dict(median=round(med_cpu, 3), min=min(cpus), max=max(cpus),
                                     spread_pct=_spread_pct(min(cpus), max(cpus), med_cpu)),
        cores_used=round(sum(e["cpu_seconds"] for e in epochs) / sum(e["seconds"] for e in epochs), 2),
        peak_rss_mb=max(r["peak_rss_mb"] for r in ok),
        time_to_first_batch_s=round(statistics.median(r["time_to_first_batch_s"] for r in ok), 4),
        other_load_cores=round(max(r["other_load_cores"] for r in ok), 2),
        other_load_cores_median=round(statistics.median(r["other_load_cores"] for r in ok), 2),
    )
    flags = []
    if len(ok) < 3:
        flags.append(f"{len(ok)} round(s)")
    if row["cpu_ms_per_image_rounds"]["spread_pct"] > max_spread:
        flags.append(f"CPU spread {row['cpu_ms_per_image_rounds']['spread_pct']:.0f}%")
    if row["images_per_s_rounds"]["spread_pct"] > 2 * max_spread:
        flags.append(f"img/s spread {row['images_per_s_rounds']['spread_pct']:.0f}%")
    row["flags"] = flags
    row["rounds_detail"] = [
        dict(round=r.get("round"), images_per_s=r["images_per_s"], epochs=[e["images_per_s"] for e in r["epochs"]],
             cpu_ms_per_image=r["cpu_ms_per_image"], other_load_cores=r["other_load_cores"],
             other_processes=r.get("other_processes"), loadavg_before_after=r.get("loadavg_before_after"),
             peak_rss_mb=r["peak_rss_mb"], time_to_first_batch_s=r["time_to_first_batch_s"])
        for r in ok
    ]
    return row


# Targets (issue 15) checked on CPU ms per image, paired round by round: a loader is
# compared with its reference measured in the same round, minutes apart, so a drift of
# the machine's speed between rounds cancels out of the ratio.
#   (name, loader, reference, kind, limit): kind "ratio": loader / reference <= limit;
#   "diff": loader - reference <= limit (ms); "lt": loader / reference < limit.
TARGETS = [
    ("numpy float32 <= 1.10x ceiling", "pyimgdir numpy", "ceiling", "ratio", 1.10),
    ("numpy uint8 <= 1.05x ceiling", "pyimgdir numpy uint8", "ceiling", "ratio", 1.05),
    ("numpy uint8 <= numpy float32", "pyimgdir numpy uint8", "pyimgdir numpy", "ratio", 1.00),
    ("tf <= numpy + 0.10 ms", "pyimgdir tf", "pyimgdir numpy", "diff", 0.10),
    ("channels_first <= 1.03x channels_last", "pyimgdir numpy channels_first", "pyimgdir numpy", "ratio", 1.03),
    ("jpeg_downscale < simplejpeg+cv2 downscale", "pyimgdir numpy downscale", "simplejpeg+cv2 downscale", "lt", 1.00),
]


def _round_cpu(by_label: Dict[str, List[dict]], label: str) -> Dict[int, float]:
    return {r["round"]: r["cpu_ms_per_image"] for r in by_label.get(label, [])
            if "error" not in r and r.get("round") is not None}


def check_targets(by_label: Dict[str, List[dict]], ceiling_labels: List[str]) -> List[dict]:
    # the ceiling of a round: the cheaper (CPU per image) of that round's ceiling rows
    ceil: Dict[int, float] = {}
    for lab in ceiling_labels:
        for rnd, v in _round_cpu(by_label, lab).items():
            ceil[rnd] = min(v, ceil.get(rnd, v))
    out = []
    for name, lab, ref, kind, limit in TARGETS:
        a = _round_cpu(by_label, lab)
        b = ceil if ref == "ceiling" else _round_cpu(by_label, ref)
        rounds = sorted(set(a) & set(b))
        if not rounds:
            continue
        vals = [a[r] / b[r] if kind in ("ratio", "lt") else a[r] - b[r] for r in rounds]
        med = statistics.median(vals)
        ok = (lambda v: v < limit) if kind == "lt" else (lambda v: v <= limit)
        n_ok = sum(ok(v) for v in vals)
        if n_ok == len(vals):
            verdict = "met"
        elif n_ok == 0:
            verdict = "NOT MET"
        else:
            verdict = ("met (median)" if ok(med) else "NOT MET (median)") + f"; {n_ok} of {len(vals)} rounds meet it: inconclusive"
        unit = "x" if kind != "diff" else " ms"
        out.append(dict(target=name, loader=lab, reference=ref, kind=kind, limit=limit, per_round=[round(v, 3) for v in vals],
                        median=round(med, 3), min=round(min(vals), 3), max=round(max(vals), 3), verdict=verdict,
                        text=f"{name}: median {med:+.3f}{unit} (rounds {min(vals):+.3f} .. {max(vals):+.3f}) -> {verdict}"
                        if kind == "diff" else
                        f"{name}: median {med:.3f}{unit} (rounds {min(vals):.3f} .. {max(vals):.3f}) -> {verdict}"))
    return out


# ----------------------------------------------------------------------------- table


def fmt_table(rows: List[dict], keras: Optional[dict], ceiling_cpu: Optional[float]) -> str:
    hdr = ["loader", "img/s", "rounds min-max", "best epoch", "x Keras", "x Keras best", "CPU ms/img",
           "CPU min-max", "x ceil CPU", "cores", "peak RSS MB", "1st batch s", "other load", "flags"]
    lines = []
    for r in rows:
        if "skipped" in r:
            continue
        if "error" in r:
            lines.append([r["loader"], "ERROR"] + ["-"] * (len(hdr) - 2))
            continue
        rate = r["images_per_s"]
        rr = r.get("images_per_s_rounds", dict(min=rate, max=rate))
        cr = r.get("cpu_ms_per_image_rounds", dict(min=r["cpu_ms_per_image"], max=r["cpu_ms_per_image"]))
        lines.append([
            r["loader"], f"{rate:,.0f}", f"{rr['min']:,.0f}-{rr['max']:,.0f}",
            f"{r.get('best_epoch_images_per_s', max(e['images_per_s'] for e in r['epochs'])):,.0f}",
            f"{rate / keras['images_per_s']:.2f}" if keras else "-",
            f"{rate / keras['best_epoch_images_per_s']:.2f}" if keras else "-",
            f"{r['cpu_ms_per_image']:.3f}", f"{cr['min']:.3f}-{cr['max']:.3f}",
            f"{r['cpu_ms_per_image'] / ceiling_cpu:.2f}" if ceiling_cpu else "-",
            f"{r['cores_used']:.2f}", f"{r['peak_rss_mb']:,.0f}",
            f"{r['time_to_first_batch_s']:.3f}", f"{r['other_load_cores']:.2f}", "; ".join(r.get("flags", [])),
        ])
    w = [max(len(str(x)) for x in col) for col in zip(hdr, *lines)]
    def fmt(row):
        return "  ".join(str(c).ljust(w[i]) if i in (0, len(row) - 1) else str(c).rjust(w[i])
                                    for i, c in enumerate(row)).rstrip()
    out = [fmt(hdr), fmt(["-" * x for x in w])] + [fmt(r) for r in lines]
    out += [f"(not run: {r['loader']}: {r['skipped']})" for r in rows if "skipped" in r]
    out += [f"(ERROR: {r['loader']}: {r['error'][-400:]})" for r in rows if "error" in r]
    return "\n".join(out)


TABLE_NOTES = """\
img/s: median of every timed epoch of every round (Keras' typical epoch); rounds min-max: the
  slowest and fastest round (a round's figure is its median epoch); best epoch: the fastest epoch.
x Keras: img/s over Keras' typical epoch; x Keras best: img/s over Keras' best epoch.
CPU ms/img: median over rounds of (CPU time of the loader's processes) / images; min-max over rounds.
x ceil CPU: CPU ms/img over the ceiling's (the cheaper ceiling row's median).
other load: the most cores other processes used during any round of that loader.
flags: fewer than 3 rounds, or a spread too wide to conclude from (CPU > --max-spread %, img/s > twice that)."""


def markdown_table(d: dict) -> str:
    """The results of a run as a Markdown table (the README's form)."""
    m = d["machine"]
    keras = next((r for r in d["results"] if r.get("base_loader") == "keras" and "epochs" in r), None)
    ceil = next((r for r in d["results"] if r.get("loader") == d.get("ceiling")), None)
    out = [f"{d['dataset']} → {d['spec']['height']}×{d['spec']['width']}, batch {d['spec']['batch_size']}; "
           f"{m['cpu']}, {m['cores']} cores; {d['rounds']} interleaved rounds × {d['epochs']} epochs, {d['date'][:16]}",
           "",
           "| loader | img/s (median) | rounds min–max | × Keras | × Keras best | CPU ms/img (median) | CPU min–max | × ceiling CPU |",
           "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in d["results"]:
        if "epochs" not in r:
            continue
        rr, cr = r["images_per_s_rounds"], r["cpu_ms_per_image_rounds"]
        out.append(
            f"| {r['loader']}{' (flagged: ' + '; '.join(r['flags']) + ')' if r.get('flags') else ''} "
            f"| {r['images_per_s']:,.0f} | {rr['min']:,.0f}–{rr['max']:,.0f} "
            f"| {r['images_per_s'] / keras['images_per_s']:.2f} | {r['images_per_s'] / keras['best_epoch_images_per_s']:.2f} "
            f"| {r['cpu_ms_per_image']:.3f} | {cr['min']:.3f}–{cr['max']:.3f} "
            f"| {r['cpu_ms_per_image'] / ceil['cpu_ms_per_image']:.2f} |"
            if keras and ceil else
            f"| {r['loader']} | {r['images_per_s']:,.0f} | {rr['min']:,.0f}–{rr['max']:,.0f} | – | – "
            f"| {r['cpu_ms_per_image']:.3f} | {cr['min']:.3f}–{cr['max']:.3f} | – |")
    if keras:
        out.append("")
        out.append(f"Keras: typical epoch {keras['images_per_s']:,.0f} img/s, best epoch "
                   f"{keras['best_epoch_images_per_s']:,.0f}.")
    return "\n".join(out)


def print_doc(d: dict) -> None:
    m = d["machine"]
    print(f"machine: {machine_line(m)}")
    print(f"== {d['dataset']} / {d['spec']['name']}: {d['spec']['height']}x{d['spec']['width']}, batch "
          f"{d['spec']['batch_size']} ({d['mode']}; warm-up + {d['epochs']} epochs x {d['rounds']} rounds, "
          f"interleaved; {d['date']}; git {m.get('git')})")
    print(f"load average before {d['loadavg_before']}, after {d['loadavg_after']}")
    keras = next((r for r in d["results"] if r.get("base_loader") == "keras" and "epochs" in r), None)
    ceil = next((r for r in d["results"] if r.get("loader") == d.get("ceiling")), None)
    print(fmt_table(d["results"], keras, ceil["cpu_ms_per_image"] if ceil else None))
    if keras:
        print(f"Keras: typical epoch {keras['images_per_s']:,.0f} img/s, best epoch {keras['best_epoch_images_per_s']:,.0f} "
              f"(rounds {', '.join(f'{x:,.0f}' for x in [rd['images_per_s'] for rd in keras['rounds_detail']])})"
              if "rounds_detail" in keras else f"Keras: typical {keras['images_per_s']:,.0f} img/s")
    if ceil:
        print(f"ceiling = {ceil['loader']} (the ceiling row with the lower CPU per image): full-size decode only")
    others: Dict[str, float] = {}
    for r in d["results"]:
        for rd in r.get("rounds_detail", []):
            for o in rd.get("other_processes") or []:
                others[o["name"]] = max(others.get(o["name"], 0.0), o["cores"])
    if others:
        print("other processes seen (most cores during any one loader run): "
              + ", ".join(f"{k} {v:.2f}" for k, v in sorted(others.items(), key=lambda kv: -kv[1])[:6]))
    for t in d.get("targets", []):
        print("target " + t["text"])
    flagged = [r["loader"] for r in d["results"] if r.get("flags")]
    if flagged:
        print("FLAGGED (spread too wide to conclude, or too few rounds): " + ", ".join(flagged))


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
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs after the warm-up, per round (default 3)")
    ap.add_argument("--rounds", type=int, default=3, help="run the whole loader list this many times, interleaved "
                    "(A B C A B C ...); rows give the median and range over rounds (default 3)")
    ap.add_argument("--max-spread", type=float, default=10.0, metavar="PCT",
                    help="flag a loader whose CPU ms/img varies by more than PCT%% of its median across rounds "
                    "(its img/s by more than twice that); default 10")
    ap.add_argument("--threads", action="store_true", help="scaling mode: num_threads 1 and 2 (see --thread-counts)")
    ap.add_argument("--thread-counts", default=None, help="thread counts for --threads (default 1,...,cores)")
    ap.add_argument("--memory-epochs", type=int, default=0, help="memory mode: RSS after each of N epochs")
    ap.add_argument("--wait-quiet", type=float, default=10, metavar="S",
                    help="before each loader, wait up to S seconds for other processes to use less than "
                    "--quiet-threshold cores (0: don't wait; default 10)")
    ap.add_argument("--quiet-threshold", type=float, default=0.3, metavar="CORES")
    ap.add_argument("--python", action="append", default=[], metavar="LOADER=PATH",
                    help="run LOADER with another Python interpreter (e.g. torchvision=/venv/bin/python for a "
                    "torchvision that needs a different torch build); repeatable")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per loader subprocess")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON path (default benchmarks/results/<dataset>-<spec>[-mode].json)")
    ap.add_argument("--no-save", action="store_true", help="print only")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="use pyimgdir from the tree as it is (default: a copy taken at the start of the run)")
    ap.add_argument("--show", type=Path, nargs="+", default=None, metavar="JSON",
                    help="print the table of saved results and exit")
    ap.add_argument("--markdown", action="store_true", help="with --show: print Markdown tables")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a._worker:
        res = worker(json.loads(a._worker))
        print("@@RESULT " + json.dumps(res), flush=True)
        return 0
    if a.show:
        for p in a.show:
            d = json.loads(p.read_text())
            if a.markdown:
                print(markdown_table(d))
                for t in d.get("targets", []):
                    print(f"- target {t['text']}")
            else:
                print_doc(d)
            print()
        return 0

    import loaders as L

    pythons = {}
    for item in a.python:
        name, _, path = item.rpartition("=")
        if not name or not path:
            raise SystemExit(f"--python: expected LOADER=PATH, got {item!r}")
        pythons[name] = path

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
    rounds = 1 if mode == "memory" else a.rounds

    skipped = {}
    for label, b, _ in plan:
        why = L.available(b, pythons.get(b))
        if why:
            skipped[label] = why
    plan = [p for p in plan if p[0] not in skipped]

    mb = warm_page_cache(files)
    print(f"dataset {ds_name}: {len(files)} files, {mb:.1f} MB (page cache warmed) at {ds_dir}")
    manifest = ds_dir / "MANIFEST.json"
    ds_summary = json.loads(manifest.read_text())["summary"] if manifest.exists() else None
    if ds_summary:
        print("  " + ", ".join(f"{k}={v}" for k, v in ds_summary.items()))
    info = machine_info()
    info["pyimgdir_snapshot"] = snapshot
    print(f"machine: {machine_line(info)}; git {info['git']}")

    for spec_name in specs:
        spec = L.SPECS[spec_name]
        print(f"\n== {ds_name} / {spec_name}: {spec.height}x{spec.width} RGB bilinear, batch {spec.batch_size}, "
              f"no shuffle; {mode}; warm-up + {epochs} epochs, {rounds} round(s), interleaved")
        la_before = os.getloadavg()
        t_all = time.perf_counter()
        by_label: Dict[str, List[dict]] = {}

        for rnd in range(rounds):
            for label, b, t in plan:
                cfg = dict(loader=b, label=label, threads=t, spec=spec_name, directory=str(ds_dir), epochs=epochs)
                quiet = wait_quiet(a.quiet_threshold, a.wait_quiet) if a.wait_quiet > 0 else None
                try:
                    r = run_one(cfg, a.timeout, pythons.get(b, sys.executable))
                except subprocess.TimeoutExpired:
                    r = dict(loader=label, error=f"timed out after {a.timeout} s")
                r["round"] = rnd
                if quiet:
                    r["waited_for_quiet_s"], r["other_load_at_start_cores"] = quiet
                by_label.setdefault(label, []).append(r)
                if "error" in r:
                    print(f"  [{rnd + 1}] {label}: ERROR {r['error']}", file=sys.stderr)
                else:
                    busy = ", ".join(f"{o['name']} {o['cores']:.2f}" for o in r["other_processes"][:3])
                    ep = ", ".join(f"{e['images_per_s']:,.0f}" for e in r["epochs"])
                    print(f"  [{rnd + 1}] {label:<40} {r['images_per_s']:>8,.1f} img/s  {r['cpu_ms_per_image']:7.3f} "
                          f"CPU ms/img  (epochs {ep}; other load {r['other_load_cores']:.2f}"
                          f"{': ' + busy if busy else ''})", flush=True)
        rows = [summarize_rounds(by_label[label], a.max_spread) for label, _, _ in plan if label in by_label]
        rows += [dict(loader=k, skipped=v) for k, v in skipped.items()]
        la_after = os.getloadavg()

        good = [r for r in rows if "error" not in r and "skipped" not in r]
        keras = next((r for r in good if r["base_loader"] == "keras"), None)
        ceilings = [r for r in good if r["group"] == "ceiling"]
        ceiling = min(ceilings, key=lambda r: r["cpu_ms_per_image"]) if ceilings else None
        for r in good:
            r["ratio_to_keras"] = round(r["images_per_s"] / keras["images_per_s"], 3) if keras else None
            r["ratio_to_keras_best"] = round(r["images_per_s"] / keras["best_epoch_images_per_s"], 3) if keras else None
            r["cpu_ratio_to_ceiling"] = round(r["cpu_ms_per_image"] / ceiling["cpu_ms_per_image"], 3) if ceiling else None
        targets = check_targets(by_label, [r["loader"] for r in ceilings]) if mode == "compare" else []

        extra = {}
        if mode == "threads":
            extra["scaling"] = {}
            for b in base:
                rs = {r["threads"]: r["images_per_s"] for r in good if r["base_loader"] == b}
                if 1 in rs:
                    extra["scaling"][b] = {f"t{t}": dict(images_per_s=v, speedup=round(v / rs[1], 2))
                                           for t, v in sorted(rs.items())}
        if mode == "memory":
            extra["memory"] = {}
            for r in good:
                rss = r["rss_per_epoch_mb"]
                k = min(2, len(rss) - 1)
                extra["memory"][r["loader"]] = dict(rss_per_epoch_mb=rss, first=rss[0], last=rss[-1], max=max(rss),
                                                    growth_since_epoch_3_mb=round(rss[-1] - rss[k], 1),
                                                    peak_rss_mb=r["peak_rss_mb"])
        wall = time.perf_counter() - t_all
        doc = dict(
            dataset=ds_name, dataset_dir=os.path.relpath(ds_dir, REPO), dataset_summary=ds_summary,
            files=len(files), spec=dict(name=spec.name, height=spec.height, width=spec.width,
                                        batch_size=spec.batch_size, interpolation="bilinear", shuffle=False),
            mode=mode, epochs=epochs, rounds=rounds, max_spread_pct=a.max_spread, machine=info,
            loadavg_before=[round(x, 2) for x in la_before], loadavg_after=[round(x, 2) for x in la_after],
            wall_s=round(wall, 1), date=time.strftime("%Y-%m-%d %H:%M:%S %z"),
            keras_images_per_s=keras["images_per_s"] if keras else None,
            keras_best_epoch_images_per_s=keras["best_epoch_images_per_s"] if keras else None,
            ceiling=ceiling["loader"] if ceiling else None, targets=targets,
            results=rows, **extra,
        )
        print()
        print_doc(doc)
        print(TABLE_NOTES)
        for b, s in extra.get("scaling", {}).items():
            print(f"scaling {b}: " + ", ".join(f"{k}: {v['images_per_s']:,.0f} img/s ({v['speedup']:.2f}x)"
                                               for k, v in s.items()))
        for name, m in extra.get("memory", {}).items():
            print(f"RSS per epoch, {name} (MB): " + " ".join(f"{x:.0f}" for x in m["rss_per_epoch_mb"]))
            print(f"  first {m['first']:.1f}, last {m['last']:.1f}, max {m['max']:.1f}, "
                  f"growth since epoch 3: {m['growth_since_epoch_3_mb']:+.1f} MB, peak RSS {m['peak_rss_mb']:.1f}")
        print(f"{wall:.0f} s")
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
