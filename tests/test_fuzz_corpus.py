"""Replays the fuzzing corpus (tests/data/fuzz_corpus/, grown by fuzz/decode_fuzzer.cpp from
real files of every format, plus hand-made hostile inputs and every input that once crashed
or hung a decoder). Each file must either decode to a well-formed image or raise DecodeError,
for every channel count, directly and through the pipeline (resize, JPEG downscaling and row
skipping included). See fuzz/README.md for how the corpus was made."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import pyimgdir
from pyimgdir import _core

CORPUS = Path(__file__).parent / "data" / "fuzz_corpus"
FILES = sorted(p for p in CORPUS.iterdir() if p.is_file() and p.suffix != ".md")


def test_corpus_is_small_and_varied():
    assert len(FILES) >= 30
    assert sum(p.stat().st_size for p in FILES) < 1 << 20
    kinds = {_core.sniff_format(p.read_bytes()) for p in FILES}
    assert {"JPEG", "PNG", "GIF", "BMP", "unknown"} <= kinds


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_replay_decode(path):
    data = path.read_bytes()
    outcomes = []
    for channels in (1, 3, 4):
        try:
            img = _core.decode(data, channels, 1 << 22)
        except _core.DecodeError as e:
            assert str(e), "an empty reason"
            outcomes.append(None)
            continue
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == channels
        assert img.shape[0] > 0 and img.shape[1] > 0
        outcomes.append(img.shape[:2])
    # Whether a file decodes does not depend on the channel count, except for the refusals
    # that are about channels (a CMYK JPEG as grayscale).
    if len({o is None for o in outcomes[1:]}) != 1:
        pytest.fail(f"{path.name}: decodes as RGB but not RGBA or the reverse: {outcomes}")
    shapes = {o for o in outcomes if o is not None}
    assert len(shapes) <= 1, outcomes


@pytest.mark.timing
def test_replay_decode_is_prompt():
    """No corpus file makes a decoder loop or crawl (some were found as slow inputs)."""
    slow = {}
    for path in FILES:
        data = path.read_bytes()
        t = time.perf_counter()
        for channels in (1, 3, 4):
            try:
                _core.decode(data, channels, 1 << 22)
            except _core.DecodeError:
                pass
        elapsed = time.perf_counter() - t
        if elapsed > 10.0:
            slow[path.name] = round(elapsed, 2)
    assert not slow, slow


def test_replay_through_the_pipeline(tmp_path):
    """All files in one folder: on_error="skip" delivers or reports each one, with and
    without JPEG downscaling (both also exercise the resize's row skipping)."""
    root = tmp_path / "d" / "c"
    root.mkdir(parents=True)
    for p in FILES:
        shutil.copy(p, root / (p.name + ".jpg"))  # the extension does not matter
    expected_bad = set()
    for p in FILES:
        try:
            _core.decode(p.read_bytes(), 3)
        except _core.DecodeError:
            expected_bad.add(str(root / (p.name + ".jpg")))
    for downscale in (False, True):
        ds = pyimgdir.image_dataset_from_directory(
            root.parent, image_size=(24, 20), batch_size=7, shuffle=False, verbose=False, format="numpy",
            on_error="skip", jpeg_downscale=downscale, num_threads=2, crop_to_aspect_ratio=downscale,
        )
        delivered = sum(len(x) for x, _ in ds)
        assert delivered + len(ds.skipped_files) == len(FILES)
        assert {f.path for f in ds.skipped_files} == expected_bad
    report = pyimgdir.validate_files(sorted(str(p) for p in root.iterdir()), "rgba")
    assert {f.path for f in report} == expected_bad
