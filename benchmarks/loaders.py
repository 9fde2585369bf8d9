"""The loaders the harness compares, each a function ``make(directory, spec) -> Loader``.

Every loader reads the same files and produces, per batch, images of the spec's size
(RGB, bilinear, no shuffle) and is consumed the same way: the harness iterates it and
touches one element of each batch's numpy array. Imports happen inside each factory, so
a subprocess that runs one loader imports only what that loader needs (TensorFlow only
for Keras and pyimgdir's tf.data output), which keeps peak-RSS figures comparable.

A ``Loader`` has ``epoch()`` (a generator yielding the number of images in each batch it
delivered) and ``notes`` (what exactly it does). ``first_batch_mean`` is filled in on the
first batch so that loaders can be cross-checked for producing the same kind of output.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, List, Optional

import numpy as np

from loader_base import (  # noqa: F401 - Spec, SPECS and list_files are read through this module
    IMAGE_EXTENSIONS,
    SPECS,
    Loader,
    Spec,
    children_cpu_s,
    import_torchvision,
    list_files,
    tf_view,
    touch,
)
from loaders_train import TRAIN_LOADERS, TRAIN_NEEDS

def keras_loader(directory: str, spec: Spec, state: dict, **_) -> Loader:
    import keras
    import tensorflow as tf

    ds = keras.utils.image_dataset_from_directory(
        directory, image_size=(spec.height, spec.width), batch_size=spec.batch_size,
        shuffle=False, interpolation="bilinear", verbose=False,
    ).prefetch(tf.data.AUTOTUNE)

    def epoch():
        for x, y in ds:
            y.numpy()
            yield touch(tf_view(x), state)

    return Loader(epoch, f"keras {keras.__version__} / tensorflow {tf.__version__} "
                         "image_dataset_from_directory(...).prefetch(AUTOTUNE), float32")


def keras_grain_loader(directory: str, spec: Spec, state: dict, **_) -> Loader:
    """Keras' format="grain" under the active Keras backend (run.py sets KERAS_BACKEND)."""
    import keras

    ds = keras.utils.image_dataset_from_directory(
        directory, image_size=(spec.height, spec.width), batch_size=spec.batch_size,
        shuffle=False, interpolation="bilinear", verbose=False, format="grain",
    )

    def epoch():
        for x, y in ds:
            np.asarray(y)
            yield touch(np.asarray(x), state)

    import grain

    return Loader(epoch, f"keras {keras.__version__} / grain {grain.__version__} image_dataset_from_directory("
                         f'format="grain"), {keras.backend.backend()} backend, float32')


# ----------------------------------------------------------- hand-written thread pools


def _pool_loader(files: List[str], spec: Spec, state: dict, threads: int, fill_one,
                 dtype=np.float32, prefetch: int = 2) -> Callable[[], Iterator[int]]:
    """Batches from a thread pool: every image of a batch is one task that writes its slot;
    up to `prefetch` batches are in flight ahead of the consumer (a fresh buffer each)."""
    pool = ThreadPoolExecutor(threads)
    bs = spec.batch_size
    starts = list(range(0, len(files), bs))

    def submit(s):
        n = min(bs, len(files) - s)
        out = np.empty((n, spec.height, spec.width, 3), dtype)
        futs = [pool.submit(fill_one, out, i, files[s + i]) for i in range(n)]
        return out, futs

    def epoch():
        q = deque()
        it = iter(starts)
        for s in it:
            q.append(submit(s))
            if len(q) > prefetch:
                break
        while q:
            out, futs = q.popleft()
            for f in futs:
                f.result()
            nxt = next(it, None)
            if nxt is not None:
                q.append(submit(nxt))
            yield touch(out, state)

    return epoch


