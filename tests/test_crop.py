"""Training input (csrc/core/crop.cpp, pyimgdir/options/augment.py): random-resized crops and flips.

Exactness: every sample equals TensorFlow's ``tf.image.resize(tf.image.decode_and_crop_jpeg(
data, box), size)`` (flipped where flipped) for the box pyimgdir reports. Determinism: the
samples depend only on (seed, epoch, file index). Distribution: the boxes follow
torchvision's RandomResizedCrop sampler.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image, zip_strict
from torchvision_ref import fallback_size, reference_boxes

JPEG_VARIANTS = [
    dict(quality=90),  # 4:2:0
    dict(quality=85, subsampling=1),  # 4:2:2
    dict(quality=92, subsampling=0),  # 4:4:4
    dict(quality=80, progressive=True),
    dict(quality=75, subsampling=2, optimize=True),
    dict(quality=88, restart_marker_rows=1),  # restart markers: the 1/8 path skips segments
    dict(quality=90, subsampling=0, restart_marker_blocks=5),
]


def _cmyk_jpeg(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).convert("CMYK").save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def crop_tree(tmp_path_factory):
    """JPEGs of every kind (sizes 120-700 so crops are aligned, unaligned, skipped and
    row-skipped), a grayscale and a CMYK JPEG, and PNG/BMP/GIF files."""
    rng = np.random.default_rng(2024)
    root = tmp_path_factory.mktemp("crop") / "data"
    k = 0
    for i in range(15):
        h, w = (int(v) for v in rng.integers(120, 700, 2))
        write_image(root / "jpeg" / f"{k:03d}.jpg", photo_like(rng, h, w), **JPEG_VARIANTS[i % len(JPEG_VARIANTS)])
        k += 1
    write_image(root / "jpeg" / f"{k:03d}.jpg", photo_like(rng, 333, 517)[:, :, :1], quality=88)
    k += 1
    (root / "cmyk" / "0.jpg").parent.mkdir()
    (root / "cmyk" / "0.jpg").write_bytes(_cmyk_jpeg(photo_like(rng, 271, 402)))
    for ext in (".png", ".bmp", ".gif"):
        for i in range(2):
            h, w = (int(v) for v in rng.integers(80, 300, 2))
            write_image(root / "other" / f"{i}{ext}", photo_like(rng, h, w))
    return root


def _reference(tf, path, box, size, method, channels, flip_h, flip_v, dtype):
    """TensorFlow's crop -> resize -> flip for one file and one box."""
    data = tf.io.read_file(path)
    y, x, h, w = (int(v) for v in box)
    if path.endswith(".jpg"):
        img = tf.image.decode_and_crop_jpeg(data, [y, x, h, w], channels=min(channels, 3))
        if channels == 4:
            img = tf.concat([img, tf.fill(tf.concat([tf.shape(img)[:2], [1]], 0), tf.constant(255, tf.uint8))], -1)
    elif path.endswith((".gif", ".bmp")) and channels != 3:
        # TensorFlow refuses some channel counts for GIF and BMP; pyimgdir's full decode is
        # tested against it elsewhere (test_decode_bmp_gif.py), so take that and crop here.
        from pyimgdir import _core

        img = _core.decode(data.numpy(), channels)[y : y + h, x : x + w]
    else:
        img = tf.io.decode_image(data, channels=channels, expand_animations=False)
        img = tf.image.crop_to_bounding_box(img, y, x, h, w)
    out = tf.image.resize(img, size, method=method).numpy()
    if dtype == "uint8" and out.dtype != np.uint8:
        out = np.floor(np.clip(out, 0, 255) + 0.5).astype(np.uint8)
    if flip_h:
        out = out[:, ::-1]
    if flip_v:
        out = out[::-1]
    return out


def _samples(ds, epoch):
    return np.concatenate([b[0] if isinstance(b, tuple) else b for b in ds.epoch(epoch)])


