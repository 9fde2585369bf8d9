"""Train a small Keras model on the JAX backend, fed by pyimgdir's Grain dataset.

    python examples/train_jax.py [DIR] [--epochs 3] [--image-size 64]

DIR holds one sub-folder per class. Without DIR, a small sample dataset is generated in a
temporary directory. Keras runs on JAX (``KERAS_BACKEND=jax``, the CPU wheel is enough);
``format="grain"`` returns what Keras' own ``format="grain"`` returns (a ``grain.IterDataset``
of JAX arrays), with the batches decoded by pyimgdir's C++ core. The script also saves the
training iterator's Grain state mid-epoch and resumes from it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported; the backend is fixed per process

import numpy as np  # noqa: E402
import keras  # noqa: E402

import pyimgdir  # noqa: E402
from pyimgdir.sample import make_sample  # noqa: E402


def train(directory, epochs: int, image_size: int, batch_size: int) -> dict:
    train_ds, val_ds = pyimgdir.image_dataset_from_directory(
        directory,
        validation_split=0.2,
        subset="both",
        seed=1337,
        image_size=(image_size, image_size),
        batch_size=batch_size,
        format="grain",
    )
    images, labels = next(iter(train_ds))
    print("backend:", keras.backend.backend())
    print("dataset:", type(train_ds).__mro__[1].__module__.split(".")[0] + "." + type(train_ds).__mro__[1].__name__)
    print(f"batch: {type(images).__module__.split('.')[0]} {images.dtype} {tuple(images.shape)}, labels {labels.dtype}")
    print("classes:", train_ds.class_names)

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
    with warnings.catch_warnings():
        # Keras says this for its own grain datasets too: fit's default shuffle=True is
        # ignored (the dataset is shuffled already), and an epoch ends when the iterator
        # does (a Grain dataset has no length).
        warnings.filterwarnings("ignore", message=".*grain dataset is expected to already be shuffled")
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=2)
    final = {k: float(v[-1]) for k, v in history.history.items()}
    print("final:", ", ".join(f"{k} {v:.4f}" for k, v in final.items()))

    # Grain checkpointing: the state after one batch; a new iterator continues from it.
    it = iter(train_ds)
    next(it)
    state = it.get_state()
    expected = next(it)[0]
    resumed = iter(train_ds)
    resumed.set_state(state)
    same = np.array_equal(np.asarray(next(resumed)[0]), np.asarray(expected))
    print(f"resumed from {state}: same next batch: {same}")
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