def simplejpeg_cv2_loader(directory: str, spec: Spec, state: dict, threads: Optional[int] = None,
                          downscale: bool = False, **_) -> Loader:
    import cv2
    import simplejpeg

    cv2.setNumThreads(1)  # parallelism is across images; no nested OpenCV pool
    threads = threads or os.cpu_count()
    files = list_files(directory)
    size = (spec.width, spec.height)
    kw = dict(min_height=spec.height, min_width=spec.width, min_factor=2) if downscale else {}

    def fill_one(out, i, path):
        with open(path, "rb") as f:
            data = f.read()
        img = simplejpeg.decode_jpeg(data, colorspace="RGB", **kw)
        out[i] = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)

    how = ("decode_jpeg(min_height/min_width = target, min_factor=2: DCT-domain downscale)"
           if downscale else "decode_jpeg (full size)")
    return Loader(
        _pool_loader(files, spec, state, threads, fill_one),
        f"ThreadPoolExecutor({threads}): read + simplejpeg {simplejpeg.__version__} {how} + "
        f"cv2 {cv2.__version__} resize INTER_LINEAR, written into a float32 batch; 2 batches in flight",
        threads=threads,
    )


def pillow_loader(directory: str, spec: Spec, state: dict, threads: Optional[int] = None, **_) -> Loader:
    import PIL
    from PIL import Image

    threads = threads or os.cpu_count()
    files = list_files(directory)
    size = (spec.width, spec.height)

    def fill_one(out, i, path):
        with Image.open(path) as im:
            im = im.convert("RGB").resize(size, Image.Resampling.BILINEAR)
        out[i] = np.asarray(im)

    return Loader(
        _pool_loader(files, spec, state, threads, fill_one),
        f"ThreadPoolExecutor({threads}): Pillow {PIL.__version__} open + convert('RGB') + "
        "resize BILINEAR (Pillow's is antialiased), written into a float32 batch; 2 batches in flight",
        threads=threads,
    )


def torchvision_loader(directory: str, spec: Spec, state: dict, threads: Optional[int] = None, **_) -> Loader:
    import torch

    torchvision = import_torchvision()
    from torchvision import datasets, transforms

    workers = threads or os.cpu_count()
    tf = transforms.Compose([transforms.Resize((spec.height, spec.width)), transforms.PILToTensor()])
    ds = datasets.ImageFolder(directory, transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=spec.batch_size, shuffle=False, num_workers=workers,
                                     persistent_workers=True, prefetch_factor=2)

    def epoch():
        for x, y in dl:
            yield touch(x.float().numpy(), state)

    state["child_cpu_s"] = children_cpu_s
    return Loader(epoch, f"torchvision {torchvision.__version__} ImageFolder (PIL decode, Resize bilinear, "
                         f"antialiased as PIL always is) + PILToTensor + DataLoader(num_workers={workers}), "
                         "uint8 CHW -> float",
                  threads=workers)


# --------------------------------------------------------------------------- ceiling


