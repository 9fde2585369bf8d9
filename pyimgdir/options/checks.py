"""Argument checks: Keras' own, in Keras' order and words, then pyimgdir's options.

``check_call`` runs before anything is read (as Keras checks its arguments before indexing);
``resolve`` runs the checks Keras makes only once the files are listed (when it builds the
dataset) and returns the :class:`~pyimgdir.spec.LoadSpec` every later stage reads.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from .constants import CHANNELS, CROP_INTERPOLATIONS, GRAIN_INTERPOLATIONS, INTERPOLATIONS
from .keras_compat import ALLOWLIST_FORMATS, standardize_data_format
from .augment import check_random_flip, check_random_resized_crop
from .spec import LoadSpec
from .urls import is_url

_FORMATS = ("tf", "grain", "numpy")
_DECODERS = ("tensorflow", "pillow")


def check_resize_method(method: str, without_keras) -> None:
    """Raises the error keras.ops.image.resize of the active Keras backend raises for
    `method` (TensorFlow takes six methods, JAX five, torch three), by asking it to resize
    a 2x2 image. Without Keras, `method` must be one of `without_keras`."""
    try:
        import keras
    except ImportError:
        if method not in without_keras:
            raise ValueError(
                "Invalid value for argument `interpolation`. Expected of one "
                f"{tuple(without_keras)}. Received: interpolation={method}"
            ) from None
        return
    with keras.device("cpu"):
        keras.ops.image.resize(np.zeros((2, 2, 1), np.float32), size=(1, 1), interpolation=method)


def is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _check_labels(labels, class_names):
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


def _check_validation_split(validation_split, subset, shuffle, seed):
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


def _check_options(c: dict) -> None:
    """pyimgdir's own options, checked before any output so a typo costs no scan."""
    dtype, num_threads, prefetch = c["dtype"], c["num_threads"], c["prefetch"]
    if dtype not in (None, "float32", "uint8"):
        raise ValueError(f'`dtype` must be None, "float32" or "uint8". Received: dtype={dtype}')
    if num_threads is not None and (not is_int(num_threads) or num_threads < 1):
        raise ValueError(f"`num_threads` must be a positive integer or None. Received: {num_threads}")
    if not is_int(prefetch) or prefetch < 1:
        raise ValueError(f"`prefetch` must be a positive integer. Received: {prefetch}")
    manifest = c.get("manifest")
    if manifest is not None and not isinstance(manifest, (str, os.PathLike)):
        raise ValueError(f"`manifest` must be None or a file path. Received: manifest={manifest!r}")
    cache = c["cache"]
    if cache is not None and not (cache == "memory" or isinstance(cache, (str, os.PathLike))):
        raise ValueError(f'`cache` must be None, "memory" or a file path. Received: cache={cache!r}')
    on_error = c["on_error"]
    if on_error not in ("raise", "skip", "warn"):
        raise ValueError(f'`on_error` must be "raise", "skip" or "warn". Received: on_error={on_error}')
    max_pixels = c["max_pixels"]
    if not is_int(max_pixels) or max_pixels < 1:
        raise ValueError(f"`max_pixels` must be a positive integer. Received: {max_pixels}")
    if c["decoder"] is not None and c["decoder"] not in _DECODERS:
        raise ValueError(f'`decoder` must be None, "tensorflow" or "pillow". Received: decoder={c["decoder"]!r}')
    if c["format"] == "grain":
        # Keras' grain path resizes with keras.ops.image.resize, whose methods depend on the
        # backend; it raises at its first element, here before the directory is scanned.
        check_resize_method(c["interpolation"], GRAIN_INTERPOLATIONS)
    if c["jpeg_downscale"] not in (None, True, False):
        raise ValueError(f"`jpeg_downscale` must be None, True or False. Received: {c['jpeg_downscale']!r}")
    crop = check_random_resized_crop(c["random_resized_crop"])
    c["random_resized_crop"] = crop
    c["random_flip"] = check_random_flip(c["random_flip"])
    if crop is not None and (c["crop_to_aspect_ratio"] or c["pad_to_aspect_ratio"]):
        raise ValueError(
            "`random_resized_crop` chooses the crop itself: it cannot be combined with "
            "`crop_to_aspect_ratio` or `pad_to_aspect_ratio`."
        )
    if cache is not None and (crop is not None or c["random_flip"] is not None):
        raise ValueError(
            "`cache` keeps finished samples, but with `random_resized_crop` or `random_flip` every "
            "epoch's samples differ: use one or the other."
        )
    _check_remote(c)


