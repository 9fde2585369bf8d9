"""What pyimgdir reads from Keras' own settings, without importing Keras.

Keras prints through ``io_utils.print_msg`` (stdout, or absl logging when interactive
logging is off) and takes ``data_format=None`` from ``keras.config.image_data_format()``.
When Keras is already imported we ask it; otherwise we read the same config file it would.
"""

from __future__ import annotations

import json
import logging
import os
import sys

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def _keras_module():
    return sys.modules.get("keras")


def print_msg(message: str) -> None:
    keras = _keras_module()
    if keras is not None:
        try:
            if not keras.config.is_interactive_logging_enabled():
                logging.getLogger("absl").info(message)
                return
        except AttributeError:
            pass
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _config_file_data_format() -> str:
    if "KERAS_HOME" in os.environ:
        keras_dir = os.environ["KERAS_HOME"]
    else:
        base = os.path.expanduser("~")
        if not os.access(base, os.W_OK):
            base = "/tmp"
        keras_dir = os.path.join(base, ".keras")
    path = os.path.expanduser(os.path.join(keras_dir, "keras.json"))
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return "channels_last"
    value = config.get("image_data_format", "channels_last")
    return value if value in ("channels_last", "channels_first") else "channels_last"


def image_data_format() -> str:
    keras = _keras_module()
    if keras is not None:
        try:
            return keras.config.image_data_format()
        except AttributeError:
            pass
    return _config_file_data_format()


def standardize_data_format(data_format) -> str:
    if data_format is None:
        return image_data_format()
    data_format = str(data_format).lower()
    if data_format not in {"channels_first", "channels_last"}:
        raise ValueError(
            "The `data_format` argument must be one of "
            "{'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format}"
        )
    return data_format
