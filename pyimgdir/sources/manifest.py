"""Manifests: a folder's index written once and read instead of walking the folder again.

``pyimgdir scan DIR --manifest FILE`` writes one; ``image_dataset_from_directory(DIR,
manifest=FILE)`` (or ``image_dataset_from_directory(FILE)``) reads it and gives the same
files, in the same order, with the same labels as a fresh walk. Paths are stored relative
to DIR (the compact index: each folder once, each name once), so the same manifest serves
every host that has the tree, wherever it is mounted.

The tree is checked, cheaply, before the manifest is used: every folder that held images,
each class folder and DIR itself must still have the modification time they had when the
manifest was written (adding, removing or renaming an entry changes its folder's time).
A manifest that does not match is refused, with what changed; writing it again is the fix.
A copy of the tree keeps the manifest valid only if the copy keeps folder times
(``rsync -a``, ``cp -a``).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import List, Optional, Sequence, Tuple

from .. import _core

MAGIC = b"PYIMGDIR-MANIFEST\n"
VERSION = 1


class ManifestError(ValueError):
    """A manifest that cannot be used: not a manifest, damaged, made with other options,
    or the folder changed since it was written."""


def is_manifest(path) -> bool:
    """Whether ``path`` is a manifest file (by its first bytes)."""
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except (OSError, TypeError, ValueError):
        return False


def _mtime(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _checked_folders(index, subdirs: Sequence[str]) -> List[str]:
    """Folders (relative, "" or ending in "/") whose times stand for the tree."""
    rel = {""}
    rel.update(os.path.join(s, "") for s in subdirs if s)
    rel.update(index.folders())
    return sorted(rel)


def write_manifest(path, directory, index, subdirs: Sequence[str], *, labels_inferred: bool,
                   follow_links: bool, formats: Sequence[str]) -> dict:
    """Writes ``index`` (made with paths relative to ``directory``: see
    :func:`pyimgdir.sources.index.scan_to_manifest`) to ``path``; returns
    the header. The folders' times are read after the walk: a change during the walk makes
    the manifest refuse itself later rather than miss it."""
    directory = os.fspath(directory)
    data = index.to_bytes()
    header = {
        "version": VERSION,
        "directory": os.path.abspath(directory),
        "labels": "inferred" if labels_inferred else None,
        "class_folders": list(subdirs) if labels_inferred else None,
        "follow_links": bool(follow_links),
        "formats": sorted(formats),
        "files": len(index),
        "files_per_class": index.counts_per_top(len(subdirs)),
        "folder_mtimes_ns": [[rel, _mtime(os.path.join(directory, rel))] for rel in _checked_folders(index, subdirs)],
        "index_sha256": hashlib.sha256(data).hexdigest(),
    }
    blob = json.dumps(header).encode()
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        f.write(data)
    os.replace(tmp, path)
    return header


def read_header(path) -> Tuple[dict, bytes]:
    """(header, index bytes) of the manifest at ``path``; ManifestError if it is not one."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ManifestError(f"Cannot read the manifest {path!r}: {e.strerror or e}") from None
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 8:
        raise ManifestError(f"{path!r} is not a pyimgdir manifest (write one with `pyimgdir scan DIR --manifest FILE`).")
    (size,) = struct.unpack_from("<Q", raw, len(MAGIC))
    start = len(MAGIC) + 8
    try:
        header = json.loads(raw[start : start + size])
    except ValueError:
        raise ManifestError(f"The manifest {path!r} is damaged (unreadable header).") from None
    if not isinstance(header, dict) or header.get("version") != VERSION:
        raise ManifestError(f"The manifest {path!r} has version {header.get('version')!r}; this pyimgdir reads "
                            f"version {VERSION}. Write it again with `pyimgdir scan DIR --manifest FILE`.")
    data = raw[start + size :]
    if hashlib.sha256(data).hexdigest() != header.get("index_sha256"):
        raise ManifestError(f"The manifest {path!r} is damaged (its index does not match its checksum).")
    return header, data


def load_manifest(path, directory, *, labels_inferred: bool, class_names, follow_links: bool,
                  formats: Sequence[str]):
    """(FileIndex with paths under ``directory``, class folders, directory) from the manifest at
    ``path``, after checking it was made the way this call indexes and that the tree has
    not changed since. ``directory=None``: the one the manifest was written for."""
    header, data = read_header(path)
    where = os.fspath(path)
    if directory is None:
        directory = header["directory"]
    directory = os.fspath(directory)
    rescan = f"Write it again: pyimgdir scan {directory} --manifest {where}"
    if (header["labels"] == "inferred") != labels_inferred:
        made = "labels inferred from class folders" if header["labels"] else "labels=None (every file under the folder)"
        raise ManifestError(f"The manifest {where!r} was written with {made}, which indexes other files than "
                            f"this call. {rescan}{'' if header['labels'] else ' (without --labels none)'}.")
    if bool(header["follow_links"]) != bool(follow_links):
        raise ManifestError(f"The manifest {where!r} was written with follow_links={header['follow_links']}, "
                            f"this call has follow_links={follow_links}. {rescan}"
                            f"{' --follow-links' if follow_links else ''}.")
    if sorted(formats) != header["formats"]:
        raise ManifestError(f"The manifest {where!r} lists files with the extensions {header['formats']}, "
                            f"this version loads {sorted(formats)}. {rescan}.")
    subdirs = header["class_folders"] if labels_inferred else [""]
    if labels_inferred and class_names is not None and list(class_names) != list(subdirs):
        raise ManifestError(f"The manifest {where!r} holds the class folders {subdirs}; `class_names` "
                            f"{list(class_names)} picks or orders others. Pass class_names=None, or load "
                            "without the manifest.")
    changed = []
    for rel, mtime in header["folder_mtimes_ns"]:
        now = _mtime(os.path.join(directory, rel))
        if now != mtime:
            changed.append((rel or ".", "is gone" if now is None else "was modified"))
    if changed:
        shown = ", ".join(f"{rel!r} {what}" for rel, what in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        raise ManifestError(
            f"The folder {directory!r} changed since the manifest {where!r} was written "
            f"({shown}{more}): it may list files that are gone or miss new ones. {rescan}.")
    try:
        index = _core.FileIndex.from_bytes(data, os.path.join(directory, ""))
    except ValueError as e:
        raise ManifestError(f"The manifest {where!r} is damaged: {e}") from None
    if len(index) != header["files"]:
        raise ManifestError(f"The manifest {where!r} is damaged (it holds {len(index)} files, its header "
                            f"says {header['files']}).")
    return index, subdirs, directory