@pytest.mark.parametrize(
    "method,dtype,color_mode",
    [
        ("bilinear", "float32", "rgb"),
        ("bilinear", "uint8", "rgb"),
        ("nearest", "uint8", "rgb"),
        ("bicubic", "float32", "rgb"),
        ("area", "float32", "rgb"),
        ("bilinear", "float32", "grayscale"),
        ("bilinear", "float32", "rgba"),
    ],
)
def test_samples_equal_tensorflow_decode_and_crop(tf, crop_tree, method, dtype, color_mode):
    size = (56, 48)
    # (TensorFlow refuses CMYK JPEGs as grayscale, and so does pyimgdir)
    classes = ["jpeg", "other"] if color_mode == "grayscale" else None
    ds = pyimgdir.image_dataset_from_directory(
        crop_tree, format="numpy", seed=11, image_size=size, batch_size=7, interpolation=method, dtype=dtype,
        color_mode=color_mode, class_names=classes, verbose=False, random_resized_crop=True,
        random_flip="horizontal_and_vertical", jpeg_downscale=False,
    )
    channels = {"rgb": 3, "grayscale": 1, "rgba": 4}[color_mode]
    checked = flipped = cropped = 0
    for epoch in (0, 3):
        got = _samples(ds, epoch)
        boxes = ds.crop_boxes(epoch)
        assert len(boxes["file_index"]) == len(got)
        for i, f in enumerate(boxes["file_index"]):
            box = (boxes["y"][i], boxes["x"][i], boxes["height"][i], boxes["width"][i])
            ref = _reference(tf, ds.file_paths[f], box, size, method, channels, boxes["flip_horizontal"][i],
                             boxes["flip_vertical"][i], dtype)
            assert got[i].dtype == ref.dtype
            np.testing.assert_array_equal(got[i], ref, err_msg=f"{ds.file_paths[f]} box {box} epoch {epoch}")
            checked += 1
            flipped += bool(boxes["flip_horizontal"][i] or boxes["flip_vertical"][i])
            cropped += bool(boxes["height"][i] < boxes["image_height"][i] or boxes["width"][i] < boxes["image_width"][i])
    assert checked == 2 * len(ds.file_paths) >= 2 * 22 and flipped > 10 and cropped > 30


def test_channels_first_and_tf_output_equal_numpy(tf, crop_tree):
    kw = dict(seed=5, image_size=(40, 44), batch_size=6, verbose=False, random_resized_crop=True,
              random_flip="horizontal")
    ref = _samples(pyimgdir.image_dataset_from_directory(crop_tree, format="numpy", **kw), 0)
    cf = _samples(pyimgdir.image_dataset_from_directory(crop_tree, format="numpy", data_format="channels_first",
                                                        **kw), 0)
    np.testing.assert_array_equal(cf, ref.transpose(0, 3, 1, 2))
    ds = pyimgdir.image_dataset_from_directory(crop_tree, **kw)
    epochs = [np.concatenate([x for x, _ in ds.as_numpy_iterator()]) for _ in range(2)]
    np.testing.assert_array_equal(epochs[0], ref)
    np.testing.assert_array_equal(epochs[1], _samples(pyimgdir.image_dataset_from_directory(
        crop_tree, format="numpy", **kw), 1))
    assert not np.array_equal(epochs[0], epochs[1])


