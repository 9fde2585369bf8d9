"""Stage 1, index: which files, in which order, with which labels, for a local folder or a URL.

Reproduces Keras' ``dataset_utils.index_directory``: class folders are the sorted,
non-hidden sub-directories; each class folder is walked recursively by the C++ core
(in parallel over all directories) and files come in Keras' order.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import operator
import os
import re
from collections.abc import Sequence as _SequenceABC
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from ..options.keras_compat import print_msg
from ..options.checks import check_class_names
from ..options.urls import is_url
from .local import walk_classes
from .manifest import ManifestError, is_manifest, load_manifest, write_manifest
from .remote import RemoteStore

_REMOTE = re.compile(r"^(/cns|/cfs|/gcs|/hdfs|/readahead|/placer|/tfhub|.*://).*$")


class FilePaths(_SequenceABC):
    """A dataset's ``file_paths``: Keras' list of paths, read-only, built from the compact
    index when asked for.

    Indexing (negative too), slices (a ``list``), ``len``, iteration, ``in``, ``index``,
    ``==`` with a list or another ``FilePaths``, ``repr`` and ``list(...)`` behave as on the
    list Keras returns. The paths themselves are not kept: the index holds each folder once
    and each file's name once, so a million files take tens of megabytes, not hundreds, and
    a pickle holds the index (a few bytes a file), not the strings.
    """

    __slots__ = ("_files",)
    _CHUNK = 4096

    def __init__(self, files):
        self._files = files  # a _core.FileList

    @property
    def files(self):
        """The core's :class:`FileList` (index and rows) these paths come from."""
        return self._files

    def __len__(self) -> int:
        return len(self._files)

    def __getitem__(self, i):
        n = len(self._files)
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step == 1:
                return self._files.paths(start, max(start, stop))
            return self._files.paths_at(np.arange(start, stop, step, dtype=np.int64))
        try:
            k = operator.index(i)
        except TypeError:
            raise TypeError(f"list indices must be integers or slices, not {type(i).__name__}") from None
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError("list index out of range")
        return self._files.path(k)

    def __iter__(self):
        n, chunk = len(self._files), self._CHUNK
        for start in range(0, n, chunk):
            yield from self._files.paths(start, min(n, start + chunk))

    def __reversed__(self):
        n, chunk = len(self._files), self._CHUNK
        for stop in range(n, 0, -chunk):
            yield from reversed(self._files.paths(max(0, stop - chunk), stop))

    def __contains__(self, value) -> bool:
        return any(p == value for p in self)

    def index(self, value, start: int = 0, stop: Optional[int] = None) -> int:
        n = len(self)
        start, stop, _ = slice(start, stop).indices(n)
        for k, p in enumerate(itertools.islice(self, start, stop), start):
            if p == value:
                return k
        raise ValueError(f"{value!r} is not in list")

    def count(self, value) -> int:
        return sum(1 for p in self if p == value)

    def __eq__(self, other):
        if isinstance(other, FilePaths):
            if other._files is self._files:
                return True
        elif not isinstance(other, list):
            return NotImplemented
        return len(other) == len(self) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # like a list

    def __add__(self, other):
        if isinstance(other, (list, FilePaths)):
            return list(self) + list(other)
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, list):
            return other + list(self)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(list(self))

    def __reduce__(self):
        return (FilePaths, (self._files,))


@dataclass
class Index:
    files: "_core.FileList"  # every file, in Keras' (unshuffled) order
    labels: Optional[np.ndarray]  # None, or one label per file (unshuffled order)
    class_names: Optional[Sequence]
    unreadable_directories: List[str]
    store: Optional[object] = None  # a remote.RemoteStore when the directory is a URL

    @property
    def file_paths(self) -> FilePaths:
        return FilePaths(self.files)


