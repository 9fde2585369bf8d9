"""Stage 4, expose: a ``tf.data.Dataset`` over the C++ batches (TensorFlow imported here only).

``from_generator`` with an exact ``output_signature`` (static image shapes, Keras' dtypes),
the cardinality asserted so ``len(ds)`` works and ``model.fit`` shows N/M steps. Each
iteration of the dataset is a new epoch of the underlying source.
"""

from __future__ import annotations

import numpy as np

from ..batches.source import BatchSource


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

    ds = tf.data.Dataset.from_generator(source.iter_epoch, output_signature=signature)
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
