"""pyimgdir: a fast, drop-in replacement for ``keras.utils.image_dataset_from_directory``.

The same call gives the same files, labels, pixels, dtypes and shapes, decoded and resized
by a parallel C++ core; ``format="numpy"`` works without TensorFlow.
"""

from .api import image_dataset_from_directory
from .errors import ImageLoadError, PyimgdirError
from .loader import NumpyDataset

__version__ = "0.1.0"

__all__ = [
    "image_dataset_from_directory",
    "ImageLoadError",
    "NumpyDataset",
    "PyimgdirError",
    "__version__",
]
