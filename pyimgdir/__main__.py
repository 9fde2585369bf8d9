"""Command line: ``pyimgdir demo`` (and ``python -m pyimgdir demo``)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _epochs_per_second(make_iter, epochs: int) -> tuple:
    """Warm-up epoch, then the median images/s of `epochs` timed epochs."""
    rates = []
    n = 0
    for e in range(epochs + 1):
        t0 = time.perf_counter()
        n = 0
        for batch in make_iter():
            x = batch[0] if isinstance(batch, tuple) else batch
            n += len(x)
        dt = time.perf_counter() - t0
        if e > 0:
            rates.append(n / dt)
    rates.sort()
    return rates[len(rates) // 2], n


def cmd_demo(args) -> int:
    import numpy as np

    import pyimgdir
    from pyimgdir.sample import make_sample

    root = Path(args.dir) if args.dir else Path(tempfile.gettempdir()) / "pyimgdir-sample"
    print(f"Sample dataset: {root} ({args.classes} classes x {args.per_class} images)")
    t0 = time.perf_counter()
    make_sample(root, classes=args.classes, per_class=args.per_class)
    print(f"  ready in {time.perf_counter() - t0:.1f} s")
    kw = dict(image_size=(args.size, args.size), batch_size=args.batch_size, shuffle=False, verbose=False)

    results = {}
    ds_np = pyimgdir.image_dataset_from_directory(root, format="numpy", **kw)
    results["pyimgdir (numpy)"] = _epochs_per_second(lambda: iter(ds_np), args.epochs)[0]

    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
        import tensorflow as tf  # noqa: F401
    except ImportError:
        keras = None
        print("TensorFlow/Keras are not installed: showing pyimgdir's numpy output only "
              '(pip install "pyimgdir[tf]" to compare with Keras).')
    match = None
    if keras is not None:
        ds_tf = pyimgdir.image_dataset_from_directory(root, **kw)
        results["pyimgdir (tf.data)"] = _epochs_per_second(lambda: iter(ds_tf), args.epochs)[0]
        ds_k = keras.utils.image_dataset_from_directory(root, **kw)
        results["keras"] = _epochs_per_second(lambda: iter(ds_k), args.epochs)[0]
        # Same call, same output: compare file lists, labels and every pixel.
        same_files = ds_k.file_paths == ds_tf.file_paths and ds_k.class_names == ds_tf.class_names
        max_diff = 0.0
        same_labels = True
        for (kx, ky), (px, py) in zip(ds_k.as_numpy_iterator(), ds_np):
            max_diff = max(max_diff, float(np.abs(kx - px).max()))
            same_labels &= bool((ky == py).all())
        match = same_files and same_labels and max_diff <= 1e-3
        print(f"\nOutputs: file_paths and class_names {'identical' if same_files else 'DIFFER'}; "
              f"labels {'identical' if same_labels else 'DIFFER'}; largest pixel difference {max_diff:g}")

    n = len(ds_np.file_paths)
    print(f"\nThroughput, {n} images -> {args.size}x{args.size} float32, batch {args.batch_size}, "
          f"median of {args.epochs} epochs after a warm-up ({os.cpu_count()} CPU cores):")
    base = results.get("keras")
    for name, rate in results.items():
        ratio = f"  ({rate / base:.2f}x Keras)" if base else ""
        print(f"  {name:<20} {rate:9.0f} images/s{ratio}")
    if match is False:
        print("\nMISMATCH between pyimgdir and Keras outputs", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pyimgdir", description="Fast Keras-compatible image folder loader.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="make a sample dataset, load it with pyimgdir and Keras, compare speed and output")
    demo.add_argument("--dir", help="where to write the sample (default: a folder in the temp dir, reused)")
    demo.add_argument("--classes", type=int, default=5)
    demo.add_argument("--per-class", type=int, default=120)
    demo.add_argument("--size", type=int, default=180, help="output image size (square)")
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    demo.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
