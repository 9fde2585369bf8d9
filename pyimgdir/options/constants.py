"""Constants more than one stage reads, each defined once here."""

# tf.image.resize's methods: the `interpolation` values Keras accepts.
INTERPOLATIONS = (
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
)
# The methods Keras accepts with `crop_to_aspect_ratio=True`.
CROP_INTERPOLATIONS = ("bilinear", "nearest", "lanczos3", "lanczos5", "bicubic", "area")
# keras.ops.image.resize's methods under the TensorFlow backend (Keras' grain path); without
# Keras installed these are the ones accepted.
GRAIN_INTERPOLATIONS = ("bilinear", "nearest", "lanczos3", "lanczos5", "bicubic", "area")
# color_mode -> channels
CHANNELS = {"rgb": 3, "rgba": 4, "grayscale": 1}
# Seeds are reduced to 64 bits wherever they key a random stream (order, crops, flips).
SEED_MASK = 0xFFFFFFFFFFFFFFFF

# URL directories. Defaults sized for object-store latency: at 20-100 ms per request,
# keeping a few hundred images a second decoding needs tens of requests in flight.
DEFAULT_REQUESTS_IN_FLIGHT = 64
DEFAULT_BYTES_IN_FLIGHT = 256 << 20
DEFAULT_REQUEST_TIMEOUT = 60.0
DEFAULT_RETRIES = 5
