"""``image_dataset_from_directory``: Keras' call. Checks (``checks.py``) -> index -> order
-> build, with every option resolved once into a :class:`~pyimgdir.spec.LoadSpec`."""

from __future__ import annotations

import inspect
import warnings
from typing import Optional

import numpy as np

from .batches.source import BatchSource, _Labels
from .errors import InvalidFilesError, SkippedFileWarning, UnreadableDirectoryWarning
from .options import checks
from .options.constants import (
    DEFAULT_BYTES_IN_FLIGHT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_REQUESTS_IN_FLIGHT,
    DEFAULT_RETRIES,
)
from .options.keras_compat import ALLOWLIST_FORMATS
from .options.spec import LoadSpec, RemoteOptions
from .order import global_shuffle, split
from .outputs.numpy_data import NumpyDataset
from .sources.index import index_directory
from .sources.validate import default_progress, validate_files


def image_dataset_from_directory(
    directory,
    labels="inferred",
    label_mode="int",
    class_names=None,
    color_mode="rgb",
    batch_size=32,
    image_size=(256, 256),
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    interpolation="bilinear",
    follow_links=False,
    crop_to_aspect_ratio=False,
    pad_to_aspect_ratio=False,
    data_format=None,
    format="tf",
    verbose=True,
    *,
    dtype: Optional[str] = None,
    num_threads: Optional[int] = None,
    prefetch: int = 2,
    max_pixels: int = 1 << 28,
    pin_memory: bool = False,
    on_error: str = "raise",
    validate: bool = False,
    jpeg_downscale: Optional[bool] = None,
    random_resized_crop=None,
    random_flip: Optional[str] = None,
    shard=None,
    input_context=None,
    shard_remainder: str = "pad",
    initial_state: Optional[dict] = None,
    cache=None,
    decoder: Optional[str] = None,
    storage_options: Optional[dict] = None,
    requests_in_flight: int = DEFAULT_REQUESTS_IN_FLIGHT,
    bytes_in_flight: int = DEFAULT_BYTES_IN_FLIGHT,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    manifest=None,
):
    """Generates a dataset from image files in a directory, exactly as
    ``keras.utils.image_dataset_from_directory`` does, decoded by a parallel C++ core.

    If ``directory`` holds ``class_a/`` and ``class_b/``, the dataset yields batches of
    images from both with labels 0 and 1. Files are ``.bmp``, ``.gif``, ``.jpeg``, ``.jpg``
    and ``.png`` (by extension, case-insensitive; decoded by content). Animated GIFs give
    their first frame.

    Args (Keras' own, same meaning and defaults):
        directory: the data directory (``str`` or ``pathlib.Path``).
        labels: ``"inferred"`` (from sub-directory names), ``None`` (no labels), or a
            list/tuple/array with one label per file, in the order files are indexed
            (sorted walk order, before shuffling).
        label_mode: ``"int"`` (int32), ``"categorical"`` (one-hot float32), ``"binary"``
            (float32, shape (B, 1)) or ``None`` (images only).
        class_names: with inferred labels, the sub-directories to use, in label order.
        color_mode: ``"grayscale"``, ``"rgb"`` or ``"rgba"`` (1, 3 or 4 channels).
        batch_size: samples per batch, or ``None`` for single samples.
        image_size: ``(height, width)`` (or one int) to resize every image to.
        shuffle: shuffle the file list (Keras' global shuffle) and every epoch.
        seed: the shuffle and split seed.
        validation_split: fraction of files held out for validation.
        subset: ``"training"``, ``"validation"`` or ``"both"`` (returns ``[train, val]``).
        interpolation: the resize method (``tf.image.resize`` numerics).
        follow_links: descend into symlinked sub-directories.
        crop_to_aspect_ratio: centre-crop to the target aspect ratio before resizing.
        pad_to_aspect_ratio: pad (with zeros) to the target aspect ratio instead.
        data_format: ``"channels_last"`` or ``"channels_first"`` (``None``: Keras' config).
        format: ``"tf"`` for a ``tf.data.Dataset`` (default), ``"grain"`` for a
            ``grain.IterDataset`` (:class:`GrainDataset`: Keras' grain output, elements as
            tensors of the active Keras backend, the same order every epoch), or
            ``"numpy"`` for a :class:`NumpyDataset` that needs no TensorFlow.
        verbose: print the "Found N files ..." line.

    Args (pyimgdir's own, keyword-only):
        dtype: image dtype, ``"float32"`` or ``"uint8"``. Default ``None`` is Keras'
            (float32; uint8 for ``interpolation="nearest"``). ``"uint8"`` with a float
            method rounds the resized values to the nearest integer in [0, 255].
        num_threads: decoding threads (default: one per CPU core).
        prefetch: batches prepared ahead of the consumer (bounds memory).
        max_pixels: refuse images with more pixels than this (decompression bombs).
        pin_memory: page-lock the batch buffers (``mlock``) for faster device copies.
        on_error: what a file that cannot be read or decoded does during iteration:
            ``"raise"`` (default) raises :class:`ImageLoadError` naming the file after the
            batches before it; ``"skip"`` leaves it out (batches stay full while files
            remain) and records it in ``skipped_files``; ``"warn"`` does the same and emits
            one :class:`SkippedFileWarning` per file.
        validate: decode every file once before returning (in parallel, with a progress
            bar on a terminal). Bad files raise :class:`InvalidFilesError` listing them all
            with ``on_error="raise"``, or are left out and listed in ``skipped_files``.
        jpeg_downscale: let libjpeg-turbo decode JPEGs at 1/2, 1/4 or 1/8 scale when the
            result is still at least the target size, then resize as usual. Much faster on
            large photos; pixels differ slightly from Keras' (see README). Default ``None``:
            on for a dataset with ``random_resized_crop`` (a crop at least twice the output
            is decoded at the smallest such scale that still covers it), off otherwise.
        random_resized_crop: training crops, fused into the decode: ``True`` for
            torchvision's ``RandomResizedCrop`` defaults (area fraction ``scale=(0.08, 1.0)``,
            aspect ratio ``ratio=(3/4, 4/3)`` drawn log-uniformly, 10 tries, then a centre
            crop), or ``(scale, ratio)`` / ``{"scale": ..., "ratio": ...}``. Each sample's box
            is drawn from the image's header size and only it is decoded, then resized to
            ``image_size`` with ``interpolation``. Not combinable with
            ``crop_to_aspect_ratio`` / ``pad_to_aspect_ratio``.
        random_flip: ``"horizontal"``, ``"vertical"`` or ``"horizontal_and_vertical"``
            (Keras' ``RandomFlip`` modes: each direction mirrored with probability 1/2).
            Crops and flips depend only on ``(seed, epoch, file index)``: the same for any
            thread count, batch size, shard or resume; different every epoch. With
            ``subset="both"`` only the training dataset is randomised. The dataset's
            ``crop_boxes(epoch)`` lists what each sample got.
        shard: ``(index, count)`` (or Grain's ``grain.sharding.ShardOptions``, e.g.
            ``ShardByJaxProcess()``; its ``drop_remainder=True`` means
            ``shard_remainder="drop"``): this worker's share. Every epoch's order is a
            permutation computed from ``(seed, epoch)``, the same on every worker; shard
            ``index`` takes every ``count``-th file of it from position ``index``. Files
            of other shards are never read.
        input_context: a ``tf.distribute.InputContext`` (as given to the function passed
            to ``distribute_datasets_from_function``); sets ``shard`` from it.
        shard_remainder: ``"pad"`` (default: the epoch is extended with its first files
            so every shard gets the same count, like torch's DistributedSampler) or
            ``"drop"`` (the last ``len % count`` files of each epoch's order sit out).
        cache: keep decoded, resized samples so later epochs skip decoding: ``"memory"``
            or a file path (memory-mapped, kept between runs). Needs
            ``len(files) * H * W * C * itemsize`` bytes. Unshuffled batches served from
            the cache are read-only views of it (no copy). Entries are invalidated when their
            file changes, the whole cache when the output settings or file list change.
        initial_state: a ``state()`` from an earlier dataset built with the same
            arguments (with ``format="grain"``, an iterator's ``get_state()``): iteration
            resumes at that epoch and batch, without decoding the batches before it, and
            yields exactly what the uninterrupted run would have.
        decoder: whose decoding conventions the pixels follow: ``"tensorflow"`` (TF's
            ``decode_image``: JPEG with the fast integer DCT; Keras' ``format="tf"``) or
            ``"pillow"`` (Pillow's: the accurate integer DCT, Pillow's grey, CMYK, palette
            and transparency conversions; Keras' ``format="grain"``). Default ``None``:
            the one Keras uses for ``format`` (``"pillow"`` for ``"grain"``).

    Args (directories given as URLs: ``gs://``, ``s3://`` or any fsspec protocol; needs
    ``pip install "pyimgdir[cloud]"``):
        storage_options: passed to the fsspec filesystem (credentials, ``endpoint_url``,
            ``anon``, ...); by default each library finds them where it always does
            (environment, config files, ``AWS_ENDPOINT_URL``, ``STORAGE_EMULATOR_HOST``).
        requests_in_flight: concurrent object requests (default 64, sized so that at
            20-100 ms per request the decode threads are kept busy).
        bytes_in_flight: at most this many fetched bytes are held, in flight or waiting to
            be decoded (default 256 MiB); one request always runs.
        request_timeout: seconds one attempt may take before it counts as a transient
            failure.
        retries: further attempts after a transient failure (HTTP 5xx, 429, S3
            ``SlowDown``, connection resets, timeouts), with exponential backoff and
            jitter. Permanent failures (404, 403, ...) are not retried: they go through
            ``on_error`` with the URL and status in the reason.

    Args (indexing once for many runs and hosts):
        manifest: a file written by ``pyimgdir scan DIR --manifest FILE``: the folder's
            index is read from it instead of walking the folder (same files, order and
            labels). ``directory`` may be the manifest file itself. Refused, saying what
            changed, when a folder's modification time differs from the one recorded
            (files added, removed or renamed since); scanning again is the fix.

    Returns:
        A ``tf.data.Dataset`` (or :class:`GrainDataset`, :class:`NumpyDataset`) with ``class_names`` and
        ``file_paths`` attributes; a list ``[train, validation]`` for ``subset="both"``.
    """
    call = checks.check_call(dict(locals()))

    return _index_and_build(
        directory, call.get, lambda class_names: checks.check_after_index(call, class_names),
        lambda: checks.resolve(call))