def _check_remote(c: dict) -> None:
    so = c["storage_options"]
    if so is not None and not isinstance(so, dict):
        raise ValueError(f"`storage_options` must be a dict or None. Received: storage_options={so!r}")
    if so and "directory" in c and not is_url(c["directory"]):
        raise ValueError(
            "`storage_options` apply to a directory given as a URL (s3://, gs://, ...); "
            f"received a local path: {c['directory']!r}"
        )
    for name in ("requests_in_flight", "bytes_in_flight"):
        v = c[name]
        if not is_int(v) or v < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={v!r}")
    t = c["request_timeout"]
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not t > 0:
        raise ValueError(f"`request_timeout` must be a positive number of seconds. Received: {t!r}")
    r = c["retries"]
    if not is_int(r) or r < 0:
        raise ValueError(f"`retries` must be a non-negative integer. Received: retries={r!r}")


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
        or not all(is_int(v) for v in shard)
        or not 0 <= shard[0] < shard[1]
    ):
        raise ValueError(f"`shard` must be (index, count) with 0 <= index < count. Received: {shard}")
    return (int(shard[0]), int(shard[1]))


def shard_seed_message(source: str, shard=None) -> str:
    """Why a sharded, shuffled dataset needs a seed, and what to pass."""
    which = f"{shard[1]} shards (this one is {shard[0]})" if shard is not None else "shards"
    return (
        f"{source} splits the files into {which}, and "
        "`shuffle=True` needs an explicit `seed` for that: every shard computes the same "
        "permutation from the seed and takes its own part of it. With `seed=None` each "
        "process draws a seed of its own, so shards overlap and some files are never read. "
        "Pass the same seed on every host, worker and rank (e.g. `seed=1337`), or "
        "`shuffle=False`."
    )


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


def check_call(call: dict) -> dict:
    """Checks a call's arguments before anything is read, in Keras' order and words.

    ``call`` maps every parameter of ``image_dataset_from_directory`` to its value; the
    result is the same mapping with values normalised (labels, label_mode, channels,
    image_size, interpolation, shard, initial_state, seed).
    """
    c = dict(call)
    # 1. labels
    _check_labels(c["labels"], c["class_names"])
    # 2. label_mode
    if c["label_mode"] not in {"int", "categorical", "binary", None}:
        raise ValueError(
            '`label_mode` argument must be one of "int", '
            '"categorical", "binary", '
            f"or None. Received: label_mode={c['label_mode']}"
        )
    if c["labels"] is None or c["label_mode"] is None:
        c["labels"] = None
        c["label_mode"] = None
    # 3. color_mode
    if c["color_mode"] not in CHANNELS:
        raise ValueError(
            '`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
            f"Received: color_mode={c['color_mode']}"
        )
    c["channels"] = CHANNELS[c["color_mode"]]
    # 4. image_size
    image_size = c["image_size"]
    if isinstance(image_size, int):
        c["image_size"] = (image_size, image_size)
    elif not isinstance(image_size, (list, tuple)) or not len(image_size) == 2:
        raise ValueError(
            "Invalid `image_size` value. Expected a tuple of 2 integers. "
            f"Received: image_size={image_size}"
        )
    # 5. interpolation
    interpolation = c["interpolation"].lower()
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            "Argument `interpolation` should be one of "
            f"{INTERPOLATIONS}. "
            f"Received: interpolation={interpolation}"
        )
    c["interpolation"] = interpolation
    # 6. format
    fmt = c["format"]
    if fmt not in _FORMATS:
        raise ValueError(
            '`format` should be either "tf" or "grain" (or "numpy"). '
            f"Received: format={fmt}"
        )
    # 7. validation split
    _check_validation_split(c["validation_split"], c["subset"], c["shuffle"], c["seed"])
    # pyimgdir's own options
    _check_options(c)
    shard = c["shard"]
    source = "`input_context`" if c["input_context"] is not None else "`shard`"
    if all(hasattr(shard, a) for a in ("shard_index", "shard_count", "drop_remainder")):
        # Grain's sharding options (grain.sharding.ShardOptions, ShardByJaxProcess): the
        # same strided share; drop_remainder=True is shard_remainder="drop".
        source = f"`shard` ({type(shard).__name__})"
        if shard.drop_remainder:
            c["shard_remainder"] = "drop"
        c["shard"] = (shard.shard_index, shard.shard_count)
    c["shard"] = _check_shard(c["shard"], c["input_context"], c["shard_remainder"])
    if c["shard"][1] > 1 and c["shuffle"] and c["seed"] is None and c["initial_state"] is None:
        raise ValueError(shard_seed_message(source, c["shard"]))
    if c["initial_state"] is not None:
        c["initial_state"] = _check_state(c["initial_state"], c["seed"], c["shard"])
    if c["seed"] is None:
        c["seed"] = c["initial_state"]["seed"] if c["initial_state"] is not None else np.random.randint(1e6)
    return c


