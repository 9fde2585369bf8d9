"""The batch pipeline: order independent of threads, kept batches never overwritten,
errors that name the file, clean shutdown."""

from __future__ import annotations

import gc
import os
import re
from pathlib import Path

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image, zip_strict
from pyimgdir import _core


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(5)
    root = tmp_path_factory.mktemp("pipe")
    paths = []
    for i in range(37):
        h, w = (int(v) for v in rng.integers(20, 120, 2))
        ext = ".jpg" if i % 3 else ".png"
        paths.append(str(write_image(root / f"{i:02d}{ext}", photo_like(rng, h, w))))
    return paths


def epoch(loader, order, batch_size):
    it = loader.iterate(np.asarray(order, dtype=np.int64), batch_size)
    out = []
    while True:
        got = it.next(loader.config)
        if got is None:
            break
        images, first, failures = got
        assert failures == []
        out.append((images, first))
    it.close()
    return out


def test_thread_count_does_not_change_output(files):
    order = np.random.default_rng(1).permutation(len(files))
    results = []
    for threads in (1, 2, 3, 8):
        loader = _core.Loader(files, 24, 30, 3, num_threads=threads, prefetch=3)
        results.append(np.concatenate([b for b, _ in epoch(loader, order, 5)]))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_batches_follow_the_order_and_match_single_image_path(files):
    loader = _core.Loader(files, 16, 16, 3, num_threads=2)
    order = [5, 3, 36, 0, 1, 2, 7]
    batches = epoch(loader, order, 3)
    assert [len(b) for b, _ in batches] == [3, 3, 1]
    assert [first for _, first in batches] == [0, 3, 6]
    flat = np.concatenate([b for b, _ in batches])
    for k, i in enumerate(order):
        np.testing.assert_array_equal(flat[k], loader.load(i))


def _epoch_any_order(loader, order, batch_size):
    it = loader.iterate(order, batch_size)
    out = []
    while (got := it.next(loader.config)) is not None:
        out.append(got[0].copy())
    it.close()
    return np.concatenate(out)


@pytest.mark.parametrize("dtype", ["l", "q", "L", "Q", "i", "I", "<i8", ">i8", ">u4", "h", "u1"])
def test_order_is_read_in_any_integer_dtype(files, dtype):
    # numpy has two descriptors for each 64-bit integer ('l'/'q', 'L'/'Q'); arrays rebuilt
    # from buffers (pickle 5, Ray's object store) may carry either. Every one, any byte
    # order and any stride gives the files of the int64 order.
    loader = _core.Loader(files, 12, 14, 3, num_threads=2)
    ref = np.array([5, 3, 30, 0, 1, 2, 7, 36], dtype=np.int64)
    expected = _epoch_any_order(loader, ref, 3)
    order = ref.astype(np.dtype(dtype))
    assert order.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(_epoch_any_order(loader, order, 3), expected)
    strided = np.repeat(order, 2)[::2]  # a non-contiguous view
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(_epoch_any_order(loader, strided, 3), expected)


def test_order_out_of_range_or_negative_is_refused(files):
    loader = _core.Loader(files, 12, 14, 3, num_threads=2)
    for bad in (np.array([0, -1], dtype="q"), np.array([0, 2**33], dtype=">i8"), np.array([-2], dtype="h")):
        with pytest.raises((IndexError, ValueError), match="out of range"):
            it = loader.iterate(bad, 2)
            it.next(loader.config)


def test_kept_batches_are_never_overwritten(files):
    loader = _core.Loader(files, 20, 20, 3, num_threads=2, prefetch=1)
    order = np.arange(len(files))
    kept = [b for b, _ in epoch(loader, order, 4)]          # hold every batch
    copies = [b.copy() for b in kept]
    # more epochs reuse pooled buffers: the kept ones must not be among them
    for _ in range(3):
        for b, _ in epoch(loader, order[::-1], 4):
            pass
    for k, c in zip_strict(kept, copies):
        np.testing.assert_array_equal(k, c)


