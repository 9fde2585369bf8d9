"""Indexing parity with Keras on symlinks, hidden entries and odd names (file_paths,
class_names, printed messages), plus the symlink-loop case where pyimgdir does better."""

from __future__ import annotations

import os

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image
from parity_util import run

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    rng = np.random.default_rng(77)
    base = tmp_path_factory.mktemp("links")
    root = base / "data"
    outside = base / "outside"
    img = lambda: photo_like(rng, 12, 14)  # noqa: E731
    for rel in ["a/1.jpg", "a/2.png", "a/.hid/3.jpg", "b/x y/4.jpg", "b/5.JPEG", "c/ü/6.png",
                ".hidden/7.jpg", "top.png"]:
        write_image(root / rel, img())
    for rel in ["e.png", "inner/f.jpg"]:
        write_image(outside / rel, img())
    write_image(outside / "classdir" / "g.jpg", img())
    os.symlink(outside, root / "a" / "linksub")                 # nested dir symlink
    os.symlink(outside / "classdir", root / "linkcls")          # top-level class symlink
    os.symlink(outside / "e.png", root / "b" / "filelink.png")  # file symlink
    os.symlink(base / "missing.png", root / "c" / "broken.png")  # broken symlink
    (root / "emptycls").mkdir()
    return root


@pytest.mark.parametrize("labels", ["inferred", None], ids=["inferred", "none"])
@pytest.mark.parametrize("follow_links", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_index_matches_keras(keras, linked, labels, follow_links, shuffle):
    kw = dict(labels=labels, follow_links=follow_links, shuffle=shuffle, seed=13, image_size=(8, 8))
    k, k_exc, k_out = run(keras.utils.image_dataset_from_directory, str(linked), **kw)
    p, p_exc, p_out = run(pyimgdir.image_dataset_from_directory, str(linked), **kw)
    assert k_exc is None and p_exc is None
    assert p_out == k_out
    assert p.file_paths == k.file_paths
    assert p.class_names == k.class_names


def test_manual_labels_follow_index_order(keras, linked):
    n = len(pyimgdir.image_dataset_from_directory(str(linked), labels=None, verbose=False).file_paths)
    labels = [i % 2 for i in range(n)]
    k = keras.utils.image_dataset_from_directory(str(linked), labels=list(labels), shuffle=True, seed=2, verbose=False)
    p = pyimgdir.image_dataset_from_directory(str(linked), labels=list(labels), shuffle=True, seed=2, verbose=False)
    assert p.file_paths == k.file_paths and p.class_names == k.class_names


def test_broken_symlink_fails_at_iteration_naming_the_file(linked):
    ds = pyimgdir.image_dataset_from_directory(
        str(linked), class_names=["c"], shuffle=False, verbose=False, format="numpy", image_size=(8, 8)
    )
    assert any(p.endswith("broken.png") for p in ds.file_paths)
    with pytest.raises(pyimgdir.ImageLoadError, match="broken.png.*No such file"):
        list(ds)


def test_symlink_loop_is_walked_once(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "loopy"
    write_image(root / "a" / "1.png", photo_like(rng, 8, 8))
    write_image(root / "a" / "sub" / "2.png", photo_like(rng, 8, 8))
    os.symlink(root / "a", root / "a" / "sub" / "back")  # Keras: a/sub/back/sub/back/... until ELOOP
    ds = pyimgdir.image_dataset_from_directory(root, follow_links=True, shuffle=False, verbose=False, format="numpy")
    assert ds.file_paths == [str(root / "a" / "1.png"), str(root / "a" / "sub" / "2.png")]