def _scaled_box(H, W, box, out):
    """The README's rule: the largest DCT scale 1/d (d = 8, 4, 2) at which the crop, mapped
    onto libjpeg's scaled image (edges rounded to the nearest pixel), still covers the output."""

    def mapped(d):
        y, x, h, w = box
        oh, ow = -(-H // d), -(-W // d)
        rd = lambda a: (2 * a + d) // (2 * d)  # noqa: E731
        y1, x1 = max(min(oh, rd(y + h)), 1), max(min(ow, rd(x + w)), 1)
        y0, x0 = min(rd(y), y1 - 1), min(rd(x), x1 - 1)
        return y0, x0, y1 - y0, x1 - x0

    for d in (8, 4, 2):
        b = mapped(d)
        if b[2] >= out[0] and b[3] >= out[1]:
            return d, b
    return 1, tuple(box)


def test_dct_scaled_crops_equal_tensorflow_at_that_scale(tf, tmp_path):
    """jpeg_downscale (on by default with random_resized_crop) decodes a crop at least twice
    the output at 1/2, 1/4 or 1/8: each sample then equals TensorFlow's decode_and_crop_jpeg
    with that `ratio` over the mapped box; jpeg_downscale=False equals the full-scale crop."""
    rng = np.random.default_rng(8)
    for i in range(10):
        write_image(tmp_path / "d" / "c" / f"{i}.jpg", photo_like(rng, 300 + 200 * i, 1900 - 150 * i),
                    **JPEG_VARIANTS[i % len(JPEG_VARIANTS)])
    size = (112, 120)
    kw = dict(format="numpy", seed=3, image_size=size, batch_size=6, labels=None, verbose=False,
              random_resized_crop=True, random_flip="horizontal")
    root = tmp_path / "d"
    fast_ds = pyimgdir.image_dataset_from_directory(root, **kw)
    exact_ds = pyimgdir.image_dataset_from_directory(root, jpeg_downscale=False, **kw)
    scales = []
    for epoch in range(6):
        fast, exact = _samples(fast_ds, epoch), _samples(exact_ds, epoch)
        boxes = exact_ds.crop_boxes(epoch)
        for i, f in enumerate(boxes["file_index"]):
            box = (boxes["y"][i], boxes["x"][i], boxes["height"][i], boxes["width"][i])
            flip = boxes["flip_horizontal"][i]
            path = exact_ds.file_paths[f]
            np.testing.assert_array_equal(exact[i], _reference(tf, path, box, size, "bilinear", 3, flip, False,
                                                               "float32"))
            d, sbox = _scaled_box(boxes["image_height"][i], boxes["image_width"][i], box, size)
            scales.append(d)
            ref = tf.image.resize(tf.image.decode_and_crop_jpeg(tf.io.read_file(path), list(sbox), channels=3,
                                                                ratio=d), size).numpy()
            np.testing.assert_array_equal(fast[i], ref[:, ::-1] if flip else ref, err_msg=f"{path} {box} 1/{d}")
    assert {1, 2, 4, 8} <= set(scales)


def test_non_jpeg_crops_come_from_full_decode(tf, crop_tree):
    ds = pyimgdir.image_dataset_from_directory(
        crop_tree / "other", format="numpy", seed=2, image_size=(30, 30), batch_size=4, labels=None, verbose=False,
        random_resized_crop=((0.2, 0.6), (0.5, 2.0)), random_flip="vertical",
    )
    got = _samples(ds, 1)
    boxes = ds.crop_boxes(1)
    for i, f in enumerate(boxes["file_index"]):
        box = (boxes["y"][i], boxes["x"][i], boxes["height"][i], boxes["width"][i])
        assert not boxes["flip_horizontal"][i]
        np.testing.assert_array_equal(got[i], _reference(tf, ds.file_paths[f], box, (30, 30), "bilinear", 3, False,
                                                         boxes["flip_vertical"][i], "float32"))


@pytest.mark.parametrize("fit", [{}, dict(crop_to_aspect_ratio=True), dict(pad_to_aspect_ratio=True)],
                         ids=["stretch", "crop", "pad"])
def test_flip_alone_mirrors_keras_output(keras, crop_tree, fit):
    kw = dict(image_size=(36, 52), shuffle=False, labels=None, verbose=False, **fit)
    ref = np.concatenate(list(keras.utils.image_dataset_from_directory(crop_tree, **kw).as_numpy_iterator()))
    ds = pyimgdir.image_dataset_from_directory(crop_tree, format="numpy", seed=9, random_flip="horizontal", **kw)
    got = _samples(ds, 2)
    boxes = ds.crop_boxes(2)
    assert (boxes["height"] == boxes["image_height"]).all() and (boxes["y"] == 0).all()
    flips = boxes["flip_horizontal"]
    assert 0 < flips.sum() < len(flips)
    np.testing.assert_array_equal(got[flips], ref[flips][:, :, ::-1])
    np.testing.assert_array_equal(got[~flips], ref[~flips])


# ---------------------------------------------------------------------------------------
# Determinism: (seed, epoch, file index) alone


def _by_file(ds, epoch):
    x = _samples(ds, epoch)
    return {int(f): x[i] for i, f in enumerate(ds.crop_boxes(epoch)["file_index"])}


def test_independent_of_threads_batch_size_and_rebuild(crop_tree):
    kw = dict(format="numpy", seed=77, image_size=(32, 32), labels=None, verbose=False, random_resized_crop=True,
              random_flip="horizontal")
    a = _samples(pyimgdir.image_dataset_from_directory(crop_tree, batch_size=5, num_threads=1, **kw), 4)
    b = _samples(pyimgdir.image_dataset_from_directory(crop_tree, batch_size=8, num_threads=2, **kw), 4)
    c = np.stack(list(pyimgdir.image_dataset_from_directory(crop_tree, batch_size=None, num_threads=3, **kw)
                      .epoch(4)))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    other = _samples(pyimgdir.image_dataset_from_directory(crop_tree, batch_size=5, **{**kw, "seed": 78}), 4)
    assert not np.array_equal(a, other)


def test_epochs_differ(crop_tree):
    ds = pyimgdir.image_dataset_from_directory(crop_tree, format="numpy", seed=1, image_size=(32, 32),
                                               verbose=False, random_resized_crop=True, shuffle=False)
    b0, b1 = ds.crop_boxes(0), ds.crop_boxes(1)
    np.testing.assert_array_equal(b0["file_index"], b1["file_index"])
    same = (b0["y"] == b1["y"]) & (b0["x"] == b1["x"]) & (b0["height"] == b1["height"])
    assert same.sum() <= 2
    assert not np.array_equal(_samples(ds, 0), _samples(ds, 1))


@pytest.mark.parametrize("remainder", ["pad", "drop"])
def test_shards_reproduce_the_unsharded_samples(crop_tree, remainder):
    kw = dict(format="numpy", seed=4, image_size=(24, 24), batch_size=3, labels=None, verbose=False,
              random_resized_crop=True, random_flip="horizontal_and_vertical")
    whole = _by_file(pyimgdir.image_dataset_from_directory(crop_tree, **kw), 2)
    seen = set()
    for s in range(3):
        part = _by_file(pyimgdir.image_dataset_from_directory(crop_tree, shard=(s, 3), shard_remainder=remainder,
                                                              **kw), 2)
        for f, x in part.items():
            np.testing.assert_array_equal(x, whole[f])
        seen |= set(part)
    assert len(seen) >= len(whole) - 2


def test_resume_mid_epoch_yields_the_rest_exactly(crop_tree):
    kw = dict(format="numpy", seed=21, image_size=(24, 28), batch_size=4, verbose=False, random_resized_crop=True,
              random_flip="horizontal")
    ds = pyimgdir.image_dataset_from_directory(crop_tree, **kw)
    first = list(iter(ds))  # epoch 0
    it = iter(ds)  # epoch 1
    head = [next(it) for _ in range(2)]
    state = ds.state()
    assert state["epoch"] == 1 and state["batches"] == 2
    rest = list(it)
    resumed = pyimgdir.image_dataset_from_directory(crop_tree, initial_state=state, **kw)
    again = list(iter(resumed))
    assert len(again) == len(rest)
    for (x, y), (u, v) in zip_strict(again, rest):
        np.testing.assert_array_equal(x, u)
        np.testing.assert_array_equal(y, v)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in head + rest]), _samples(ds, 1))
    assert not np.array_equal(first[0][0], head[0][0])


