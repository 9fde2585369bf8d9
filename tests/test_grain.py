"""format="grain": against Keras' own grain output on the same files (TensorFlow backend):
the same files, order, element types, dtypes, shapes and pixels (bit for bit), and Grain's
machinery (checkpointing, transformations, mp_prefetch) on pyimgdir's dataset."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import photo_like, write_image, zip_strict
import pyimgdir

pytestmark = [
    pytest.mark.tf,
    # Keras' grain path opens each file with Pillow and leaves it for the GC to close.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"),
]
grain = pytest.importorskip("grain")


def keras_grain(directory, **kw):
    from keras.src.utils import image_dataset_utils

    if isinstance(kw.get("labels"), list):
        kw["labels"] = list(kw["labels"])  # Keras shuffles a labels list in place
    with warnings.catch_warnings():
        # Pillow warns about palette images with byte transparency when Keras converts them.
        warnings.simplefilter("ignore", UserWarning)
        return image_dataset_utils.image_dataset_from_directory(directory, format="grain", **kw)


def ours(directory, **kw):
    return pyimgdir.image_dataset_from_directory(directory, format="grain", **kw)


def epoch(ds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = []
        for el in ds:
            out.append(el if isinstance(el, tuple) else (el,))
        return out


def assert_same(k_ds, p_ds):
    """Same attributes, element count, element types, dtypes, shapes and values."""
    assert p_ds.file_paths == k_ds.file_paths
    assert p_ds.class_names == k_ds.class_names
    k_els, p_els = epoch(k_ds), epoch(p_ds)
    assert len(p_els) == len(k_els)
    worst = 0.0
    for k_el, p_el in zip_strict(k_els, p_els):
        assert len(k_el) == len(p_el)
        for a, b in zip_strict(k_el, p_el):
            assert type(b) is type(a)
            assert tuple(b.shape) == tuple(a.shape)
            assert str(b.dtype) == str(a.dtype)
            worst = max(worst, float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))))
    assert worst == 0.0, f"largest pixel difference {worst}"
    return k_els


def _pil(arr, mode=None):
    return Image.fromarray(arr) if mode is None else Image.fromarray(arr, mode=mode)


@pytest.fixture(scope="module")
def mixed_tree(tmp_path_factory):
    """Every colour mode and format Keras' grain path reads through Pillow (except 16-bit
    grey PNG, a documented difference: see test_16bit_grey_png_difference)."""
    root = tmp_path_factory.mktemp("grain") / "data"
    rng = np.random.default_rng(7)

    def size():
        return int(rng.integers(14, 70)), int(rng.integers(14, 70))

    files = {
        "jpg_420.jpg": lambda: _pil(photo_like(rng, *size())),
        "jpg_444.jpg": lambda: (_pil(photo_like(rng, *size())), {"subsampling": 0, "quality": 85}),
        "jpg_422.jpg": lambda: (_pil(photo_like(rng, *size())), {"subsampling": 1, "quality": 70}),
        "jpg_progressive.jpg": lambda: (_pil(photo_like(rng, *size())), {"progressive": True}),
        "jpg_grey.jpg": lambda: _pil(photo_like(rng, *size(), 1)[..., 0]),
        "jpg_cmyk.jpg": lambda: _pil(photo_like(rng, *size())).convert("CMYK"),
        "png_rgb.png": lambda: _pil(photo_like(rng, *size())),
        "png_rgba.png": lambda: _pil(photo_like(rng, *size(), 4)),
        "png_grey.png": lambda: _pil(photo_like(rng, *size(), 1)[..., 0]),
        "png_grey_alpha.png": lambda: _pil(photo_like(rng, *size(), 2), "LA"),
        "png_palette.png": lambda: _pil(photo_like(rng, *size())).convert("P"),
        "png_palette_trns.png": lambda: (
            _pil(photo_like(rng, *size())).convert("P"), {"transparency": bytes(range(0, 256, 9))}),
        "png_grey_trns.png": lambda: (_pil(photo_like(rng, *size(), 1)[..., 0]), {"transparency": 128}),
        "png_1bit.png": lambda: _pil(photo_like(rng, *size(), 1)[..., 0] > 127),
        "gif.gif": lambda: _pil(photo_like(rng, *size())).convert("P"),
        "gif_trns.gif": lambda: (_pil(photo_like(rng, *size())).convert("P"), {"transparency": 5}),
        "bmp_rgb.bmp": lambda: _pil(photo_like(rng, *size())),
        "bmp_palette.bmp": lambda: _pil(photo_like(rng, *size())).convert("P"),
        "bmp_grey.bmp": lambda: _pil(photo_like(rng, *size(), 1)[..., 0]),
    }
    for i, (name, make) in enumerate(sorted(files.items())):
        made = make()
        im, kw = made if isinstance(made, tuple) else (made, {})
        path = root / ("a" if i % 2 else "b") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path, **kw)
    # A 16-bit RGB PNG (Pillow keeps the high byte, as the TF path does).
    rgb16 = (photo_like(rng, 21, 33).astype(np.uint16) * 257 + rng.integers(0, 200, (21, 33, 3))).astype(">u2")
    _write_png16_rgb(root / "a" / "png_rgb16.png", rgb16)
    return root


def _write_png16_rgb(path: Path, arr: np.ndarray) -> None:
    import struct
    import zlib

    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("color_mode", ["rgb", "grayscale", "rgba"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5"])
def test_pixels_match_keras_grain(keras, mixed_tree, color_mode, interpolation):
    kw = dict(color_mode=color_mode, interpolation=interpolation, image_size=(23, 31), batch_size=4,
              seed=11, verbose=False)
    assert_same(keras_grain(mixed_tree, **kw), ours(mixed_tree, **kw))


@pytest.mark.parametrize("color_mode", ["rgb", "grayscale", "rgba"])
@pytest.mark.parametrize("fit", ["crop_to_aspect_ratio", "pad_to_aspect_ratio"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "area", "lanczos3"])
@pytest.mark.parametrize("image_size", [(17, 40), (40, 17)])
def test_crop_and_pad_match_keras_grain(keras, mixed_tree, color_mode, fit, interpolation, image_size):
    kw = dict(color_mode=color_mode, interpolation=interpolation, image_size=image_size, batch_size=8,
              shuffle=False, verbose=False, **{fit: True})
    assert_same(keras_grain(mixed_tree, **kw), ours(mixed_tree, **kw))


@pytest.mark.parametrize(
    "kw",
    [
        dict(label_mode="int"),
        dict(label_mode="categorical"),
        dict(label_mode="binary"),
        dict(label_mode=None),
        dict(batch_size=None),
        dict(batch_size=None, label_mode="categorical"),
        dict(shuffle=False),
        dict(data_format="channels_first"),
        dict(data_format="channels_first", interpolation="nearest", color_mode="grayscale"),
        dict(labels=[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4]),
    ],
)
def test_element_structure_matches_keras_grain(keras, mixed_tree, kw):
    args = dict(image_size=(12, 15), batch_size=6, seed=5, verbose=False)
    args.update(kw)
    assert_same(keras_grain(mixed_tree, **args), ours(mixed_tree, **args))


def test_subset_both_and_shuffle_once_by_seed(keras, mixed_tree):
    kw = dict(image_size=(10, 10), batch_size=3, seed=99, validation_split=0.25, subset="both", verbose=False)
    k_train, k_val = keras_grain(mixed_tree, **kw)
    p_train, p_val = ours(mixed_tree, **kw)
    assert isinstance(p_train, grain.IterDataset) and isinstance(p_val, grain.IterDataset)
    assert isinstance(p_train, pyimgdir.GrainDataset)
    assert isinstance(iter(p_train), grain.DatasetIterator)
    first = assert_same(k_train, p_train)
    assert_same(k_val, p_val)
    # Keras' grain path shuffles once, by seed: every epoch has the same order.
    again = epoch(p_train)
    for a, b in zip_strict(first, again):
        np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))


def test_16bit_grey_png_difference(keras, tmp_path):
    """Documented difference: Keras keeps 16-bit grey PNGs as 0..65535 for
    color_mode="grayscale" (Pillow's I;16); pyimgdir clips at 255 there as Pillow does for
    rgb/rgba, where the two agree."""
    grey = (np.arange(20 * 30, dtype=np.uint32).reshape(20, 30) * 109 % 65536).astype(np.uint16)
    (tmp_path / "d" / "a").mkdir(parents=True)
    Image.frombytes("I;16", (30, 20), grey.tobytes()).save(tmp_path / "d" / "a" / "x.png")
    kw = dict(image_size=(20, 30), batch_size=1, label_mode=None, shuffle=False, verbose=False)
    for mode in ("rgb", "rgba"):
        assert_same(keras_grain(tmp_path / "d", color_mode=mode, **kw), ours(tmp_path / "d", color_mode=mode, **kw))
    k = np.asarray(epoch(keras_grain(tmp_path / "d", color_mode="grayscale", **kw))[0][0])
    p = np.asarray(epoch(ours(tmp_path / "d", color_mode="grayscale", **kw))[0][0])
    np.testing.assert_array_equal(k[0, ..., 0], grey.astype(np.float32))
    np.testing.assert_array_equal(p[0, ..., 0], np.minimum(grey, 255).astype(np.float32))


def test_interpolations_keras_grain_cannot_resize_are_refused_at_once(keras, mixed_tree):
    for method in ("gaussian", "mitchellcubic"):
        with pytest.raises(ValueError, match="Invalid value for argument `interpolation`"):
            ours(mixed_tree, interpolation=method, verbose=False)
        # Keras raises the same error, at the first element.
        ds = keras_grain(mixed_tree, interpolation=method, verbose=False)
        with pytest.raises(ValueError, match="Invalid value for argument `interpolation`"), warnings.catch_warnings():
            # Keras' loader threads may convert a palette PNG with byte transparency before the
            # resize fails; Pillow's UserWarning about it would otherwise win the race.
            warnings.simplefilter("ignore", UserWarning)
            next(iter(ds))


def test_checkpoint_get_state_set_state(keras, mixed_tree):
    kw = dict(image_size=(9, 9), batch_size=3, seed=4, verbose=False)
    ds = ours(mixed_tree, **kw)
    full = epoch(ds)
    it = iter(ds)
    for _ in range(2):
        next(it)
    state = it.get_state()
    assert state["batches"] == 2
    rest = [tuple(np.asarray(t) for t in el) for el in it]
    np.testing.assert_array_equal(rest[0][0], np.asarray(full[2][0]))
    # A fresh iterator restored from the state yields exactly the rest.
    it2 = iter(ds)
    it2.set_state(state)
    rest2 = [tuple(np.asarray(t) for t in el) for el in it2]
    assert len(rest2) == len(full) - 2
    for a, b in zip_strict(rest, rest2):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # The state also works as pyimgdir's initial_state for a new dataset.
    resumed = epoch(ours(mixed_tree, initial_state=state, **kw))
    assert len(resumed) == len(full) - 2
    np.testing.assert_array_equal(np.asarray(resumed[0][0]), rest[0][0])
    with pytest.raises(ValueError, match="seed"):
        iter(ds).set_state(dict(state, seed=5))


def test_grain_transformations_apply(keras, mixed_tree):
    kw = dict(image_size=(9, 9), batch_size=4, seed=4, verbose=False)
    ds = ours(mixed_tree, **kw)
    doubled = ds.map(lambda el: (el[0] * 2, el[1]))
    assert isinstance(doubled, grain.IterDataset)
    plain = epoch(ds)
    for a, b in zip_strict(plain, epoch(doubled)):
        np.testing.assert_array_equal(np.asarray(a[0]) * 2, np.asarray(b[0]))


def test_shard_on_error_and_cache(keras, mixed_tree, tmp_path):
    kw = dict(image_size=(9, 9), batch_size=2, seed=4, verbose=False, label_mode=None)
    full = np.concatenate([np.asarray(e[0]) for e in epoch(ours(mixed_tree, **kw))])
    parts = [np.concatenate([np.asarray(e[0]) for e in epoch(ours(mixed_tree, shard=(i, 2), shard_remainder="drop", **kw))])
             for i in range(2)]
    n = len(full) // 2 * 2
    np.testing.assert_array_equal(np.stack([parts[0], parts[1]], 1).reshape(-1, 9, 9, 3), full[:n])
    # Grain's own sharding options give the same shares.
    for i in range(2):
        opts = grain.sharding.ShardOptions(shard_index=i, shard_count=2, drop_remainder=True)
        via_grain = np.concatenate([np.asarray(e[0]) for e in epoch(ours(mixed_tree, shard=opts, **kw))])
        np.testing.assert_array_equal(via_grain, parts[i])
    cached = ours(mixed_tree, cache="memory", **kw)
    first, second = epoch(cached), epoch(cached)
    for a, b in zip_strict(first, second):
        np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    np.testing.assert_array_equal(np.concatenate([np.asarray(e[0]) for e in first]), full)
    # A broken file: skipped and reported (on_error="skip"), or raised naming it.
    tree = tmp_path / "t"
    write_image(tree / "a" / "good.png", photo_like(np.random.default_rng(1), 12, 12))
    (tree / "a" / "bad.jpg").write_bytes(b"\xff\xd8\xff nonsense")
    skip = ours(tree, on_error="skip", **kw)
    assert sum(len(e[0]) for e in epoch(skip)) == 1
    assert [Path(f.path).name for f in skip.skipped_files] == ["bad.jpg"]
    with pytest.raises(pyimgdir.ImageLoadError, match="bad.jpg"):
        epoch(ours(tree, **kw))


@pytest.mark.slow
def test_mp_prefetch_matches_keras_grain(keras, mixed_tree):
    """Grain's multiprocessing (set_slice in each worker) gives Keras' sequence."""
    from absl import flags

    if not flags.FLAGS.is_parsed():  # Grain's worker code reads its absl flags
        flags.FLAGS.mark_as_parsed()
    kw = dict(image_size=(9, 9), batch_size=2, seed=4, verbose=False)
    options = grain.MultiprocessingOptions(num_workers=2)
    k = epoch(keras_grain(mixed_tree, **kw).mp_prefetch(options))
    p = epoch(ours(mixed_tree, **kw).mp_prefetch(options))
    assert len(k) == len(p)
    for a, b in zip_strict(k, p):
        np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
        np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b[1]))


def test_validate_uses_the_datasets_decoder(keras, tmp_path):
    """A CMYK JPEG has no grayscale form in TensorFlow's decoder but has one in Pillow's:
    validate=True checks files with the decoder the dataset will use."""
    rng = np.random.default_rng(2)
    tree = tmp_path / "t"
    (tree / "a").mkdir(parents=True)
    Image.fromarray(photo_like(rng, 20, 24)).convert("CMYK").save(tree / "a" / "cmyk.jpg")
    Image.fromarray(photo_like(rng, 20, 24)).save(tree / "a" / "rgb.jpg")
    kw = dict(image_size=(8, 8), color_mode="grayscale", verbose=False, validate=True, shuffle=False)
    assert_same(keras_grain(tree, **{k: v for k, v in kw.items() if k != "validate"}), ours(tree, **kw))
    with pytest.raises(pyimgdir.InvalidFilesError, match="cmyk.jpg"):
        pyimgdir.image_dataset_from_directory(tree, format="numpy", **kw)
