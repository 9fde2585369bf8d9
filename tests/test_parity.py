"""Differential tests: pyimgdir against the installed Keras/TF on the same files.

Compared per call: printed messages, exception type and text, file_paths, class_names,
element_spec, cardinality, labels and pixels. Unshuffled epochs are compared element by
element; shuffled epochs as multisets (Keras reshuffles each epoch inside a window, pyimgdir
over the whole dataset — see README "Differences from Keras").
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image, zip_strict
from parity_util import compare, run

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Classes with nested folders, mixed formats and sizes, an empty class, a hidden class,
    a top-level file, a PNG named .jpg, upper-case extensions and non-ASCII names."""
    rng = np.random.default_rng(2024)
    root = tmp_path_factory.mktemp("parity") / "data"
    layout = {
        "B2": 3,
        "_u": 2,
        "a": 4,
        "a/sub": 2,
        "a/sub-2": 1,
        "a/sub/deep": 2,
        "b": 5,
        "é": 2,
        ".hidden": 2,
    }
    k = 0
    for rel, count in layout.items():
        for i in range(count):
            h, w = (int(v) for v in rng.integers(9, 70, 2))
            ext = [".jpg", ".png", ".JPG", ".jpeg", ".PNG"][k % 5]
            k += 1
            write_image(root / rel / f"f {i}{ext}", photo_like(rng, h, w))
    (root / "emptycls").mkdir()
    write_image(root / "top.jpg", photo_like(rng, 20, 30))
    # a PNG under a .jpg name decodes by content
    write_image(root / "b" / "png_named.jpg", photo_like(rng, 33, 17), fmt="PNG")
    # a grayscale JPEG and an RGBA PNG
    write_image(root / "b" / "gray.jpg", photo_like(rng, 25, 40)[:, :, :1], quality=85)
    rgba = np.dstack([photo_like(rng, 31, 22), rng.integers(0, 256, (31, 22), dtype=np.uint8)])
    write_image(root / "_u" / "alpha.png", rgba)
    write_image(root / "a" / "prog.jpg", photo_like(rng, 41, 57), quality=80, progressive=True)
    return root


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(shuffle=False),
        dict(shuffle=True, seed=11),
        dict(labels=None, shuffle=False, batch_size=4),
        dict(label_mode=None, shuffle=False),
        dict(label_mode="categorical", shuffle=False, batch_size=5),
        dict(label_mode="categorical", class_names=["b", "a"], shuffle=False),
        dict(label_mode="binary", class_names=["b", "_u"], shuffle=False, batch_size=3),
        dict(class_names=["a", "a"], shuffle=False),
        dict(batch_size=None, shuffle=False),
        dict(batch_size=None, shuffle=True, seed=3, label_mode="categorical"),
        dict(color_mode="grayscale", shuffle=False, image_size=(17, 23)),
        dict(interpolation="nearest", shuffle=False, image_size=(31, 12)),
        dict(interpolation="NEAREST", shuffle=False, image_size=12),
        dict(interpolation="bicubic", shuffle=False, image_size=(40, 29)),
        dict(interpolation="area", shuffle=False, image_size=(13, 50)),
        dict(interpolation="lanczos3", shuffle=False, image_size=(25, 25), color_mode="grayscale"),
        dict(interpolation="lanczos5", shuffle=False, image_size=(70, 9)),
        dict(interpolation="gaussian", shuffle=False, image_size=(19, 31)),
        dict(interpolation="mitchellcubic", shuffle=False, image_size=(33, 66)),
        dict(interpolation="bicubic", crop_to_aspect_ratio=True, shuffle=False, image_size=(30, 11)),
        dict(interpolation="area", crop_to_aspect_ratio=True, shuffle=False, image_size=(11, 30)),
        dict(interpolation="lanczos5", crop_to_aspect_ratio=True, shuffle=False, data_format="channels_first"),
        dict(interpolation="gaussian", pad_to_aspect_ratio=True, shuffle=False, image_size=(17, 40)),
        dict(interpolation="mitchellcubic", pad_to_aspect_ratio=True, shuffle=False, image_size=(40, 17)),
        dict(interpolation="lanczos3", pad_to_aspect_ratio=True, shuffle=False, data_format="channels_first"),
        dict(validation_split=0.25, subset="both", seed=5),
        dict(validation_split=0.3, subset="training", seed=9, batch_size=4),
        dict(validation_split=0.3, subset="validation", seed=9, shuffle=False),
        dict(validation_split=0.2, subset="validation", shuffle=False),
        dict(crop_to_aspect_ratio=True, shuffle=False, image_size=(20, 45)),
        dict(crop_to_aspect_ratio=True, shuffle=False, image_size=(50, 10), interpolation="nearest"),
        dict(pad_to_aspect_ratio=True, shuffle=False, image_size=(21, 33)),
        dict(pad_to_aspect_ratio=True, shuffle=False, image_size=(8, 8), color_mode="grayscale"),
        dict(data_format="channels_first", shuffle=False, image_size=(13, 19)),
        dict(data_format="Channels_First", crop_to_aspect_ratio=True, shuffle=False, image_size=(13, 19)),
        dict(data_format="channels_first", pad_to_aspect_ratio=True, shuffle=False, interpolation="nearest"),
        dict(follow_links=True, shuffle=False, verbose=False),
        dict(image_size=(64, 64), shuffle=False, batch_size=2),
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_matrix(keras, tree, kwargs):
    kwargs.setdefault("image_size", (24, 32))
    compare(keras, str(tree), **kwargs)


