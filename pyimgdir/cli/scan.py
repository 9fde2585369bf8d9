"""``pyimgdir scan DIR``: what ``image_dataset_from_directory`` would see in a folder.

The classes and files come from the same indexing as the loader (Keras' rules and order).
For every file the first bytes are read: the format by its magic bytes (as the decoder
picks it, never by extension), and the image dimensions and colour layout from the JPEG,
PNG, GIF or BMP header, which cost a few small reads per file. ``--check`` then decodes
every file in full, in parallel, and lists the ones that fail with the decoder's reason.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import struct
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import _core
from ..options.keras_compat import ALLOWLIST_FORMATS
from ..progress import Progress, stderr_is_terminal

__all__ = ["HeaderInfo", "read_header", "scan_directory", "format_report"]

DECODABLE = ("JPEG", "PNG", "GIF", "BMP")
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8}
_PNG_COLOR = {0: "grayscale", 2: "rgb", 3: "palette", 4: "grayscale+alpha", 6: "rgba"}
_JPEG_COLOR = {1: "grayscale", 3: "rgb", 4: "cmyk"}
_BMP_COLOR = {1: "palette", 4: "palette", 8: "palette", 16: "rgb", 24: "rgb", 32: "rgba"}
_EXT_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".gif": "GIF", ".bmp": "BMP"}


@dataclass
class HeaderInfo:
    """What the first bytes of one file tell: size, format, dimensions, colour, problem."""

    size: int
    format: str  # "JPEG", "PNG", "GIF", "BMP", "WebP", "unknown", or "empty"
    width: Optional[int] = None
    height: Optional[int] = None
    color: Optional[str] = None
    problem: Optional[str] = None  # why the file cannot be decoded, when the header shows it


def _jpeg_dims(f, head: bytes) -> Optional[Tuple[int, int, int]]:
    """(height, width, components) from the first SOF marker, seeking over other segments."""
    buf, base = head, 0  # buf holds the file's bytes from offset `base`
    pos = 2
    for _ in range(256):  # markers before the frame header; real files have a handful
        if pos + 10 > base + len(buf):
            f.seek(pos)
            buf, base = f.read(4096), pos
            if len(buf) < 4:
                return None
        i = pos - base
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        if marker in _JPEG_SOF:
            h, w = struct.unpack_from(">HH", buf, i + 5)
            return h, w, buf[i + 9]
        (length,) = struct.unpack_from(">H", buf, i + 2)
        if length < 2:
            return None
        pos += 2 + length
    return None


def read_header(path: str, max_pixels: Optional[int] = None) -> HeaderInfo:
    """Reads the first bytes of ``path`` (more only to skip JPEG segments before the frame
    header) and returns its size, format, dimensions and colour layout when known."""
    try:
        with open(path, "rb") as f:
            return _header_of(f, os.fstat(f.fileno()).st_size, max_pixels)
    except OSError as e:
        return HeaderInfo(0, "unreadable", problem=e.strerror or str(e))


def header_of_bytes(data: bytes, max_pixels: Optional[int] = None) -> HeaderInfo:
    """:func:`read_header` for an object already in memory (a fetched URL)."""
    return _header_of(io.BytesIO(data), len(data), max_pixels)


def _header_of(f, size: int, max_pixels: Optional[int]) -> HeaderInfo:
    head = f.read(64)
    if not head:
        return HeaderInfo(size, "empty", problem="empty file (0 bytes)")
    fmt = _core.sniff_format(head[:16])
    info = HeaderInfo(size, fmt)
    try:
        if fmt == "JPEG":
            got = _jpeg_dims(f, head)
            if got:
                info.height, info.width = got[0], got[1]
                info.color = _JPEG_COLOR.get(got[2], f"{got[2]} components")
        elif fmt == "PNG" and len(head) >= 26 and head[12:16] == b"IHDR":
            info.width, info.height = struct.unpack_from(">II", head, 16)
            info.color = _PNG_COLOR.get(head[25])
        elif fmt == "GIF" and len(head) >= 10:
            # The decoder sizes a GIF by its largest frame, not the logical screen: ask it.
            f.seek(0)
            try:
                info.height, info.width = _core.image_size(f.read(), 3, max_pixels or (1 << 62))
            except _core.DecodeError:
                pass
            info.color = "palette"
        elif fmt == "BMP" and len(head) >= 18:
            (dib,) = struct.unpack_from("<I", head, 14)
            if dib == 12 and len(head) >= 26:
                w, h, _, bpp = struct.unpack_from("<HHHH", head, 18)
            elif dib >= 40 and len(head) >= 30:
                w, h, _, bpp = struct.unpack_from("<iiHH", head, 18)
            else:
                w = h = bpp = 0
            if w:
                info.width, info.height = abs(w), abs(h)
                info.color = _BMP_COLOR.get(bpp, f"{bpp} bits")
    except (struct.error, IndexError, OSError):
        pass
    if fmt == "unknown":
        info.problem = "unknown image file format (the first bytes are not JPEG, PNG, GIF or BMP)"
    elif fmt == "WebP":
        info.problem = "WebP images are not supported (a .webp file under an image extension)"
    elif max_pixels and info.width is not None and info.height is not None \
            and info.width * info.height > max_pixels:
        info.problem = (
            f"image is {info.width}x{info.height} pixels, more than the limit of {max_pixels} (max_pixels)"
        )
    return info


def read_headers(
    paths: Sequence[str], max_pixels: Optional[int] = None, num_threads: Optional[int] = None,
    progress: Optional[Progress] = None,
) -> List[HeaderInfo]:
    """:func:`read_header` for every path, with a pool of threads (the reads release the GIL)."""
    n = len(paths)
    if n == 0:
        return []
    threads = num_threads or min(32, (os.cpu_count() or 1) * 2)
    chunk = max(64, min(1024, n // (threads * 4) + 1))
    chunks = [paths[i : i + chunk] for i in range(0, n, chunk)]

    def work(part):
        return [read_header(p, max_pixels) for p in part]

    out: List[HeaderInfo] = []
    if threads == 1 or len(chunks) == 1:
        for part in chunks:
            out.extend(work(part))
            if progress:
                progress.update(len(out), n)
        return out
    pool = ThreadPoolExecutor(threads)
    try:
        for got in pool.map(work, chunks):
            out.extend(got)
            if progress:
                progress.update(len(out), n)
    except BaseException:  # Ctrl-C: drop the chunks not started yet
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return out


def _remote_headers(store, paths: Sequence[str], max_pixels, progress) -> List[HeaderInfo]:
    """Headers of URLs: each object fetched once (concurrently, with retries); a fetch that
    fails is reported as unreadable with the status."""
    from ..sources.remote import FetchError

    out: List[Optional[HeaderInfo]] = [None] * len(paths)
    done = 0
    for i, result in store.fetch_blocking(paths):
        if isinstance(result, FetchError):
            out[i] = HeaderInfo(0, "unreadable", problem=result.reason)
        else:
            out[i] = header_of_bytes(result, max_pixels)
        done += 1
        if progress:
            progress.update(done, len(paths))
    return out  # type: ignore[return-value]


def _remote_other_files(store, subdirs: Sequence[str], inferred: bool) -> Dict[str, Any]:
    allowed = tuple(ALLOWLIST_FORMATS)
    other: Counter = Counter()
    top = 0
    parts = [s for s in subdirs if s]
    for rel in store.listing.files:
        name = rel.rsplit("/", 1)[-1]
        if inferred and "/" not in rel:
            top += name.lower().endswith(allowed)
            continue
        if inferred and rel.split("/", 1)[0] not in parts:
            continue
        if not name.lower().endswith(allowed):
            other[os.path.splitext(name)[1].lower() or name] += 1
    return {
        "other_extensions": sum(other.values()),
        "other_extension_counts": dict(other.most_common()),
        "top_level_images": top,
    }


def _stats(values: List[int]) -> Optional[Dict[str, float]]:
    if not values:
        return None
    return {
        "min": min(values),
        "median": statistics.median(values),
        "mean": round(statistics.fmean(values), 1),
        "max": max(values),
    }


def _other_files(directory: str, subdirs: Sequence[str], follow_links: bool, inferred: bool) -> Dict[str, Any]:
    """Files the loader leaves out: other extensions inside the walked folders (counted per
    extension), and with inferred labels the image files lying directly in ``directory``."""
    tops = [os.path.join(directory, s) for s in subdirs]
    prefixes = [os.path.join(directory, s, "") for s in subdirs]
    per_dir = _core.walk(tops, prefixes, follow_links, [""], 0)[0]
    allowed = tuple(ALLOWLIST_FORMATS)
    other: Counter = Counter()
    for part in per_dir:
        for p in part:
            if not p.lower().endswith(allowed):
                name = os.path.basename(p)
                other[os.path.splitext(name)[1].lower() or name] += 1
    top = 0
    if inferred:
        for entry in os.scandir(directory):
            try:
                if entry.name.lower().endswith(allowed) and entry.is_file():
                    top += 1
            except OSError:
                pass
    return {
        "other_extensions": sum(other.values()),
        "other_extension_counts": dict(other.most_common()),
        "top_level_images": top,
    }


def scan_directory(directory: str, spec, *, check: bool = False, progress: Optional[bool] = None) -> Dict[str, Any]:
    """Indexes ``directory`` as the loader does with ``spec`` (a
    :class:`~pyimgdir.spec.LoadSpec`: labels, links, colour mode, pixel limit, threads) and
    returns the report as a JSON-ready dict.

    ``progress``: ``None`` shows bars when stderr is a terminal, ``False`` never.
    """
    inferred = spec.labels == "inferred"
    follow_links, color_mode, max_pixels = spec.follow_links, spec.color_mode, spec.max_pixels
    num_threads = spec.num_threads or None
    from ..sources.index import index_directory
    from ..sources.validate import validate_files

    from ..options.spec import RemoteOptions

    directory = os.fspath(directory)
    # With verbose=True the index shows its own progress on a terminal during long scans;
    # its "Found N files" line is not wanted here (the report says it), so it is captured.
    show = progress is not False and stderr_is_terminal()
    with contextlib.redirect_stdout(io.StringIO()):
        index = index_directory(
            directory,
            "inferred" if inferred else None,
            formats=ALLOWLIST_FORMATS,
            follow_links=follow_links,
            verbose=show,
            num_threads=num_threads or 0,
            remote=RemoteOptions.of(spec),
        )
    paths = index.file_paths
    class_names = list(index.class_names or [])
    subdirs = class_names if inferred else [""]
    store = index.store
    if store is None:
        ignored = _other_files(directory, subdirs, follow_links, inferred)
    else:
        ignored = _remote_other_files(store, subdirs, inferred)

    with Progress("Reading headers", len(paths), enabled=progress) as bar:
        if store is None:
            headers = read_headers(paths, max_pixels=max_pixels, num_threads=num_threads, progress=bar)
        else:
            headers = _remote_headers(store, paths, max_pixels, bar)

    bad: List[Tuple[int, str, str]] = []  # (file index, path, reason)
    if check:
        with Progress("Decoding", len(paths), enabled=progress) as bar:
            failures = validate_files(
                paths, color_mode, max_pixels=max_pixels, num_threads=num_threads, progress=bar, store=store
            )
        where = {p: i for i, p in enumerate(paths)}
        bad = [(where.get(f.path, -1), f.path, f.reason) for f in failures]
    else:
        bad = [(i, p, h.problem) for i, (p, h) in enumerate(zip(paths, headers)) if h.problem]
    bad_index = {i for i, _, _ in bad}

    formats = Counter(h.format for h in headers)
    mismatches = sum(
        1
        for p, h in zip(paths, headers)
        if h.format in DECODABLE and _EXT_FORMAT.get(os.path.splitext(p)[1].lower()) not in (None, h.format)
    )
    colors = Counter(h.color for h in headers if h.color)
    widths = [h.width for h in headers if h.width is not None]
    heights = [h.height for h in headers if h.height is not None]
    sizes = [h.size for h in headers]

    classes = None
    if inferred:
        import numpy as np

        k = len(class_names)
        lab = np.asarray(index.labels, dtype=np.int64)
        counts = np.bincount(lab, minlength=k)
        nbytes = np.bincount(lab, weights=np.asarray(sizes, dtype=np.float64), minlength=k)
        nbad = np.bincount(lab[sorted(bad_index - {-1})], minlength=k)
        classes = [
            {"label": c, "name": name, "files": int(counts[c]), "bytes": int(nbytes[c]), "bad": int(nbad[c])}
            for c, name in enumerate(class_names)
        ]

    return {
        "directory": directory,
        "labels": "inferred" if inferred else None,
        "follow_links": follow_links,
        "color_mode": color_mode,
        "max_pixels": max_pixels,
        "files": len(paths),
        "bytes": sum(sizes),
        "classes": classes,
        "formats": dict(formats.most_common()),
        "extension_mismatches": mismatches,
        "color": dict(colors.most_common()),
        "image_size": {
            "read": len(widths),
            "width": _stats(widths),
            "height": _stats(heights),
        },
        "file_size": _stats(sizes),
        "ignored": ignored,
        "unreadable_directories": list(index.unreadable_directories),
        "checked": check,
        "bad_files": [{"path": p, "reason": r} for _, p, r in sorted(bad)],
    }


# ---------------------------------------------------------------------------- the table


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def display_path(path: str) -> str:
    """A path as text that prints anywhere (undecodable bytes shown as \\xNN escapes)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _counts(d: Dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items())


