"""Type stubs for ``pyimgdir._core``, the compiled core (csrc/bindings.cpp).

Private: the public API is :func:`pyimgdir.image_dataset_from_directory` and
:func:`pyimgdir.validate_files`. Paths go in as ``str``, ``bytes`` or ``os.PathLike`` (in
the filesystem encoding) and come back as ``str`` (undecodable bytes as surrogate escapes,
as ``os.fsdecode`` gives them).
"""

import os
from typing import Any, Callable, Dict, Iterable, List, Literal, Optional, Sequence, Tuple, Union, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Path = Union[str, bytes, os.PathLike[str], os.PathLike[bytes]]
_Format = Literal["JPEG", "PNG", "GIF", "BMP", "WebP", "unknown"]
_Interpolation = Literal[
    "bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic"
]

class DecodeError(ValueError):
    """A decoder's error (the image data is invalid or unsupported)."""

def walk(
    tops: Iterable[_Path],
    prefixes: Iterable[_Path],
    follow_links: bool,
    extensions: Sequence[str],
    num_threads: int = 0,
    progress: Optional[Callable[[int, int], object]] = None,
) -> Tuple[List[List[str]], List[str], int]:
    """Lists every file under each of ``tops`` (Keras' order) whose lower-cased name ends with
    one of ``extensions`` (lower case, with the dot; ``""`` matches every file).

    ``progress(directories, files)`` is called about every 100 ms from the calling thread
    while the walk runs on another (an exception it raises stops the walk and propagates).

    Returns ``(files, unreadable_directories, directories_listed)``: ``files[i]`` holds the
    paths under ``tops[i]``, each written as ``prefixes[i]`` + the path relative to it.
    """

def walk_index(
    tops: Iterable[_Path],
    prefixes: Iterable[_Path],
    follow_links: bool,
    extensions: Sequence[str],
    num_threads: int = 0,
    progress: Optional[Callable[[int, int], object]] = None,
) -> Tuple["FileIndex", List[str], int]:
    """:func:`walk` into one compact :class:`FileIndex` (a file's top is the position of the
    top it was found under): ``(index, unreadable_directories, directories_listed)``."""

