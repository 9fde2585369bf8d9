"""Training-input loaders for bench_crop.py: random-resized crop to the spec's size plus a
random horizontal flip, batched, in file order (the crops differ every epoch).

- pyimgdir: ``random_resized_crop=True, random_flip="horizontal"`` (torchvision's defaults),
  float32 or uint8, and the exact variant (``jpeg_downscale=False``: every sample equals
  TensorFlow's decode_and_crop_jpeg + resize).
- TensorFlow's reference ImageNet pipeline: read_file -> extract_jpeg_shape ->
  sample_distorted_bounding_box -> decode_and_crop_jpeg -> resize (bilinear) ->
  random_flip_left_right, map with AUTOTUNE, batch, prefetch(AUTOTUNE). Its box sampler
  gets torchvision's ranges (area 0.08-1, aspect 3/4-4/3, 10 attempts, whole image when none
  fits) so every loader crops about as much.
- torchvision: ImageFolder + RandomResizedCrop + RandomHorizontalFlip + PILToTensor,
  DataLoader with one worker per core.
"""

from __future__ import annotations

import os
from typing import Optional

from loader_base import Loader, Spec, children_cpu_s, import_torchvision, list_files, tf_view, touch


def pyimgdir_train_loader(directory: str, spec: Spec, state: dict, threads: Optional[int] = None,
                          dtype: Optional[str] = None, exact: bool = False, format: str = "numpy", **_) -> Loader:
    import pyimgdir

    kw = dict(image_size=(spec.height, spec.width), batch_size=spec.batch_size, shuffle=False, seed=1,
              verbose=False, format=format, dtype=dtype, num_threads=threads, random_resized_crop=True,
              random_flip="horizontal")
    if exact:
        kw["jpeg_downscale"] = False
    ds = pyimgdir.image_dataset_from_directory(directory, **kw)
    if format == "tf":
        def epoch():
            for x, y in ds:
                y.numpy()
                yield touch(tf_view(x), state)
    else:
        def epoch():
            for x, y in ds:
                yield touch(x, state)

    what = [f'format="{format}"', "random_resized_crop=True", 'random_flip="horizontal"']
    if dtype:
        what.append(f'dtype="{dtype}"')
    what.append("jpeg_downscale=False (exact)" if exact else "jpeg_downscale default (DCT-scaled crops)")
    return Loader(epoch, f"pyimgdir {pyimgdir.__version__} image_dataset_from_directory({', '.join(what)})",
                  threads=threads)


def tf_train_loader(directory: str, spec: Spec, state: dict, **_) -> Loader:
    import tensorflow as tf

    files = list_files(directory)
    classes = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
    labels = [classes.index(os.path.basename(os.path.dirname(f))) for f in files]
    size = (spec.height, spec.width)

    def load(path, label):
        data = tf.io.read_file(path)
        shape = tf.image.extract_jpeg_shape(data)
        begin, extent, _ = tf.image.sample_distorted_bounding_box(
            shape, bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]), min_object_covered=0.0,
            aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0), max_attempts=10,
            use_image_if_no_bounding_boxes=True)
        window = tf.stack([begin[0], begin[1], extent[0], extent[1]])
        img = tf.image.decode_and_crop_jpeg(data, window, channels=3)
        img = tf.image.resize(img, size, method="bilinear")
        return tf.image.random_flip_left_right(img), label

    ds = (tf.data.Dataset.from_tensor_slices((files, labels))
          .map(load, num_parallel_calls=tf.data.AUTOTUNE)
          .batch(spec.batch_size)
          .prefetch(tf.data.AUTOTUNE))

    def epoch():
        for x, y in ds:
            y.numpy()
            yield touch(tf_view(x), state)

    return Loader(epoch, f"tensorflow {tf.__version__}: read_file -> extract_jpeg_shape -> "
                         "sample_distorted_bounding_box(area 0.08-1, aspect 3/4-4/3, 10 attempts) -> "
                         "decode_and_crop_jpeg -> resize bilinear -> random_flip_left_right; "
                         "map(AUTOTUNE) -> batch -> prefetch(AUTOTUNE); float32")


def torchvision_train_loader(directory: str, spec: Spec, state: dict, threads: Optional[int] = None,
                             **_) -> Loader:
    import torch

    torchvision = import_torchvision()
    from torchvision import datasets, transforms

    workers = threads or os.cpu_count()
    tf = transforms.Compose([transforms.RandomResizedCrop((spec.height, spec.width)),
                             transforms.RandomHorizontalFlip(), transforms.PILToTensor()])
    ds = datasets.ImageFolder(directory, transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=spec.batch_size, shuffle=False, num_workers=workers,
                                     persistent_workers=True, prefetch_factor=2)

    def epoch():
        for x, y in dl:
            yield touch(x.numpy(), state)

    state["child_cpu_s"] = children_cpu_s
    return Loader(epoch, f"torchvision {torchvision.__version__} ImageFolder (PIL decode) + RandomResizedCrop "
                         f"(bilinear, antialiased) + RandomHorizontalFlip + PILToTensor, "
                         f"DataLoader(num_workers={workers}); uint8 CHW", threads=workers)


TRAIN_LOADERS = {
    "pyimgdir train": (pyimgdir_train_loader, {}, "pyimgdir"),
    "pyimgdir train uint8": (pyimgdir_train_loader, {"dtype": "uint8"}, "pyimgdir"),
    "pyimgdir train exact": (pyimgdir_train_loader, {"exact": True}, "pyimgdir"),
    "pyimgdir train tf": (pyimgdir_train_loader, {"format": "tf"}, "pyimgdir"),
    "tf train": (tf_train_loader, {}, "peer"),
    "torchvision train": (torchvision_train_loader, {}, "peer"),
}

TRAIN_NEEDS = {
    "pyimgdir train tf": ["tensorflow"],
    "tf train": ["tensorflow"],
    "torchvision train": ["torch", "torchvision"],
}
