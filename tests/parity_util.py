"""Helpers for differential tests: run Keras and pyimgdir on the same call and compare."""

from __future__ import annotations

import contextlib
import hashlib
import io
import sys

import numpy as np


@contextlib.contextmanager
def captured_stdout():
    buf = io.StringIO()
    old = sys.stdout
    sys.stdout = buf
    try:
        yield buf
    finally:
        sys.stdout = old


def run(fn, *args, **kwargs):
    """(result, exception, stdout) of one call."""
    with captured_stdout() as out:
        try:
            return fn(*args, **kwargs), None, out.getvalue()
        except Exception as e:  # noqa: BLE001 - we compare whatever was raised
            return None, e, out.getvalue()


def as_list(ds):
    return ds if isinstance(ds, list) else [ds]


def elements(ds):
    """One epoch as a list of (images, labels-or-None) numpy pairs."""
    out = []
    for el in ds.as_numpy_iterator():
        if isinstance(el, tuple):
            out.append(el)
        else:
            out.append((el, None))
    return out


def digest(sample: np.ndarray, label) -> tuple:
    lab = None if label is None else np.asarray(label).tobytes()
    return (hashlib.sha1(np.ascontiguousarray(sample).tobytes()).hexdigest(), lab)


def per_sample(els, batched: bool):
    samples = []
    for images, labels in els:
        if batched:
            for i in range(len(images)):
                samples.append((images[i], None if labels is None else labels[i]))
        else:
            samples.append((images, labels))
    return samples


class Stats:
    """Largest pixel difference seen per interpolation method (for reports)."""

    max_diff: dict = {}
    cases = 0

    @classmethod
    def record(cls, method: str, diff: float) -> None:
        cls.max_diff[method] = max(cls.max_diff.get(method, 0.0), float(diff))