def _ceiling(files: List[str], state: dict, threads: int, decode, chunk: int = 8):
    pool = ThreadPoolExecutor(threads)
    # up to `chunk` files per task, but enough tasks that the threads finish together
    chunk = max(1, min(chunk, len(files) // (threads * 32)))
    chunks = [files[i : i + chunk] for i in range(0, len(files), chunk)]

    def work(paths):
        px = 0
        for p in paths:
            with open(p, "rb") as f:
                a = decode(f.read())
            px += a.shape[0] * a.shape[1]
        return len(paths), px

    def epoch():
        # keep every core busy: all chunks queued at once, results taken in order
        futs = [pool.submit(work, c) for c in chunks]
        px_total = 0
        for f in futs:
            n, px = f.result()
            px_total += px
            yield n
        state["megapixels_per_epoch"] = round(px_total / 1e6, 1)

    return epoch


def ceiling_pyimgdir_loader(directory: str, spec: Spec, state: dict, threads: Optional[int] = None, **_) -> Loader:
    from pyimgdir import _core

    threads = threads or os.cpu_count()
    files = list_files(directory)
    return Loader(_ceiling(files, state, threads, lambda d: _core.decode(d, 3), chunk=8),
                  f"ThreadPoolExecutor({threads}): read + pyimgdir._core.decode (libjpeg-turbo, full size, "
                  "GIL released), no resize, no batch; up to 8 files per task", threads=threads)


def ceiling_simplejpeg_loader(directory: str, spec: Spec, state: dict, threads: Optional[int] = None, **_) -> Loader:
    import threading

    import simplejpeg

    threads = threads or os.cpu_count()
    files = list_files(directory)
    local = threading.local()

    def decode(data):
        # into a per-thread buffer that only grows: a fresh multi-megabyte array per image
        # would add page faults (~10 ms per 12 MP image here) that are not decode work
        h, w, _, _ = simplejpeg.decode_jpeg_header(data)
        buf = getattr(local, "buf", None)
        if buf is None or buf.size < h * w * 3:
            buf = local.buf = np.empty(h * w * 3, np.uint8)
        return simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=buf)

    return Loader(_ceiling(files, state, threads, decode, chunk=8),
                  f"ThreadPoolExecutor({threads}): read + simplejpeg {simplejpeg.__version__} decode_jpeg "
                  "(libjpeg-turbo, full size) into a reused per-thread buffer, no resize, no batch; "
                  "up to 8 files per task", threads=threads)


# --------------------------------------------------------------------------- pyimgdir


def pyimgdir_has_downscale() -> bool:
    import inspect

    import pyimgdir

    return "jpeg_downscale" in inspect.signature(pyimgdir.image_dataset_from_directory).parameters


def pyimgdir_loader(directory: str, spec: Spec, state: dict, threads: Optional[int] = None,
                    format: str = "numpy", dtype: Optional[str] = None, downscale: bool = False,
                    data_format: Optional[str] = None, **_) -> Loader:
    import pyimgdir

    kw = dict(image_size=(spec.height, spec.width), batch_size=spec.batch_size, shuffle=False,
              interpolation="bilinear", verbose=False, format=format, dtype=dtype, num_threads=threads)
    if downscale:
        kw["jpeg_downscale"] = True
    if data_format:
        kw["data_format"] = data_format
    ds = pyimgdir.image_dataset_from_directory(directory, **kw)
    if format == "tf":
        def epoch():
            for x, y in ds:
                y.numpy()
                yield touch(tf_view(x), state)
    elif format == "grain":
        import keras

        def epoch():
            for x, y in ds:
                np.asarray(y)
                yield touch(np.asarray(x), state)
    else:
        def epoch():
            for x, y in ds:
                yield touch(x, state)

    what = [f'format="{format}"']
    if dtype:
        what.append(f'dtype="{dtype}"')
    if downscale:
        what.append("jpeg_downscale=True")
    if data_format:
        what.append(f'data_format="{data_format}"')
    what.append(f"num_threads={threads or 'default'}")
    if format == "grain":
        what.append(f"{keras.backend.backend()} backend")
    return Loader(epoch, f"pyimgdir {pyimgdir.__version__} image_dataset_from_directory({', '.join(what)})",
                  threads=threads)


def torch_dataset_loader(directory: str, spec: Spec, state: dict, threads: Optional[int] = None,
                         workers: int = 0, oversubscribe: bool = False, **_) -> Loader:
    """pyimgdir.TorchDataset under torch's DataLoader, as the README shows it: batches made
    by pyimgdir (batch_size=None in the DataLoader), consumed as torch tensors. workers=0:
    pyimgdir's threads in the training process; workers=N: N DataLoader processes, each
    with its own loader (TorchDataset gives each cores/N threads unless num_threads is set;
    `oversubscribe` sets num_threads=cores in every worker, the setup that splits nothing)."""
    import torch

    import pyimgdir

    kw = dict(image_size=(spec.height, spec.width), batch_size=spec.batch_size, shuffle=False,
              interpolation="bilinear")
    cores = os.cpu_count() or 1
    if threads:
        kw["num_threads"] = threads
    elif oversubscribe:
        kw["num_threads"] = cores
    ds = pyimgdir.TorchDataset(directory, **kw)
    nw = workers if workers >= 0 else cores
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=nw,
                                     persistent_workers=nw > 0, prefetch_factor=2 if nw > 0 else None)

    def epoch():
        for x, y in dl:
            yield touch(x.numpy(), state)

    how = f"num_workers={nw}" + (f", num_threads={kw['num_threads']} in each" if "num_threads" in kw else
                                 (", TorchDataset's default threads per worker" if nw else ", pyimgdir threads in-process"))
    return Loader(epoch, f"pyimgdir {pyimgdir.__version__} TorchDataset + torch {torch.__version__} "
                         f"DataLoader(batch_size=None, {how}), float32 NHWC tensors", threads=kw.get("num_threads"))


