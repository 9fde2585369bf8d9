"""``pyimgdir bench DIR``: how fast pyimgdir loads the user's own folder.

Each configuration is built with the public API on the same files (no shuffling, so every
loader reads them in the same order), iterated once as a warm-up (which also brings the
files into the OS page cache), then for ``epochs`` timed epochs; the median epoch is
reported as images/s and MB/s of compressed file bytes read.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from typing import Any, Callable, Dict, Iterable, List, Optional

from ..progress import Progress

__all__ = ["default_thread_counts", "time_epochs", "run_bench", "format_report"]


def default_thread_counts(cores: Optional[int] = None) -> List[int]:
    """1, 2, 4, ... up to the number of cores, and the number of cores itself."""
    cores = cores or os.cpu_count() or 1
    out = []
    t = 1
    while t < cores:
        out.append(t)
        t *= 2
    out.append(cores)
    return out


def _batch_len(batch) -> int:
    x = batch[0] if isinstance(batch, tuple) else batch
    return int(x.shape[0]) if hasattr(x, "shape") else len(x)


def time_epochs(
    make_iter: Callable[[], Iterable], epochs: int, progress: Optional[Progress] = None, label: str = ""
) -> Dict[str, Any]:
    """Runs one warm-up epoch and ``epochs`` timed ones; returns the images per epoch and
    each timed epoch's seconds."""
    seconds: List[float] = []
    images = 0
    for e in range(epochs + 1):
        stage = "warm-up" if e == 0 else f"epoch {e}/{epochs}"
        n = 0
        if progress is not None:
            progress.reset(f"{label}, {stage}")
        t0 = time.perf_counter()
        for batch in make_iter():
            n += _batch_len(batch)
            if progress is not None:
                progress.update(n)
        dt = time.perf_counter() - t0
        if e > 0:
            seconds.append(dt)
        images = n
    return {"images": images, "epoch_seconds": [round(s, 6) for s in seconds]}


def _summarise(run: Dict[str, Any], nbytes: int) -> Dict[str, Any]:
    med = statistics.median(run["epoch_seconds"])
    run["median_epoch_s"] = round(med, 6)
    run["images_per_s"] = round(run["images"] / med, 1) if med > 0 else None
    run["mb_per_s"] = round(nbytes / 1e6 / med, 2) if med > 0 else None
    return run


def run_bench(
    directory: str,
    spec,
    *,
    epochs: int = 3,
    threads: Optional[List[int]] = None,
    keras: bool = False,
    progress: Optional[bool] = None,
) -> Dict[str, Any]:
    """Measures pyimgdir (numpy output) as ``spec`` (a :class:`~pyimgdir.spec.LoadSpec`)
    says at each thread count in ``threads`` (default :func:`default_thread_counts`), and
    with ``keras=True`` pyimgdir's ``tf.data`` output against
    ``keras.utils.image_dataset_from_directory`` called with the same options
    (``spec.keras_kwargs()``) on the same files. Returns a JSON-ready dict."""
    from ..api import dataset_from_spec

    cores = os.cpu_count() or 1
    threads = list(threads) if threads else default_thread_counts(cores)
    spec = spec.replace(format="numpy", shuffle=False, verbose=False, on_error="skip")

    first = dataset_from_spec(directory, spec.replace(num_threads=threads[0]))
    files = list(first.file_paths)
    nbytes = 0
    for p in files:
        try:
            nbytes += os.path.getsize(p)
        except OSError:
            pass
    result: Dict[str, Any] = {
        "directory": os.fspath(directory),
        "files": len(files),
        "bytes": nbytes,
        "classes": len(first.class_names) if first.class_names else None,
        "options": {
            "image_size": list(spec.image_size),
            "batch_size": spec.batch_size,
            "dtype": spec.dtype,
            "interpolation": spec.interpolation,
            "color_mode": spec.color_mode,
            "labels": spec.labels,
            "crop_to_aspect_ratio": spec.fit == "crop",
            "pad_to_aspect_ratio": spec.fit == "pad",
            "jpeg_downscale": spec.jpeg_downscale,
            "shuffle": False,
        },
        "epochs": epochs,
        "cpu_count": cores,
        "runs": [],
        "keras": None,
        "skipped_files": [],
    }

    with Progress("", len(files), enabled=progress, unit="images") as bar:
        for i, t in enumerate(threads):
            ds = first if i == 0 else dataset_from_spec(directory, spec.replace(num_threads=t))
            run = time_epochs(lambda: iter(ds), epochs, bar, f"pyimgdir, {t} thread{'s' if t > 1 else ''}")
            result["runs"].append(
                _summarise({"loader": "pyimgdir", "format": "numpy", "num_threads": t, **run}, nbytes)
            )
            for f in ds.skipped_files:
                if not any(s["path"] == f.path for s in result["skipped_files"]):
                    result["skipped_files"].append({"path": f.path, "reason": f.reason})

        if keras:
            try:
                from ..outputs.quiet_tf import import_tensorflow

                _, keras_mod = import_tensorflow()
            except ImportError as e:
                result["keras"] = {"error": f"TensorFlow/Keras are not installed ({e})"}
            else:
                ds_tf = dataset_from_spec(directory, spec.replace(format="tf"))
                run = time_epochs(lambda: iter(ds_tf), epochs, bar, "pyimgdir tf.data")
                result["runs"].append(
                    _summarise({"loader": "pyimgdir", "format": "tf", "num_threads": cores, **run}, nbytes)
                )
                try:
                    ds_k = keras_mod.utils.image_dataset_from_directory(directory, **spec.keras_kwargs())
                    run = time_epochs(lambda: iter(ds_k), epochs, bar, "keras")
                    result["keras"] = _summarise(
                        {"loader": "keras", "format": "tf", "version": keras_mod.__version__, **run}, nbytes
                    )
                except Exception as e:  # e.g. a file Keras cannot decode
                    msg = re.sub(r"\{\{[^}]*\}\}\s*", "", str(e)).strip().splitlines()
                    result["keras"] = {"error": f"{type(e).__name__}: {msg[0] if msg else ''}"}
    return result


