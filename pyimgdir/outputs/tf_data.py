"""Stage 4, expose: a ``tf.data.Dataset`` over the C++ batches (TensorFlow imported here only).

``from_generator`` with an exact ``output_signature`` (static image shapes, Keras' dtypes),
the cardinality asserted so ``len(ds)`` works and ``model.fit`` shows N/M steps. Each
iteration of the dataset is a new epoch of the underlying source.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np

from ..batches.source import BatchSource


class MultiWorkerDecodeWarning(UserWarning):
    """An unsharded dataset in a multi-worker job: every worker decodes every file."""


def _cluster_workers() -> int:
    """Workers (chief included) that TF_CONFIG describes; 0 without one."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster") or {}
        return sum(len(cluster.get(kind) or []) for kind in ("chief", "worker"))
    except (ValueError, AttributeError, TypeError):
        return 0


def multi_worker_message(workers: int) -> str:
    return (
        f"This dataset is not sharded, but TF_CONFIG describes {workers} workers. Under "
        "MultiWorkerMirroredStrategy, model.fit(ds) and strategy.experimental_distribute_dataset(ds) "
        "give each worker its share of the batches only after every worker has read and decoded "
        f"every file: {workers}x the decoding of the whole job, the same wall time per epoch as one "
        "worker. Make each worker's dataset itself instead, so it decodes only its share: "
        "strategy.distribute_datasets_from_function(lambda ctx: pyimgdir.image_dataset_from_directory("
        "directory, batch_size=ctx.get_per_replica_batch_size(global_batch_size), input_context=ctx, "
        "seed=SEED, ...)) with the same seed on every worker."
    )


def _tf():
    try:
        import tensorflow as tf
    except ImportError as e:  # pragma: no cover - exercised only without TF
        raise ImportError(
            'format="tf" needs TensorFlow (pip install "pyimgdir[tf]"); '
            'use format="numpy" to get numpy batches without it.'
        ) from e
    return tf


def to_tf_dataset(source: BatchSource, class_names, file_paths):
    tf = _tf()
    batched = source.batch_size is not None
    lead = (None,) if batched else ()
    images = tf.TensorSpec(lead + source.sample_shape, tf.as_dtype(source.dtype))
    if source.labels.enabled:
        dtype, shape = source.labels.spec()
        tf_dtype = tf.string if dtype is object else tf.as_dtype(np.dtype(dtype))
        signature = (images, tf.TensorSpec(lead + shape, tf_dtype))
    else:
        signature = images

    warned = []

    def epochs():
        # Checked when the first batch is asked for: that is when a distributed dataset
        # starts reading on every worker.
        if not warned and source.shard_count == 1:
            warned.append(True)
            workers = _cluster_workers()
            if workers > 1:
                warnings.warn(multi_worker_message(workers), MultiWorkerDecodeWarning, stacklevel=2)
        yield from source.iter_epoch()

    ds = tf.data.Dataset.from_generator(epochs, output_signature=signature)
    # With on_error="skip"/"warn", a file failing during iteration shortens the epoch, so the
    # number of batches is only known when validate=True has removed bad files beforehand.
    # A dataset resumed mid-epoch has a shorter first epoch: its length is not fixed either.
    resumed_mid_epoch = source.state()["batches"] > 0
    if (source.on_error == "raise" or source.validated) and not resumed_mid_epoch:
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(source)))
    # The batches are already prepared ahead in C++ (`prefetch` batches); TF only needs to
    # keep one or two converted tensors ready. tf.data's autotuning is turned off: its model
    # thread makes deleting an iterator, i.e. the end of every epoch, wait (measured in
    # benchmarks/README.md, "Keras has two speeds"). Chained AUTOTUNE maps then run at TF's default parallelism (the core count);
    # ds.with_options() with autotune.enabled=True restores autotuning.
    ds = ds.prefetch(2)
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = ds.with_options(options)
    ds.class_names = class_names
    ds.file_paths = file_paths
    ds.skipped_files = source.skipped
    # The generator runs ahead of the model by the prefetched batches, so for resuming a
    # tf.data pipeline use the training loop's own counters with state_at().
    ds.state_at = source.state_at
    ds.set_epoch = source.set_epoch
    ds.crop_boxes = source.crop_boxes
    return ds
