"""A small progress bar for the command line: on stderr, only when stderr is a terminal.

When stderr is redirected (a log file, a pipe, CI), nothing is written at all, so logs keep
only the results. Updates are throttled to about ten a second.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

__all__ = ["Progress", "stderr_is_terminal"]


def stderr_is_terminal(stream: Optional[TextIO] = None) -> bool:
    """True when ``stream`` (default: ``sys.stderr``) is an interactive terminal."""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    if seconds < 3600:
        return f"{seconds // 60:d}:{seconds % 60:02d}"
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """``label [#####.....] done/total rate ETA`` on one line of stderr.

    Usage::

        with Progress("Checking files", total=len(paths), enabled=not args.quiet) as bar:
            for ...:
                bar.update(done)

    ``enabled=None`` (the default) means "when stderr is a terminal"; ``False`` silences it;
    ``True`` forces it (for tests). The bar is erased, or completed with a newline when
    ``keep=True``, on :meth:`close`.
    """

    width = 28

    def __init__(
        self,
        label: str,
        total: Optional[int] = None,
        *,
        enabled: Optional[bool] = None,
        unit: str = "files",
        keep: bool = False,
        stream: Optional[TextIO] = None,
        interval: float = 0.1,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = stderr_is_terminal(self.stream) if enabled is None else bool(enabled)
        self.label = label
        self.total = total
        self.unit = unit
        self.keep = keep
        self.interval = interval
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0
        self._shown = 0  # width of the line last written, to blank it out
        self._closed = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, done: int, total: Optional[int] = None) -> None:
        """``progress(done, total)``: the callback shape :func:`pyimgdir.validate_files` takes."""
        self.update(done, total)

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def reset(self, label: Optional[str] = None, total: Optional[int] = None) -> None:
        """Starts a new stage on the same line: count from 0, rate measured from now."""
        if label is not None:
            self.label = label
        if total is not None:
            self.total = total
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0

    def update(self, done: int, total: Optional[int] = None, label: Optional[str] = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if label is not None:
            self.label = label
        if not self.enabled or self._closed:
            return
        now = time.monotonic()
        finished = self.total is not None and done >= self.total
        if not finished and now - self._last < self.interval:
            return
        self._last = now
        self._draw(now)

    def _line(self, now: float) -> str:
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            frac = min(1.0, self.done / self.total)
            filled = int(self.width * frac)
            bar = "#" * filled + "." * (self.width - filled)
            eta = ""
            if 0 < self.done < self.total and rate > 0:
                eta = f" ETA {_fmt_duration((self.total - self.done) / rate)}"
            return f"{self.label} [{bar}] {self.done}/{self.total} {self.unit} ({rate:,.0f}/s){eta}"
        return f"{self.label}: {self.done} {self.unit} ({rate:,.0f}/s, {_fmt_duration(elapsed)})"

    def _draw(self, now: float) -> None:
        line = self._line(now)
        pad = " " * max(0, self._shown - len(line))
        self.stream.write("\r" + line + pad)
        self.stream.flush()
        self._shown = len(line)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.enabled or self._shown == 0 and not self.keep:
            return
        if self.keep:
            self._draw(time.monotonic())
            self.stream.write("\n")
        else:
            self.stream.write("\r" + " " * self._shown + "\r")
        self.stream.flush()