def load_spec(**kwargs) -> LoadSpec:
    """The :class:`LoadSpec` that ``image_dataset_from_directory(directory, **kwargs)``
    resolves to, with every check that does not need the files (the CLI builds its
    options this way)."""
    bound = inspect.signature(image_dataset_from_directory).bind(None, **kwargs)
    bound.apply_defaults()
    return checks.resolve(checks.check_call(dict(bound.arguments)))


def dataset_from_spec(directory, spec: LoadSpec):
    """Index -> order -> build for an already resolved ``spec`` (see :func:`load_spec`)."""

    return _index_and_build(
        directory, lambda name: getattr(spec, name),
        lambda class_names: checks.check_label_mode(spec.label_mode, class_names), lambda: spec)


def _index_and_build(directory, option, check_classes, resolve):
    """The one flow, in Keras' order of checks: index (``option(name)`` reads the checked
    call or the spec) -> the checks that need the classes -> global shuffle and split ->
    the resolved spec -> one dataset per subset."""
    index, parts, spec = _prepare(directory, option, check_classes, resolve)
    datasets = []
    for name, selected in parts:  # a loop, not a comprehension: warnings point at the caller
        datasets.append(build(index, selected, subset_spec(spec, name)))
    return datasets if spec.subset == "both" else datasets[0]


