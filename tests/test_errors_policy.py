"""on_error="raise" / "skip" / "warn" and validate=True: every indexed file is either
delivered or reported, batches stay full while files remain, nothing is lost silently."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image


@pytest.fixture
def dirty(tmp_path):
    """23 good files and 5 bad ones spread over two classes."""
    rng = np.random.default_rng(8)
    root = tmp_path / "dirty"
    good = []
    for c in ("a", "b"):
        for i in range(12 if c == "a" else 11):
            ext = ".jpg" if i % 2 else ".png"
            good.append(write_image(root / c / f"{i:02d}{ext}", photo_like(rng, 30, 40)))
    jpeg = (root / "a" / "01.jpg").read_bytes()
    bad = {
        root / "a" / "03x_empty.jpg": b"",
        root / "a" / "07x_truncated.jpg": jpeg[: len(jpeg) // 2],
        root / "b" / "00x_text.png": b"just some text, not an image",
        root / "b" / "05x_tiff.jpg": b"II*\x00" + bytes(100),
        root / "b" / "09x_badpng.png": b"\x89PNG\r\n\x1a\n" + bytes(30),
    }
    for p, data in bad.items():
        p.write_bytes(data)
    return root, sorted(str(p) for p in bad)


def collect(ds):
    xs, ys, sizes = [], [], []
    for x, y in ds:
        xs.append(np.array(x))
        ys.append(np.array(y))
        sizes.append(len(x))
    return np.concatenate(xs), np.concatenate(ys), sizes


def test_raise_names_the_file_after_good_batches(dirty):
    root, bad = dirty
    ds = pyimgdir.image_dataset_from_directory(root, shuffle=False, batch_size=2, image_size=(8, 8), verbose=False, format="numpy")
    delivered = 0
    with pytest.raises(pyimgdir.ImageLoadError) as info:
        for x, _ in ds:
            delivered += len(x)
    first_bad = min(ds.file_paths.index(p) for p in bad)
    assert info.value.path == ds.file_paths[first_bad]
    assert delivered == first_bad // 2 * 2  # every batch before the bad one, intact
    assert "empty" in info.value.reason


@pytest.mark.parametrize("batch_size", [4, 5, None])
def test_skip_delivers_or_reports_every_file(dirty, batch_size):
    root, bad = dirty
    ds = pyimgdir.image_dataset_from_directory(
        root, shuffle=True, seed=3, batch_size=batch_size, image_size=(8, 8), verbose=False,
        format="numpy", on_error="skip",
    )
    n_indexed = len(ds.file_paths)
    assert n_indexed == 28
    for epoch in range(2):
        if batch_size is None:
            items = list(ds)
            sizes = [1] * len(items)
            labels = np.array([y for _, y in items])
        else:
            _, labels, sizes = collect(ds)
            # every batch is full except possibly the last
            assert all(s == batch_size for s in sizes[:-1])
        assert sum(sizes) + len(ds.skipped_files) == n_indexed
        assert sorted(f.path for f in ds.skipped_files) == bad
        assert all(f.reason for f in ds.skipped_files)
        # the labels delivered are exactly those of the good files
        good_labels = sorted(int("/b/" in p) for p in ds.file_paths if p not in bad)
        assert sorted(labels.tolist()) == good_labels


def test_skip_output_equals_the_clean_dataset(dirty):
    root, bad = dirty
    kw = dict(shuffle=False, batch_size=3, image_size=(8, 8), verbose=False, format="numpy")
    skipping = pyimgdir.image_dataset_from_directory(root, on_error="skip", **kw)
    x1, y1, _ = collect(skipping)
    for p in bad:
        Path(p).unlink()
    clean = pyimgdir.image_dataset_from_directory(root, **kw)
    x2, y2, _ = collect(clean)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_warn_emits_one_warning_per_file(dirty):
    root, bad = dirty
    ds = pyimgdir.image_dataset_from_directory(root, shuffle=False, batch_size=4, image_size=(8, 8), verbose=False, format="numpy", on_error="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collect(ds)
        collect(ds)  # a second epoch does not warn again
    msgs = [str(w.message) for w in caught if issubclass(w.category, pyimgdir.SkippedFileWarning)]
    assert len(msgs) == len(bad)
    for p in bad:
        assert any(p in m for m in msgs)


def test_validate_raise_lists_every_bad_file(dirty):
    root, bad = dirty
    with pytest.raises(pyimgdir.InvalidFilesError) as info:
        pyimgdir.image_dataset_from_directory(root, image_size=(8, 8), verbose=False, format="numpy", validate=True)
    assert sorted(f.path for f in info.value.files) == bad
    for p in bad:
        assert p in str(info.value)


def test_validate_skip_removes_bad_files_up_front(dirty):
    root, bad = dirty
    ds = pyimgdir.image_dataset_from_directory(
        root, image_size=(8, 8), verbose=False, format="numpy", validate=True, on_error="skip", batch_size=4, seed=1
    )
    assert len(ds.file_paths) == 23 and not set(ds.file_paths) & set(bad)
    assert sorted(f.path for f in ds.skipped_files) == bad
    assert len(ds) == 6
    _, _, sizes = collect(ds)
    assert sizes == [4, 4, 4, 4, 4, 3]


def test_validate_files_function(dirty):
    root, bad = dirty
    paths = sorted(str(p) for p in Path(root).rglob("*.*"))
    seen = []
    report = pyimgdir.validate_files(paths, progress=lambda d, t: seen.append((d, t)))
    assert sorted(f.path for f in report) == bad
    assert seen and seen[-1] == (len(paths), len(paths))


def test_skip_through_tf_data(tf, dirty):
    root, bad = dirty
    ds = pyimgdir.image_dataset_from_directory(root, shuffle=False, batch_size=4, image_size=(8, 8), verbose=False, on_error="skip")
    sizes = [int(x.shape[0]) for x, _ in ds]
    assert sum(sizes) == 23 and sizes[:-1] == [4] * (len(sizes) - 1)
    assert sorted(f.path for f in ds.skipped_files) == bad
    validated = pyimgdir.image_dataset_from_directory(root, batch_size=4, image_size=(8, 8), verbose=False, on_error="skip", validate=True, seed=2)
    assert len(validated) == 6


def test_on_error_value_checked():
    with pytest.raises(ValueError, match="on_error"):
        pyimgdir.image_dataset_from_directory("/nonexistent", on_error="ignore")
