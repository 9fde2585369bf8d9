"""Sharding, per-epoch global reshuffle and exact resume. Labels are set to each file's
own index (labels=list(range(n))) so every sample says which file it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image, zip_strict

N = 23


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("shards") / "data"
    for i in range(N):
        write_image(root / f"c{i % 3}" / f"{i:02d}.png", photo_like(rng, 10, 12))
    return root


def load(root, **kw):
    args = dict(labels=list(range(N)), format="numpy", verbose=False, image_size=(6, 6), batch_size=4, seed=9)
    args.update(kw)
    return pyimgdir.image_dataset_from_directory(root, **args)


def epoch_ids(ds):
    return np.concatenate([y for _, y in ds]).tolist()


def test_epochs_are_reproducible_permutations(tree):
    ds = load(tree)
    epochs = [epoch_ids(ds) for _ in range(4)]
    for e in epochs:
        assert sorted(e) == list(range(N))
    assert len({tuple(e) for e in epochs}) == 4  # every epoch a new order
    again = load(tree)
    assert [epoch_ids(again) for _ in range(4)] == epochs  # same seed, same sequence
    other = load(tree, seed=10)
    assert epoch_ids(other) != epochs[0]


def test_global_shuffle_moves_files_far(tree):
    # Keras' per-epoch shuffle is a window of batch_size*8; pyimgdir's is global.
    ds = load(tree, batch_size=1, shuffle=True)
    ids = epoch_ids(ds)
    # some file lands more than a Keras window (8 here) away from its indexed position
    assert max(abs(i - p) for p, i in enumerate(ids)) > 8


@pytest.mark.parametrize("remainder", ["pad", "drop"])
@pytest.mark.parametrize("count", [2, 3, 5])
def test_shards_are_disjoint_equal_and_cover(tree, remainder, count):
    shards = [load(tree, shard=(i, count), shard_remainder=remainder) for i in range(count)]
    assert len({len(s) for s in shards}) == 1  # same number of batches everywhere
    for epoch in range(3):
        parts = [epoch_ids(s) for s in shards]
        assert len({len(p) for p in parts}) == 1
        flat = [x for p in parts for x in p]
        if remainder == "pad":
            assert set(flat) == set(range(N))  # every file, a few twice
            assert len(flat) == -(-N // count) * count
        else:
            assert len(set(flat)) == len(flat) == N // count * count  # disjoint
    # all shards see the same file_paths (the split is global) and class names
    assert all(s.file_paths == shards[0].file_paths for s in shards)


def test_shards_interleave_the_global_epoch_order(tree):
    whole = load(tree, batch_size=1)
    order = epoch_ids(whole)
    for count in (2, 4):
        parts = [epoch_ids(load(tree, batch_size=1, shard=(i, count), shard_remainder="drop")) for i in range(count)]
        cut = order[: N // count * count]
        for i, p in enumerate(parts):
            assert p == cut[i::count]


def test_other_shards_files_are_never_read(tree, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tree, root)
    ds = load(root, shard=(0, 2), shard_remainder="drop", batch_size=1)
    mine = set(ds._source.epoch_order(0).tolist())
    for i, path in enumerate(ds.file_paths):
        if i not in mine:
            Path(path).write_bytes(b"garbage: reading this file would raise")
    assert len(epoch_ids(ds)) == N // 2  # epoch 0 never touches the corrupted files


def test_input_context(tf, tree):
    ctx = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=1, num_replicas_in_sync=3)
    a = pyimgdir.image_dataset_from_directory(tree, labels=list(range(N)), input_context=ctx, seed=9, verbose=False, image_size=(6, 6), batch_size=4)
    b = load(tree, shard=(1, 3))
    got = np.concatenate([y for _, y in a.as_numpy_iterator()]).tolist()
    assert got == epoch_ids(b)


@pytest.mark.parametrize("stop_after", [0, 2, 5, 6, 9])
def test_resume_yields_exactly_the_rest(tree, stop_after):
    ref = load(tree)
    uninterrupted = [(x.copy(), y.copy()) for _ in range(2) for x, y in ref]  # 2 epochs of 6 batches
    run = load(tree)
    seen = []
    it = iter(run)
    for k in range(stop_after):
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(run)
            x, y = next(it)
        seen.append((x.copy(), y.copy()))
    state = run.state()
    resumed = load(tree, initial_state=state)
    rest = []
    while len(seen) + len(rest) < len(uninterrupted):
        for x, y in resumed:
            rest.append((x.copy(), y.copy()))
    for (x1, y1), (x2, y2) in zip_strict(uninterrupted, seen + rest):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_resume_does_not_decode_skipped_batches(tree, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tree, root)
    ds = load(root)
    it = iter(ds)
    next(it), next(it)
    state = ds.state()
    assert state["epoch"] == 0 and state["batches"] == 2
    done = set(ds._source.epoch_order(0)[:8].tolist())
    for i, path in enumerate(ds.file_paths):
        if i in done:
            Path(path).write_bytes(b"already consumed before the restart")
    resumed = load(root, initial_state=state)
    assert len(epoch_ids(resumed)) == N - 8


def test_state_checks(tree):
    ds = load(tree)
    with pytest.raises(ValueError, match="seed"):
        load(tree, seed=1, initial_state=ds.state())
    with pytest.raises(ValueError, match="shard"):
        load(tree, shard=(1, 2), initial_state=ds.state())
    with pytest.raises(ValueError, match="shard"):
        load(tree, shard=(2, 2))
    with pytest.raises(ValueError, match="initial_state"):
        load(tree, initial_state={"epoch": 1})


def test_set_epoch(tree):
    ds = load(tree)
    e0, e1 = epoch_ids(ds), epoch_ids(ds)
    ds.set_epoch(1)
    assert epoch_ids(ds) == e1
    ds.set_epoch(0)
    assert epoch_ids(ds) == e0


def test_tf_resume_mid_epoch(tf, tree):
    kw = dict(labels=list(range(N)), verbose=False, image_size=(6, 6), batch_size=4, seed=9)
    ref = pyimgdir.image_dataset_from_directory(tree, **kw)
    first = np.concatenate([y for _, y in ref.as_numpy_iterator()]).tolist()
    second = np.concatenate([y for _, y in ref.as_numpy_iterator()]).tolist()
    resumed = pyimgdir.image_dataset_from_directory(tree, initial_state=ref.state_at(0, 3), **kw)
    a = np.concatenate([y for _, y in resumed.as_numpy_iterator()]).tolist()
    b = np.concatenate([y for _, y in resumed.as_numpy_iterator()]).tolist()
    assert a == first[12:] and b == second