def test_torch_dataset_applies_the_same_crops(crop_tree):
    torch = pytest.importorskip("torch")
    kw = dict(seed=13, image_size=(24, 24), batch_size=4, verbose=False, random_resized_crop=True,
              random_flip="horizontal")
    ref = pyimgdir.image_dataset_from_directory(crop_tree, format="numpy", **kw)
    tds = pyimgdir.TorchDataset(crop_tree, **kw)
    tds.set_epoch(3)
    got = torch.cat([x for x, _ in tds]).numpy()
    np.testing.assert_array_equal(got, _samples(ref, 3))
    for k, v in ref.crop_boxes(3).items():
        np.testing.assert_array_equal(tds.crop_boxes()[k], v)


def test_subset_both_randomises_only_training(keras, crop_tree):
    kw = dict(validation_split=0.3, subset="both", seed=99, image_size=(30, 30), verbose=False)
    k_train, k_val = keras.utils.image_dataset_from_directory(crop_tree, **kw)
    train, val = pyimgdir.image_dataset_from_directory(crop_tree, random_resized_crop=True,
                                                       random_flip="horizontal", **kw)
    ref_val = np.concatenate([x for x, _ in k_val.as_numpy_iterator()])
    for _ in range(2):
        np.testing.assert_array_equal(np.concatenate([x for x, _ in val.as_numpy_iterator()]), ref_val)
    boxes = val.crop_boxes(0)
    assert (boxes["height"] == boxes["image_height"]).all() and not boxes["flip_horizontal"].any()
    assert train.file_paths == k_train.file_paths
    t = train.crop_boxes(0)
    assert (t["height"] < t["image_height"]).any()


def test_public_crop_boxes_matches_the_dataset(crop_tree):
    ds = pyimgdir.image_dataset_from_directory(crop_tree, format="numpy", seed=4_000_000_007, verbose=False,
                                               random_resized_crop=((0.3, 0.9), (0.5, 2.0)), random_flip="vertical")
    b = ds.crop_boxes(5)
    sizes = np.stack([b["image_height"], b["image_width"]], 1)
    c = pyimgdir.crop_boxes(ds.state()["seed"], 5, b["file_index"], sizes,
                            random_resized_crop=((0.3, 0.9), (0.5, 2.0)), random_flip="vertical")
    for k in ("y", "x", "height", "width", "flip_horizontal", "flip_vertical"):
        np.testing.assert_array_equal(c[k], b[k], err_msg=k)


