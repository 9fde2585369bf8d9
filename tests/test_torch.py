"""PyTorch: TorchDataset yields tensors without copying, shards by DataLoader worker and by
torch.distributed rank (gloo, two processes on 127.0.0.1), reshuffles with set_epoch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image, zip_strict

torch = pytest.importorskip("torch")

N = 26


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    rng = np.random.default_rng(6)
    root = tmp_path_factory.mktemp("torch") / "data"
    for i in range(N):
        write_image(root / f"c{i % 2}" / f"{i:02d}.png", photo_like(rng, 9, 11))
    return root


def args(**kw):
    base = dict(labels=list(range(N)), image_size=(6, 6), batch_size=4, seed=5, data_format="channels_first")
    base.update(kw)
    return base


def ids(loader):
    return torch.cat([y for _, y in loader]).tolist()


def test_tensors_match_numpy_batches(tree):
    ds = pyimgdir.TorchDataset(tree, **args())
    ref = pyimgdir.image_dataset_from_directory(tree, format="numpy", verbose=False, **args())
    assert len(ds) == len(ref) and ds.class_names == ref.class_names
    for (tx, ty), (nx, ny) in zip_strict(ds, ref):
        assert isinstance(tx, torch.Tensor) and tx.dtype == torch.float32 and tx.shape[1:] == (3, 6, 6)
        np.testing.assert_array_equal(tx.numpy(), nx)
        np.testing.assert_array_equal(ty.numpy(), ny)


def test_no_copy(tree, monkeypatch):
    from pyimgdir.batches.source import BatchSource

    handed = []  # addresses of the numpy batches the source gives to TorchDataset
    real = BatchSource.iter_epoch

    def recording(self, *a, **kw):
        for el in real(self, *a, **kw):
            handed.append(el[0].ctypes.data)
            yield el

    monkeypatch.setattr(BatchSource, "iter_epoch", recording)
    ds = pyimgdir.TorchDataset(tree, **args(shuffle=False))
    got = [x.data_ptr() for x, _ in ds]  # the tensors' own memory
    assert len(got) == len(ds) == -(-N // 4) and got == handed


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_workers_cover_the_epoch(tree, workers):
    ds = pyimgdir.TorchDataset(tree, **args())
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers)
    seen = ids(loader)
    assert sorted(seen) == list(range(N))  # N is even: two worker shards, no padding
    ds.set_epoch(1)
    again = ids(loader)
    assert sorted(again) == sorted(seen) and again != seen


def test_workers_split_the_cores(tree, tmp_path, monkeypatch):
    # Each DataLoader worker runs its own loader; unless num_threads is given, it gets
    # cores // num_workers threads (recorded here, in each process, by wrapping the batch
    # source's epoch, which every worker iterates).
    from pyimgdir.batches.source import BatchSource

    real = BatchSource.iter_epoch

    def recording(self, *a, **kw):
        info = torch.utils.data.get_worker_info()
        (tmp_path / f"{os.getpid()}.txt").write_text(f"{info.num_workers if info else 0} {self.spec.num_threads}")
        return real(self, *a, **kw)

    monkeypatch.setattr(BatchSource, "iter_epoch", recording)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    ds = pyimgdir.TorchDataset(tree, **args())
    assert set(ids(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=3))) == set(range(N))
    seen = sorted(p.read_text() for p in tmp_path.glob("*.txt"))
    assert seen == ["3 2"] * 3  # each of 3 workers: 8 // 3

    for p in tmp_path.glob("*.txt"):
        p.unlink()
    ds = pyimgdir.TorchDataset(tree, **args(num_threads=1))
    ids(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2))
    assert sorted(p.read_text() for p in tmp_path.glob("*.txt")) == ["2 1"] * 2  # given: kept as it is


def test_threads_per_worker():
    from types import SimpleNamespace

    from pyimgdir.outputs.torch_data import _cores, threads_per_worker

    assert threads_per_worker(None) is None
    assert threads_per_worker(SimpleNamespace(num_workers=1)) == _cores()
    assert threads_per_worker(SimpleNamespace(num_workers=4 * _cores())) == 1


def test_set_epoch_reproducible(tree):
    ds = pyimgdir.TorchDataset(tree, **args())
    ds.set_epoch(3)
    a = ids(ds)
    ds.set_epoch(4)
    b = ids(ds)
    ds.set_epoch(3)
    assert ids(ds) == a and a != b


def test_shuffle_needs_seed(tree):
    with pytest.raises(ValueError, match="seed"):
        pyimgdir.TorchDataset(tree, image_size=(6, 6))


WORKER = textwrap.dedent(
    """
    import json, os, sys
    from datetime import timedelta
    import torch, torch.distributed as dist
    import pyimgdir
    root, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    # the rendezvous store is the test's own, already listening: no port to pick here
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False,
                          timeout=timedelta(seconds=100))
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    ds = pyimgdir.TorchDataset(root, labels=list(range(n)), image_size=(6, 6), batch_size=3, seed=11,
                               shard_remainder="drop")
    result = {"len": len(ds), "epochs": []}
    for epoch in range(2):
        ds.set_epoch(epoch)
        result["epochs"].append(torch.cat([y for _, y in ds]).tolist())
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, result)
    if dist.get_rank() == 0:
        json.dump(gathered, open(out, "w"))
    dist.destroy_process_group()
    """
)


def test_torch_distributed_gloo_two_ranks(tree, tmp_path):
    import json

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "result.json"
    from datetime import timedelta

    import torch.distributed as dist

    # The store both ranks meet at listens before they start (port 0: the system picks a free
    # one and it stays bound), so no port is picked, released and raced for.
    store = dist.TCPStore("127.0.0.1", 0, 2, is_master=True, wait_for_workers=False, timeout=timedelta(seconds=100))
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(store.port), WORLD_SIZE="2")
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tree), str(out), str(N)], env=dict(env, RANK=str(r)))
        for r in range(2)
    ]
    try:
        for p in procs:
            assert p.wait(timeout=120) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    ranks = json.loads(out.read_text())
    assert ranks[0]["len"] == ranks[1]["len"]
    for epoch in range(2):
        a, b = ranks[0]["epochs"][epoch], ranks[1]["epochs"][epoch]
        assert len(a) == len(b) == N // 2
        assert not set(a) & set(b) and len(set(a) | set(b)) == N  # disjoint, cover (N even)
    assert ranks[0]["epochs"][0] != ranks[0]["epochs"][1]
