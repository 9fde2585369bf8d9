"""A training loop in plain numpy: pyimgdir's numpy batches, no TensorFlow involved.

    python examples/numpy_loop.py [DIR] [--epochs 3] [--image-size 32]

DIR holds one sub-folder per class. Without DIR, a small sample dataset is generated in a
temporary directory. The model is a softmax regression on the pixels, trained by
mini-batch gradient descent: just enough to show the loop.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import numpy as np

import pyimgdir
from pyimgdir.sample import make_sample


def train(directory, epochs: int, image_size: int, batch_size: int) -> float:
    train_ds, val_ds = pyimgdir.image_dataset_from_directory(
        directory,
        validation_split=0.2,
        subset="both",
        seed=1337,
        image_size=(image_size, image_size),
        batch_size=batch_size,
        format="numpy",      # numpy batches; TensorFlow is not imported
        dtype="uint8",       # rounded to 0..255: 4x less memory than float32
        on_error="skip",     # leave unreadable files out (listed in skipped_files)
    )
    print(train_ds)  # NumpyDataset(files=..., batches=..., image_shape=..., dtype=uint8)
    num_classes = len(train_ds.class_names)
    features = image_size * image_size * 3
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.01, (features, num_classes)).astype(np.float32)
    b = np.zeros(num_classes, np.float32)
    lr = 0.05

    def forward(images):
        x = images.reshape(len(images), -1).astype(np.float32) / 255.0 - 0.5
        logits = x @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return x, p / p.sum(axis=1, keepdims=True)

    for epoch in range(1, epochs + 1):
        losses = []
        for images, labels in train_ds:  # one epoch, reshuffled each time
            x, p = forward(images)
            losses.append(-np.log(p[np.arange(len(labels)), labels] + 1e-9).mean())
            grad = p
            grad[np.arange(len(labels)), labels] -= 1.0
            grad /= len(labels)
            w -= lr * (x.T @ grad)
            b -= lr * grad.sum(axis=0)
        correct = total = 0
        for images, labels in val_ds:
            _, p = forward(images)
            correct += int((p.argmax(axis=1) == labels).sum())
            total += len(labels)
        accuracy = correct / max(total, 1)
        print(f"epoch {epoch}: loss {np.mean(losses):.4f}, val_accuracy {accuracy:.4f}")
    skipped = train_ds.skipped_files + val_ds.skipped_files
    if skipped:
        print(f"Skipped (cannot be decoded): {len(skipped)}")
        for f in skipped:
            print(f"  {f.path}: {f.reason}")
    print("TensorFlow imported:", "tensorflow" in sys.modules)
    return accuracy


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", help="data directory (default: a generated sample)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
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