# ---------------------------------------------------------------------------------------
# Distribution: torchvision's sampler
#
# One reference everywhere: torchvision's get_params written out with a fixed numpy
# Generator (torchvision_ref.py), so the outcome does not depend on what is installed. Both
# sides have fixed seeds, so each run gives the same statistics; the threshold still accounts
# for every comparison made (Bonferroni), so that a correct sampler passes for all but a
# fraction ALPHA of seeds while a wrong one (uniform instead of log-uniform aspect, a biased
# position, a missing fallback) fails by orders of magnitude.

DISTRIBUTION_CASES = [
    ((375, 500), (0.08, 1.0), (3 / 4, 4 / 3)),
    ((500, 333), (0.08, 1.0), (3 / 4, 4 / 3)),
    ((224, 224), (0.08, 1.0), (3 / 4, 4 / 3)),
    ((3024, 4032), (0.08, 1.0), (3 / 4, 4 / 3)),
    ((60, 400), (0.08, 1.0), (3 / 4, 4 / 3)),  # mostly the fallback
    ((480, 640), (0.25, 0.5), (0.5, 2.0)),
]
BOX_FEATURES = ("area", "aspect", "y", "x", "fallback")
ALPHA = 1e-3  # family-wise: the chance that a correct sampler fails any comparison below
ALPHA_EACH = ALPHA / (len(DISTRIBUTION_CASES) * len(BOX_FEATURES))


@pytest.mark.parametrize("shape,scale,ratio", DISTRIBUTION_CASES)
def test_box_distribution_matches_torchvision(shape, scale, ratio):
    stats = pytest.importorskip("scipy.stats")
    n_ours, n_ref = 100_000, 400_000
    H, W = shape
    ref = reference_boxes(np.random.default_rng([H, W, 2024]), n_ref, H, W, scale, ratio).astype(np.float64)
    got = pyimgdir.crop_boxes(2024, 0, np.arange(n_ours), np.tile([H, W], (n_ours, 1)), random_resized_crop=(scale, ratio))
    ours = np.stack([got["y"], got["x"], got["height"], got["width"]], 1).astype(np.float64)
    assert ours.shape == (n_ours, 4)
    assert (ours[:, 2:] >= 1).all() and (ours[:, 2] <= H).all() and (ours[:, 3] <= W).all() and (ours[:, :2] >= 0).all()
    assert (ours[:, 0] + ours[:, 2] <= H).all() and (ours[:, 1] + ours[:, 3] <= W).all()
    fh, fw = fallback_size(H, W, ratio)

    def features(b):
        area = b[:, 2] * b[:, 3] / (H * W)
        aspect = b[:, 3] / b[:, 2]
        # where the box sits in the room it has (0.5 when it fills a side)
        cy = np.where(b[:, 2] < H, b[:, 0] / np.maximum(H - b[:, 2], 1), 0.5)
        cx = np.where(b[:, 3] < W, b[:, 1] / np.maximum(W - b[:, 3], 1), 0.5)
        return {"area": area, "aspect": aspect, "y": cy, "x": cx}

    fr, fo = features(ref), features(ours)
    for k in fr:
        res = stats.ks_2samp(fr[k], fo[k])
        assert res.pvalue > ALPHA_EACH, f"{k}: KS D={res.statistic:.4f} p={res.pvalue:.2g} (threshold {ALPHA_EACH:.2g})"
    # the fallback's box (or one of the same size) is taken as often: two-proportion z-test
    k_ref = int(np.sum((ref[:, 2] == fh) & (ref[:, 3] == fw)))
    k_ours = int(np.sum((ours[:, 2] == fh) & (ours[:, 3] == fw)))
    pooled = (k_ref + k_ours) / (n_ref + n_ours)
    if 0 < pooled < 1:
        z = (k_ours / n_ours - k_ref / n_ref) / np.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_ours))
        p = 2 * stats.norm.sf(abs(z))
        assert p > ALPHA_EACH, f"fallback-size boxes: {k_ours}/{n_ours} against {k_ref}/{n_ref}, p={p:.2g}"


