"""pyimgdir: a fast, drop-in replacement for ``keras.utils.image_dataset_from_directory``.

The same call gives the same files, labels, pixels, dtypes and shapes, decoded and resized
by a parallel C++ core; ``format="numpy"`` works without TensorFlow.
"""


def _check_core() -> None:
    """Fails with a clear message when the compiled core is missing from this copy of the
    package: typically Python found a source checkout (the current directory comes first on
    sys.path for ``python -m`` and for scripts run from there) instead of the installed copy."""
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    if importlib.util.find_spec("pyimgdir._core") is not None:
        return
    installed = None
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        try:
            loc = os.path.abspath(str(distribution("pyimgdir").locate_file("pyimgdir")))
            if loc != here and os.path.isdir(loc):
                installed = loc
        except PackageNotFoundError:
            pass
    except ImportError:  # pragma: no cover - Python < 3.8
        pass
    checkout = os.path.isfile(os.path.join(os.path.dirname(here), "setup.py"))
    lines = [f"pyimgdir's compiled core (pyimgdir/_core) is not built in {here}."]
    if checkout:
        lines.append("That folder is a source checkout, and Python imported pyimgdir from it "
                     "rather than from an installed copy (the current directory comes first on "
                     "sys.path with `python -m` and for scripts run from there).")
    if installed:
        lines.append(f"An installed copy is at {installed}: run the command from another directory "
                     "(cd somewhere else first) to use it,")
        lines.append("or build the checkout in place: pip install -e .  "
                     "(or: python setup.py build_ext --inplace)")
    else:
        lines.append("Build it in place: pip install -e .  (or: python setup.py build_ext --inplace)"
                     + (", or install the package and run from another directory." if checkout else ""))
    message = "\n".join(lines)
    if sys.argv and sys.argv[0] == "-m":  # `python -m pyimgdir ...`: a message, not a traceback
        sys.stderr.write(f"pyimgdir: {message}\n")
        raise SystemExit(1)
    raise ImportError(message)


_check_core()

from .api import image_dataset_from_directory  # noqa: E402
from .options.augment import crop_boxes  # noqa: E402
from .errors import (  # noqa: E402
    ImageLoadError,
    InvalidFilesError,
    PyimgdirError,
    SkippedFile,
    SkippedFileWarning,
    UnreadableDirectoryWarning,
)
from .outputs.numpy_data import NumpyDataset  # noqa: E402
from .outputs.torch_data import TorchDataset  # noqa: E402
from .sources.validate import validate_files  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name):
    # format="grain"'s dataset type, imported on first use (Grain is optional).
    if name in ("GrainDataset", "GrainDatasetIterator"):
        from .outputs import grain_data

        return getattr(grain_data, name)
    if name == "ray_dataset":  # Ray Data is optional: imported when the function runs
        from .outputs.ray_data import ray_dataset

        return ray_dataset
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
    "ray_dataset",
    "__version__",
]
