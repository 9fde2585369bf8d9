"""``image_dataset_from_directory``: Keras' call, argument checks in Keras' order and words."""

from __future__ import annotations

import numbers
import os
import warnings
from typing import Optional

import numpy as np

from ._keras_compat import ALLOWLIST_FORMATS, standardize_data_format
from .index import index_directory
from .errors import InvalidFilesError, SkippedFileWarning, UnreadableDirectoryWarning
from .loader import BatchSource, NumpyDataset, _Labels
from .order import global_shuffle, split
from .validate import default_progress, validate_files

_INTERPOLATIONS = (
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
)
_CROP_INTERPOLATIONS = ("bilinear", "nearest", "lanczos3", "lanczos5", "bicubic", "area")
_FORMATS = ("tf", "numpy")


def _check_validation_split_arg(validation_split, subset, shuffle, seed):
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(
            "`validation_split` must be between 0 and 1, " f"received: {validation_split}"
        )
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(
            '`subset` must be either "training", ' f'"validation" or "both", received: {subset}'
        )
    if validation_split and shuffle and seed is None:
        raise ValueError(
            "If using `validation_split` and shuffling the data, you must "
            "provide a `seed` argument, to make sure that there is no "
            "overlap between the training and validation subset."
        )


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _check_shard(shard, input_context, remainder):
    if remainder not in ("pad", "drop"):
        raise ValueError(f'`shard_remainder` must be "pad" or "drop". Received: {remainder}')
    if input_context is not None:
        if shard is not None:
            raise ValueError("Pass either `shard` or `input_context`, not both.")
        try:
            shard = (input_context.input_pipeline_id, input_context.num_input_pipelines)
        except AttributeError:
            raise ValueError(
                "`input_context` must be a tf.distribute.InputContext "
                f"(with input_pipeline_id and num_input_pipelines). Received: {input_context!r}"
            ) from None
    if shard is None:
        return (0, 1)
    if (
        not isinstance(shard, (tuple, list))
        or len(shard) != 2
        or not all(_is_int(v) for v in shard)
        or not 0 <= shard[0] < shard[1]
    ):
        raise ValueError(f"`shard` must be (index, count) with 0 <= index < count. Received: {shard}")
    return (int(shard[0]), int(shard[1]))


