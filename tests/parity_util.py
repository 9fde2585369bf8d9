"""Helpers for differential tests: run Keras and pyimgdir on the same call and compare."""

from __future__ import annotations

import contextlib
import hashlib
import io
import sys

import numpy as np

import pyimgdir
from conftest import zip_strict


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
    samples = 0

    @classmethod
    def record(cls, method: str, diff: float) -> None:
        cls.max_diff[method] = max(cls.max_diff.get(method, 0.0), float(diff))


def compare(keras, directory, tol=0.0, **kwargs):
    """Runs both loaders; asserts equal output, stdout and errors. Returns pyimgdir's result."""
    # Keras shuffles a labels list in place: give each loader its own copy.
    k_kwargs, p_kwargs = dict(kwargs), dict(kwargs)
    if isinstance(kwargs.get("labels"), list):
        k_kwargs["labels"], p_kwargs["labels"] = list(kwargs["labels"]), list(kwargs["labels"])
    k_res, k_exc, k_out = run(keras.utils.image_dataset_from_directory, directory, **k_kwargs)
    p_res, p_exc, p_out = run(pyimgdir.image_dataset_from_directory, directory, **p_kwargs)
    assert p_out == k_out
    if k_exc is not None:
        assert p_exc is not None, f"Keras raised {k_exc!r}, pyimgdir did not"
        assert type(p_exc) is type(k_exc) or isinstance(p_exc, type(k_exc))
        assert str(p_exc) == str(k_exc)
        return None
    assert p_exc is None, f"pyimgdir raised {p_exc!r}, Keras did not"
    assert type(p_res) is type(k_res) if isinstance(k_res, list) else not isinstance(p_res, list)
    Stats.cases += 1
    method = str(kwargs.get("interpolation", "bilinear")).lower()
    for kd, pd in zip_strict(as_list(k_res), as_list(p_res)):
        assert pd.file_paths == kd.file_paths
        assert pd.class_names == kd.class_names
        assert pd.element_spec == kd.element_spec
        assert len(pd) == len(kd)
        batched = kwargs.get("batch_size", 32) is not None
        k_els, p_els = elements(kd), elements(pd)
        k_s, p_s = per_sample(k_els, batched), per_sample(p_els, batched)
        assert len(k_s) == len(p_s) == len(kd.file_paths)
        Stats.samples += len(p_s)
        shuffled_per_epoch = kwargs.get("shuffle", True) and not (
            kwargs.get("subset") == "both" and kd is as_list(k_res)[1]
        )
        if shuffled_per_epoch:
            # Same multiset of (image, label); order differs by design.
            assert sorted(digest(x, y) for x, y in p_s) == sorted(digest(x, y) for x, y in k_s)
            Stats.record(method, 0.0)
        else:
            for (kx, ky), (px, py) in zip_strict(k_s, p_s):
                assert px.dtype == kx.dtype and px.shape == kx.shape
                diff = np.abs(px.astype(np.float64) - kx.astype(np.float64)).max()
                Stats.record(method, diff)
                assert diff <= tol
                if ky is not None:
                    np.testing.assert_array_equal(py, ky)
    return p_res