def check_class_names(class_names, subdirs) -> None:
    """Keras' check of the ``class_names`` passed against the class folders found."""
    if not set(class_names).issubset(set(subdirs)):
        raise ValueError(
            "The `class_names` passed did not match the "
            "names of the subdirectories of the target directory. "
            f"Expected: {subdirs} (or a subset of it), "
            f"but received: class_names={class_names}"
        )


def check_label_mode(label_mode, class_names) -> None:
    """Keras' check of ``label_mode`` against the classes found."""
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(
            'When passing `label_mode="binary"`, there must be exactly 2 '
            f"class_names. Received: class_names={class_names}"
        )


def check_after_index(c: dict, class_names) -> None:
    """Keras' checks once the classes are known (``c`` from :func:`check_call`, updated)."""
    check_label_mode(c["label_mode"], class_names)
    c["data_format"] = standardize_data_format(c["data_format"])


def resolve(c: dict) -> LoadSpec:
    """The checks Keras makes when it builds the dataset (after listing the files), then
    the resolved :class:`LoadSpec`. ``c`` is the result of :func:`check_call`."""
    crop, pad, interpolation = c["crop_to_aspect_ratio"], c["pad_to_aspect_ratio"], c["interpolation"]
    if pad and crop:
        raise ValueError(
            "Only one of `pad_to_aspect_ratio`, `crop_to_aspect_ratio` can be set to `True`."
        )
    if crop and interpolation not in CROP_INTERPOLATIONS:
        raise ValueError(
            "Invalid value for argument `interpolation`. Expected of one "
            f"{CROP_INTERPOLATIONS}. Received: interpolation={interpolation}"
        )
    height, width = c["image_size"]
    if not (is_int(height) and is_int(width)):
        raise ValueError(
            f"`image_size` must be two integers. Received: image_size={tuple(c['image_size'])}"
        )
    if height < 1 or width < 1:
        raise ValueError(
            f"`image_size` must be positive (output dimensions must be positive). "
            f"Received: image_size={tuple(c['image_size'])}"
        )
    batch_size = c["batch_size"]
    if batch_size is not None and (not is_int(batch_size) or batch_size < 1):
        raise ValueError(
            f"`batch_size` must be a positive integer or None. Received: batch_size={batch_size}"
        )
    grain = c["format"] == "grain"
    # Keras' grain path converts to float32 before resizing, whatever the method.
    dtype = c["dtype"] or ("uint8" if interpolation == "nearest" and not grain else "float32")
    # Keras' grain path pads with keras.ops.image.resize (pad, then resize the whole), its
    # tf path with tf.image.resize_with_pad (resize, then pad).
    pad_fit = "pad_resize" if grain else "pad"
    labels = c["labels"]
    if labels is not None and not isinstance(labels, str):
        labels = tuple(labels.tolist() if isinstance(labels, np.ndarray) else labels)
    cache = c["cache"]
    return LoadSpec(
        labels=labels,
        class_names=tuple(c["class_names"]) if c["class_names"] is not None else None,
        follow_links=bool(c["follow_links"]),
        verbose=c["verbose"],
        shuffle=c["shuffle"],
        seed=c["seed"],
        validation_split=c["validation_split"],
        subset=c["subset"],
        height=int(height),
        width=int(width),
        channels=c["channels"],
        interpolation=interpolation,
        fit="crop" if crop else (pad_fit if pad else "stretch"),
        channels_first=standardize_data_format(c["data_format"]) == "channels_first",
        dtype=dtype,
        jpeg_downscale=c["jpeg_downscale"],
        random_resized_crop=None if c["random_resized_crop"] is None else tuple(c["random_resized_crop"]),
        random_flip=c["random_flip"],
        max_pixels=int(c["max_pixels"]),
        decoder=c["decoder"] or ("pillow" if grain else "tensorflow"),
        label_mode=c["label_mode"],
        batch_size=None if batch_size is None else int(batch_size),
        format=c["format"],
        num_threads=c["num_threads"] or 0,
        prefetch=int(c["prefetch"]),
        pin_memory=bool(c["pin_memory"]),
        on_error=c["on_error"],
        validate=bool(c["validate"]),
        shard=c["shard"],
        shard_remainder=c["shard_remainder"],
        initial_state=c["initial_state"],
        cache=cache if cache is None or cache == "memory" else os.fspath(cache),
        storage_options=dict(c["storage_options"]) if c["storage_options"] else None,
        requests_in_flight=int(c["requests_in_flight"]),
        bytes_in_flight=int(c["bytes_in_flight"]),
        request_timeout=float(c["request_timeout"]),
        retries=int(c["retries"]),
        manifest=None if c.get("manifest") is None else os.fspath(c["manifest"]),
    )


__all__ = ["ALLOWLIST_FORMATS", "check_call", "check_after_index", "resolve", "INTERPOLATIONS", "CHANNELS", "is_int"]
