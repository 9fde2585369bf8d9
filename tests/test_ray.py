"""pyimgdir.ray_dataset on a local Ray cluster (2 CPUs) started and stopped here: the same
rows as format="numpy", Ray's iterators and splits, the epochs, bad files, subsets, URLs,
the Ray Train example, and the message without Ray."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import pyimgdir

ray = pytest.importorskip("ray")

REPO = Path(__file__).resolve().parent.parent
# Ray warns about its own deprecated settings when its DataContext is first made.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
              pytest.mark.filterwarnings("ignore::FutureWarning:ray.*")]
SIZE = (24, 20)


@pytest.fixture(scope="module")
def cluster():
    # A local cluster on the loopback address only
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             configure_logging=False, _node_ip_address="127.0.0.1")
    # conftest.py keeps Ray's node address on the loopback interface
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """3 classes, 26 JPEGs and PNGs of varied sizes."""
    from conftest import photo_like, write_image

    root = tmp_path_factory.mktemp("ray") / "data"
    rng = np.random.default_rng(7)
    for c, count in (("cat", 9), ("dog", 8), ("eel", 9)):
        for i in range(count):
            h, w = (int(v) for v in rng.integers(18, 70, 2))
            write_image(root / c / f"img_{i:02d}{'.png' if i % 4 == 3 else '.jpg'}", photo_like(rng, h, w))
    return root


def numpy_epoch(directory, epoch=0, **kw):
    """(images, labels, paths) of one epoch of format="numpy", in its order."""
    nd = pyimgdir.image_dataset_from_directory(directory, format="numpy", batch_size=5, verbose=False, **kw)
    xs, ys = [], []
    for batch in nd.epoch(epoch):
        x, y = batch if isinstance(batch, tuple) else (batch, None)
        xs.append(x)
        ys.append(y)
    paths = None
    if kw.get("on_error", "raise") == "raise":  # crop_boxes reads every header
        paths = [nd.file_paths[i] for i in nd.crop_boxes(epoch)["file_index"].tolist()]
    labels = np.concatenate(ys) if ys[0] is not None else None
    return np.concatenate(xs), labels, paths, nd


def rows_of(ds):
    batch = ds.take_batch(batch_size=10_000, batch_format="numpy")
    return batch["image"], batch.get("label"), list(batch["path"])


CASES = {
    "defaults": dict(seed=5),
    "crops_uint8_categorical": dict(seed=11, dtype="uint8", label_mode="categorical",
                                    random_resized_crop=True, random_flip="horizontal_and_vertical"),
    "grayscale_nearest_no_labels": dict(shuffle=False, color_mode="grayscale", interpolation="nearest",
                                        labels=None, crop_to_aspect_ratio=True),
    "binary_pad": dict(seed=2, label_mode="binary", class_names=["cat", "eel"], pad_to_aspect_ratio=True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rows_equal_numpy(cluster, tree, case):
    kw = dict(CASES[case], image_size=SIZE)
    ds = pyimgdir.ray_dataset(tree, include_paths=True, epoch=0, rows_per_block=4, verbose=False, **kw)
    images, labels, paths = rows_of(ds)
    want_x, want_y, want_paths, nd = numpy_epoch(tree, 0, **kw)
    assert paths == want_paths
    assert images.dtype == want_x.dtype and images.shape == want_x.shape
    np.testing.assert_array_equal(images, want_x)
    if want_y is None:
        assert labels is None
    else:
        assert labels.dtype == want_y.dtype
        np.testing.assert_array_equal(labels, want_y)
    assert ds.class_names == nd.class_names
    assert list(ds.file_paths) == list(nd.file_paths)


def test_executions_are_epochs_and_deterministic(cluster, tree):
    kw = dict(image_size=SIZE, seed=3, random_resized_crop=True, random_flip="horizontal", dtype="uint8")
    ds = pyimgdir.ray_dataset(tree, include_paths=True, rows_per_block=3, verbose=False, **kw)
    # known without reading (an execution would advance the epoch)
    assert ds.schema().names == ["image", "label", "path"] and ds.count() == len(ds.file_paths)
    first, second = rows_of(ds), rows_of(ds)  # executions 0 and 1: epochs 0 and 1
    for epoch, (images, _, paths) in enumerate((first, second)):
        want_x, _, want_paths, _ = numpy_epoch(tree, epoch, **kw)
        assert paths == want_paths
        np.testing.assert_array_equal(images, want_x)
    assert first[2] != second[2]  # a new order each epoch
    again = rows_of(pyimgdir.ray_dataset(tree, include_paths=True, rows_per_block=5, verbose=False, **kw))
    assert again[2] == first[2]  # the same seed, another block size: the same epoch 0
    np.testing.assert_array_equal(again[0], first[0])
    pinned = pyimgdir.ray_dataset(tree, include_paths=True, epoch=1, verbose=False, **kw)
    for _ in range(2):
        images, _, paths = rows_of(pinned)
        assert paths == second[2]
        np.testing.assert_array_equal(images, second[0])


# Ray hands torch read-only arrays from its object store (no copy) and silences torch's
# warning about it, but from its prefetch thread, where the silencing does not hold.
@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable:UserWarning")
def test_iter_batches_and_torch(cluster, tree):
    torch = pytest.importorskip("torch")
    kw = dict(image_size=SIZE, seed=1, epoch=0, rows_per_block=4, verbose=False)
    want_x, want_y, want_paths, _ = numpy_epoch(tree, 0, image_size=SIZE, seed=1)
    sizes, paths = [], []
    for batch in pyimgdir.ray_dataset(tree, include_paths=True, **kw).iter_batches(batch_size=7):
        sizes.append(len(batch["image"]))
        paths += list(batch["path"])
    assert sizes == [7, 7, 7, 5] and paths == want_paths
    # without paths (the default) every column becomes a tensor
    ds = pyimgdir.ray_dataset(tree, **kw)
    xs, ys = [], []
    for batch in ds.iter_torch_batches(batch_size=8):
        assert set(batch) == {"image", "label"}
        assert batch["image"].dtype == torch.float32 and batch["image"].shape[1:] == (*SIZE, 3)
        assert batch["label"].dtype == torch.int32
        xs.append(batch["image"].numpy())
        ys.append(batch["label"].numpy())
    np.testing.assert_array_equal(np.concatenate(xs), want_x)
    np.testing.assert_array_equal(np.concatenate(ys), want_y)


def test_streaming_split_covers_each_file_once(cluster, tree):
    ds = pyimgdir.ray_dataset(tree, include_paths=True, image_size=SIZE, seed=4, rows_per_block=2,
                              verbose=False, dtype="uint8")
    splits = ds.streaming_split(2)
    seen = [[[], []], [[], []]]  # [epoch][split]

    def consume(i):
        for epoch in range(2):  # each iteration of a split is the next epoch
            for batch in splits[i].iter_batches(batch_size=3, batch_format="numpy"):
                seen[epoch][i] += list(batch["path"])

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for epoch in range(2):
        assert seen[epoch][0] and seen[epoch][1]
        assert sorted(seen[epoch][0] + seen[epoch][1]) == sorted(ds.file_paths)
    assert seen[0] != seen[1]


def test_skip_reports_bad_files(cluster, tree, tmp_path):
    import shutil

    root = tmp_path / "with_bad"
    shutil.copytree(tree, root)
    bad = root / "dog" / "img_99.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a JPEG at all")
    ds = pyimgdir.ray_dataset(root, include_paths=True, image_size=SIZE, seed=9, epoch=0, on_error="skip",
                              rows_per_block=4, verbose=False)
    images, labels, paths = rows_of(ds)
    assert str(bad) not in paths and len(paths) == len(ds.file_paths) - 1
    assert [f.path for f in ds.skipped_files] == [str(bad)]
    assert ds.skipped_files[0].reason
    want_x, want_y, _, _ = numpy_epoch(root, 0, image_size=SIZE, seed=9, on_error="skip")
    np.testing.assert_array_equal(images, want_x)
    np.testing.assert_array_equal(labels, want_y)
    with pytest.raises(pyimgdir.ImageLoadError, match="img_99.jpg"):
        rows_of(pyimgdir.ray_dataset(root, include_paths=True, image_size=SIZE, seed=9, verbose=False))
    # validate=True finds it while building: listed at once, never read by a task
    checked = pyimgdir.ray_dataset(root, include_paths=True, image_size=SIZE, seed=9, on_error="skip",
                                   validate=True, verbose=False)
    assert [f.path for f in checked.skipped_files] == [str(bad)]
    assert len(rows_of(checked)[2]) == len(paths)


def test_validation_split(cluster, tree):
    kw = dict(image_size=SIZE, seed=8, validation_split=0.25, random_flip="horizontal")
    train, val = pyimgdir.ray_dataset(tree, include_paths=True, subset="both", epoch=0, verbose=False, **kw)
    want_train = numpy_epoch(tree, 0, subset="training", **kw)
    assert rows_of(train)[2] == want_train[2]
    np.testing.assert_array_equal(rows_of(train)[0], want_train[0])
    val_images, _, val_paths = rows_of(val)
    assert sorted(val_paths) == sorted(numpy_epoch(tree, 0, subset="validation", **kw)[2])
    assert not set(val_paths) & set(want_train[2])
    only_val = pyimgdir.ray_dataset(tree, include_paths=True, subset="validation", epoch=0, verbose=False, **kw)
    assert len(rows_of(only_val)[2]) == len(val_paths)


def test_file_url(cluster, tree):
    """A URL directory: every read task opens the store again in its worker."""
    kw = dict(image_size=SIZE, seed=6, shuffle=True)
    url_rows = rows_of(pyimgdir.ray_dataset("file://" + str(tree), include_paths=True, epoch=0, rows_per_block=4,
                                            verbose=False, **kw))
    local = rows_of(pyimgdir.ray_dataset(tree, include_paths=True, epoch=0, verbose=False, **kw))
    assert [p.replace("file://", "") for p in url_rows[2]] == local[2]
    np.testing.assert_array_equal(url_rows[0], local[0])
    np.testing.assert_array_equal(url_rows[1], local[1])


def test_s3_url(cluster, tree, s3_server):
    """An s3:// directory (moto's server on 127.0.0.1): listed by the driver, fetched by the
    workers with the endpoint passed in storage_options."""
    s3_server.make_bucket("ray-data")
    s3_server.upload_tree(tree, "ray-data", "train")
    kw = dict(image_size=SIZE, seed=6, random_flip="horizontal", epoch=0, verbose=False)
    url_rows = rows_of(pyimgdir.ray_dataset("s3://ray-data/train", include_paths=True, rows_per_block=4,
                                            storage_options={"endpoint_url": s3_server.endpoint}, **kw))
    local = rows_of(pyimgdir.ray_dataset(tree, include_paths=True, **kw))
    assert [p.replace("s3://ray-data/train", str(tree)) for p in url_rows[2]] == local[2]
    np.testing.assert_array_equal(url_rows[0], local[0])
    np.testing.assert_array_equal(url_rows[1], local[1])


def test_refused_arguments(tree):
    for name, value in (("batch_size", 8), ("format", "numpy"), ("shard", (0, 2)), ("cache", "memory")):
        with pytest.raises(TypeError, match=name):
            pyimgdir.ray_dataset(tree, **{name: value})
    with pytest.raises(ValueError, match="rows_per_block"):
        pyimgdir.ray_dataset(tree, rows_per_block=0)
    with pytest.raises(ValueError, match="memory://"):
        pyimgdir.ray_dataset("memory://somewhere")


def test_without_ray_says_what_to_install(tree):
    code = ("import sys; sys.modules['ray'] = None\n"
            "import pyimgdir\n"
            "assert 'ray_dataset' in pyimgdir.__all__\n"
            "try:\n"
            f"    pyimgdir.ray_dataset({str(tree)!r})\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'pip install "pyimgdir[ray]"' in out.stdout


def test_ray_train_example(cluster, tmp_path):
    """examples/ray_train.py joins this cluster: one TorchTrainer worker, read tasks on the
    other CPU, one epoch on a tiny sample."""
    pytest.importorskip("torch")
    pytest.importorskip("ray.train")
    from pyimgdir.sample import make_sample

    sample = make_sample(tmp_path / "sample", classes=2, per_class=10, size_range=(40, 80))
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, PYTHONUNBUFFERED="1")
    try:
        out = subprocess.run([sys.executable, str(REPO / "examples" / "ray_train.py"), str(sample),
                              "--epochs", "1", "--image-size", "32", "--workers", "1"],
                             capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired as e:  # say what it was waiting for
        text = [(s.decode(errors="replace") if isinstance(s, bytes) else s or "") for s in (e.stdout, e.stderr)]
        pytest.fail(f"the example ran past 600 s; cluster resources {ray.available_resources()} of "
                    f"{ray.cluster_resources()}\nstdout: {text[0][-3000:]}\nstderr: {text[1][-6000:]}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "classes: ['class_0', 'class_1']; train files: 16, validation files: 4" in out.stdout
    assert "epoch 1: loss" in out.stdout and "on 4 images" in out.stdout
