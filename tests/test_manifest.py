"""Manifests: `pyimgdir scan DIR --manifest FILE` writes the index once; manifest=FILE (or
FILE as the directory) gives the same files, order and labels as a fresh walk, and is
refused, saying what changed, when the tree changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import pyimgdir
from pyimgdir.sources.index import scan_to_manifest
from pyimgdir.sources.manifest import ManifestError
from pyimgdir.options.keras_compat import ALLOWLIST_FORMATS


@pytest.fixture
def tree(make_tree):
    return make_tree({"b": 3, "a": 2, "a/deep": 2, "a-x": 1, "c/sub/subsub": 2}, size_range=(10, 14))


def _ds(directory, **kw):
    kw = {"image_size": (8, 8), "batch_size": 4, "verbose": False, "format": "numpy", "seed": 4, **kw}
    return pyimgdir.image_dataset_from_directory(directory, **kw)


def _same(a, b):
    assert a.file_paths == b.file_paths and a.class_names == b.class_names
    la = np.concatenate([y for _, y in a.epoch(0)]) if a.class_names else None
    lb = np.concatenate([y for _, y in b.epoch(0)]) if b.class_names else None
    assert (la is None and lb is None) or np.array_equal(la, lb)


def _bump(path):
    """Moves a folder's modification time, as adding an entry would (whatever the clock's grain)."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_cli_writes_and_api_reads(tree, tmp_path):
    out = tmp_path / "train.manifest"
    r = subprocess.run([sys.executable, "-m", "pyimgdir", "scan", str(tree), "--manifest", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "10 files in 4 classes" in r.stdout
    walked = _ds(str(tree))
    _same(_ds(str(tree), manifest=str(out)), walked)
    _same(_ds(str(out)), walked)  # the manifest as the directory
    # shuffled, split, every format sees the same files
    for kw in ({"shuffle": False}, {"validation_split": 0.3, "subset": "training"}):
        _same(_ds(str(tree), manifest=out, **kw), _ds(str(tree), **kw))


def test_found_line_is_printed(tree, tmp_path, capsys):
    out = tmp_path / "m"
    scan_to_manifest(out, tree, formats=ALLOWLIST_FORMATS)
    _ds(str(tree), manifest=out, verbose=True)
    assert "Found 10 files belonging to 4 classes." in capsys.readouterr().out


def test_labels_none_and_manual_labels(tree, tmp_path):
    out = tmp_path / "m"
    scan_to_manifest(out, tree, labels_inferred=False, formats=ALLOWLIST_FORMATS)
    _same(_ds(str(tree), manifest=out, labels=None), _ds(str(tree), labels=None))
    labels = list(range(10))
    _same(_ds(str(tree), manifest=out, labels=labels), _ds(str(tree), labels=labels))
    with pytest.raises(ManifestError, match="labels"):
        _ds(str(tree), manifest=out)  # inferred labels need the class folders


def test_other_mount_point(tree, tmp_path):
    out = tmp_path / "m"
    scan_to_manifest(out, tree, formats=ALLOWLIST_FORMATS)
    copy = tmp_path / "elsewhere" / "data"
    shutil.copytree(tree, copy)  # copies folder times too (copystat)
    for d, _, _ in os.walk(tree):
        st = os.stat(d)
        os.utime(copy / os.path.relpath(d, tree), ns=(st.st_atime_ns, st.st_mtime_ns))
    ds = _ds(str(copy), manifest=out)
    assert ds.file_paths == _ds(str(copy)).file_paths
    assert all(p.startswith(str(copy) + os.sep) for p in ds.file_paths)


@pytest.mark.parametrize("change", ["add", "remove", "new_class", "deep"])
def test_changed_tree_refused(tree, tmp_path, change):
    out = tmp_path / "m"
    scan_to_manifest(out, tree, formats=ALLOWLIST_FORMATS)
    if change == "add":
        shutil.copy(tree / "b" / "img_000.jpg", tree / "b" / "img_new.jpg")
        _bump(tree / "b")
        where = "'b/'"
    elif change == "remove":
        os.remove(tree / "a" / "img_000.jpg")
        _bump(tree / "a")
        where = "'a/'"
    elif change == "new_class":
        (tree / "d").mkdir()
        _bump(tree)
        where = "'.'"
    else:
        os.remove(tree / "c" / "sub" / "subsub" / "img_000.jpg")
        _bump(tree / "c" / "sub" / "subsub")
        where = "'c/sub/subsub/'"
    with pytest.raises(ManifestError) as e:
        _ds(str(tree), manifest=out)
    text = str(e.value)
    assert "changed since the manifest" in text and where in text and "pyimgdir scan" in text


def test_other_options_refused(tree, tmp_path):
    out = tmp_path / "m"
    scan_to_manifest(out, tree, formats=ALLOWLIST_FORMATS)
    with pytest.raises(ManifestError, match="follow_links"):
        _ds(str(tree), manifest=out, follow_links=True)
    with pytest.raises(ManifestError, match="class_names"):
        _ds(str(tree), manifest=out, class_names=["b", "a"])
    # the same classes, the caller's own list: accepted
    names = ["a", "a-x", "b", "c"]
    assert _ds(str(tree), manifest=out, class_names=names).class_names is names


def test_damaged_or_foreign_files_refused(tree, tmp_path):
    out = tmp_path / "m"
    scan_to_manifest(out, tree, formats=ALLOWLIST_FORMATS)
    data = out.read_bytes()
    bad = tmp_path / "bad"
    bad.write_bytes(data[:-3] + b"xyz")
    with pytest.raises(ManifestError, match="damaged"):
        _ds(str(tree), manifest=bad)
    other = tmp_path / "other.txt"
    other.write_text("hello")
    with pytest.raises(ManifestError, match="not a pyimgdir manifest"):
        _ds(str(tree), manifest=other)
    with pytest.raises(ValueError, match="`manifest` must be"):
        _ds(str(tree), manifest=3)


def test_manifest_is_compact(tmp_path):
    root = tmp_path / "big"
    for c in range(4):
        d = root / f"class_{c}"
        d.mkdir(parents=True)
        for i in range(500):
            (d / f"image_{i:05d}.jpg").touch()
    out = tmp_path / "m"
    header = scan_to_manifest(out, root, formats=ALLOWLIST_FORMATS)
    assert header["files"] == 2000
    # each name (15 bytes) once and one byte for its length; the header is a few hundred bytes
    assert os.path.getsize(out) < 2000 * 17 + 2000


def test_spec_carries_the_manifest(tree, tmp_path):
    out = tmp_path / "m"
    scan_to_manifest(out, tree, formats=ALLOWLIST_FORMATS)
    from pyimgdir.api import dataset_from_spec, load_spec

    spec = load_spec(manifest=out, image_size=(8, 8), seed=4, format="numpy", verbose=False)
    assert spec.manifest == str(out)
    _same(dataset_from_spec(str(tree), spec), _ds(str(tree)))