@pytest.fixture(scope="module")
def png_tree(tmp_path_factory):
    rng = np.random.default_rng(99)
    root = tmp_path_factory.mktemp("pngs") / "data"
    for c, count in {"x": 4, "y": 3}.items():
        for i in range(count):
            h, w = (int(v) for v in rng.integers(9, 50, 2))
            img = photo_like(rng, h, w)
            if i % 2:
                img = np.dstack([img, rng.integers(0, 256, (h, w), dtype=np.uint8)])
            write_image(root / c / f"{i}.png", img)
    return root


@pytest.mark.parametrize("kwargs", [dict(), dict(interpolation="nearest"), dict(pad_to_aspect_ratio=True), dict(batch_size=None)], ids=str)
def test_rgba_png(keras, png_tree, kwargs):
    compare(keras, str(png_tree), color_mode="rgba", shuffle=False, image_size=(21, 15), **kwargs)


def test_rgba_from_jpeg_is_rgb_plus_opaque_alpha(keras, tree):
    # Keras fails ("JPEG does not support 4 channels"); pyimgdir adds alpha = 255.
    kw = dict(shuffle=False, image_size=(16, 16), verbose=False, labels=None)
    rgb = np.concatenate(list(keras.utils.image_dataset_from_directory(str(tree), **kw).as_numpy_iterator()))
    rgba = np.concatenate(list(pyimgdir.image_dataset_from_directory(str(tree), color_mode="rgba", **kw).as_numpy_iterator()))
    paths = pyimgdir.image_dataset_from_directory(str(tree), **kw).file_paths
    for i, p in enumerate(paths):
        if "alpha.png" in p:
            continue  # a real alpha channel
        np.testing.assert_array_equal(rgba[i, :, :, :3], rgb[i])
        assert (rgba[i, :, :, 3] == 255).all()


def test_pathlib_and_relative_directory(keras, tree, monkeypatch):
    compare(keras, pathlib.Path(tree), shuffle=False, image_size=(10, 10))
    monkeypatch.chdir(tree.parent)
    res = compare(keras, "data/", shuffle=True, seed=1, image_size=(10, 10))
    assert res.file_paths[0].startswith("data/")


