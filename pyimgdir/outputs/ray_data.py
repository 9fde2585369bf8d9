"""Ray Data exposure: a ``ray.data.Dataset`` of ``image`` and ``label`` rows (and ``path``
when asked) whose read tasks decode with pyimgdir's C++ core (Ray is imported here only,
when used).

The driver resolves the call exactly as ``image_dataset_from_directory(format="numpy")``
does (checks, index, Keras' shuffle and split, one :class:`LoadSpec`). A ``Datasource``
then cuts each epoch's order into contiguous slices; every read task decodes its slice
with the core's threads (GIL released) into blocks of whole batches. Crops and flips are
keyed by ``(seed, epoch, file index)`` into the whole dataset's ``file_paths``, so a slice
decoded by any task on any node gives the samples ``format="numpy"`` gives.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from ..batches.source import BatchSource, _Labels
from ..errors import SkippedFile

INSTALL_HINT = 'pip install "pyimgdir[ray]"'

# Arguments of image_dataset_from_directory that a per-row Ray dataset sets itself or has
# no use for, and what to do instead.
_NOT_HERE = {
    "format": "ray_dataset always returns a ray.data.Dataset",
    "batch_size": "batch when iterating: ds.iter_batches(batch_size=...) or "
                  "iter_torch_batches(batch_size=...); rows_per_block sets the decode batch",
    "shard": "use ds.streaming_split(n) (or Ray Train's get_dataset_shard)",
    "input_context": "use ds.streaming_split(n) (or Ray Train's get_dataset_shard)",
    "shard_remainder": "streaming_split(n, equal=True) drops the remainder",
    "initial_state": "Ray datasets restart from the beginning of an epoch; pass epoch=",
    "cache": "use ds.materialize() to keep decoded rows in Ray's object store",
    "pin_memory": "use iter_torch_batches(device=...) or pin_memory in Ray Train",
}


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ImportError(f"pyimgdir.ray_dataset needs Ray Data: {INSTALL_HINT}") from e
    return ray


def ray_dataset(directory, *, include_paths: bool = False, rows_per_block: int = 64,
                epoch: Optional[int] = None, num_cpus: float = 1, concurrency: Optional[int] = None,
                override_num_blocks: Optional[int] = None, **kwargs: Any):
    """A ``ray.data.Dataset`` of the images in ``directory``, decoded by pyimgdir's core in
    Ray read tasks.

    Rows have the columns ``image`` (``(H, W, C)``, the dtype and pixels
    ``format="numpy"`` gives for the same arguments), ``label`` (as ``label_mode`` says;
    absent with ``labels=None`` or ``label_mode=None``) and, with ``include_paths=True``,
    ``path`` (the file, as in ``file_paths``). The keyword arguments of
    :func:`pyimgdir.image_dataset_from_directory` mean the same here (``image_size``, ``color_mode``, ``labels``, ``label_mode``,
    ``class_names``, ``shuffle``, ``seed``, ``validation_split``/``subset``,
    ``interpolation``, ``crop_to_aspect_ratio``, ``pad_to_aspect_ratio``, ``dtype``,
    ``random_resized_crop``, ``random_flip``, ``on_error``, ``jpeg_downscale``, ``decoder``,
    ``validate``, the URL options, ...); ``subset="both"`` returns ``[train, validation]``.
    ``batch_size``, ``format``, ``shard``, ``input_context``, ``shard_remainder``,
    ``initial_state``, ``cache`` and ``pin_memory`` are refused (Ray does these itself).

    Rows come in the epoch's order: ``file_paths`` order without ``shuffle``, else the
    permutation drawn from ``(seed, epoch)``, exactly as ``format="numpy"`` iterates it.
    The dataset's execution order is preserved (its context's ``preserve_order``).

    Args (Ray's own):
        include_paths: add the ``path`` column. Off by default, as in
            ``ray.data.read_images``: ``iter_torch_batches`` cannot make a tensor of
            strings and fails on a dataset that has one.
        rows_per_block: images per Ray block (one core batch each).
        epoch: the epoch whose order and random crops/flips every execution reads. Default
            ``None``: execution ``k`` of the dataset (each iteration, ``take``,
            ``materialize``, ... and each epoch of a ``streaming_split`` iterator) reads
            epoch ``k``, as Ray's own ``reseed_after_execution`` shuffles do.
        num_cpus: CPUs reserved per read task; it decodes with ``num_threads`` threads,
            by default two per reserved CPU (a task waits on Ray between blocks, and the
            second thread keeps the core busy meanwhile).
        concurrency, override_num_blocks: passed to ``ray.data.read_datasource``.

    Attributes set on the returned dataset: ``class_names``, ``file_paths`` and
    ``skipped_files``. With ``on_error="skip"``/``"warn"``, files that fail to decode are
    left out by the read tasks and ``skipped_files`` lists them (path, reason) as the
    executions so far have found them (every one, once an epoch has been read); with
    ``"warn"`` each read task also emits a :class:`SkippedFileWarning`. Files found bad by
    ``validate=True`` are listed from the start.

    URL directories work when every Ray worker can reach them (``s3://``, ``gs://``,
    ``file://``); ``memory://`` holds files in one process only, so workers see none.
    """
    ray = _ray()
    for name, instead in _NOT_HERE.items():
        if name in kwargs:
            raise TypeError(f"ray_dataset() does not take `{name}`: {instead}.")
    if int(rows_per_block) < 1:
        raise ValueError(f"rows_per_block must be a positive integer, got {rows_per_block!r}")
    if num_cpus is None or float(num_cpus) <= 0:
        raise ValueError(f"num_cpus must be positive, got {num_cpus!r}")
    if epoch is not None and int(epoch) < 0:
        raise ValueError(f"epoch must be a non-negative integer or None, got {epoch!r}")
    if isinstance(directory, str) and directory.lower().startswith("memory://"):
        raise ValueError("ray_dataset cannot read memory:// directories: their files live in this "
                         "process only, and Ray's read tasks run in other processes.")
    from ..api import image_dataset_from_directory

    built = image_dataset_from_directory(directory, format="numpy", batch_size=int(rows_per_block), **kwargs)
    parts = built if isinstance(built, list) else [built]
    # Two threads per reserved CPU: with one, the cores idle while each task hands a block
    # to Ray and waits (measured in benchmarks/README.md, "Ray Data").
    threads = kwargs.get("num_threads") or 2 * max(1, int(num_cpus))
    if not ray.is_initialized():
        ray.init()  # what Ray Data's own read functions do (RAY_ADDRESS, else a local cluster)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    out = []
    for part in parts:
        report = _SkipReport(ray, part._source) if part._source.on_error != "raise" else None
        datasource = _datasource_class()(part._source, threads, epoch, report, bool(include_paths))
        # Ray's read planning assumes one block per read task and splits tasks' blocks
        # when there are fewer tasks than it wants blocks; pyimgdir's tasks yield many
        # blocks each, so the task count is chosen here and passed as the block count.
        tasks = override_num_blocks or _task_count(len(part.file_paths), int(rows_per_block), cpus)
        ds = ray.data.read_datasource(datasource, num_cpus=num_cpus, concurrency=concurrency,
                                      override_num_blocks=tasks)
        # Rows in the epoch's order; Ray's default lets blocks overtake one another.
        ds.context.execution_options.preserve_order = True
        ds.class_names = part.class_names
        ds.file_paths = part.file_paths
        ds.skipped_files = report if report is not None else list(part.skipped_files)
        out.append(ds)
    return out if isinstance(built, list) else out[0]


def _task_count(num_files: int, rows_per_block: int, cpus: int) -> int:
    """Read tasks for one epoch: about four per CPU of the cluster (so the CPUs finish
    together), whole blocks each, at most 16 (so a large dataset streams in many tasks)."""
    blocks = max(1, -(-num_files // rows_per_block))
    per_task = min(16, max(1, round(blocks / (4 * cpus))))
    return max(1, -(-blocks // per_task))


# -- skipped files ------------------------------------------------------------------------


class _SkipReport:
    """The files read tasks left out, collected by a small actor (no CPU reserved) that the
    read tasks tell at the end of their slice; reads like a list of :class:`SkippedFile`."""

    def __init__(self, ray, source: BatchSource):
        self._validated = list(source.skipped)
        self.actor = _skip_log_class(ray).remote()

    def _files(self) -> List[SkippedFile]:
        import ray

        seen = {f.path for f in self._validated}
        found = [SkippedFile(p, r) for p, r in ray.get(self.actor.files.remote()) if p not in seen]
        return self._validated + found

    def __iter__(self):
        return iter(self._files())

    def __len__(self) -> int:
        return len(self._files())

    def __getitem__(self, i):
        return self._files()[i]

    def __eq__(self, other) -> bool:
        return list(self) == list(other)

    def __repr__(self) -> str:
        return repr(self._files())


class _SkipLog:
    def __init__(self):
        self._files: Dict[str, str] = {}

    def add(self, files) -> None:
        for path, reason in files:
            self._files.setdefault(path, reason)

    def files(self):
        return list(self._files.items())


def _skip_log_class(ray):
    cls = globals().get("_SkipLogActor")
    if cls is None:
        cls = ray.remote(num_cpus=0)(_SkipLog)
        globals()["_SkipLogActor"] = cls
    return cls


# -- the datasource -------------------------------------------------------------------------


class _DatasourceBase:
    """Ray ``Datasource`` over one pyimgdir dataset (subset): each read task decodes a
    contiguous slice of the epoch's order."""

    def __init__(self, source: BatchSource, threads: int, epoch: Optional[int], report: Optional[_SkipReport],
                 include_paths: bool):
        import ray

        super().__init__()
        self.spec = source.spec.replace(num_threads=int(threads), cache=None, validate=False)
        self.num_files = len(source.file_paths)
        # The epochs' order comes from the batch source (BatchSource.epoch_order). Where Ray
        # plans in another process, perhaps on another node (streaming_split's coordinator),
        # the source is rebuilt there from the shared index, as read tasks rebuild theirs.
        self.source = source
        self.epoch = epoch
        self.label_mode = source.labels.mode
        self.num_classes = source.labels.num_classes
        self.report_actor = report.actor if report is not None else None
        self.include_paths = include_paths
        store = source.store
        self.remote = None if store is None else (store.url, store.options)
        raw = source.labels.raw if source.labels.enabled else None
        self.label_dtype = raw.dtype if raw is not None else None
        sizes = None
        if store is not None:  # object sizes from the listing, for the fetcher's byte budget
            sizes = np.array([store.sizes.get(p, 0) for p in source.file_paths], dtype=np.int64)
        # The index, labels and sizes go into Ray's object store once; read tasks carry the
        # reference and their slice of the order, not a copy of the file list each (as
        # Ray's own file-based datasources do with their paths).
        self.shared = ray.put((source.files, raw, sizes))
        self.sample_bytes = int(np.prod(self.spec.sample_shape)) * np.dtype(self.spec.dtype).itemsize

    def get_name(self) -> str:
        return "PyimgdirImages"

    def estimate_inmemory_data_size(self) -> Optional[int]:
        # Unknown on purpose: from a size, Ray's planner derives a per-task block size
        # (assuming one block per task) and splits every block the tasks yield to reach it.
        # Each read task reports its rows and bytes in its metadata.
        return None

    def epoch_of(self, data_context) -> int:
        if self.epoch is not None:
            return int(self.epoch)
        return int(getattr(data_context, "_execution_idx", 0) or 0)

    def epoch_order(self, epoch: int) -> np.ndarray:
        source = self.source if self.source is not None else _source_for(self)
        return np.asarray(source.epoch_order(epoch), dtype=np.int64)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["source"] = None  # a pickled batch source may only work on this machine
        return state

    def __copy__(self):  # Ray copies datasources in the driver; keep the source there
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def get_read_tasks(self, parallelism: int, per_task_row_limit: Optional[int] = None,
                       data_context=None) -> list:
        from ray.data.block import BlockMetadata
        from ray.data.datasource import ReadTask

        epoch = self.epoch_of(data_context)
        order = self.epoch_order(epoch)
        bs = int(self.spec.batch_size)
        blocks = -(-len(order) // bs)
        n_tasks = max(1, min(int(parallelism) if parallelism and parallelism > 0 else blocks, blocks))
        # Whole blocks per task, spread evenly: every block but the epoch's last is full.
        bounds = [min(len(order), (blocks * t // n_tasks) * bs) for t in range(n_tasks + 1)]
        exact_rows = self.spec.on_error == "raise"
        schema = self.schema()
        tasks = []
        for t in range(n_tasks):
            idx = order[bounds[t]:bounds[t + 1]]
            if len(idx) == 0:
                continue
            meta = BlockMetadata(
                num_rows=len(idx) if exact_rows else None,  # skipped files make it unknown
                size_bytes=len(idx) * self.sample_bytes,
                input_files=None,
                exec_stats=None,
            )
            task = _Slice(self, idx, epoch)
            tasks.append(ReadTask(functools.partial(_read_slice, task), meta, schema=schema,
                                  per_task_row_limit=per_task_row_limit))
        return tasks

    def schema(self):
        """The blocks' Arrow schema, from a one-row batch of zeros: known before any read,
        so ``ds.schema()`` runs nothing (an execution would advance the epoch)."""
        from ray.data.block import BlockAccessor

        batch = {"image": np.zeros((1, *self.spec.sample_shape), dtype=self.spec.dtype)}
        if self.label_dtype is not None:
            labels = _Labels(np.zeros(1, dtype=self.label_dtype), self.label_mode, self.num_classes)
            batch["label"] = labels.encode(np.zeros(1, dtype=np.int64))
        if self.include_paths:
            batch["path"] = np.array([""], dtype=object)
        return BlockAccessor.batch_to_block(batch).schema


class _Slice:
    """What one read task needs: its files (indices into the dataset's ``file_paths``, in
    order), a reference to the shared index and labels, the spec and the epoch."""

    def __init__(self, ds: _DatasourceBase, indices: np.ndarray, epoch: int):
        self.indices = np.ascontiguousarray(indices, dtype=np.int64)
        self.shared = ds.shared
        self.label_mode = ds.label_mode
        self.num_classes = ds.num_classes
        self.spec = ds.spec
        self.epoch = int(epoch)
        self.report_actor = ds.report_actor
        self.include_paths = ds.include_paths
        self.remote = ds.remote


# Batch sources kept by a worker process between read tasks, by dataset: the index is
# deserialized once per process, and the core's buffer pool is reused (fresh buffers cost
# page faults on every block).
_SOURCES: "OrderedDict[str, BatchSource]" = OrderedDict()
_KEEP_SOURCES = 2


def _source_for(task) -> BatchSource:
    """This process's batch source for a read task's (or a datasource's) dataset."""
    import ray

    key = task.shared.hex()
    source = _SOURCES.get(key)
    if source is not None:
        _SOURCES.move_to_end(key)
        return source
    files, raw, sizes = ray.get(task.shared)
    store = None
    if task.remote is not None:
        from ..sources.remote import RemoteStore

        url, options = task.remote
        store = RemoteStore(url, options)
    source = BatchSource(files, _Labels(raw, task.label_mode, task.num_classes), task.spec, store=store)
    if store is not None and sizes is not None:
        store.sizes.update(zip(source.file_paths, sizes.tolist()))
    _SOURCES[key] = source
    while len(_SOURCES) > _KEEP_SOURCES:
        _SOURCES.popitem(last=False)
    return source


def _read_slice(task: _Slice) -> Iterator:
    """One read task: the slice's blocks, decoded by a batch source over the whole index, so
    the crops and flips drawn from (seed, epoch, file index) are the whole dataset's."""
    from ray.data.block import BlockAccessor

    source = _source_for(task)
    skipped_before = len(source.skipped)
    order = task.indices
    with_labels = source.labels.enabled
    # With on_error="warn" the source warns once per failed file, here in the worker (Ray
    # forwards workers' output to the driver).
    for images, positions, _ in source._raw_batches(order, int(task.spec.batch_size), task.epoch):
        rows = order[positions]
        batch = {"image": images}
        if with_labels:
            batch["label"] = source.labels.encode(rows)
        if task.include_paths:
            batch["path"] = np.array(source.files.paths_at(rows), dtype=object)
        yield BlockAccessor.batch_to_block(batch)
    if task.report_actor is not None and len(source.skipped) > skipped_before:
        import ray

        found = source.skipped[skipped_before:]
        ray.get(task.report_actor.add.remote([(f.path, f.reason) for f in found]))


def _datasource_class():
    """The ``ray.data.Datasource`` subclass, made on first use so that importing pyimgdir
    never imports Ray; reachable as a module attribute (PEP 562) so Ray's workers can
    unpickle it."""
    cls = globals().get("PyimgdirDatasource")
    if cls is None:
        ray = _ray()
        cls = type("PyimgdirDatasource", (_DatasourceBase, ray.data.Datasource), {})
        cls.__module__ = __name__
        globals()["PyimgdirDatasource"] = cls
    return cls


def __getattr__(name):
    if name == "PyimgdirDatasource":
        return _datasource_class()
    raise AttributeError(name)
