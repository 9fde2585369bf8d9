"""``LoadSpec``: the resolved call, one frozen object read by every stage.

The API checks its arguments once (``checks.py``, in Keras' order and words) and resolves
them into a ``LoadSpec``. Indexing, ordering, the batch source, the cache, the tf.data /
numpy / torch exposure and the CLI all read this object; none of them re-derives or re-lists
the options. Two places know about a core option: a field here (with its line in
:meth:`LoadSpec.core_config`) and the C++ ``LoaderConfig`` it maps onto.

Fields marked ``pixels=True`` change the samples produced; they, and only they, make up the
cache key, so a change to any of them invalidates a cache and a change to any other
(threads, prefetch, ...) does not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from .constants import (
    DEFAULT_BYTES_IN_FLIGHT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_REQUESTS_IN_FLIGHT,
    DEFAULT_RETRIES,
    SEED_MASK,
)

_PIXELS = {"pixels": True}


def _pixels(default):
    return field(default=default, metadata=_PIXELS)


@dataclass(frozen=True)
class LoadSpec:
    # -- what is indexed (Keras' index_directory) -----------------------------------------
    labels: Any = "inferred"  # "inferred", None, or one label per file (a tuple)
    class_names: Optional[Tuple[str, ...]] = None
    follow_links: bool = False
    verbose: bool = True
    manifest: Optional[str] = None  # an index written by `pyimgdir scan DIR --manifest FILE`, read instead of walking
    # -- order and split --------------------------------------------------------------------
    shuffle: bool = True
    seed: int = 0  # resolved: a random one is drawn when the call gives none
    validation_split: Optional[float] = None
    subset: Optional[str] = None  # "training", "validation", "both" or None
    # -- each sample: geometry, colour, resize, decode (these change the pixels) -----------
    height: int = _pixels(256)
    width: int = _pixels(256)
    channels: int = _pixels(3)  # 1 grayscale, 3 rgb, 4 rgba
    interpolation: str = _pixels("bilinear")
    # "stretch", "crop" (crop_to_aspect_ratio), "pad" (pad_to_aspect_ratio: tf.image.resize_with_pad),
    # "pad_resize" (pad_to_aspect_ratio as keras.ops.image.resize does it: Keras' grain path)
    fit: str = _pixels("stretch")
    channels_first: bool = _pixels(False)
    dtype: str = _pixels("float32")  # resolved: uint8 for "nearest" when not given
    jpeg_downscale: Optional[bool] = _pixels(None)  # None: on for random crops only
    # training input (augment.py): ((scale min, max), (ratio min, max)) or None; a flip mode
    random_resized_crop: Optional[Tuple[Tuple[float, float], Tuple[float, float]]] = _pixels(None)
    random_flip: Optional[str] = _pixels(None)
    max_pixels: int = _pixels(1 << 28)  # decides which files decode at all
    # Whose decoding conventions: "tensorflow" (format="tf") or "pillow" (Keras' grain path)
    decoder: str = _pixels("tensorflow")
    # -- batches and labels -----------------------------------------------------------------
    label_mode: Optional[str] = "int"  # None when the dataset has no labels
    batch_size: Optional[int] = 32
    format: str = "tf"  # "tf", "grain" or "numpy"
    # -- running -----------------------------------------------------------------------------
    num_threads: int = 0  # 0: one per core
    prefetch: int = 2
    pin_memory: bool = False
    # -- bad files -----------------------------------------------------------------------
    on_error: str = "raise"  # "raise", "skip" or "warn"
    validate: bool = False
    # -- distribution, resume, cache ---------------------------------------------------------
    shard: Tuple[int, int] = (0, 1)
    shard_remainder: str = "pad"
    initial_state: Optional[dict] = None  # checked: {"seed", "epoch", "batches"}
    cache: Optional[str] = None  # None, "memory" or a file path
    # -- URL directories (gs://, s3://, any fsspec protocol; pyimgdir/remote.py) -----------
    storage_options: Optional[dict] = None  # passed to the fsspec filesystem
    requests_in_flight: int = DEFAULT_REQUESTS_IN_FLIGHT  # concurrent GETs
    bytes_in_flight: int = DEFAULT_BYTES_IN_FLIGHT  # fetched bytes held (in flight or awaiting decode)
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT  # seconds per attempt
    retries: int = DEFAULT_RETRIES  # further attempts after a transient failure (5xx, 429, resets, timeouts)

    # -------------------------------------------------------------------------------------
    @property
    def image_size(self) -> Tuple[int, int]:
        return (self.height, self.width)

    @property
    def color_mode(self) -> str:
        return {1: "grayscale", 3: "rgb", 4: "rgba"}[self.channels]

    @property
    def data_format(self) -> str:
        return "channels_first" if self.channels_first else "channels_last"

    @property
    def randomised(self) -> bool:
        """Whether samples differ between epochs (random crops or flips)."""
        return self.random_resized_crop is not None or self.random_flip is not None

    @property
    def sample_shape(self) -> Tuple[int, int, int]:
        if self.channels_first:
            return (self.channels, self.height, self.width)
        return (self.height, self.width, self.channels)

    def replace(self, **changes) -> "LoadSpec":
        return dataclasses.replace(self, **changes)

    def keras_kwargs(self) -> dict:
        """The arguments of Keras' ``image_dataset_from_directory`` that give these files,
        labels and (with pyimgdir's defaults for its own options) these samples."""
        return dict(
            labels=list(self.labels) if isinstance(self.labels, tuple) else self.labels,
            label_mode=self.label_mode,
            class_names=list(self.class_names) if self.class_names is not None else None,
            color_mode=self.color_mode,
            batch_size=self.batch_size,
            image_size=self.image_size,
            shuffle=self.shuffle,
            seed=self.seed,
            validation_split=self.validation_split,
            subset=self.subset,
            interpolation=self.interpolation,
            follow_links=self.follow_links,
            crop_to_aspect_ratio=self.fit == "crop",
            pad_to_aspect_ratio=self.fit in ("pad", "pad_resize"),
            data_format=self.data_format,
            verbose=self.verbose,
        )

    def core_config(self):
        """The C++ ``LoaderConfig`` for this spec: the one place the two meet."""
        from .. import _core

        c = _core.LoaderConfig()
        c.height = self.height
        c.width = self.width
        c.channels = self.channels
        c.interpolation = self.interpolation
        c.fit = self.fit
        c.channels_first = self.channels_first
        c.dtype = self.dtype
        c.jpeg_downscale = (
            self.jpeg_downscale if self.jpeg_downscale is not None else self.random_resized_crop is not None
        )
        c.random_crop = self.random_resized_crop is not None
        if self.random_resized_crop is not None:
            c.crop_scale, c.crop_ratio = self.random_resized_crop
        c.random_flip = self.random_flip or "none"
        c.augment_seed = int(self.seed) & SEED_MASK
        c.max_pixels = self.max_pixels
        c.decoder = self.decoder
        c.num_threads = self.num_threads
        c.prefetch = self.prefetch
        c.lock_memory = self.pin_memory
        c.skip_errors = self.on_error != "raise"
        return c

    def pixel_fields(self) -> dict:
        """The fields that change the samples (``pixels=True``), by name."""
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("pixels")
        }

    def cache_key(self) -> dict:
        """What a cache of this spec's samples is valid for (JSON-ready)."""
        key = {k: list(v) if isinstance(v, tuple) else v for k, v in self.pixel_fields().items()}
        key["sample_shape"] = list(self.sample_shape)
        return key


@dataclass(frozen=True)
class RemoteOptions:
    """How a URL directory is read (the keyword-only options of the same names)."""

    storage_options: Dict = field(default_factory=dict)
    requests_in_flight: int = DEFAULT_REQUESTS_IN_FLIGHT
    bytes_in_flight: int = DEFAULT_BYTES_IN_FLIGHT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    retries: int = DEFAULT_RETRIES

    @classmethod
    def of(cls, options) -> "RemoteOptions":
        """From a LoadSpec, or from the checked call's mapping (same names)."""
        if callable(options):
            get = options
        else:
            get = options.get if isinstance(options, dict) else (lambda k: getattr(options, k))
        return cls(
            storage_options=dict(get("storage_options") or {}),
            requests_in_flight=int(get("requests_in_flight")),
            bytes_in_flight=int(get("bytes_in_flight")),
            request_timeout=float(get("request_timeout")),
            retries=int(get("retries")),
        )