def test_manual_labels(keras, tree):
    ds = pyimgdir.image_dataset_from_directory(str(tree), labels=None, verbose=False, shuffle=False)
    n = len(ds.file_paths)
    ints = [i % 3 for i in range(n)]
    compare(keras, str(tree), labels=list(ints), shuffle=False, image_size=(8, 8))
    compare(keras, str(tree), labels=list(ints), shuffle=True, seed=4, image_size=(8, 8))
    compare(keras, str(tree), labels=[i * 0.5 for i in range(n)], shuffle=False, image_size=(8, 8))
    compare(keras, str(tree), labels=[str(i % 2) for i in range(n)], shuffle=False, image_size=(8, 8))
    compare(keras, str(tree), labels=[bool(i % 2) for i in range(n)], shuffle=False, image_size=(8, 8))
    # categorical depth is the number of distinct labels: label 5 is an all-zero row
    labels = [0 if i % 2 else 5 for i in range(n)]
    compare(keras, str(tree), labels=labels, label_mode="categorical", shuffle=False, image_size=(8, 8))
    compare(keras, str(tree), labels=[i % 2 for i in range(n)], label_mode="binary", shuffle=False, image_size=(8, 8))


def test_labels_list_not_mutated_and_tuple_or_array_accepted(keras, tree):
    n = len(pyimgdir.image_dataset_from_directory(str(tree), labels=None, verbose=False).file_paths)
    labels = [i % 4 for i in range(n)]
    before = list(labels)
    kw = dict(shuffle=True, seed=3, image_size=(8, 8), verbose=False)
    ref = keras.utils.image_dataset_from_directory(str(tree), labels=list(labels), **kw)
    ref_labels = np.concatenate([y for _, y in ref.as_numpy_iterator()])
    for given in (labels, tuple(labels), np.array(labels)):
        ds = pyimgdir.image_dataset_from_directory(str(tree), labels=given, **kw)
        assert ds.file_paths == ref.file_paths
        assert ds.class_names == ref.class_names
        got = np.concatenate([y for _, y in ds.as_numpy_iterator()])
        assert sorted(got.tolist()) == sorted(ref_labels.tolist())
        assert got.dtype == np.int32
    assert labels == before


def test_default_seed_uses_numpy_global_rng(keras, tree):
    np.random.seed(77)
    k = keras.utils.image_dataset_from_directory(str(tree), verbose=False, image_size=(8, 8))
    np.random.seed(77)
    p = pyimgdir.image_dataset_from_directory(str(tree), verbose=False, image_size=(8, 8))
    assert p.file_paths == k.file_paths


def test_class_names_identity_is_kept(keras, tree):
    names = ("b", "a")
    ds = pyimgdir.image_dataset_from_directory(str(tree), class_names=names, verbose=False, image_size=(8, 8))
    assert ds.class_names is names


ERROR_CASES = [
    dict(labels="other"),
    dict(labels=[0, 1], class_names=["a"]),
    dict(label_mode="other"),
    dict(label_mode="INT"),
    dict(color_mode="RGB"),
    dict(image_size=(1, 2, 3)),
    dict(image_size="big"),
    dict(interpolation="cubic"),
    dict(validation_split=2),
    dict(validation_split=0.2, subset="other", seed=1),
    dict(validation_split=0.0, subset="training"),
    dict(validation_split=0.2, subset="training"),
    dict(subset="training"),
    dict(validation_split="0.2", seed=1, subset="training"),
    dict(class_names=["a", "wrong"]),
    dict(labels=None, class_names=["a"]),
    dict(labels=[0, 1], class_names=[]),
    dict(labels=[0, 1, 0]),
    dict(label_mode="binary"),
    dict(data_format="channels_middle"),
    dict(crop_to_aspect_ratio=True, pad_to_aspect_ratio=True),
    dict(crop_to_aspect_ratio=True, interpolation="gaussian"),
    dict(seed=-1),
    dict(seed=2**33),
    dict(validation_split=0.01, subset="training", seed=1),
    dict(validation_split=0.01, subset="both", seed=1),
    dict(class_names=[]),
    # several bad arguments at once: the first check in Keras' order wins
    dict(label_mode="x", color_mode="y", interpolation="z"),
    dict(color_mode="y", image_size=(1, 2, 3), validation_split=5),
]


