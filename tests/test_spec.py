"""The options object: one resolved LoadSpec per dataset, mapped onto the core's config in
one place, and the cache key derived from its pixel-relevant fields."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image, zip_strict
from pyimgdir.api import dataset_from_spec, load_spec
from pyimgdir.options.spec import LoadSpec

# Every field is either one that changes the samples (and so the cache key) or one that
# does not. A new field must be put in one of the two lists deliberately.
PIXEL_FIELDS = {
    "height", "width", "channels", "interpolation", "fit", "channels_first", "dtype",
    "jpeg_downscale", "max_pixels", "decoder",
    "random_resized_crop", "random_flip",
}
# Pixel fields whose samples change every epoch: a cache is refused with them.
RANDOM_FIELDS = {"random_resized_crop", "random_flip"}
OTHER_FIELDS = {
    "labels", "class_names", "follow_links", "verbose", "shuffle", "seed", "validation_split",
    "subset", "label_mode", "batch_size", "format", "num_threads", "prefetch", "pin_memory",
    "on_error", "validate", "shard", "shard_remainder", "initial_state", "cache",
    # URL directories: how bytes are fetched, never what they decode to
    "storage_options", "requests_in_flight", "bytes_in_flight", "request_timeout", "retries",
    # a saved index: which files are read (checked against the tree), never how they decode
    "manifest",
}


@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / "data"
    for i in range(10):
        write_image(root / f"c{i % 2}" / f"{i:02d}.jpg", photo_like(rng, 30 + i, 41))
    return root


def test_every_field_is_classified():
    names = {f.name for f in dataclasses.fields(LoadSpec)}
    assert names == PIXEL_FIELDS | OTHER_FIELDS
    assert set(LoadSpec().pixel_fields()) == PIXEL_FIELDS


def test_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LoadSpec().height = 3


def test_core_config_carries_every_core_option():
    spec = LoadSpec(height=17, width=23, channels=4, interpolation="bicubic", fit="pad",
                    channels_first=True, dtype="uint8", jpeg_downscale=True, max_pixels=12345,
                    num_threads=3, prefetch=5, pin_memory=True, on_error="skip")
    c = spec.core_config()
    assert (c.height, c.width, c.channels) == (17, 23, 4)
    assert (c.interpolation, c.fit, c.channels_first, c.dtype) == ("bicubic", "pad", True, "uint8")
    assert (c.jpeg_downscale, c.max_pixels, c.num_threads, c.prefetch) == (True, 12345, 3, 5)
    assert (c.lock_memory, c.skip_errors) == (True, True)
    assert LoadSpec(on_error="raise").core_config().skip_errors is False
    assert LoadSpec(on_error="warn").core_config().skip_errors is True
    assert LoadSpec().core_config().decoder == "tensorflow"
    assert LoadSpec(decoder="pillow", fit="pad_resize").core_config().decoder == "pillow"
    assert LoadSpec(fit="pad_resize").core_config().fit == "pad_resize"
    crop = LoadSpec(seed=-1, random_resized_crop=((0.2, 0.5), (0.5, 2.0)), random_flip="vertical").core_config()
    assert (crop.random_crop, crop.crop_scale, crop.crop_ratio) == (True, [0.2, 0.5], [0.5, 2.0])
    assert (crop.random_flip, crop.augment_seed, crop.jpeg_downscale) == ("vertical", 2**64 - 1, True)
    plain = LoadSpec().core_config()
    assert (plain.random_crop, plain.random_flip, plain.jpeg_downscale) == (False, "none", False)
    assert LoadSpec(random_resized_crop=((0.1, 1), (1, 1)), jpeg_downscale=False).core_config().jpeg_downscale is False


def test_the_call_resolves_once_into_the_dataset_spec(tree):
    kw = dict(image_size=(20, 24), batch_size=3, seed=4, interpolation="NEAREST", color_mode="grayscale",
              crop_to_aspect_ratio=True, verbose=False)
    ds = pyimgdir.image_dataset_from_directory(tree, format="numpy", **kw)
    spec = ds._source.spec
    assert spec == load_spec(format="numpy", **kw)
    assert (spec.height, spec.width, spec.channels) == (20, 24, 1)
    assert (spec.interpolation, spec.fit, spec.dtype, spec.seed) == ("nearest", "crop", "uint8", 4)
    # The same spec gives the same dataset through the CLI's path.
    again = dataset_from_spec(tree, spec)
    assert again.file_paths == ds.file_paths
    for (x1, y1), (x2, y2) in zip_strict(ds, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_keras_kwargs_round_trip():
    spec = load_spec(image_size=(9, 8), color_mode="rgba", pad_to_aspect_ratio=True, seed=3,
                     validation_split=0.25, subset="training", data_format="channels_first")
    assert load_spec(**spec.keras_kwargs()) == spec


def _epoch_hits(tree, cache, **kw):
    """(misses, hits) of one epoch of a fresh dataset on a file cache filled earlier."""
    ds = pyimgdir.image_dataset_from_directory(tree, format="numpy", verbose=False, shuffle=False,
                                               batch_size=4, cache=cache, **kw)
    for _ in ds:
        pass
    c = ds._source.cache
    return c.misses, c.hits


BASE = dict(image_size=(16, 18), color_mode="rgb", interpolation="bilinear")

PIXEL_CHANGES = {
    "height": dict(image_size=(17, 18)),
    "width": dict(image_size=(16, 19)),
    "channels": dict(color_mode="grayscale"),
    "interpolation": dict(interpolation="area"),
    "fit": dict(crop_to_aspect_ratio=True),
    "channels_first": dict(data_format="channels_first"),
    "dtype": dict(dtype="uint8"),
    "jpeg_downscale": dict(jpeg_downscale=True),
    "max_pixels": dict(max_pixels=1 << 20),
    "decoder": dict(decoder="pillow"),
}


def test_pixel_changes_cover_every_pixel_field():
    assert set(PIXEL_CHANGES) | RANDOM_FIELDS == PIXEL_FIELDS


@pytest.mark.parametrize("change", [dict(random_resized_crop=True), dict(random_flip="horizontal")])
def test_random_fields_refuse_a_cache(tree, tmp_path, change):
    assert load_spec(**BASE, **change).pixel_fields() != load_spec(**BASE).pixel_fields()
    with pytest.raises(ValueError, match="every epoch's samples differ"):
        _epoch_hits(tree, str(tmp_path / "s.cache"), **BASE, **change)


@pytest.mark.parametrize("field", sorted(PIXEL_CHANGES))
def test_changing_a_pixel_field_invalidates_the_cache(tree, tmp_path, field):
    cache = str(tmp_path / "s.cache")
    assert _epoch_hits(tree, cache, **BASE) == (10, 0)  # fills it
    assert _epoch_hits(tree, cache, **BASE) == (0, 10)  # served from it
    changed = {**BASE, **PIXEL_CHANGES[field]}
    assert load_spec(**changed).pixel_fields()[field] != load_spec(**BASE).pixel_fields()[field]
    assert _epoch_hits(tree, cache, **changed) == (10, 0)


@pytest.mark.parametrize("change", [dict(num_threads=1), dict(prefetch=5), dict(pin_memory=True),
                                    dict(on_error="skip"), dict(validate=True)])
def test_changing_other_fields_keeps_the_cache(tree, tmp_path, change):
    cache = str(tmp_path / "s.cache")
    assert _epoch_hits(tree, cache, **BASE) == (10, 0)
    assert _epoch_hits(tree, cache, **BASE, **change) == (0, 10)