def index_directory(
    directory,
    labels,
    formats,
    class_names=None,
    follow_links: bool = False,
    verbose: bool = True,
    num_threads: int = 0,
    remote=None,
    manifest=None,
) -> Index:
    """Lists the files of ``directory`` as Keras does, and prints Keras' "Found ..." line.

    A URL (``s3://``, ``gs://``, any fsspec protocol) is listed by its filesystem with the
    same rules (``remote``: a :class:`~pyimgdir.remote.RemoteOptions`); its file paths are
    URLs.

    ``manifest``: a file written by ``pyimgdir scan DIR --manifest FILE``, read instead of
    walking (``directory`` may also be such a file); refused if the tree changed since."""
    inferred = isinstance(labels, str) and labels == "inferred"
    store = None
    if manifest is None and not is_url(directory) and is_manifest(directory):
        manifest, directory = directory, None
    if manifest is not None:
        if directory is not None and is_url(directory):
            raise ValueError("`manifest` is for local folders; a URL directory is listed from its store.")
        if not inferred and class_names is not None:
            _check_class_names_not_inferred(labels)
        file_index, subdirs, directory = load_manifest(
            manifest, directory, labels_inferred=inferred, class_names=class_names, follow_links=follow_links,
            formats=formats)
        if inferred and class_names is not None:
            subdirs = class_names
        return _finish(directory, labels, inferred, subdirs, file_index, [], None, verbose)
    if is_url(directory):
        store = RemoteStore(directory, remote)
    elif _REMOTE.match(str(directory)):
        raise NotImplementedError(
            f"{str(directory)!r} looks like a remote path that is not a URL (Keras would read "
            "it through tf.io.gfile); pass it as a URL (gs://..., s3://...) or mount it locally."
        )
    if store is not None:
        if not inferred and class_names is not None:
            _check_class_names_not_inferred(labels)
        subdirs, per_dir = index_remote(store, inferred, class_names, formats)
        unreadable: List[str] = []
    elif inferred:
        subdirs = class_folders(
            [d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d))], class_names
        )
    else:
        subdirs = [""]
        if class_names is not None:
            _check_class_names_not_inferred(labels)

    if store is None:
        file_index, unreadable = walk_classes(directory, subdirs, follow_links, formats, num_threads, verbose)
    else:
        counts = [len(part) for part in per_dir]
        file_index = _core.FileIndex.from_paths(
            itertools.chain.from_iterable(per_dir), np.repeat(np.arange(len(per_dir), dtype=np.int32), counts))
        del per_dir
    return _finish(directory, labels, inferred, subdirs, file_index, unreadable, store, verbose)


def _finish(directory, labels, inferred, subdirs, file_index, unreadable, store, verbose) -> Index:
    """Labels and class names for the indexed files, and Keras' "Found ..." line."""
    files = _core.FileList(file_index)
    n_files = len(files)

    out_labels: Optional[np.ndarray]
    names: Optional[Sequence]
    if inferred:
        names = subdirs
        # Keras: dict(zip(names, range(n))) -- a repeated name takes its last index.
        class_index = dict(zip(list(names), range(len(names))))
        lut = np.array([class_index[s] for s in subdirs], dtype=np.int32)
        out_labels = lut[file_index.file_tops()] if n_files else np.zeros(0, dtype=np.int32)
    elif labels is None:
        names = None
        out_labels = None
    else:
        if len(labels) != n_files:
            raise ValueError(
                "Expected the lengths of `labels` to match the number "
                "of files in the target directory. len(labels) is "
                f"{len(labels)} while we found {n_files} files "
                f"in directory {directory}."
            )
        values = labels.tolist() if isinstance(labels, np.ndarray) else list(labels)
        names = [str(label) for label in sorted(set(values))]
        out_labels = manual_labels_array(values)

    if verbose:
        if out_labels is None:
            print_msg(f"Found {n_files} files.")
        else:
            print_msg(f"Found {n_files} files belonging to {len(names)} classes.")
    return Index(files, out_labels, names, unreadable, store)


def scan_to_manifest(path, directory, *, labels_inferred: bool = True, follow_links: bool = False,
                     formats: Sequence[str] = (), num_threads: int = 0, verbose: bool = False) -> dict:
    """Indexes ``directory`` as the loader does (Keras' class folders and order) and writes
    the manifest (:mod:`pyimgdir.sources.manifest`); returns its header. No image file is
    opened."""
    directory = os.fspath(directory)
    if labels_inferred:
        subdirs = class_folders([d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d))])
    else:
        subdirs = [""]
    file_index, unreadable = walk_classes(directory, subdirs, follow_links, formats, num_threads, verbose,
                                          relative=True)
    if unreadable:
        more = f" and {len(unreadable) - 1} more" if len(unreadable) > 1 else ""
        raise ManifestError(f"Cannot list {unreadable[0]!r}{more}: a manifest must list every file. "
                            "Fix the permissions and scan again.")
    return write_manifest(path, directory, file_index, subdirs, labels_inferred=labels_inferred,
                          follow_links=follow_links, formats=formats)


