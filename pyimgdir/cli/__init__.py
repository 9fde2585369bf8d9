"""Command line: ``pyimgdir scan|bench|demo`` (also ``python -m pyimgdir ...``). Nothing in
the library imports this package.

* ``scan DIR``   the classes and files ``image_dataset_from_directory`` would load, their
  formats and sizes; ``--check`` decodes every file and lists the ones that fail.
* ``bench DIR``  pyimgdir's throughput on a folder, per thread count, optionally against Keras.
* ``demo``       make a sample dataset, load it with pyimgdir and Keras, compare speed and output.

Exit status: 0 on success; 1 when ``scan`` finds files that cannot be loaded, or ``demo``
finds outputs that differ from Keras', or a command fails; 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from ..options.constants import INTERPOLATIONS

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _check_dir(parser: argparse.ArgumentParser, directory: str) -> None:
    from ..options.urls import is_url

    if is_url(directory):  # listed (and reported missing) by its filesystem
        return
    if not os.path.exists(directory):
        parser.error(f"directory not found: {directory}")
    if not os.path.isdir(directory):
        parser.error(f"not a directory: {directory}")


# ------------------------------------------------------------------------------ demo


def cmd_demo(args) -> int:
    import numpy as np

    import pyimgdir
    from ..sample import make_sample

    say = (lambda *a, **k: None) if args.json else print
    root = Path(args.dir) if args.dir else Path(tempfile.gettempdir()) / "pyimgdir-sample"
    say(f"Sample dataset: {root} ({args.classes} classes x {args.per_class} images)")
    t0 = time.perf_counter()
    make_sample(root, classes=args.classes, per_class=args.per_class)
    sample_s = time.perf_counter() - t0
    say(f"  ready in {sample_s:.1f} s")
    kw = dict(image_size=(args.size, args.size), batch_size=args.batch_size, shuffle=False, verbose=False)

    results = {}
    ds_np = pyimgdir.image_dataset_from_directory(root, format="numpy", **kw)
    results["pyimgdir (numpy)"] = _epochs_per_second(lambda: iter(ds_np), args.epochs)[0]

    try:
        from ..outputs.quiet_tf import import_tensorflow

        _, keras = import_tensorflow()
    except ImportError:
        keras = None
        say("TensorFlow/Keras are not installed: showing pyimgdir's numpy output only "
            '(pip install "pyimgdir[tf]" to compare with Keras).')
    match = None
    comparison = None
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
        comparison = {
            "file_paths_and_class_names_identical": same_files,
            "labels_identical": same_labels,
            "max_pixel_difference": max_diff,
            "match": match,
        }
        say(f"\nOutputs: file_paths and class_names {'identical' if same_files else 'DIFFER'}; "
            f"labels {'identical' if same_labels else 'DIFFER'}; largest pixel difference {max_diff:g}")

    n = len(ds_np.file_paths)
    say(f"\nThroughput, {n} images -> {args.size}x{args.size} float32, batch {args.batch_size}, "
        f"median of {args.epochs} epochs after a warm-up ({os.cpu_count()} CPU cores):")
    base = results.get("keras")
    for name, rate in results.items():
        ratio = f"  ({rate / base:.2f}x Keras)" if base else ""
        say(f"  {name:<20} {rate:9.0f} images/s{ratio}")
    if args.json:
        _print_json({
            "sample": {"directory": str(root), "classes": args.classes, "per_class": args.per_class,
                       "seconds": round(sample_s, 3)},
            "images": n,
            "image_size": [args.size, args.size],
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "cpu_count": os.cpu_count(),
            "images_per_s": {k: round(v, 1) for k, v in results.items()},
            "keras_installed": keras is not None,
            "comparison": comparison,
        })
    if match is False:
        print("\nMISMATCH between pyimgdir and Keras outputs", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# ------------------------------------------------------------------------------ scan


def cmd_scan(args) -> int:
    from ..api import load_spec
    from .scan import format_report, scan_directory

    _check_dir(args.parser, args.dir)
    if args.max_pixels < 1:
        args.parser.error("--max-pixels must be positive")
    if args.threads is not None and args.threads < 1:
        args.parser.error("--threads must be positive")
    spec = load_spec(
        labels=None if args.labels == "none" else "inferred",
        follow_links=args.follow_links,
        color_mode=args.color_mode,
        max_pixels=args.max_pixels,
        num_threads=args.threads,
    )
    if args.manifest is not None:
        from .scan import write_manifest_command

        return write_manifest_command(args.dir, args.manifest, spec, as_json=args.json,
                                      progress=not args.no_progress)
    try:
        report = scan_directory(args.dir, spec, check=args.check,
                                progress=False if args.no_progress else None)
    except NotImplementedError as e:  # a remote path (gs://...)
        args.parser.error(str(e))
    except OSError as e:
        print(f"pyimgdir scan: {e}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        _print_json(report)
    else:
        print(format_report(report, max_bad=args.max_listed))
    return EXIT_FAILED if report["bad_files"] else EXIT_OK


# ------------------------------------------------------------------------------ bench


def cmd_bench(args) -> int:
    from ..api import load_spec
    from .bench import format_report, run_bench

    _check_dir(args.parser, args.dir)
    h, w = args.image_size
    if h < 1 or w < 1:
        args.parser.error("--image-size needs two positive integers")
    if args.batch_size < 1 or args.epochs < 1:
        args.parser.error("--batch-size and --epochs must be positive")
    threads = None
    if args.threads:
        try:
            threads = [int(t) for t in args.threads.split(",") if t.strip()]
        except ValueError:
            args.parser.error(f"--threads takes a comma-separated list of integers, got {args.threads!r}")
        if not threads or min(threads) < 1:
            args.parser.error("--threads values must be positive")
    elif args.no_scaling:
        threads = [os.cpu_count() or 1]
    try:
        spec = load_spec(
            image_size=(h, w),
            batch_size=args.batch_size,
            dtype=args.dtype,
            interpolation=args.interpolation,
            color_mode=args.color_mode,
            labels=None if args.labels == "none" else "inferred",
            follow_links=args.follow_links,
            crop_to_aspect_ratio=args.crop_to_aspect_ratio,
            pad_to_aspect_ratio=args.pad_to_aspect_ratio,
            jpeg_downscale=args.jpeg_downscale,
        )
        report = run_bench(
            args.dir,
            spec,
            epochs=args.epochs,
            threads=threads,
            keras=args.keras,
            progress=False if args.no_progress else None,
        )
    except (ValueError, NotImplementedError) as e:  # e.g. no images, or Keras' argument checks
        print(f"pyimgdir bench: {e}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        _print_json(report)
    else:
        print(format_report(report))
    return EXIT_OK


# ------------------------------------------------------------------------------ parser


class _Formatter(argparse.HelpFormatter):
    """Wraps each paragraph of a description or epilog; keeps indented lines (examples) as they are."""

    def _fill_text(self, text, width, indent):
        import textwrap

        out = []
        for para in text.split("\n\n"):
            if para.startswith("  ") or "\n  " in para:
                out.append("\n".join(indent + line for line in para.splitlines()))
            else:
                out.append(textwrap.fill(" ".join(para.split()), width, initial_indent=indent,
                                         subsequent_indent=indent))
        return "\n\n".join(out)




def _add_dataset_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="the data directory (one sub-folder per class)")
    p.add_argument("--labels", choices=("inferred", "none"), default="inferred",
                   help='"inferred" (default): classes are the sorted sub-folders, as Keras; "none": every image under DIR, unlabelled')
    p.add_argument("--color-mode", choices=("rgb", "rgba", "grayscale"), default="rgb",
                   help="the API's color_mode (default: rgb)")
    p.add_argument("--follow-links", action="store_true", help="descend into symlinked sub-folders (follow_links=True)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (they are shown only when stderr is a terminal anyway)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="pyimgdir",
        description="Fast Keras-compatible image folder loader: inspect a folder, benchmark loading it, "
                    "or run the demo.",
        epilog="Run 'pyimgdir COMMAND --help' for a command's options.\n\n"
               "Exit status: 0 success; 1 bad files found (scan), outputs differ (demo) or the command "
               "failed; 2 usage error.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"pyimgdir {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scan = sub.add_parser(
        "scan",
        help="list the classes, files, formats and sizes the loader would see; --check decodes every file",
        description="Shows what image_dataset_from_directory would load from DIR: the classes as Keras "
                    "infers them (sorted sub-folders), the files per class, their formats (from the "
                    "files' first bytes, as the decoder sees them), image dimensions (from the headers) "
                    "and file sizes. Files whose first bytes show they cannot be loaded (empty, not an "
                    "image, WebP) are listed. --check decodes every file in full, in parallel, and lists "
                    "every file that fails with the reason.",
        epilog="Exit status: 0 when no bad file was found, 1 when some were (so CI can gate on "
               "'pyimgdir scan --check DIR'), 2 for usage errors.\n\n"
               "Example:\n  pyimgdir scan --check data/train\n  pyimgdir scan --json data/train > scan.json\n"
               "  pyimgdir scan data/train --manifest train.manifest",
        formatter_class=_Formatter,
    )
    _add_dataset_options(scan)
    scan.add_argument("--check", action="store_true",
                      help="decode every file in full (as the loader would) and report the ones that fail")
    scan.add_argument("--max-pixels", type=int, default=1 << 28,
                      help="images with more pixels than this are reported as bad (the API's max_pixels; default 2**28)")
    scan.add_argument("--threads", type=int, default=None,
                      help="threads for decoding (default: one per core)")
    scan.add_argument("--max-listed", type=int, default=50, help="bad files listed in the table (default 50; --json lists all)")
    scan.add_argument("--manifest", metavar="FILE", default=None,
                      help="write DIR's index (files, order, classes) to FILE instead of reporting: "
                           "image_dataset_from_directory(DIR, manifest=FILE) then reads it instead of walking "
                           "DIR, on any host with the same tree (no image file is opened)")
    scan.set_defaults(func=cmd_scan, parser=scan)

    bench = sub.add_parser(
        "bench",
        help="measure pyimgdir's throughput on a folder (images/s, MB/s, thread scaling), optionally against Keras",
        description="Loads DIR with image_dataset_from_directory(format=\"numpy\") at each thread count "
                    "(1, 2, 4, ... up to the number of cores), one warm-up epoch then the median of "
                    "--epochs timed epochs, and prints images/s and MB/s (compressed bytes read). With "
                    "--keras, also loads the same files with pyimgdir's tf.data output and with "
                    "keras.utils.image_dataset_from_directory. Files are read in order (shuffle=False), "
                    "and from the OS page cache after the warm-up epoch. Files that cannot be decoded "
                    "are left out and listed.",
        epilog="Example:\n  pyimgdir bench data/train --image-size 224 224 --keras",
        formatter_class=_Formatter,
    )
    _add_dataset_options(bench)
    bench.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=(256, 256),
                       help="output height and width (default: 256 256, as Keras)")
    bench.add_argument("--batch-size", type=int, default=32, help="default: 32")
    bench.add_argument("--dtype", choices=("float32", "uint8"), default=None,
                       help="output dtype (default: Keras' choice, float32; uint8 for nearest)")
    bench.add_argument("--interpolation", choices=INTERPOLATIONS, default="bilinear", metavar="METHOD",
                       help=f"resize method: {', '.join(INTERPOLATIONS)} (default: bilinear)")
    fit = bench.add_mutually_exclusive_group()
    fit.add_argument("--crop-to-aspect-ratio", action="store_true", help="centre-crop to the output aspect ratio")
    fit.add_argument("--pad-to-aspect-ratio", action="store_true", help="pad to the output aspect ratio")
    bench.add_argument("--jpeg-downscale", action="store_true",
                       help="let libjpeg-turbo decode large JPEGs at 1/2, 1/4 or 1/8 scale first")
    bench.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up (default: 3)")
    bench.add_argument("--threads", default=None, metavar="N[,N...]",
                       help="thread counts to measure, e.g. 1,4,8 (default: 1, 2, 4, ... and the core count)")
    bench.add_argument("--no-scaling", action="store_true", help="measure only at one thread per core")
    bench.add_argument("--keras", action="store_true", help="also time Keras' loader on the same files")
    bench.set_defaults(func=cmd_bench, parser=bench)

    demo = sub.add_parser(
        "demo",
        help="make a sample dataset, load it with pyimgdir and Keras, compare speed and output",
        description="Writes a sample dataset of photo-like JPEG and PNG files (kept for the next run), "
                    "loads it with pyimgdir (numpy and tf.data) and with Keras, prints each throughput "
                    "and whether file_paths, labels and pixels match. Without TensorFlow it shows "
                    "pyimgdir's numpy throughput only. Works offline.",
        epilog="Exit status: 0, or 1 when pyimgdir's output differs from Keras'.",
        formatter_class=_Formatter,
    )
    demo.add_argument("--dir", help="where to write the sample (default: a folder in the temp dir, reused)")
    demo.add_argument("--classes", type=int, default=5, help="classes in the sample (default: 5)")
    demo.add_argument("--per-class", type=int, default=120, help="images per class (default: 120)")
    demo.add_argument("--size", type=int, default=180, help="output image size, square (default: 180)")
    demo.add_argument("--batch-size", type=int, default=32, help="default: 32")
    demo.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up (default: 3)")
    demo.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    demo.set_defaults(func=cmd_demo, parser=demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """The ``pyimgdir`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `pyimgdir scan DIR | head`
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_FAILED