def _check_state(state, seed, shard):
    try:
        s_seed, epoch, batches = state["seed"], int(state["epoch"]), int(state["batches"])
    except (TypeError, KeyError, ValueError):
        raise ValueError(
            '`initial_state` must be a dataset\'s state(): {"seed", "epoch", "batches"}. '
            f"Received: {state!r}"
        ) from None
    if seed is not None and int(seed) != int(s_seed):
        raise ValueError(f"`initial_state` was saved with seed={s_seed}, but seed={seed} was passed.")
    if "shard" in state and tuple(state["shard"]) != tuple(shard):
        raise ValueError(f"`initial_state` was saved for shard {tuple(state['shard'])}, not {tuple(shard)}.")
    if epoch < 0 or batches < 0:
        raise ValueError(f"`initial_state` has a negative epoch or batch count: {state!r}")
    return {"seed": int(s_seed), "epoch": epoch, "batches": batches}


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
    jpeg_downscale: bool = False,
    shard=None,
    input_context=None,
    shard_remainder: str = "pad",
    initial_state: Optional[dict] = None,
    cache=None,
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
        format: ``"tf"`` for a ``tf.data.Dataset`` (default) or ``"numpy"`` for a
            :class:`NumpyDataset` that needs no TensorFlow.
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
            large photos; pixels differ slightly from Keras' (see README).
        shard: ``(index, count)``: this worker's share. Every epoch's order is a
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
            arguments: iteration resumes at that epoch and batch, without decoding the
            batches before it, and yields exactly what the uninterrupted run would have.

    Returns:
        A ``tf.data.Dataset`` (or :class:`NumpyDataset`) with ``class_names`` and
        ``file_paths`` attributes; a list ``[train, validation]`` for ``subset="both"``.
    """
    # 1. labels
    inferred = isinstance(labels, str) and labels == "inferred"
    if not inferred and labels is not None:
        if not isinstance(labels, (list, tuple, np.ndarray)):
            raise ValueError(
                "`labels` argument should be a list/tuple of integer labels, "
                "of the same size as the number of image files in the target "
                "directory. If you wish to infer the labels from the "
                "subdirectory "
                'names in the target directory, pass `labels="inferred"`. '
                "If you wish to get a dataset that only contains images "
                f"(no labels), pass `labels=None`. Received: labels={labels}"
            )
        if class_names:
            raise ValueError(
                "You can only pass `class_names` if "
                f'`labels="inferred"`. Received: labels={labels}, and '
                f"class_names={class_names}"
            )
        if isinstance(labels, np.ndarray) and labels.ndim != 1:
            raise ValueError(f"`labels` must be one-dimensional; received shape {labels.shape}")
    # 2. label_mode
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError(
            '`label_mode` argument must be one of "int", '
            '"categorical", "binary", '
            f"or None. Received: label_mode={label_mode}"
        )
    if labels is None or label_mode is None:
        labels = None
        label_mode = None
    # 3. color_mode
    if color_mode == "rgb":
        num_channels = 3
    elif color_mode == "rgba":
        num_channels = 4
    elif color_mode == "grayscale":
        num_channels = 1
    else:
        raise ValueError(
            '`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
            f"Received: color_mode={color_mode}"
        )
    # 4. image_size
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    elif not isinstance(image_size, (list, tuple)) or not len(image_size) == 2:
        raise ValueError(
            "Invalid `image_size` value. Expected a tuple of 2 integers. "
            f"Received: image_size={image_size}"
        )
    # 5. interpolation
    interpolation = interpolation.lower()
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            "Argument `interpolation` should be one of "
            f"{_INTERPOLATIONS}. "
            f"Received: interpolation={interpolation}"
        )
    # 6. format
    if format not in _FORMATS:
        raise ValueError(
            '`format` should be either "tf" or "numpy". '
            f"Received: format={format}"
            + (" (pyimgdir does not produce grain datasets)" if format == "grain" else "")
        )
    # 7. validation split
    _check_validation_split_arg(validation_split, subset, shuffle, seed)
    # pyimgdir's own options are checked before any output, so a typo costs no scan.
    if dtype not in (None, "float32", "uint8"):
        raise ValueError(f'`dtype` must be None, "float32" or "uint8". Received: dtype={dtype}')
    if num_threads is not None and (not _is_int(num_threads) or num_threads < 1):
        raise ValueError(f"`num_threads` must be a positive integer or None. Received: {num_threads}")
    if not _is_int(prefetch) or prefetch < 1:
        raise ValueError(f"`prefetch` must be a positive integer. Received: {prefetch}")
    if cache is not None and not (cache == "memory" or isinstance(cache, (str, os.PathLike))):
        raise ValueError(f'`cache` must be None, "memory" or a file path. Received: cache={cache!r}')
    if on_error not in ("raise", "skip", "warn"):
        raise ValueError(f'`on_error` must be "raise", "skip" or "warn". Received: on_error={on_error}')
    if not _is_int(max_pixels) or max_pixels < 1:
        raise ValueError(f"`max_pixels` must be a positive integer. Received: {max_pixels}")

    shard = _check_shard(shard, input_context, shard_remainder)
    if initial_state is not None:
        initial_state = _check_state(initial_state, seed, shard)
    if seed is None:
        seed = initial_state["seed"] if initial_state is not None else np.random.randint(1e6)

    index = index_directory(
        directory,
        labels,
        formats=ALLOWLIST_FORMATS,
        class_names=class_names,
        follow_links=follow_links,
        verbose=verbose,
        num_threads=num_threads or 0,
    )
    class_names = index.class_names
    for d in index.unreadable_directories:
        warnings.warn(
            f"Cannot list directory {d!r}: the images in it (if any) are not in the dataset.",
            UnreadableDirectoryWarning,
            stacklevel=2,
        )
    order = np.arange(len(index.file_paths), dtype=np.int64)
    if shuffle:
        order = global_shuffle(len(order), seed)

    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(
            'When passing `label_mode="binary"`, there must be exactly 2 '
            f"class_names. Received: class_names={class_names}"
        )
    data_format = standardize_data_format(data_format)

    common = dict(
        index=index,
        label_mode=label_mode,
        num_classes=len(class_names) if class_names else 0,
        channels=num_channels,
        interpolation=interpolation,
        crop_to_aspect_ratio=crop_to_aspect_ratio,
        pad_to_aspect_ratio=pad_to_aspect_ratio,
        data_format=data_format,
        image_size=image_size,
        dtype=dtype,
        batch_size=batch_size,
        seed=seed,
        num_threads=num_threads or 0,
        prefetch=prefetch,
        max_pixels=max_pixels,
        pin_memory=pin_memory,
        format=format,
        on_error=on_error,
        validate=validate,
        verbose=verbose,
        jpeg_downscale=jpeg_downscale,
        shard=shard,
        shard_remainder=shard_remainder,
        initial_state=initial_state,
        cache=cache,
    )
    if subset == "both":
        train = split(order, validation_split, "training")
        val = split(order, validation_split, "validation")
        if len(train) == 0:
            raise ValueError(
                f"No training images found in directory {directory}. "
                f"Allowed formats: {ALLOWLIST_FORMATS}"
            )
        if len(val) == 0:
            raise ValueError(
                f"No validation images found in directory {directory}. "
                f"Allowed formats: {ALLOWLIST_FORMATS}"
            )
        return [
            _build(train, shuffle=shuffle, subset_name="training", **common),
            _build(val, shuffle=False, subset_name="validation", **common),
        ]
    selected = split(order, validation_split, subset)
    if len(selected) == 0:
        raise ValueError(
            f"No images found in directory {directory}. " f"Allowed formats: {ALLOWLIST_FORMATS}"
        )
    return _build(selected, shuffle=shuffle, subset_name=subset or "all", **common)


def _cache_path(cache, subset_name: str):
    """One cache per returned dataset: with subset="both" the validation half gets its
    own file next to the one named."""
    if cache is None or cache == "memory":
        return cache
    path = os.fspath(cache)
    return path if subset_name != "validation" else path + ".validation"


def _build(
    selected: np.ndarray,
    *,
    index,
    label_mode,
    num_classes,
    channels,
    interpolation,
    crop_to_aspect_ratio,
    pad_to_aspect_ratio,
    data_format,
    image_size,
    dtype,
    batch_size,
    shuffle,
    seed,
    num_threads,
    prefetch,
    max_pixels,
    pin_memory,
    format,
    on_error,
    validate,
    verbose,
    jpeg_downscale,
    shard,
    shard_remainder,
    initial_state,
    cache,
    subset_name="all",
):
    if pad_to_aspect_ratio and crop_to_aspect_ratio:
        raise ValueError(
            "Only one of `pad_to_aspect_ratio`, `crop_to_aspect_ratio` can be set to `True`."
        )
    if crop_to_aspect_ratio and interpolation not in _CROP_INTERPOLATIONS:
        raise ValueError(
            "Invalid value for argument `interpolation`. Expected of one "
            f"{_CROP_INTERPOLATIONS}. Received: interpolation={interpolation}"
        )
    height, width = image_size
    if not (_is_int(height) and _is_int(width)):
        raise ValueError(
            f"`image_size` must be two integers. Received: image_size={tuple(image_size)}"
        )
    if height < 1 or width < 1:
        raise ValueError(
            f"`image_size` must be positive (output dimensions must be positive). "
            f"Received: image_size={tuple(image_size)}"
        )
    if batch_size is not None and (not _is_int(batch_size) or batch_size < 1):
        raise ValueError(
            f"`batch_size` must be a positive integer or None. Received: batch_size={batch_size}"
        )
    if dtype is None:
        dtype = "uint8" if interpolation == "nearest" else "float32"
    fit = "crop" if crop_to_aspect_ratio else ("pad" if pad_to_aspect_ratio else "stretch")
    skipped = []
    if validate:
        candidates = [index.file_paths[i] for i in selected.tolist()]
        skipped = validate_files(
            candidates,
            {1: "grayscale", 3: "rgb", 4: "rgba"}[channels],
            max_pixels=max_pixels,
            num_threads=num_threads or None,
            progress=default_progress(verbose),
        )
        if skipped and on_error == "raise":
            raise InvalidFilesError(skipped)
        if skipped:
            bad = {f.path for f in skipped}
            selected = np.array([i for i in selected if index.file_paths[i] not in bad], dtype=np.int64)
            if on_error == "warn":
                for f in skipped:
                    warnings.warn(f"Skipping {f.path!r}: {f.reason}", SkippedFileWarning, stacklevel=3)
    all_paths = index.file_paths
    file_paths = [all_paths[i] for i in selected.tolist()]
    raw_labels = index.labels[selected] if index.labels is not None else None
    source = BatchSource(
        file_paths,
        _Labels(raw_labels, label_mode, num_classes),
        image_size=(height, width),
        channels=channels,
        interpolation=interpolation,
        fit=fit,
        channels_first=data_format == "channels_first",
        dtype=dtype,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        num_threads=num_threads,
        prefetch=prefetch,
        max_pixels=max_pixels,
        pin_memory=pin_memory,
        on_error=on_error,
        jpeg_downscale=jpeg_downscale,
        skipped=list(skipped),
        shard=shard,
        shard_remainder=shard_remainder,
        initial_state=initial_state,
        cache=_cache_path(cache, subset_name),
        cache_config=dict(
            interpolation=interpolation, fit=fit, data_format=data_format, channels=channels,
            jpeg_downscale=bool(jpeg_downscale), size=[int(height), int(width)], max_pixels=int(max_pixels),
        ),
    )
    source.validated = bool(validate)
    if format == "numpy":
        ds = NumpyDataset(source, index.class_names, file_paths)
    else:
        from .tf_data import to_tf_dataset

        ds = to_tf_dataset(source, index.class_names, file_paths)
    ds.unreadable_directories = list(index.unreadable_directories)
    return ds
