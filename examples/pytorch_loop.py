"""A PyTorch training loop fed by pyimgdir's numpy batches (no TensorFlow involved).

    python examples/pytorch_loop.py [DIR] [--epochs 3] [--image-size 64]

DIR holds one sub-folder per class. Without DIR, a small sample dataset is generated in a
temporary directory. Needs PyTorch (``pip install torch``); without it the example says
so and exits with status 0.

``data_format="channels_first"`` gives batches already in PyTorch's (N, C, H, W) layout, and
``torch.from_numpy`` wraps each batch without a copy: the tensor keeps the batch buffer
alive, so pyimgdir never reuses a buffer a tensor still views. With a GPU,
``pin_memory=True`` page-locks the buffers for faster host-to-device copies. For
DataLoader worker processes or DistributedDataParallel, ``pyimgdir.TorchDataset`` (same
arguments) gives each rank and worker its own share of the files.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

try:
    import torch
    from torch import nn
except ImportError:
    torch = None  # type: ignore[assignment]

import pyimgdir
from pyimgdir.sample import make_sample

SKIP_MESSAGE = "PyTorch is not installed: skipping this example (pip install torch to run it)."


def train(directory, epochs: int, image_size: int, batch_size: int) -> float:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_ds, val_ds = pyimgdir.image_dataset_from_directory(
        directory,
        validation_split=0.2,
        subset="both",
        seed=1337,
        image_size=(image_size, image_size),
        batch_size=batch_size,
        format="numpy",
        data_format="channels_first",  # (N, C, H, W), as PyTorch expects
        pin_memory=device.type == "cuda",
    )
    num_classes = len(train_ds.class_names)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, num_classes),
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def to_tensors(images, labels):
        # float32 pixels in [0, 255] -> [0, 1]; int32 labels -> int64 as CrossEntropyLoss wants.
        x = torch.from_numpy(images).to(device, non_blocking=True) / 255.0
        y = torch.from_numpy(labels).to(device).long()
        return x, y

    accuracy = 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        total_loss, batches = 0.0, 0
        for images, labels in train_ds:  # one epoch, reshuffled each time
            x, y = to_tensors(images, labels)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
            batches += 1
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for images, labels in val_ds:
                x, y = to_tensors(images, labels)
                correct += int((model(x).argmax(dim=1) == y).sum().item())
                total += len(y)
        accuracy = correct / max(total, 1)
        print(f"epoch {epoch}: loss {total_loss / max(batches, 1):.4f}, val_accuracy {accuracy:.4f}")
    return accuracy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", help="data directory (default: a generated sample)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    if torch is None:
        print(SKIP_MESSAGE)
        return 0
    if args.dir:
        train(args.dir, args.epochs, args.image_size, args.batch_size)
        return 0
    with tempfile.TemporaryDirectory(prefix="pyimgdir-example-") as tmp:
        directory = make_sample(tmp, classes=3, per_class=30, size_range=(64, 160))
        train(directory, args.epochs, args.image_size, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