def class_folders(directories, class_names=None) -> List[str]:
    """Keras' classes among a directory's sub-directories (local or listed from a URL): the
    sorted, non-hidden ones; with ``class_names``, those, in the caller's order (a subset,
    duplicates kept), after checking they exist."""
    subdirs = [d for d in sorted(directories) if not d.startswith(".")]
    if class_names is not None:
        check_class_names(class_names, subdirs)
        return class_names  # the caller's own object: Keras hands it back as class_names
    return subdirs


def index_remote(store: RemoteStore, subdirs_inferred: bool, class_names, formats) -> Tuple[List[str], List[List[str]]]:
    """Keras' indexing over a listing: (subdirs, per-subdir file URLs in Keras' order).

    Classes are the sorted, non-hidden top-level directories; each class's files are
    walked in Keras' order (directories by their full path string, file names sorted in
    each), extension-filtered case-insensitively. ``subdirs_inferred=False`` walks the
    whole tree as one part (top-level files and hidden directories included).

    Keys are kept as listed: an object store's key may hold empty segments (``a//y.jpg``),
    which no local directory can; such a key stays in its class with its own URL, and a
    key starting with ``/`` below the directory (an empty top-level name) is not a class."""
    with _collector_paused():
        return _index_remote(store, subdirs_inferred, class_names, formats)


@contextlib.contextmanager
def _collector_paused():
    """Python's cyclic garbage collector off while a listing of many keys becomes the index:
    it would walk every tuple made on the way, many times over, for cycles this code does not
    make (reference counting frees everything here)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _index_remote(store: RemoteStore, subdirs_inferred: bool, class_names, formats):
    listing = store.list_tree()
    store.listing = listing
    exts = tuple(f.lower() for f in formats)
    if subdirs_inferred:
        if not listing.files and not listing.dirs and not store.exists():
            raise FileNotFoundError(f"No such file or directory: '{store.url}'")
        subdirs = class_folders({d for d in listing.dirs if d and "/" not in d}, class_names)
    else:
        subdirs = [""]
    # Per part, its keys; sorted by (directory within the part, file name, key) they are in
    # Keras' walk order (directories by full path string, then names within each), which for
    # a part whose files all sit in one folder is plain key order.
    by_part: Dict[str, List[str]] = {s: [] for s in subdirs}
    whole = "" in by_part
    longest = max((len(e) for e in exts), default=0)
    for rel in listing.files:
        if not rel[-longest:].lower().endswith(exts):
            continue
        if whole:
            by_part[""].append(rel)
        head, _, tail = rel.partition("/")
        if tail and head and head in by_part:
            by_part[head].append(rel)
    per_dir: List[List[str]] = []
    base = store.join("")  # the directory's URL and "/": a key's URL is base + key
    sizes, stamps = listing.files, listing.stamps
    url_sizes, url_stamps = store.sizes, store.stamps
    for s in subdirs:
        rels = by_part[s]
        n = len(s) + 1 if s else 0  # a key's part within its part: rel[n:]
        if any("/" in r[n:] for r in rels):
            rels.sort(key=lambda r: (*r[n:].rpartition("/")[::2], r))
        else:
            rels.sort()
        urls = [base + rel for rel in rels]
        url_sizes.update(zip(urls, [sizes[rel] for rel in rels]))
        url_stamps.update(zip(urls, [stamps.get(rel, "") for rel in rels]))
        per_dir.append(urls)
    return subdirs, per_dir


def _check_class_names_not_inferred(labels) -> None:
    if labels is None:
        raise ValueError(
            "When `labels=None` (no labels), argument `class_names` cannot be specified."
        )
    raise ValueError(
        "When argument `labels` is specified, argument "
        "`class_names` cannot be specified (the `class_names` "
        "will be the sorted list of labels)."
    )


def manual_labels_array(values: list) -> np.ndarray:
    """The labels as ``tf.data.Dataset.from_tensor_slices(list)`` would type them:
    Python ints -> int32, floats -> float32, bools -> bool, strings -> bytes."""
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind in "iu":
        return arr.astype(np.int32)
    if kind == "f":
        return arr.astype(np.float32)
    if kind == "b":
        return arr.astype(np.bool_)
    if kind in "US":
        return np.array([v.encode() if isinstance(v, str) else bytes(v) for v in values], dtype=object)
    raise TypeError(f"Unsupported label values (numpy dtype {arr.dtype}); use int, float, bool or str labels")