class FileIndex:
    """Files in Keras' order, stored once: a folder table (each run of files sharing a folder:
    its path prefix and top) and every name in one arena. Paths are built when read.
    Pickles as :meth:`to_bytes` (a few bytes a file)."""

    @staticmethod
    def from_paths(paths: Iterable[_Path], tops: Optional[Iterable[int]] = None) -> "FileIndex": ...
    @staticmethod
    def from_bytes(data: bytes, prefix: Optional[_Path] = None) -> "FileIndex":
        """Reads :meth:`to_bytes`; ``prefix`` goes before every folder. Raises ValueError
        for anything else."""
    def to_bytes(self) -> bytes: ...
    def __len__(self) -> int: ...
    def path(self, i: int) -> str: ...
    def paths(self, start: int, stop: int) -> List[str]: ...
    def file_tops(self) -> NDArray[np.int32]: ...
    def counts_per_top(self, num_tops: int) -> List[int]: ...
    def folders(self) -> List[str]:
        """The folder table: one prefix per run of files."""
    @property
    def num_folders(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...

class FileList:
    """Rows of a :class:`FileIndex` in a given order (``rows=None``: all, in index order);
    what a :class:`Loader` reads. Shares its index; pickles as the index and 4-byte rows."""

    def __init__(self, index: FileIndex, rows: Optional[ArrayLike] = None) -> None: ...
    def __len__(self) -> int: ...
    def path(self, i: int) -> str: ...
    def paths(self, start: int, stop: int) -> List[str]: ...
    def paths_at(self, positions: ArrayLike) -> List[str]: ...
    def select(self, positions: ArrayLike) -> "FileList":
        """The files at ``positions`` of this list, in that order (same index)."""
    def rows(self) -> NDArray[np.int64]: ...
    @property
    def index(self) -> FileIndex: ...
    @property
    def memory_bytes(self) -> int: ...
    def write_mapped(self, path: _Path) -> None:
        """Writes the index and rows in a layout :meth:`map_file` reads in place."""
    @staticmethod
    def map_file(path: _Path) -> "FileList":
        """Maps a :meth:`write_mapped` file: processes mapping it share its pages. Raises
        ValueError for a file that is not one (or is damaged)."""

def index_shuffle(index: int, max_index: int, seed: int, rounds: int = 4) -> int:
    """Grain's index shuffle: the position of ``index`` in a permutation of [0, max_index]."""

def index_shuffle_permutation(n: int, seed: int, rounds: int = 4) -> NDArray[np.int64]:
    """``index_shuffle(i, n - 1, seed, rounds)`` for every i < n, in one call (Grain's
    ``MapDataset.range(n).shuffle(seed)`` at epoch 0)."""

def sniff_format(data: bytes, /) -> _Format:
    """The image format from the first bytes of a file (magic bytes, as the decoder picks it)."""

def decode(
    data: bytes, channels: int = 3, max_pixels: int = ..., decoder: Literal["tensorflow", "pillow"] = "tensorflow"
) -> NDArray[np.uint8]:
    """Decodes an encoded image into an (H, W, channels) uint8 array with TensorFlow's or
    Pillow's conventions. Raises :class:`DecodeError`."""

def image_size(data: bytes, channels: int = 3, max_pixels: int = ...) -> Tuple[int, int]:
    """(height, width) of an encoded image as the decoder sizes it (a GIF's largest frame),
    without decoding a JPEG. Raises :class:`DecodeError`."""

def jpeg_checkpoint_stats() -> Dict[str, int]:
    """The process-wide table of JPEG entropy-data checkpoints: ``scans`` kept, their
    ``bytes``, and the ``budget`` (``PYIMGDIR_JPEG_CHECKPOINT_MB``)."""

def decode_jpeg_scaled(
    data: bytes,
    channels: int = 3,
    scale: int = 8,
    fast_eighth: bool = True,
    fast_quarter: bool = False,
    region: Optional[Tuple[int, int, int, int]] = None,
) -> Tuple[NDArray[np.uint8], bool]:
    """Decodes with DCT scaling 1/``scale`` (1, 2, 4 or 8) as ``jpeg_downscale`` does, for any
    format (only JPEGs scale). Returns the image and whether the fast path decoded it straight
    from the entropy-coded data: at 1/8 unless ``fast_eighth=False``, at 1/4 only with
    ``fast_quarter=True`` (exact, but slower than libjpeg-turbo, so the pipeline leaves it
    off). ``region`` (y, x, height, width in scaled pixels) decodes just that part, as random
    crops do (a JPEG only; other formats ignore it)."""

def resize(
    image: ArrayLike, height: int, width: int, method: str = "bilinear"
) -> Union[NDArray[np.float32], NDArray[np.uint8]]:
    """Resizes an (H, W, C) uint8 image with TensorFlow's numerics: float32 output, or uint8
    for ``"nearest"``."""

def pinning_backend() -> Literal["cuda", "mlock"]:
    """How ``lock_memory=True`` page-locks batch buffers: ``"cuda"`` (cudaHostRegister, when a
    CUDA runtime is found at run time) or ``"mlock"``."""

class LoaderConfig:
    """A loader's settings; built by ``LoadSpec.core_config()`` (the one place the Python
    options map onto the core)."""

    def __init__(self) -> None: ...
    height: int
    width: int
    channels: int
    interpolation: str  # one of the eight methods (see _Interpolation)
    fit: Literal["stretch", "crop", "pad", "pad_resize"]
    channels_first: bool
    dtype: Literal["float32", "uint8"]
    num_threads: int  # 0: one per core
    prefetch: int
    max_pixels: int
    lock_memory: bool
    skip_errors: bool
    jpeg_downscale: bool  # DCT scaling; for random crops: the crop at the smallest covering scale
    random_crop: bool
    crop_scale: List[float]  # (min, max) area fraction
    crop_ratio: List[float]  # (min, max) aspect ratio w / h, drawn log-uniformly
    random_flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"]
    augment_seed: int  # 64 bits
    decoder: Literal["tensorflow", "pillow"]

_Augments = Dict[str, NDArray[Any]]

_Failure = Tuple[int, int, str, str]  # (position in the epoch, file index, path, reason)

class EpochIterator:
    """One epoch of batches, decoded ahead by the loader's threads (from :meth:`Loader.iterate`)."""

    def next(
        self, config: LoaderConfig, /
    ) -> Optional[Tuple[Union[NDArray[np.float32], NDArray[np.uint8]], int, List[_Failure]]]:
        """The next batch as ``(images, first position, failures)``, or ``None`` at the end.

        ``images`` views the batch buffer without a copy. With ``skip_errors`` the files
        that failed are left out of ``images`` and listed in ``failures``; otherwise a failure
        raises :class:`pyimgdir.ImageLoadError`. Releases the GIL while waiting.
        """
    def close(self) -> None:
        """Stops the epoch's work and waits for the threads to let go of it."""
    def feed(self, position: int, data: Any, /) -> bool:
        """(Iterators made with ``fed=True``.) The encoded bytes of ``position`` (any object
        with the buffer protocol; kept, not copied, until decoded). False once closed."""
    def feed_failure(self, position: int, reason: str, /) -> bool:
        """(``fed=True``.) ``position`` could not be fetched: it fails like an unreadable file."""
    def release_fed(self) -> List[int]:
        """(``fed=True``.) Lets go of the buffers the decode threads are done with; returns
        their positions."""
    @property
    def num_batches(self) -> int: ...

class FileChecker:
    """Decodes every file in full on a thread pool, to find the ones that fail."""

    def __init__(
        self,
        paths: Iterable[_Path],
        channels: int = 3,
        max_pixels: int = ...,
        num_threads: int = 0,
        decoder: Literal["tensorflow", "pillow"] = "tensorflow",
    ) -> None: ...
    def wait(self, timeout_ms: int, /) -> bool:
        """Waits up to ``timeout_ms``; True when every file has been checked."""
    def cancel(self) -> None: ...
    @property
    def done(self) -> int: ...
    @property
    def total(self) -> int: ...
    def failures(self) -> List[Tuple[int, str, str]]:
        """``(file index, path, reason)`` of every file that failed, by file index."""

class Loader:
    """Decodes, fits and resizes a fixed list of files into pooled batch buffers."""

    @overload
    def __init__(self, files: FileList, config: LoaderConfig) -> None: ...
    @overload
    def __init__(self, paths: Iterable[_Path], config: LoaderConfig) -> None: ...
    @overload
    def __init__(
        self, paths: Union[FileList, Iterable[_Path]], height: int, width: int, channels: int, **fields: Any
    ) -> None:
        """Shorthand (tests, benchmarks): the size, then any ``LoaderConfig`` field by name.
        A list of paths is indexed first (a :class:`FileIndex` of its own)."""
    def __len__(self) -> int: ...
    @property
    def files(self) -> FileList: ...
    @property
    def config(self) -> LoaderConfig: ...
    def iterate(self, order: ArrayLike, batch_size: int, epoch: int = 0, fed: bool = False) -> EpochIterator:
        """Starts an epoch over the file indices in ``order``, ``batch_size`` at a time;
        ``epoch`` keys the random crops and flips. With ``fed`` the threads decode bytes given
        to :meth:`EpochIterator.feed` instead of reading the files."""
    def load(self, index: int, epoch: int = 0) -> Union[NDArray[np.float32], NDArray[np.uint8]]:
        """One file, decoded and resized into a new array. Raises :class:`pyimgdir.ImageLoadError`."""
    def augments(self, files: ArrayLike, epoch: int) -> _Augments:
        """The crop box and flips each of ``files`` gets in ``epoch`` (``y``, ``x``, ``height``,
        ``width``, ``flip_horizontal``, ``flip_vertical``, ``image_height``, ``image_width``),
        from the files' headers. Raises :class:`DecodeError` naming a file it cannot read."""

def draw_augments(
    config: LoaderConfig, epoch: int, file_indices: ArrayLike, heights: ArrayLike, widths: ArrayLike
) -> _Augments:
    """The crop boxes and flips ``config`` gives files of the given sizes in ``epoch``
    (``y``, ``x``, ``height``, ``width``, ``flip_horizontal``, ``flip_vertical``)."""