def format_report(r: Dict[str, Any]) -> str:
    """The human-readable report of :func:`run_bench`'s result."""
    from .scan import display_path, human_bytes

    o = r["options"]
    h, w = o["image_size"]
    ch = {"rgb": 3, "rgba": 4, "grayscale": 1}[o["color_mode"]]
    fit = " crop" if o["crop_to_aspect_ratio"] else (" pad" if o["pad_to_aspect_ratio"] else "")
    ds = ", jpeg_downscale" if o["jpeg_downscale"] else ""
    classes = f" in {r['classes']} classes" if r["classes"] else ""
    lines = [
        f"{display_path(r['directory'])}: {r['files']} files ({human_bytes(r['bytes'])}){classes}",
        f"  -> {h}x{w}x{ch} {o['dtype']}, {o['interpolation']}{fit}{ds}, batch {o['batch_size']}; "
        f"one warm-up epoch, then the median of {r['epochs']}; {r['cpu_count']} CPU cores",
        "",
    ]
    numpy_runs = [x for x in r["runs"] if x["format"] == "numpy"]
    base = numpy_runs[0]["images_per_s"] if numpy_runs else None
    lines.append('pyimgdir, format="numpy":')
    lines.append(f"  {'threads':>7}  {'images/s':>9}  {'MB/s':>8}  {'scaling':>8}")
    for x in numpy_runs:
        rel = f"{x['images_per_s'] / base:.2f}x" if base and x["images_per_s"] else "-"
        lines.append(f"  {x['num_threads']:>7}  {x['images_per_s']:>9,.0f}  {x['mb_per_s']:>8,.1f}  {rel:>8}")
    if numpy_runs and numpy_runs[0]["num_threads"] != 1:
        lines.append(f"  (scaling is relative to {numpy_runs[0]['num_threads']} threads)")
    k = r["keras"]
    if k is not None:
        lines.append("")
        lines.append("Against Keras (same files and options, tf.data output):")
        tf_runs = [x for x in r["runs"] if x["format"] == "tf"]
        kr = k.get("images_per_s")
        for x in tf_runs:
            rel = f"  {x['images_per_s'] / kr:.2f}x Keras" if kr else ""
            lines.append(f"  {'pyimgdir (tf.data)':<20} {x['images_per_s']:>9,.0f} images/s  {x['mb_per_s']:>8,.1f} MB/s{rel}")
        if "error" in k:
            lines.append(f"  keras: {k['error']}")
        else:
            lines.append(f"  {'keras ' + k.get('version', ''):<20} {kr:>9,.0f} images/s  {k['mb_per_s']:>8,.1f} MB/s")
            keras_dtype = "uint8" if o["interpolation"] == "nearest" else "float32"
            if o["dtype"] != keras_dtype or o["jpeg_downscale"]:
                lines.append("  (Keras has no dtype or jpeg_downscale option: it ran with its defaults)")
    skipped = r["skipped_files"]
    if skipped:
        lines.append("")
        lines.append(f"{len(skipped)} files could not be decoded and were left out "
                     f"(`pyimgdir scan --check` lists them):")
        for s in skipped[:10]:
            lines.append(f"  {display_path(s['path'])}: {s['reason']}")
        if len(skipped) > 10:
            lines.append(f"  ... and {len(skipped) - 10} more")
    return "\n".join(lines)
