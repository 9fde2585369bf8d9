"""Train a small Keras model on an image folder, loaded with pyimgdir.

    python examples/train_keras.py [DIR] [--epochs 3] [--image-size 64]

DIR holds one sub-folder per class (as for keras.utils.image_dataset_from_directory).
Without DIR, a small sample dataset is generated in a temporary directory.

The only change from the Keras tutorial is the loader: ``pyimgdir.image_dataset_from_directory``
takes the same arguments and returns the same ``tf.data.Dataset``.
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import pyimgdir  # noqa: E402
from pyimgdir.sample import make_sample  # noqa: E402


def train(directory, epochs: int, image_size: int, batch_size: int) -> dict:
    # Same call as Keras: an 80/20 split with a fixed seed, both subsets in one call.
    train_ds, val_ds = pyimgdir.image_dataset_from_directory(
        directory,
        validation_split=0.2,
        subset="both",
        seed=1337,
        image_size=(image_size, image_size),
        batch_size=batch_size,
    )
    print("classes:", train_ds.class_names)
    print(f"training batches: {len(train_ds)}, validation batches: {len(val_ds)}")

    num_classes = len(train_ds.class_names)
    model = keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, 3)),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=2)
    final = {k: float(v[-1]) for k, v in history.history.items()}
    print("final:", ", ".join(f"{k} {v:.4f}" for k, v in final.items()))
    return final


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", help="data directory (default: a generated sample)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    if args.dir:
        train(args.dir, args.epochs, args.image_size, args.batch_size)
        return
    with tempfile.TemporaryDirectory(prefix="pyimgdir-example-") as tmp:
        directory = make_sample(tmp, classes=3, per_class=30, size_range=(64, 160))
        train(directory, args.epochs, args.image_size, args.batch_size)


if __name__ == "__main__":
    main()