# ----------------------------------------------------------------------------- table

# name -> (factory, kwargs, group). Groups: anchor, peer, ceiling, pyimgdir.
LOADERS = {
    "keras": (keras_loader, {}, "anchor"),
    "simplejpeg+cv2": (simplejpeg_cv2_loader, {}, "peer"),
    "simplejpeg+cv2 downscale": (simplejpeg_cv2_loader, {"downscale": True}, "peer"),
    "pillow": (pillow_loader, {}, "peer"),
    "torchvision": (torchvision_loader, {}, "peer"),
    "ceiling pyimgdir.decode": (ceiling_pyimgdir_loader, {}, "ceiling"),
    "ceiling simplejpeg": (ceiling_simplejpeg_loader, {}, "ceiling"),
    "pyimgdir tf": (pyimgdir_loader, {"format": "tf"}, "pyimgdir"),
    "pyimgdir numpy": (pyimgdir_loader, {"format": "numpy"}, "pyimgdir"),
    "pyimgdir numpy uint8": (pyimgdir_loader, {"format": "numpy", "dtype": "uint8"}, "pyimgdir"),
    "pyimgdir numpy downscale": (pyimgdir_loader, {"format": "numpy", "downscale": True}, "pyimgdir"),
    # format="grain" under the TensorFlow and JAX backends (KERAS_BACKEND set per subprocess)
    "keras grain": (keras_grain_loader, {"backend": "tensorflow"}, "anchor"),
    "pyimgdir grain": (pyimgdir_loader, {"format": "grain", "backend": "tensorflow"}, "pyimgdir"),
    "keras grain jax": (keras_grain_loader, {"backend": "jax"}, "anchor"),
    "pyimgdir grain jax": (pyimgdir_loader, {"format": "grain", "backend": "jax"}, "pyimgdir"),
    "pyimgdir numpy channels_first": (pyimgdir_loader, {"format": "numpy", "data_format": "channels_first"},
                                      "pyimgdir"),
    "torch TorchDataset threads": (torch_dataset_loader, {"workers": 0}, "torch"),
    "torch TorchDataset workers": (torch_dataset_loader, {"workers": -1}, "torch"),
    "torch TorchDataset workers oversubscribed": (torch_dataset_loader, {"workers": -1, "oversubscribe": True},
                                                  "torch"),
}


# Training-input loaders (random crops and flips), measured by bench_crop.py.

LOADERS.update(TRAIN_LOADERS)


def available(name: str, python: Optional[str] = None) -> Optional[str]:
    """None if loader `name` can run here (with interpreter `python` if given), else the
    reason it cannot."""
    import importlib.util

    need = {
        **TRAIN_NEEDS,
        "keras": ["keras", "tensorflow"],
        "simplejpeg+cv2": ["simplejpeg", "cv2"],
        "simplejpeg+cv2 downscale": ["simplejpeg", "cv2"],
        "pillow": ["PIL"],
        "torchvision": ["torch", "torchvision"],
        "ceiling simplejpeg": ["simplejpeg"],
        "pyimgdir tf": ["tensorflow"],
        "keras grain": ["keras", "grain", "tensorflow"],
        "pyimgdir grain": ["keras", "grain", "tensorflow"],
        "keras grain jax": ["keras", "grain", "jax"],
        "pyimgdir grain jax": ["keras", "grain", "jax"],
        "torch TorchDataset threads": ["torch"],
        "torch TorchDataset workers": ["torch"],
        "torch TorchDataset workers oversubscribed": ["torch"],
    }.get(name, [])
    if python:
        import subprocess

        p = subprocess.run([python, "-c", "import " + ", ".join(need or ["sys"])], capture_output=True, text=True)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["?"])[-1]
            return f"{python} cannot import {', '.join(need)}: {last}"
        return None
    missing = [m for m in need if importlib.util.find_spec(m) is None]
    if missing:
        return f"not installed: {', '.join(missing)}"
    if name == "pyimgdir numpy downscale" and not pyimgdir_has_downscale():
        return "this pyimgdir has no jpeg_downscale option"
    return None