def test_views_keep_the_buffer_alive(files):
    loader = _core.Loader(files, 20, 20, 3, num_threads=2, prefetch=1)
    batches = epoch(loader, np.arange(8), 8)
    view = batches[0][0][3]
    ref = view.copy()
    del batches
    gc.collect()
    for _ in range(3):
        epoch(loader, np.arange(8)[::-1], 8)
    np.testing.assert_array_equal(view, ref)


def test_error_names_the_file_and_earlier_batches_arrive(tmp_path, files):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(Path(files[1]).read_bytes()[:200])
    paths = files[:6] + [str(bad)] + files[6:10]
    loader = _core.Loader(paths, 16, 16, 3, num_threads=2)
    it = loader.iterate(np.arange(len(paths), dtype=np.int64), 3)
    first = it.next(loader.config)
    second = it.next(loader.config)
    assert first is not None and second is not None
    with pytest.raises(pyimgdir.ImageLoadError) as info:
        it.next(loader.config)
    assert info.value.path == str(bad)
    assert "broken.jpg" in str(info.value)
    assert "JPEG" in info.value.reason
    assert info.value.position == 6
    assert isinstance(info.value, ValueError)
    it.close()


def test_missing_file_error(tmp_path, files):
    paths = [files[0], str(tmp_path / "gone.png")]
    loader = _core.Loader(paths, 8, 8, 3)
    with pytest.raises(pyimgdir.ImageLoadError, match="gone.png.*No such file"):
        epoch(loader, [0, 1], 2)


def test_abandoned_iterator_stops_cleanly(files):
    # The workers are native threads (threading.active_count() does not see them): the
    # process's task list does. Compared as sets, as other libraries' threads may come and go.
    tasks = lambda: set(os.listdir("/proc/self/task"))  # noqa: E731
    loader = _core.Loader(files, 64, 64, 3, num_threads=2, prefetch=2)
    before = tasks()
    started = set()
    for _ in range(5):
        it = loader.iterate(np.arange(len(files), dtype=np.int64), 2)
        it.next(loader.config)
        started |= tasks() - before
        del it  # abandoned mid-epoch: destructor joins the workers
        assert not started & tasks(), "a worker outlived its iterator"
    gc.collect()
    assert started  # the workers were seen running


def test_several_iterators_at_once(files):
    loader = _core.Loader(files, 12, 12, 3, num_threads=2)
    order = np.arange(len(files), dtype=np.int64)
    a, b = loader.iterate(order, 4), loader.iterate(order[::-1].copy(), 4)
    xa, xb = [], []
    while True:
        ga, gb = a.next(loader.config), b.next(loader.config)
        if ga is None:
            assert gb is None
            break
        xa.append(ga[0])
        xb.append(gb[0])
    np.testing.assert_array_equal(np.concatenate(xa), np.concatenate(xb)[::-1])


