"""pyimgdir: a fast, drop-in replacement for ``keras.utils.image_dataset_from_directory``.

The same call gives the same files, labels, pixels, dtypes and shapes, decoded and resized
by a parallel C++ core; ``format="numpy"`` works without TensorFlow.
"""

from .api import image_dataset_from_directory
from .augment import crop_boxes
from .errors import (
    ImageLoadError,
    InvalidFilesError,
    PyimgdirError,
    SkippedFile,
    SkippedFileWarning,
    UnreadableDirectoryWarning,
)
from .loader import NumpyDataset
from .torch_data import TorchDataset
from .validate import validate_files

__version__ = "0.1.0"


def __getattr__(name):
    # format="grain"'s dataset type, imported on first use (Grain is optional).
    if name in ("GrainDataset", "GrainDatasetIterator"):
        from . import grain_data

        return getattr(grain_data, name)
    raise AttributeError(f"module 'pyimgdir' has no attribute {name!r}")

__all__ = [
    "image_dataset_from_directory",
    "crop_boxes",
    "ImageLoadError",
    "InvalidFilesError",
    "NumpyDataset",
    "PyimgdirError",
    "SkippedFile",
    "SkippedFileWarning",
    "TorchDataset",
    "UnreadableDirectoryWarning",
    "validate_files",
    "__version__",
]