def prepare(directory, **kwargs):
    """``(index, parts, spec)`` for ``image_dataset_from_directory(directory, **kwargs)``:
    the index, ``[(subset name, file rows)]`` after Keras' shuffle and split, and the
    resolved spec, before any dataset is built; ``build(index, rows, spec)`` makes one.
    TorchDataset builds every DataLoader worker's dataset from this, without walking the
    folder again."""
    bound = inspect.signature(image_dataset_from_directory).bind(directory, **kwargs)
    bound.apply_defaults()
    call = checks.check_call(dict(bound.arguments))
    return _prepare(directory, call.get, lambda class_names: checks.check_after_index(call, class_names),
                    lambda: checks.resolve(call))


def _prepare(directory, option, check_classes, resolve):
    index = index_directory(
        directory,
        option("labels"),
        formats=ALLOWLIST_FORMATS,
        class_names=option("class_names"),
        follow_links=option("follow_links"),
        verbose=option("verbose"),
        num_threads=option("num_threads") or 0,
        remote=RemoteOptions.of(option),
        manifest=option("manifest"),
    )
    _warn_unreadable(index)
    check_classes(index.class_names)
    parts = _select(index, directory, option("shuffle"), option("seed"), option("validation_split"),
                    option("subset"))
    return index, parts, resolve()