@pytest.mark.parametrize("kwargs", ERROR_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_errors_match(keras, tree, kwargs):
    compare(keras, str(tree), **kwargs)


def test_missing_directory(keras, tmp_path):
    compare(keras, str(tmp_path / "missing"))
    compare(keras, str(tmp_path / "missing"), labels=None)
    f = tmp_path / "file.txt"
    f.write_text("x")
    compare(keras, str(f))


def test_validation_num_val_zero_returns_everything(keras, tree):
    res = compare(keras, str(tree), validation_split=0.01, subset="validation", seed=1, image_size=(8, 8))
    assert len(res.file_paths) > 0


def test_interpolation_none_raises_like_keras(keras, tree):
    k = run(keras.utils.image_dataset_from_directory, str(tree), interpolation=None)
    p = run(pyimgdir.image_dataset_from_directory, str(tree), interpolation=None)
    assert type(p[1]) is type(k[1]) is AttributeError
    assert str(p[1]) == str(k[1])


def test_every_epoch_is_a_new_permutation(keras, tree):
    ds = pyimgdir.image_dataset_from_directory(str(tree), shuffle=True, seed=8, image_size=(8, 8), batch_size=4, verbose=False)
    epochs = [np.concatenate([y for _, y in ds.as_numpy_iterator()]) for _ in range(3)]
    firsts = [np.concatenate([x.reshape(len(x), -1)[:, :4] for x, _ in ds.as_numpy_iterator()]) for _ in range(2)]
    assert not np.array_equal(firsts[0], firsts[1])
    for e in epochs:
        assert sorted(e.tolist()) == sorted(epochs[0].tolist())
    # the same seed gives the same sequence of epochs
    ds2 = pyimgdir.image_dataset_from_directory(str(tree), shuffle=True, seed=8, image_size=(8, 8), batch_size=4, verbose=False)
    again = np.concatenate([y for _, y in ds2.as_numpy_iterator()])
    np.testing.assert_array_equal(again, epochs[0])


def test_unshuffled_epochs_identical(tree):
    ds = pyimgdir.image_dataset_from_directory(str(tree), shuffle=False, image_size=(8, 8), verbose=False, format="numpy")
    a = [x.copy() for x, _ in ds]
    b = [x.copy() for x, _ in ds]
    for x, y in zip_strict(a, b):
        np.testing.assert_array_equal(x, y)


def test_numpy_format_equals_tf_format(tree):
    kw = dict(shuffle=True, seed=5, image_size=(12, 9), batch_size=6, verbose=False, label_mode="categorical")
    t = pyimgdir.image_dataset_from_directory(str(tree), **kw)
    n = pyimgdir.image_dataset_from_directory(str(tree), format="numpy", **kw)
    assert n.file_paths == t.file_paths and n.class_names == t.class_names and len(n) == len(t)
    for (tx, ty), (nx, ny) in zip_strict(t.as_numpy_iterator(), n):
        np.testing.assert_array_equal(tx, nx)
        np.testing.assert_array_equal(ty, ny)


def test_cardinality_and_static_shape(tf, tree):
    ds = pyimgdir.image_dataset_from_directory(str(tree), image_size=(18, 18), batch_size=5, verbose=False)
    assert int(ds.cardinality()) == len(ds) == -(-len(ds.file_paths) // 5)

    @tf.function
    def shape_of(x):
        return x.shape

    for x, _ in ds.take(1):
        assert x.shape[1:] == (18, 18, 3)
    assert ds.element_spec[0].shape.as_list() == [None, 18, 18, 3]


def test_autotune_is_off_and_can_be_turned_back_on(tf, tree):
    # tf.data's autotuning delays iterator deletion (every epoch's end) by up to ~0.5 s and
    # on 2 cores settles some epochs at one core's worth; the dataset turns it off (README,
    # "Differences from Keras"). Keras' own dataset keeps TF's default.
    ds = pyimgdir.image_dataset_from_directory(
        str(tree), image_size=(18, 18), batch_size=5, shuffle=False, verbose=False
    )
    assert ds.options().autotune.enabled is False
    keras_ds = tf.keras.utils.image_dataset_from_directory(str(tree), image_size=(18, 18), batch_size=5, verbose=False)
    assert keras_ds.options().autotune.enabled is not False
    on = tf.data.Options()
    on.autotune.enabled = True
    again = ds.with_options(on)
    assert again.options().autotune.enabled is True
    a = np.concatenate([x.numpy() for x, _ in ds])
    b = np.concatenate([x.numpy() for x, _ in again])
    np.testing.assert_array_equal(a, b)
