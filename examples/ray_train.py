"""Ray Train fed by pyimgdir: Ray Data read tasks decode with pyimgdir's C++ core, a
TorchTrainer trains a small CNN on the rows they stream to its workers.

    python examples/ray_train.py [DIR] [--epochs 2] [--image-size 64] [--workers 1]

DIR holds one sub-folder per class. Without DIR, a small sample dataset is generated in a
temporary directory. Starts a local Ray cluster (or joins the one ``RAY_ADDRESS`` names).
Needs Ray Data, Ray Train and PyTorch (``pip install "pyimgdir[ray]" torch``); without
them the example says so and exits with status 0.

Each Ray Train worker gets its share of every epoch through ``get_dataset_shard`` (Ray's
``streaming_split``): every file once per epoch across the workers, a new order and new
random crops each epoch (drawn from ``(seed, epoch, file)``, as everywhere in pyimgdir).
Decoding runs in Ray read tasks, on any node with CPUs, not in the training processes.
Each worker reserves one CPU; leave at least one more for the read tasks.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

try:
    import ray
    import ray.train
    import torch
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from torch import nn
except ImportError as e:
    ray = None  # type: ignore[assignment]
    MISSING = e.name

import pyimgdir
from pyimgdir.sample import make_sample

SKIP_MESSAGE = ('{} is not installed: skipping this example '
                '(pip install "pyimgdir[ray]" torch to run it).')


def train_loop(config: dict) -> None:
    """Runs in every Ray Train worker."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, config["num_classes"]),
    )
    model = ray.train.torch.prepare_model(model)  # DistributedDataParallel with >1 worker
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")

    def tensors(batch):
        # (N, H, W, C) uint8 rows -> (N, C, H, W) floats in [0, 1]; int32 labels -> int64
        x = batch["image"].permute(0, 3, 1, 2).float() / 255.0
        return x, batch["label"].long()

    metrics = {}
    for epoch in range(config["epochs"]):
        model.train()
        total, batches = 0.0, 0
        # every iteration of the shard is the next epoch: new order, new crops and flips
        for batch in train_shard.iter_torch_batches(batch_size=config["batch_size"]):
            x, y = tensors(batch)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item()
            batches += 1
        model.eval()
        correct = seen = 0
        with torch.no_grad():
            for batch in val_shard.iter_torch_batches(batch_size=config["batch_size"]):
                x, y = tensors(batch)
                correct += (model(x).argmax(1) == y).sum().item()
                seen += len(y)
        metrics = {"epoch": epoch + 1, "loss": total / max(batches, 1), "train_batches": batches,
                   "val_accuracy": correct / max(seen, 1), "val_images": seen}
        last = epoch + 1 == config["epochs"]
        if last and ray.train.get_context().get_world_rank() == 0:
            # Ray Train keeps the metrics that come with a checkpoint.
            with tempfile.TemporaryDirectory() as d:
                torch.save(model.state_dict(), f"{d}/model.pt")
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))
        else:
            ray.train.report(metrics)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("directory", nargs="?", help="dataset directory (default: a generated sample)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1, help="Ray Train workers (one CPU each)")
    args = ap.parse_args(argv)
    if ray is None:
        print(SKIP_MESSAGE.format(MISSING))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        directory = args.directory or make_sample(f"{tmp}/sample", classes=3, per_class=20)
        ray.init()
        try:
            train_ds, val_ds = pyimgdir.ray_dataset(
                directory,
                validation_split=0.2,
                subset="both",
                seed=1337,
                image_size=(args.image_size, args.image_size),
                dtype="uint8",  # a quarter of float32's bytes through Ray's object store
                random_resized_crop=True,  # training crops; the validation half is not cropped
                random_flip="horizontal",
            )
            print(f"classes: {train_ds.class_names}; train files: {len(train_ds.file_paths)}, "
                  f"validation files: {len(val_ds.file_paths)}")
            trainer = TorchTrainer(
                train_loop,
                train_loop_config={"epochs": args.epochs, "batch_size": args.batch_size,
                                   "num_classes": len(train_ds.class_names)},
                scaling_config=ScalingConfig(num_workers=args.workers),
                datasets={"train": train_ds, "val": val_ds},
                run_config=RunConfig(storage_path=f"{tmp}/ray_results", name="pyimgdir_example"),
            )
            result = trainer.fit()
            m = result.metrics
            print(f"epoch {m['epoch']}: loss {m['loss']:.4f}, train batches {m['train_batches']}, "
                  f"validation accuracy {m['val_accuracy']:.3f} on {m['val_images']} images")
        finally:
            ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