def test_dataset_level_error_through_numpy_and_tf(tmp_path, files):
    root = tmp_path / "d"
    (root / "c").mkdir(parents=True)
    for i, f in enumerate(files[:5]):
        (root / "c" / f"{i}{f[-4:]}").write_bytes(Path(f).read_bytes())
    (root / "c" / "zzz_bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    ds = pyimgdir.image_dataset_from_directory(root, shuffle=False, batch_size=2, format="numpy", verbose=False)
    got = []
    with pytest.raises(pyimgdir.ImageLoadError, match="zzz_bad.png"):
        for x, y in ds:
            got.append(len(x))
    assert got == [2, 2]
    tf = pytest.importorskip("tensorflow")
    tds = pyimgdir.image_dataset_from_directory(root, shuffle=False, batch_size=2, verbose=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="zzz_bad.png"):
        for _ in tds:
            pass


def test_uint8_output_rounds_the_float_resize(files):
    f = _core.Loader(files, 33, 21, 3, dtype="float32", num_threads=1)
    u = _core.Loader(files, 33, 21, 3, dtype="uint8", num_threads=1)
    for i in range(0, len(files), 5):
        ref = np.clip(np.floor(f.load(i) + 0.5), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(u.load(i), ref)


@pytest.mark.parametrize("size", [(224, 224), (97, 256), (50, 301)], ids=str)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_uint8_output_rounds_the_float_resize_at_large_sizes(files, size, channels):
    # rows long enough for the 32-values-at-a-time AVX2 rounding (and the SSE2 one)
    f = _core.Loader(files, *size, channels, dtype="float32", num_threads=1)
    u = _core.Loader(files, *size, channels, dtype="uint8", num_threads=1)
    for i in range(0, len(files), 3):
        ref = np.clip(np.floor(f.load(i) + 0.5), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(u.load(i), ref)


def test_the_same_without_avx2():
    # The SSE2 passes, as on a CPU without AVX2 (PYIMGDIR_NO_AVX2=1), on the same tests.
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"{here}/test_pipeline.py::test_uint8_output_rounds_the_float_resize_at_large_sizes",
                        f"{here}/test_pipeline.py::test_uint8_output_rounds_the_float_resize",
                        f"{here}/test_channels_first.py::test_same_values_as_channels_last_transposed"],
                       capture_output=True, text=True, timeout=900, cwd=os.path.dirname(here),
                       env=dict(os.environ, PYIMGDIR_NO_AVX2="1"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout and "failed" not in r.stdout


def test_pin_memory_locks_buffers(files):
    loader = _core.Loader(files, 16, 16, 3, lock_memory=True)
    batches = epoch(loader, np.arange(8), 4)
    assert len(batches) == 2


def _locked_kib() -> int:
    return int(re.search(r"VmLck:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _can_lock_kib(kib: int) -> bool:
    """Whether mlock() may lock `kib` KiB in all: RLIMIT_MEMLOCK caps it for processes without
    CAP_IPC_LOCK (64 KiB on some systems; the core then leaves buffers unlocked, as it must)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY or soft >= kib * 1024:
        return True
    try:  # CAP_IPC_LOCK (bit 14) in the effective set lifts the limit
        caps = re.search(r"CapEff:\s+([0-9a-f]+)", Path("/proc/self/status").read_text()).group(1)
        return bool(int(caps, 16) >> 14 & 1)
    except (OSError, AttributeError):
        return False


def test_pin_memory_page_locks_the_batch_buffers(files):
    before = _locked_kib()
    loader = _core.Loader(files, 64, 64, 3, lock_memory=True, prefetch=2)
    it = loader.iterate(np.arange(16, dtype=np.int64), 8)
    batch, _, _ = it.next(loader.config)
    if _core.pinning_backend() == "mlock" and _can_lock_kib(before + 2 * batch.nbytes // 1024):
        # at least the buffer of the batch we hold (8 x 64 x 64 x 3 float32 = 384 KiB) is
        # locked (the next one may still be being allocated by a worker)
        assert _locked_kib() - before >= batch.nbytes // 1024
    it.close()
    del batch, it, loader
    assert _locked_kib() <= before + 4  # unlocked again when the buffers are freed


@pytest.mark.parametrize("method", ["bilinear", "area", "lanczos3", "nearest"])
@pytest.mark.parametrize("fit", ["stretch", "crop", "pad"])
def test_uint8_output_every_method_and_fit(files, method, fit):
    f = _core.Loader(files, 19, 27, 3, interpolation=method, fit=fit, dtype="float32", num_threads=1)
    u = _core.Loader(files, 19, 27, 3, interpolation=method, fit=fit, dtype="uint8", num_threads=1)
    for i in range(0, len(files), 6):
        ref = np.clip(np.floor(f.load(i).astype(np.float64) + 0.5), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(u.load(i), ref)
