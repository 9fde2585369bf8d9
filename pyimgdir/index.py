"""Stage 1, index: which files, in which order, with which labels.

Reproduces Keras' ``dataset_utils.index_directory``: class folders are the sorted,
non-hidden sub-directories; each class folder is walked recursively by the C++ core
(in parallel over all directories) and files come in Keras' order.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from . import _core
from ._keras_compat import print_msg
from .checks import check_class_names
from .remote import RemoteStore, index_remote, is_url

_REMOTE = re.compile(r"^(/cns|/cfs|/gcs|/hdfs|/readahead|/placer|/tfhub|.*://).*$")


@dataclass
class Index:
    file_paths: List[str]
    labels: Optional[np.ndarray]  # None, or one label per file (unshuffled order)
    class_names: Optional[Sequence]
    unreadable_directories: List[str]
    store: Optional[object] = None  # a remote.RemoteStore when the directory is a URL


class _ScanProgress:
    """Reports a long scan on stderr (only on a terminal, only after a second)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.shown = False

    def __call__(self, directories: int, files: int) -> None:
        if time.monotonic() - self.start < 1.0:
            return
        self.shown = True
        self.stream.write(f"\rIndexing: {files} files in {directories} directories...")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _walk(directory, subdirs: Sequence[str], follow_links: bool, formats, num_threads: int, verbose: bool = False):
    tops = [os.fspath(os.path.join(directory, s)) for s in subdirs]
    prefixes = [os.fspath(os.path.join(directory, s, "")) for s in subdirs]
    progress = None
    if verbose and hasattr(sys.stderr, "isatty") and sys.stderr.isatty():
        progress = _ScanProgress()
    try:
        files, unreadable, _ = _core.walk(tops, prefixes, follow_links, list(formats), num_threads, progress)
    finally:
        if progress is not None:
            progress.close()
    return files, unreadable


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
        subdirs = []
        for subdir in sorted(os.listdir(directory)):
            if os.path.isdir(os.path.join(directory, subdir)):
                if not subdir.startswith("."):
                    subdirs.append(subdir)
        if class_names is not None:
            check_class_names(class_names, subdirs)
            subdirs = class_names  # the caller's order, subset and duplicates
    else:
        subdirs = [""]
        if class_names is not None:
            _check_class_names_not_inferred(labels)

    if store is None:
        per_dir, unreadable = _walk(directory, subdirs, follow_links, formats, num_threads, verbose)
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
