"""channels_first output written straight into the planes by the bilinear resize: the same
values as the channels_last output transposed (itself bit-identical to TF), for every
colour mode, dtype and fit, at sizes that do and do not take the SIMD and non-temporal
store paths; and equal to Keras' own channels_first output at a large size."""

from __future__ import annotations

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image
from parity_util import compare


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    rng = np.random.default_rng(15)
    root = tmp_path_factory.mktemp("cf") / "data"
    for i in range(12):
        h, w = (int(v) for v in rng.integers(20, 420, 2))
        ext = ".png" if i % 4 == 3 else ".jpg"
        write_image(root / f"c{i % 2}" / f"{i:02d}{ext}", photo_like(rng, h, w))
    return root


def load(tree, **kw):
    ds = pyimgdir.image_dataset_from_directory(tree, format="numpy", shuffle=False, verbose=False, batch_size=5, **kw)
    return np.concatenate([x for x, _ in ds])


SIZES = [(13, 19), (7, 4), (1, 1), (224, 224), (300, 301), (97, 256)]
# padding a very wide or tall image into a tiny output leaves no pixels (an error, as in Keras)
CASES = [(size, fit) for fit in ("stretch", "crop", "pad") for size in SIZES if fit != "pad" or min(size) >= 13]


@pytest.mark.parametrize("size,fit", CASES, ids=str)
@pytest.mark.parametrize("color_mode", ["rgb", "grayscale", "rgba"])
@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_same_values_as_channels_last_transposed(tree, size, color_mode, dtype, fit):
    kw = dict(image_size=size, color_mode=color_mode, dtype=dtype,
              crop_to_aspect_ratio=fit == "crop", pad_to_aspect_ratio=fit == "pad")
    last = load(tree, data_format="channels_last", **kw)
    first = load(tree, data_format="channels_first", **kw)
    assert first.dtype == np.dtype(dtype) and first.shape == (len(last), last.shape[3], *size)
    np.testing.assert_array_equal(first, last.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("kwargs", [dict(image_size=(224, 224)), dict(image_size=(256, 250), pad_to_aspect_ratio=True)],
                         ids=str)
def test_matches_keras_at_a_large_size(keras, tree, kwargs):
    compare(keras, str(tree), data_format="channels_first", shuffle=False, **kwargs)