def _range(s: Optional[Dict[str, float]], fmt=lambda v: f"{v:g}") -> str:
    if not s:
        return "-"
    if s["min"] == s["max"]:
        return fmt(s["min"])
    return f"{fmt(s['min'])} - {fmt(s['max'])} (median {fmt(s['median'])})"


def format_report(r: Dict[str, Any], max_bad: int = 50, max_classes: int = 40) -> str:
    """The human-readable report of :func:`scan_directory`'s result."""
    lines: List[str] = []
    d = display_path(r["directory"])
    n = r["files"]
    if r["classes"] is not None:
        lines.append(
            f'{d}: {n} image files in {len(r["classes"])} classes (labels="inferred"), '
            f'{human_bytes(r["bytes"])}'
        )
    else:
        lines.append(f"{d}: {n} image files (labels=None), {human_bytes(r['bytes'])}")
    if n == 0:
        lines.append(f"  No images found: the loader reads {' '.join(ALLOWLIST_FORMATS)} files"
                     + (" inside class sub-folders." if r["classes"] is not None else "."))
    if r["classes"]:
        classes = r["classes"]
        shown = classes if len(classes) <= max_classes else classes[: max_classes - 5] + classes[-5:]
        names = [display_path(str(c["name"])) for c in shown]
        w = max(5, max(len(x) for x in names))
        lines.append("")
        lines.append(f"  {'label':>5}  {'class':<{w}}  {'files':>7}  {'size':>9}  {'bad':>4}")
        for i, (c, name) in enumerate(zip(shown, names)):
            if len(shown) < len(classes) and i == max_classes - 5:
                lines.append(f"  {'...':>5}  {len(classes) - len(shown)} more classes (--json lists them all)")
            lines.append(
                f"  {c['label']:>5}  {name:<{w}}  {c['files']:>7}  {human_bytes(c['bytes']):>9}  {c['bad']:>4}"
            )
        total_bad = sum(c["bad"] for c in classes)
        lines.append(f"  {'':>5}  {'total':<{w}}  {n:>7}  {human_bytes(r['bytes']):>9}  {total_bad:>4}")
        if len(classes) > 1:
            counts = [c["files"] for c in classes]
            lines.append(f"  files per class: {_range(_stats(counts))}")
        empty = [display_path(str(c["name"])) for c in classes if c["files"] == 0]
        if empty:
            lines.append(f"  classes without images: {', '.join(empty[:10])}{', ...' if len(empty) > 10 else ''}")
    if n:
        lines.append("")
        fmts = _counts(r["formats"])
        if r["extension_mismatches"]:
            fmts += f" ({r['extension_mismatches']} with another format's extension; decoded by content)"
        lines.append(f"  formats (by content):  {fmts}")
        if r["color"]:
            lines.append(f"  colour (from headers): {_counts(r['color'])}")
        im = r["image_size"]
        if im["read"]:
            dims = f"width {_range(im['width'])}, height {_range(im['height'])}"
            if im["read"] < n:
                dims += f"; {_plural(n - im['read'], 'file')} without a readable header"
            lines.append(f"  image size (pixels):   {dims}")
        lines.append(f"  file size:             {_range(r['file_size'], human_bytes)}")
    ig = r["ignored"]
    if ig["other_extensions"]:
        exts = ig["other_extension_counts"]
        shown = _counts(dict(list(exts.items())[:8])) + (", ..." if len(exts) > 8 else "")
        lines.append(f"  not loaded:            {_plural(ig['other_extensions'], 'file')} with other "
                     f"extensions ({display_path(shown)})")
    if ig["top_level_images"]:
        lines.append(f"  not loaded:            {_plural(ig['top_level_images'], 'image file')} directly in "
                     "the folder (with inferred labels only sub-folders are read)")
    for u in r["unreadable_directories"]:
        lines.append(f"  unreadable directory:  {display_path(u)}")

    bad = r["bad_files"]
    lines.append("")
    if r["checked"]:
        if bad:
            lines.append(f'Decoded every file (color_mode="{r["color_mode"]}"): {_plural(len(bad), "file")} cannot be loaded:')
        else:
            lines.append(f'Decoded every file (color_mode="{r["color_mode"]}"): all {n} load.')
    else:
        if bad:
            lines.append(f"{_plural(len(bad), 'file')} cannot be loaded (from the first bytes of each file):")
        elif n:
            lines.append("Headers look fine. Run with --check to decode every file.")
    for b in bad[:max_bad]:
        lines.append(f"  {display_path(b['path'])}: {b['reason']}")
    if len(bad) > max_bad:
        lines.append(f"  ... and {len(bad) - max_bad} more (--json lists them all)")
    if bad and not r["checked"]:
        lines.append("Run with --check to decode every file (truncated or corrupt data shows only then).")
    if bad:
        lines.append('Fix or remove them, or load with on_error="skip" to leave them out.')
    return "\n".join(lines)


