"""Exceptions raised by pyimgdir."""

from __future__ import annotations

__all__ = ["PyimgdirError", "ImageLoadError"]


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
