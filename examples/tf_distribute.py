"""Data-parallel training with tf.distribute, fed by pyimgdir.

    python examples/tf_distribute.py [DIR] [--epochs 2] [--per-replica-batch 8]

DIR holds one sub-folder per class. Without DIR, a small sample dataset is generated in a
temporary directory. To run anywhere, the CPU is split into two logical devices and
``MirroredStrategy`` keeps one model replica on each; on a machine with GPUs, drop the
logical-device lines and the strategy picks up every GPU.

``strategy.distribute_datasets_from_function`` calls ``dataset_fn`` once per input
pipeline; the function builds the pyimgdir dataset with the per-replica batch size and
``input_context=``, and the strategy hands consecutive batches to the replicas. With
``MultiWorkerMirroredStrategy`` there is one input pipeline per worker, and
``input_context=`` makes each worker read only its own share of the files (the same
``seed`` on every worker keeps the shares disjoint).
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# Two logical CPU devices, set before TensorFlow initialises its devices.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

import keras  # noqa: E402

import pyimgdir  # noqa: E402
from pyimgdir.sample import make_sample  # noqa: E402


def train(directory, epochs: int, image_size: int, per_replica_batch: int) -> dict:
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    replicas = strategy.num_replicas_in_sync
    global_batch = per_replica_batch * replicas
    print(f"replicas: {replicas} ({', '.join(devices)}); global batch {global_batch}")

    info = {}

    def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        # Called once per input pipeline (one per worker). The batch size is per replica;
        # input_context= gives this pipeline its share of the files (all of them here, as
        # MirroredStrategy on one machine has a single pipeline feeding every replica).
        ds = pyimgdir.image_dataset_from_directory(
            directory,
            image_size=(image_size, image_size),
            batch_size=input_context.get_per_replica_batch_size(global_batch),
            seed=1337,  # the same on every worker: shuffling and sharding agree
            input_context=input_context,
            verbose=input_context.input_pipeline_id == 0,
        )
        replicas_here = replicas // input_context.num_input_pipelines
        info["class_names"] = ds.class_names
        # Each step takes one batch per local replica.
        info["steps_per_epoch"] = -(-len(ds) // replicas_here)
        # Each pass of the repeat is a new pyimgdir epoch (reshuffled); steps_per_epoch
        # below marks the epochs for Keras.
        return ds.repeat()

    dist_ds = strategy.distribute_datasets_from_function(dataset_fn)

    with strategy.scope():  # variables are mirrored on every replica
        model = keras.Sequential(
            [
                keras.Input(shape=(image_size, image_size, 3)),
                keras.layers.Rescaling(1.0 / 255),
                keras.layers.Conv2D(16, 3, activation="relu"),
                keras.layers.MaxPooling2D(),
                keras.layers.Conv2D(32, 3, activation="relu"),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(len(info["class_names"])),
            ]
        )
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    print(f"steps per epoch: {info['steps_per_epoch']}")
    history = model.fit(dist_ds, epochs=epochs, steps_per_epoch=info["steps_per_epoch"], verbose=2)
    final = {k: float(v[-1]) for k, v in history.history.items()}
    print("final:", ", ".join(f"{k} {v:.4f}" for k, v in final.items()))
    return final


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", help="data directory (default: a generated sample)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--per-replica-batch", type=int, default=8)
    args = parser.parse_args(argv)
    if args.dir:
        train(args.dir, args.epochs, args.image_size, args.per_replica_batch)
        return
    with tempfile.TemporaryDirectory(prefix="pyimgdir-example-") as tmp:
        directory = make_sample(tmp, classes=3, per_class=30, size_range=(64, 160))
        train(directory, args.epochs, args.image_size, args.per_replica_batch)


if __name__ == "__main__":
    main()
