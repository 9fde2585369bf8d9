"""Exceptions raised by pyimgdir."""

from __future__ import annotations

from typing import List, NamedTuple

__all__ = ["PyimgdirError", "ImageLoadError", "InvalidFilesError", "SkippedFile", "SkippedFileWarning", "UnreadableDirectoryWarning"]


class PyimgdirError(ValueError):
    """Base class of pyimgdir's own errors (a ``ValueError``, like Keras' decode errors)."""


class ImageLoadError(PyimgdirError):
    """A file could not be read or decoded.

    Attributes:
        path: the file, as it appears in ``file_paths``.
        reason: the decoder's (or the operating system's) own explanation.
        position: the sample's position in the epoch order (-1 when not iterating).
        file_index: the file's index in ``file_paths``.
    """

    def __init__(self, path: str, reason: str, position: int = -1, file_index: int = -1) -> None:
        super().__init__(f"Cannot load image file {path!r}: {reason}")
        self.path = path
        self.reason = reason
        self.position = position
        self.file_index = file_index

    def __reduce__(self):  # keep the attributes across pickling (multiprocessing, tf.data)
        return (type(self), (self.path, self.reason, self.position, self.file_index))


class SkippedFile(NamedTuple):
    """A file left out of the dataset, and why (the decoder's or the OS's reason)."""

    path: str
    reason: str


class SkippedFileWarning(UserWarning):
    """Emitted once per dropped file with ``on_error="warn"``."""


class UnreadableDirectoryWarning(UserWarning):
    """A directory under the dataset could not be listed, so whatever it holds is missing
    (Keras skips such directories without a word)."""


class InvalidFilesError(PyimgdirError):
    """``validate=True`` found files that cannot be decoded (with ``on_error="raise"``).

    Attributes:
        files: every bad file as a :class:`SkippedFile`.
    """

    def __init__(self, files: List[SkippedFile]) -> None:
        shown = "\n".join(f"  {f.path}: {f.reason}" for f in files[:20])
        more = f"\n  ... and {len(files) - 20} more" if len(files) > 20 else ""
        super().__init__(
            f"{len(files)} file(s) cannot be loaded:\n{shown}{more}\n"
            'Pass on_error="skip" (or "warn") to leave them out.'
        )
        self.files = files

    def __reduce__(self):
        return (type(self), (self.files,))
