"""Importing TensorFlow for the command line without its start-up log lines.

TensorFlow writes informational lines to the process's stderr while it loads (for example
"oneDNN custom operations are on ..." and "This TensorFlow binary is optimized to use
available CPU instructions ..."), from C++, before its logging honours
``TF_CPP_MIN_LOG_LEVEL``. The command line's reports should not be interleaved with them,
so ``import_tensorflow`` sends file descriptor 2 to a temporary file during the import and
writes back everything except those informational records. Warnings and errors are kept.
Nothing about TensorFlow's behaviour is changed (``TF_ENABLE_ONEDNN_OPTS`` is left alone).
Only the command line uses this: the library never redirects a user's stderr.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# absl/glog record prefix: severity letter, MMDD, time, thread id, file:line]
_RECORD = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\s\]]+:\d+\] ")
_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def drop_startup_info(text: str) -> str:
    """`text` without absl's banner line and without INFO records (and the lines that
    continue them); every other line is kept, in order."""
    kept = []
    in_info = False
    for line in text.splitlines(keepends=True):
        m = _RECORD.match(line)
        if m:
            in_info = m.group(1) == "I"
        elif line.rstrip("\n") == _BANNER:
            in_info = False
            continue
        if not in_info:
            kept.append(line)
    return "".join(kept)


def import_tensorflow():
    """Imports and returns (tensorflow, keras), keeping TensorFlow's informational start-up
    lines out of stderr. Raises ImportError (stderr restored) if either is missing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        import keras
        import tensorflow

        return tensorflow, keras
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2: nothing to keep clean
        import keras
        import tensorflow

        return tensorflow, keras
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            import tensorflow
            import keras
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            rest = drop_startup_info(tmp.read().decode("utf-8", errors="replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()
    return tensorflow, keras