def _warn_unreadable(index) -> None:
    for d in index.unreadable_directories:
        warnings.warn(
            f"Cannot list directory {d!r}: the images in it (if any) are not in the dataset.",
            UnreadableDirectoryWarning,
            stacklevel=4,
        )


def _select(index, directory, shuffle, seed, validation_split, subset):
    """Keras' global shuffle and split: [(subset name, file indices)], one or two parts."""
    order = np.arange(len(index.files), dtype=np.int64)
    if shuffle:
        order = global_shuffle(len(order), seed)
    if subset == "both":
        parts = [("training", split(order, validation_split, "training")),
                 ("validation", split(order, validation_split, "validation"))]
        for name, part in parts:
            if len(part) == 0:
                raise ValueError(
                    f"No {name} images found in directory {directory}. "
                    f"Allowed formats: {ALLOWLIST_FORMATS}"
                )
        return parts
    selected = split(order, validation_split, subset)
    if len(selected) == 0:
        raise ValueError(
            f"No images found in directory {directory}. " f"Allowed formats: {ALLOWLIST_FORMATS}"
        )
    return [(subset or "all", selected)]


def subset_spec(spec: LoadSpec, subset_name: str) -> LoadSpec:
    """A validation subset gets its own cache file next to the one named; the validation
    half of subset="both" is never shuffled nor randomly cropped or flipped."""
    if subset_name != "validation":
        return spec
    cache = spec.cache
    if cache is not None and cache != "memory":
        cache = cache + ".validation"
    both = spec.subset == "both"
    return spec.replace(
        shuffle=spec.shuffle and not both,
        cache=cache,
        random_resized_crop=None if both else spec.random_resized_crop,
        random_flip=None if both else spec.random_flip,
    )


def build(index, selected: np.ndarray, spec: LoadSpec):
    """The dataset over ``index.file_paths[selected]`` (in that order), as ``spec`` says."""
    skipped = []
    if spec.validate:
        candidates = index.files.paths_at(selected)
        skipped = validate_files(
            candidates,
            spec.color_mode,
            max_pixels=spec.max_pixels,
            num_threads=spec.num_threads or None,
            progress=default_progress(spec.verbose),
            decoder=spec.decoder,
            store=index.store,
        )
        if skipped and spec.on_error == "raise":
            raise InvalidFilesError(skipped)
        if skipped:
            bad = {f.path for f in skipped}
            selected = selected[np.array([p not in bad for p in candidates], dtype=bool)]
            if spec.on_error == "warn":
                for f in skipped:
                    warnings.warn(f"Skipping {f.path!r}: {f.reason}", SkippedFileWarning, stacklevel=3)
    files = index.files.select(selected)  # rows of the one index: no path is copied
    raw_labels = index.labels[selected] if index.labels is not None else None
    num_classes = len(index.class_names) if index.class_names else 0
    source = BatchSource(files, _Labels(raw_labels, spec.label_mode, num_classes), spec, skipped=skipped,
                         store=index.store)
    file_paths = source.file_paths
    if spec.format == "numpy":
        ds = NumpyDataset(source, index.class_names, file_paths)
    elif spec.format == "grain":
        from .outputs.grain_data import to_grain_dataset

        ds = to_grain_dataset(source, index.class_names, file_paths)
    else:
        from .outputs.tf_data import to_tf_dataset

        ds = to_tf_dataset(source, index.class_names, file_paths)
    ds.unreadable_directories = list(index.unreadable_directories)
    return ds
