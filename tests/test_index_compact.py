"""The compact index: FileIndex / FileList in the core, file_paths as a read-only sequence
that behaves like Keras' list, pickling, and Grain's permutation computed in the core."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

import pyimgdir
from pyimgdir import _core
from conftest import needs

FORMATS = [".bmp", ".gif", ".jpeg", ".jpg", ".png"]


@pytest.fixture
def tree(make_tree):
    return make_tree({"b": 4, "a": 3, "a/deep/er": 2, "c-2": 2, "c/x": 3}, size_range=(10, 14))


def _ds(root, **kw):
    kw = {"image_size": (8, 8), "batch_size": 4, "verbose": False, "format": "numpy", **kw}
    return pyimgdir.image_dataset_from_directory(str(root), **kw)


def test_index_round_trips_paths_and_tops():
    paths = ["r/a/1.jpg", "r/a/2.jpg", "r/a/sub/3.jpg", "r/b/4.jpg", "top.png", "r/a/5.jpg", "/x/é\udcff.jpg"]
    tops = [0, 0, 0, 1, 1, 1, 2]
    idx = _core.FileIndex.from_paths(paths, tops)
    assert len(idx) == len(paths) and idx.paths(0, len(paths)) == paths
    assert idx.file_tops().tolist() == tops and idx.counts_per_top(3) == [3, 3, 1]
    back = _core.FileIndex.from_bytes(idx.to_bytes())
    assert back.paths(0, len(back)) == paths and back.file_tops().tolist() == tops
    again = pickle.loads(pickle.dumps(idx))
    assert again.paths(0, len(again)) == paths
    # "r/a/" is stored once per run of files, each name once
    assert idx.num_folders == 6


def test_index_from_bytes_refuses_damage():
    data = _core.FileIndex.from_paths([f"d/{i}.jpg" for i in range(50)]).to_bytes()
    for bad in (b"", b"nonsense", data[:-1], data + b"x", data[:12] + b"\xff" * 9 + data[21:]):
        with pytest.raises(ValueError, match="file index"):
            _core.FileIndex.from_bytes(bad)


def test_file_list_rows_compose():
    idx = _core.FileIndex.from_paths([f"d/{i}.jpg" for i in range(10)])
    fl = _core.FileList(idx, np.array([9, 3, 5, 0]))
    assert fl.paths(0, 4) == ["d/9.jpg", "d/3.jpg", "d/5.jpg", "d/0.jpg"]
    sub = fl.select(np.array([2, 0]))
    assert sub.paths(0, 2) == ["d/5.jpg", "d/9.jpg"] and sub.rows().tolist() == [5, 9]
    assert pickle.loads(pickle.dumps(sub)).paths(0, 2) == ["d/5.jpg", "d/9.jpg"]
    with pytest.raises(IndexError):
        _core.FileList(idx, np.array([10]))
    with pytest.raises(IndexError):
        fl.select(np.array([4]))


def test_walk_index_equals_walk(tree):
    tops = [str(tree / c) for c in ("a", "b", "c", "c-2")]
    prefixes = [os.path.join(t, "") for t in tops]
    per_top, _, _ = _core.walk(tops, prefixes, False, FORMATS)
    idx, _, _ = _core.walk_index(tops, prefixes, False, FORMATS)
    assert idx.paths(0, len(idx)) == [p for part in per_top for p in part]
    assert idx.counts_per_top(4) == [len(p) for p in per_top]


def test_file_paths_behave_like_a_list(tree):
    ds = _ds(tree, seed=5)
    fp = ds.file_paths
    ref = list(fp)
    assert isinstance(fp, pyimgdir.sources.index.FilePaths) if hasattr(pyimgdir, "sources") else True
    assert len(fp) == len(ref) == 14
    assert fp == ref and ref == fp and not (fp != ref)
    assert fp != ref[:-1] and fp != tuple(ref)
    assert [fp[i] for i in range(-len(ref), len(ref))] == ref + ref
    for sl in (slice(None), slice(2, 9), slice(None, None, -1), slice(1, None, 3), slice(20, 30), slice(-3, None)):
        assert fp[sl] == ref[sl]
    with pytest.raises(IndexError):
        fp[len(ref)]
    with pytest.raises(IndexError):
        fp[-len(ref) - 1]
    with pytest.raises(TypeError):
        fp["a"]
    assert list(reversed(fp)) == ref[::-1]
    assert ref[3] in fp and "nope" not in fp
    assert fp.index(ref[7]) == 7 and fp.count(ref[0]) == 1
    assert repr(fp) == repr(ref) and str(fp) == str(ref)
    assert sorted(fp) == sorted(ref) and fp + ["x"] == ref + ["x"] and ["x"] + fp == ["x"] + ref
    with pytest.raises(TypeError):
        fp[0] = "x"
    with pytest.raises(TypeError):
        hash(fp)
    back = pickle.loads(pickle.dumps(fp))
    assert back == fp == ref


def test_formats_share_one_index(tree):
    a = _ds(tree, seed=2)
    for fmt in ("tf", "grain"):
        pytest.importorskip({"tf": "tensorflow", "grain": "grain"}[fmt])
    t = _ds(tree, seed=2, format="tf")
    assert t.file_paths == a.file_paths


def test_pickle_is_small():
    n = 20_000
    paths = [f"/data/imagenet/train/n{c:08d}/n{c:08d}_{i:06d}.JPEG" for c in range(20) for i in range(n // 20)]
    fl = _core.FileList(_core.FileIndex.from_paths(paths), np.random.default_rng(0).permutation(n))
    fp = pyimgdir.sources.index.FilePaths(fl)
    size = len(pickle.dumps(fp))
    # each name (22 bytes here) once, one byte for its length, 4 for its row
    assert size < n * 30, size
    assert len(pickle.dumps(paths)) > 2 * size


def test_loader_reads_a_file_list(tree):
    idx, _, _ = _core.walk_index([str(tree)], [os.path.join(str(tree), "")], False, FORMATS)
    rows = np.array([3, 0, 7], dtype=np.int64)
    fl = _core.FileList(idx, rows)
    a = _core.Loader(fl, 8, 8, 3, num_threads=1)
    b = _core.Loader(fl.paths(0, 3), 8, 8, 3, num_threads=1)
    assert len(a) == 3 and a.files.paths(0, 3) == fl.paths(0, 3)
    for i in range(3):
        np.testing.assert_array_equal(a.load(i), b.load(i))


@needs("grain")
@pytest.mark.parametrize("n", [1, 2, 3, 17, 1000, 65536, 65537, 70001])
@pytest.mark.parametrize("seed", [0, 1, 4242, 2**32 - 1])
def test_grain_permutation_is_grains(n, seed):
    import grain

    from pyimgdir.outputs.grain_data import grain_permutation

    ds = grain.MapDataset.range(n).shuffle(seed=seed)
    step = max(1, n // 997)  # every element for small n, a spread sample for large
    positions = list(range(0, n, step)) + [n - 1]
    got = grain_permutation(n, seed)
    if n != 65537:  # max_index 2**16 needs 17 bits, Grain's cipher uses 16: Grain repeats a file there
        assert sorted(got.tolist()) == list(range(n))
    assert [int(got[i]) for i in positions] == [ds[i] for i in positions]


@needs("grain")
def test_grain_permutation_refuses_seed_grain_refuses():
    from pyimgdir.outputs.grain_data import grain_permutation

    with pytest.raises(ValueError, match="2\\*\\*32-1"):
        grain_permutation(10, 2**32)


@needs("grain")
def test_grain_dataset_pickles_compact_index(tree):
    ds = _ds(tree, seed=9, format="grain")
    src = pickle.loads(pickle.dumps(ds._source))
    assert src.file_paths == ds.file_paths
    assert np.array_equal(src.epoch_order(0), ds._source.epoch_order(0))


def test_mapped_file_list_round_trips(tmp_path):
    paths = [f"r/c{c}/s{s}/img_{i}.jpg" for c in range(3) for s in range(2) for i in range(5)]
    idx = _core.FileIndex.from_paths(paths, [int(p[3]) for p in paths])
    for rows in (None, np.array([5, 0, 29, 3])):
        fl = _core.FileList(idx) if rows is None else _core.FileList(idx, rows)
        fl.write_mapped(tmp_path / "m")
        back = _core.FileList.map_file(tmp_path / "m")
        assert back.paths(0, len(back)) == fl.paths(0, len(fl))
        assert back.index.file_tops().tolist() == idx.file_tops().tolist()
    data = (tmp_path / "m").read_bytes()
    rng = np.random.default_rng(1)
    for _ in range(200):  # damaged files are refused or read as other names, never a crash
        d = bytearray(data)
        d[int(rng.integers(len(d)))] ^= 0xFF
        (tmp_path / "bad").write_bytes(bytes(d))
        try:
            z = _core.FileList.map_file(tmp_path / "bad")
            z.paths(0, len(z))
        except ValueError:
            pass


@pytest.mark.parametrize("fmt", ["numpy", pytest.param("grain", marks=needs("grain"))])
def test_large_lists_pickle_as_shared_files(tree, fmt, monkeypatch):
    from pyimgdir.batches import source as source_module

    monkeypatch.setattr(source_module, "_SHARE_AT", 0)  # every list counts as large
    ds = _ds(tree, seed=3, format=fmt)
    blob = pickle.dumps(ds._source)
    src = pickle.loads(blob)
    assert src.file_paths == ds.file_paths
    assert np.array_equal(src.epoch_order(1), ds._source.epoch_order(1))
    assert np.array_equal(src.labels.raw, ds._source.labels.raw)
    a = [(x.copy(), y.copy()) for x, y in src.iter_epoch(0)]
    b = [(x.copy(), y.copy()) for x, y in ds._source.iter_epoch(0)]
    assert all(np.array_equal(x1, x2) and np.array_equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    where = ds._source._shared.dir
    assert os.path.isdir(where) and len(blob) < 2000
    # a copy made from the shared files passes the same files on
    assert pickle.loads(pickle.dumps(src)).file_paths == ds.file_paths
    assert ds._source._shared is source_module._WRITTEN[-1] and len(os.listdir(os.path.dirname(where))) >= 1


def test_shared_files_from_another_machine_refused(tree, monkeypatch):
    from pyimgdir.batches import source as source_module

    monkeypatch.setattr(source_module, "_SHARE_AT", 0)
    ds = _ds(tree, seed=3)
    blob = pickle.dumps(ds._source)
    monkeypatch.setattr(source_module, "_boot_id", lambda: "another-machine")
    with pytest.raises(RuntimeError, match="same machine"):
        pickle.loads(blob)


@needs("torch")
def test_torch_workers_do_not_walk_again(tree, tmp_path, monkeypatch):
    import torch

    from pyimgdir.sources import local

    calls = tmp_path / "walks"
    real = local._core.walk_index

    def counting(*args, **kwargs):
        with open(calls, "a") as f:  # appended from whichever process walks
            f.write(f"{os.getpid()}\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(local._core, "walk_index", counting)
    ds = pyimgdir.TorchDataset(str(tree), labels=list(range(14)), image_size=(8, 8), batch_size=3, seed=5)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    for epoch in range(2):
        ds.set_epoch(epoch)
        seen = [int(v) for _, y in loader for v in y]  # a file's label is its index
        assert sorted(seen) == list(range(14))  # 2 shards of 7: every file once
    assert calls.read_text().splitlines() == [str(os.getpid())]  # one walk, in this process