def write_manifest_command(directory: str, out: str, spec, *, as_json: bool = False, progress: bool = True) -> int:
    """``pyimgdir scan DIR --manifest FILE``: indexes DIR as the loader would with ``spec``
    and writes the manifest; prints what it holds. Exit status 0, or 1 if it could not."""
    import json as _json
    import sys as _sys

    from ..sources.index import scan_to_manifest
    from ..sources.manifest import ManifestError

    try:
        header = scan_to_manifest(out, directory, labels_inferred=spec.labels == "inferred",
                                  follow_links=spec.follow_links, formats=ALLOWLIST_FORMATS,
                                  num_threads=spec.num_threads, verbose=progress and stderr_is_terminal())
    except (OSError, ManifestError) as e:
        print(f"pyimgdir scan: {e}", file=_sys.stderr)
        return 1
    summary = {"manifest": os.path.abspath(out), "directory": header["directory"], "files": header["files"],
               "classes": len(header["class_folders"] or []), "bytes": os.path.getsize(out)}
    if as_json:
        print(_json.dumps(summary, indent=1))
    else:
        classes = f" in {summary['classes']} classes" if header["class_folders"] is not None else ""
        print(f"Wrote {summary['manifest']}: {summary['files']} files{classes} of {summary['directory']} "
              f"({summary['bytes']:,} bytes). Use it with image_dataset_from_directory({directory!r}, "
              f"manifest={out!r}).")
    return 0
