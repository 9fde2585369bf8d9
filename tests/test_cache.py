"""The decoded-sample cache: later epochs are served without decoding, and entries are
invalidated when their file or the output settings change."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image, zip_strict


@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(21)
    root = tmp_path / "data"
    for i in range(14):
        write_image(root / f"c{i % 2}" / f"{i:02d}.jpg", photo_like(rng, 30, 40))
    return root


def run(ds):
    return [(x.copy(), y.copy()) for x, y in ds]


def by_label(batches):
    xs = np.concatenate([x for x, _ in batches])
    ys = np.concatenate([y for _, y in batches])
    order = np.lexsort((xs.reshape(len(xs), -1).sum(1), ys))
    return xs[order], ys[order]


def corrupt_all(root):
    for p in Path(root).rglob("*.jpg"):
        p.write_bytes(b"not a jpeg any more")


@pytest.mark.parametrize("where", ["memory", "file"])
def test_later_epochs_skip_decoding(tree, tmp_path, where):
    cache = "memory" if where == "memory" else str(tmp_path / "samples.cache")
    kw = dict(format="numpy", verbose=False, image_size=(16, 16), batch_size=4, seed=1)
    plain = pyimgdir.image_dataset_from_directory(tree, **kw)
    cached = pyimgdir.image_dataset_from_directory(tree, cache=cache, **kw)
    for _ in range(2):
        a, b = run(plain), run(cached)
        for (x1, y1), (x2, y2) in zip_strict(a, b):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
    corrupt_all(tree)  # any decode from now on would raise
    again = run(cached)
    assert sum(len(x) for x, _ in again) == 14
    np.testing.assert_array_equal(by_label(again)[0], by_label(a)[0])


def test_file_cache_persists_and_invalidates_changed_files(tree, tmp_path):
    cache = str(tmp_path / "persist.cache")
    kw = dict(format="numpy", verbose=False, image_size=(12, 12), batch_size=5, shuffle=False, cache=cache)
    first = run(pyimgdir.image_dataset_from_directory(tree, **kw))
    # a new process-equivalent: a new dataset on the same file reuses the samples
    changed = sorted(Path(tree).rglob("*.jpg"))[3]
    rng = np.random.default_rng(99)
    write_image(changed, photo_like(rng, 50, 20))
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    ds = pyimgdir.image_dataset_from_directory(tree, **kw)
    assert ds._source.cache.valid.sum() == 13  # only the changed file must be decoded again
    second = run(ds)
    fresh = run(pyimgdir.image_dataset_from_directory(tree, **{**kw, "cache": None}))
    for (x2, _), (x3, _) in zip_strict(second, fresh):
        np.testing.assert_array_equal(x2, x3)
    assert not np.array_equal(np.concatenate([x for x, _ in first]), np.concatenate([x for x, _ in second]))


def test_settings_change_invalidates_everything(tree, tmp_path):
    cache = str(tmp_path / "settings.cache")
    base = dict(format="numpy", verbose=False, batch_size=5, shuffle=False, cache=cache)
    run(pyimgdir.image_dataset_from_directory(tree, image_size=(12, 12), **base))
    for change in (dict(image_size=(12, 13)), dict(image_size=(12, 12), interpolation="area"),
                   dict(image_size=(12, 12), color_mode="grayscale")):
        ds = pyimgdir.image_dataset_from_directory(tree, **change, **base)
        assert ds._source.cache.valid.sum() == 0
        run(ds)  # refills for these settings


def test_cache_argument_checked(tree):
    with pytest.raises(ValueError, match="cache"):
        pyimgdir.image_dataset_from_directory(tree, cache=True)


def test_unshuffled_cached_batches_are_read_only_views(tree):
    ds = pyimgdir.image_dataset_from_directory(
        tree, format="numpy", verbose=False, image_size=(8, 8), batch_size=4, shuffle=False, cache="memory"
    )
    first = [x.copy() for x, _ in ds]
    again = [x for x, _ in ds]
    for a, b in zip_strict(first, again):
        np.testing.assert_array_equal(a, b)
        assert not b.flags.writeable and not b.flags.owndata
    with pytest.raises(ValueError):
        again[0][0, 0, 0, 0] = 1.0
