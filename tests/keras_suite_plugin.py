"""pytest plugin (loaded with ``-p keras_suite_plugin``) that puts pyimgdir's
``image_dataset_from_directory`` in place of Keras' own before Keras' test file runs,
and counts the calls so the caller can check the replacement was exercised."""

import os

import pyimgdir
from keras.src.utils import image_dataset_utils

_calls = {"tf": 0, "grain": 0}


def _replacement(*args, **kwargs):
    _calls[kwargs.get("format", "tf")] = _calls.get(kwargs.get("format", "tf"), 0) + 1
    return pyimgdir.image_dataset_from_directory(*args, **kwargs)


image_dataset_utils.image_dataset_from_directory = _replacement


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("PYIMGDIR_KERAS_SUITE_CALLS")
    if out:
        with open(out, "w") as f:
            f.write(f"{_calls['tf']} {_calls['grain']} {pyimgdir.__file__}\n")
