"""PyTorch exposure: an ``IterableDataset`` of batches as tensors, sharded by DataLoader
worker and by distributed rank (torch is imported here only, when used).

The folder is indexed once; each worker makes its own loader (the C++ loader's threads are
not shared across processes) over that same compact index, with the same seed, and takes
its shard of every epoch's global permutation, so ranks and workers see disjoint files that
together cover the set.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from ..batches.source import BatchSource
from ..options.checks import shard_seed_message
from .numpy_data import NumpyDataset


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - exercised only without torch
        raise ImportError("pyimgdir.TorchDataset needs PyTorch (pip install torch)") from e
    return torch


class TorchDataset:
    """``torch.utils.data.IterableDataset`` yielding ``(images, labels)`` tensor batches.

    Arguments are those of :func:`pyimgdir.image_dataset_from_directory` (``format`` is
    always numpy underneath; ``shuffle`` needs a ``seed`` so every rank agrees), plus:

    Args:
        rank, world_size: this process's place in the job. Default: from
            ``torch.distributed`` when it is initialised, else (0, 1).
        shard_remainder: ``"pad"`` (default; like DistributedSampler's drop_last=False) or
            ``"drop"``.

    Use it with ``DataLoader(ds, batch_size=None, pin_memory=...)`` (batches are already
    made) and call ``ds.set_epoch(epoch)`` before each epoch, as with
    ``DistributedSampler``. Tensors share memory with pyimgdir's batch buffers
    (``torch.from_numpy``), no copy in the process that made them.

    The fastest setup is usually ``num_workers=0``: pyimgdir's own threads (one per core)
    decode in the training process, and batches reach the model without the copy into
    shared memory that every batch from a DataLoader worker costs. With
    ``num_workers=N > 0`` each worker process runs its own loader; unless ``num_threads``
    is given, each gets ``max(1, cores // N)`` threads, so the workers split the cores
    instead of each starting one thread per core.
    """

    def __new__(cls, *args, **kwargs):
        impl = _impl_class()
        obj = impl.__new__(impl)
        obj.__init__(*args, **kwargs)
        return obj


def _impl_class():
    """The real class, a subclass of torch's IterableDataset, made on first use so that
    importing pyimgdir never imports torch. Reachable as a module attribute (PEP 562) so
    DataLoader workers started with "spawn" can unpickle it."""
    impl = globals().get("_TorchDatasetImpl")
    if impl is None:
        torch = _torch()
        impl = type("_TorchDatasetImpl", (_TorchDatasetBase, torch.utils.data.IterableDataset), {})
        impl.__module__ = __name__
        globals()["_TorchDatasetImpl"] = impl
    return impl


def __getattr__(name):
    if name == "_TorchDatasetImpl":
        return _impl_class()
    raise AttributeError(name)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


def threads_per_worker(worker_info) -> Optional[int]:
    """pyimgdir threads for one process: None (pyimgdir's default, one per core) in the
    main process; in a DataLoader worker, the cores divided among the workers (at least 1),
    so N workers do not start N x cores threads on the same cores."""
    if worker_info is None:
        return None
    return max(1, _cores() // max(1, worker_info.num_workers))


class _TorchDatasetBase:
    def __init__(self, directory, *, rank: Optional[int] = None, world_size: Optional[int] = None,
                 shard_remainder: str = "pad", **kwargs: Any) -> None:
        if kwargs.get("shuffle", True) and kwargs.get("seed") is None:
            raise ValueError(shard_seed_message("TorchDataset (by rank and DataLoader worker)"))
        for reserved in ("format", "shard", "input_context", "initial_state"):
            if reserved in kwargs:
                raise ValueError(f"TorchDataset sets `{reserved}` itself; do not pass it.")
        if kwargs.get("subset") == "both":
            raise ValueError('TorchDataset makes one subset: pass subset="training" or "validation", not "both".')
        from ..api import build, prepare, subset_spec

        self.directory = directory
        self.kwargs: Dict[str, Any] = kwargs
        self.rank, self.world_size = rank, world_size
        self.shard_remainder = shard_remainder
        self.epoch = 0
        self._datasets: Dict[tuple, Any] = {}
        # The folder is walked once, here. Every shard (rank, DataLoader worker) is a new
        # source over the same files and labels: DataLoader workers inherit them (fork) or
        # unpickle the compact index (spawn), and never walk the folder again.
        kw = dict(kwargs)
        kw.setdefault("verbose", False)
        index, parts, spec = prepare(directory, format="numpy", shard_remainder=shard_remainder, **kw)
        name, rows = parts[0]
        self._base = build(index, rows, subset_spec(spec, name))
        self._probe = self._dataset(self._job())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def crop_boxes(self, epoch: Optional[int] = None) -> dict:
        """The random crops and flips of every file in ``epoch`` (default: the current one),
        in the order of the whole epoch before sharding; see
        :meth:`pyimgdir.NumpyDataset.crop_boxes`. They depend on the file alone, not on the
        rank or worker that loads it."""
        return self._dataset((0, 1)).crop_boxes(self.epoch if epoch is None else int(epoch))

    def __getstate__(self):
        # The C++ loaders stay behind; each process makes its own over the same index.
        state = dict(self.__dict__)
        state["_datasets"] = {}
        state["_probe"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def _job(self):
        torch = _torch()
        rank, world = self.rank, self.world_size
        if rank is None or world is None:
            dist = torch.distributed
            if dist.is_available() and dist.is_initialized():
                rank = dist.get_rank() if rank is None else rank
                world = dist.get_world_size() if world is None else world
            else:
                rank, world = rank or 0, world or 1
        return rank, world

    def _shard(self):
        torch = _torch()
        rank, world = self._job()
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        return (rank * workers + worker, world * workers)

    def _dataset(self, shard):
        shard = tuple(shard)
        if shard not in self._datasets:
            info = _torch().utils.data.get_worker_info()
            threads = self.kwargs.get("num_threads")
            if threads is None:
                threads = threads_per_worker(info) or 0
            base = self._base._source
            if shard == base.spec.shard and threads == base.spec.num_threads:
                self._datasets[shard] = self._base
            else:
                spec = base.spec.replace(shard=shard, num_threads=threads)
                source = BatchSource(base.files, base.labels, spec, skipped=base.skipped, store=base.store)
                ds = NumpyDataset(source, self._base.class_names, source.file_paths)
                ds.unreadable_directories = list(self._base.unreadable_directories)
                self._datasets[shard] = ds
        return self._datasets[shard]

    @property
    def class_names(self):
        return self._base.class_names

    @property
    def file_paths(self):
        return self._base.file_paths

    def __len__(self) -> int:
        """Batches per epoch for this rank (all DataLoader workers together)."""
        _torch()  # without torch: the ImportError that says what to install
        rank, world = self._job()
        return len(self._dataset((rank, world)))

    def __iter__(self):
        torch = _torch()
        ds = self._dataset(self._shard())
        for batch in ds.epoch(self.epoch):
            if isinstance(batch, tuple):
                x, y = batch
                yield torch.from_numpy(x), torch.from_numpy(y) if y.dtype != object else list(y)
            else:
                yield torch.from_numpy(batch)
