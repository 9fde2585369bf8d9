"""Stage 1, index: which files, in which order, with which labels, for a local folder or a URL.

Reproduces Keras' ``dataset_utils.index_directory``: class folders are the sorted,
non-hidden sub-directories; each class folder is walked recursively by the C++ core
(in parallel over all directories) and files come in Keras' order.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..options.keras_compat import print_msg
from ..options.checks import check_class_names
from ..options.urls import is_url
from .local import walk_classes
from .remote import RemoteStore

_REMOTE = re.compile(r"^(/cns|/cfs|/gcs|/hdfs|/readahead|/placer|/tfhub|.*://).*$")


@dataclass
class Index:
    file_paths: List[str]
    labels: Optional[np.ndarray]  # None, or one label per file (unshuffled order)
    class_names: Optional[Sequence]
    unreadable_directories: List[str]
    store: Optional[object] = None  # a remote.RemoteStore when the directory is a URL


def index_directory(
    directory,
    labels,
    formats,
    class_names=None,
    follow_links: bool = False,
    verbose: bool = True,
    num_threads: int = 0,
    remote=None,
) -> Index:
    """Lists the files of ``directory`` as Keras does, and prints Keras' "Found ..." line.

    A URL (``s3://``, ``gs://``, any fsspec protocol) is listed by its filesystem with the
    same rules (``remote``: a :class:`~pyimgdir.remote.RemoteOptions`); its file paths are
    URLs."""
    inferred = isinstance(labels, str) and labels == "inferred"
    store = None
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
        per_dir, unreadable = walk_classes(directory, subdirs, follow_links, formats, num_threads, verbose)
    file_paths: List[str] = []
    for part in per_dir:
        file_paths.extend(part)

    out_labels: Optional[np.ndarray]
    names: Optional[Sequence]
    if inferred:
        names = subdirs
        # Keras: dict(zip(names, range(n))) -- a repeated name takes its last index.
        class_index = dict(zip(list(names), range(len(names))))
        counts = [len(part) for part in per_dir]
        out_labels = np.repeat(
            np.array([class_index[s] for s in subdirs], dtype=np.int32), counts
        ).astype(np.int32)
    elif labels is None:
        names = None
        out_labels = None
    else:
        if len(labels) != len(file_paths):
            raise ValueError(
                "Expected the lengths of `labels` to match the number "
                "of files in the target directory. len(labels) is "
                f"{len(labels)} while we found {len(file_paths)} files "
                f"in directory {directory}."
            )
        values = labels.tolist() if isinstance(labels, np.ndarray) else list(labels)
        names = [str(label) for label in sorted(set(values))]
        out_labels = manual_labels_array(values)

    if verbose:
        if out_labels is None:
            print_msg(f"Found {len(file_paths)} files.")
        else:
            print_msg(f"Found {len(file_paths)} files belonging to {len(names)} classes.")
    return Index(file_paths, out_labels, names, unreadable, store)


def class_folders(directories, class_names=None) -> List[str]:
    """Keras' classes among a directory's sub-directories (local or listed from a URL): the
    sorted, non-hidden ones; with ``class_names``, those, in the caller's order (a subset,
    duplicates kept), after checking they exist."""
    subdirs = [d for d in sorted(directories) if not d.startswith(".")]
    if class_names is not None:
        check_class_names(class_names, subdirs)
        return list(class_names)
    return subdirs


def index_remote(store: RemoteStore, subdirs_inferred: bool, class_names, formats) -> Tuple[List[str], List[List[str]]]:
    """Keras' indexing over a listing: (subdirs, per-subdir file URLs in Keras' order).

    Classes are the sorted, non-hidden top-level directories; each class's files are
    walked in Keras' order (directories by their full path string, file names sorted in
    each), extension-filtered case-insensitively. ``subdirs_inferred=False`` walks the
    whole tree as one part (top-level files and hidden directories included)."""
    listing = store.list_tree()
    store.listing = listing
    exts = tuple(f.lower() for f in formats)
    if subdirs_inferred:
        if not listing.files and not listing.dirs and not store.exists():
            raise FileNotFoundError(f"No such file or directory: '{store.url}'")
        subdirs = class_folders({d for d in listing.dirs if "/" not in d}, class_names)
    else:
        subdirs = [""]
    # Per part: (directory relative to the part, file name); sorting these tuples is
    # Keras' walk order (directories by full path string, then names within each).
    by_part: Dict[str, List[Tuple[str, str]]] = {s: [] for s in subdirs}
    whole = "" in by_part
    for rel in listing.files:
        if not rel.lower().endswith(exts):
            continue
        if whole:
            by_part[""].append(posixpath.split(rel))
        head, _, tail = rel.partition("/")
        if tail and head and head in by_part:
            by_part[head].append(posixpath.split(tail))
    per_dir: List[List[str]] = []
    for s in subdirs:
        urls = []
        for d, b in sorted(by_part[s]):
            rel = "/".join(p for p in (s, d, b) if p)
            url = store.join(rel)
            store.sizes[url] = listing.files[rel]
            store.stamps[url] = listing.stamps.get(rel, "")
            urls.append(url)
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