# ---------------------------------------------------------------------------------------
# Options


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(random_resized_crop="yes"), "random_resized_crop"),
        (dict(random_resized_crop=((0.5, 0.1), (1, 1))), "0 < min <= max"),
        (dict(random_resized_crop=((0.1, 1.0), (0, 1))), "0 < min <= max"),
        (dict(random_resized_crop={"scale": (0.1, 1.0), "aspect": (1, 2)}), "keys"),
        (dict(random_flip="diagonal"), "random_flip"),
        (dict(random_flip=True), "random_flip"),
        (dict(random_resized_crop=True, crop_to_aspect_ratio=True), "cannot be combined"),
        (dict(random_resized_crop=True, pad_to_aspect_ratio=True), "cannot be combined"),
        (dict(random_flip="horizontal", cache="memory"), "cache"),
        (dict(jpeg_downscale="auto"), "jpeg_downscale"),
    ],
)
def test_bad_options_are_refused(crop_tree, kw, match):
    with pytest.raises(ValueError, match=match):
        pyimgdir.image_dataset_from_directory(crop_tree, format="numpy", seed=1, verbose=False, **kw)


def test_dict_and_tuple_forms_agree(crop_tree):
    kw = dict(format="numpy", seed=1, verbose=False)
    a = pyimgdir.image_dataset_from_directory(crop_tree, random_resized_crop={"scale": (0.2, 0.4)}, **kw)
    b = pyimgdir.image_dataset_from_directory(crop_tree, random_resized_crop=((0.2, 0.4), (3 / 4, 4 / 3)), **kw)
    for k, v in a.crop_boxes(0).items():
        np.testing.assert_array_equal(v, b.crop_boxes(0)[k])


def test_grain_output_applies_the_crops(tf, crop_tree):
    """format="grain" (Pillow's decoding conventions: the accurate integer DCT) draws the same
    boxes; each sample equals decode_and_crop_jpeg(dct_method="INTEGER_ACCURATE") + resize."""
    pytest.importorskip("grain")
    size = (40, 36)
    ds = pyimgdir.image_dataset_from_directory(
        crop_tree, format="grain", seed=3, image_size=size, batch_size=5, class_names=["jpeg"], verbose=False,
        random_resized_crop=True, random_flip="horizontal", jpeg_downscale=False,
    )
    seen = []
    for epoch in range(2):  # every iteration of the dataset is the next epoch
        got = np.concatenate([np.asarray(x) for x, _ in ds])
        boxes = ds.crop_boxes(epoch)
        seen.append(boxes["y"])
        for i, f in enumerate(boxes["file_index"]):
            box = [int(boxes[k][i]) for k in ("y", "x", "height", "width")]
            ref = tf.image.resize(tf.image.decode_and_crop_jpeg(tf.io.read_file(ds.file_paths[f]), box, channels=3,
                                                                dct_method="INTEGER_ACCURATE"), size).numpy()
            np.testing.assert_array_equal(got[i], ref[:, ::-1] if boxes["flip_horizontal"][i] else ref)
    assert not np.array_equal(seen[0], seen[1])


def test_fuzz_corpus_through_the_crop_path(tmp_path):
    """Every file of the fuzzing corpus (tests/data/fuzz_corpus) through random crops at
    full and DCT scale (1/8 included): delivered or reported, never a crash; a file the full
    decode accepts is never refused by a crop of it."""
    import shutil

    from pyimgdir import _core

    corpus = sorted(p for p in (Path(__file__).parent / "data" / "fuzz_corpus").iterdir() if p.suffix != ".md")
    root = tmp_path / "d" / "c"
    root.mkdir(parents=True)
    full_bad = set()
    for p in corpus:
        shutil.copy(p, root / (p.name + ".jpg"))
        try:
            _core.decode(p.read_bytes(), 3)
        except _core.DecodeError:
            full_bad.add(str(root / (p.name + ".jpg")))
    for size, downscale in (((24, 20), False), ((6, 5), None)):
        for epoch in range(3):
            ds = pyimgdir.image_dataset_from_directory(
                root.parent, image_size=size, batch_size=7, verbose=False, format="numpy", on_error="skip",
                seed=5, num_threads=2, random_resized_crop=True, random_flip="horizontal_and_vertical",
                jpeg_downscale=downscale,
            )
            delivered = sum(len(x) for x, _ in ds.epoch(epoch))
            skipped = {f.path for f in ds.skipped_files}
            assert delivered + len(skipped) == len(corpus)
            assert skipped <= full_bad
