"""The core's fed epoch iterator (csrc/core/pipeline.cpp, fed=true): encoded bytes handed over
by the caller (remote sources) instead of files read by the workers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pyimgdir import _core
from pyimgdir.errors import ImageLoadError
from conftest import zip_strict


def _config(**kw):
    c = _core.LoaderConfig()
    c.height, c.width, c.channels = 20, 24, 3
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def _drain(it, config):
    out = []
    while (got := it.next(config)) is not None:
        out.append((np.array(got[0]), got[1], got[2]))
    return out


@pytest.fixture
def files(make_tree):
    root = make_tree({"a": 7, "b": 6}, ext=[".jpg", ".png"])
    return sorted(str(p) for p in root.rglob("*.*"))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_fed_bytes_give_the_same_batches_as_files(files, threads):
    config = _config(num_threads=threads)
    loader = _core.Loader(files, config)
    order = np.random.default_rng(0).permutation(len(files))
    expected = _drain(loader.iterate(order, 4), loader.config)
    it = loader.iterate(order, 4, fed=True)
    data = {pos: Path(files[order[pos]]).read_bytes() for pos in range(len(order))}
    for pos in np.random.default_rng(1).permutation(len(order)).tolist():  # any order
        assert it.feed(pos, data[pos]) is True
    got = _drain(it, loader.config)
    assert [(f, len(x)) for x, f, _ in got] == [(f, len(x)) for x, f, _ in expected]
    for (gx, _, _), (ex, _, _) in zip_strict(got, expected):
        np.testing.assert_array_equal(gx, ex)
    released = it.release_fed()
    assert sorted(released) == list(range(len(order)))


def test_fed_buffers_are_kept_without_copy_and_released(files):
    loader = _core.Loader(files, _config(num_threads=2))
    order = np.arange(len(files))
    it = loader.iterate(order, 4, fed=True)
    blobs = [bytearray(Path(f).read_bytes()) for f in files]
    for pos, b in enumerate(blobs):
        it.feed(pos, b)
    with pytest.raises(BufferError):  # the core holds a buffer view: the object cannot be resized
        blobs[-1].extend(b"x")
    _drain(it, loader.config)
    it.release_fed()
    blobs[-1].extend(b"x")  # released: resizable again


def test_unfed_positions_are_released_at_close(files):
    loader = _core.Loader(files, _config(num_threads=2, prefetch=1))
    order = np.arange(len(files))
    it = loader.iterate(order, 4, fed=True)
    late = Path(files[-1]).read_bytes()
    before = sys.getrefcount(late)
    it.feed(len(files) - 1, late)  # outside the prefetch window: never decoded
    assert sys.getrefcount(late) == before + 1
    it.close()
    assert sys.getrefcount(late) == before
    assert it.feed(0, late) is False  # closed: nothing kept
    assert sys.getrefcount(late) == before
    it2 = loader.iterate(order, 4, fed=True)
    it2.feed(len(files) - 1, late)
    del it2  # dropping the iterator releases too
    assert sys.getrefcount(late) == before


def test_fed_failures_and_bad_bytes_follow_on_error(files):
    order = np.arange(8)
    for skip in (False, True):
        config = _config(num_threads=2, skip_errors=skip)
        loader = _core.Loader(files, config)
        it = loader.iterate(order, 4, fed=True)
        for pos in range(8):
            if pos == 1:
                it.feed_failure(pos, "fetch failed: HTTP 404 Not Found")
            elif pos == 2:
                it.feed(pos, b"not an image")
            else:
                it.feed(pos, Path(files[pos]).read_bytes())
        if not skip:
            with pytest.raises(ImageLoadError) as err:
                it.next(loader.config)
            assert err.value.path == files[1] and "HTTP 404" in err.value.reason
            it.close()
            continue
        got = _drain(it, loader.config)
        assert [len(x) for x, _, _ in got] == [2, 4]
        failures = got[0][2]
        assert [(p, path) for p, _, path, _ in failures] == [(1, files[1]), (2, files[2])]
        assert "HTTP 404" in failures[0][3] and "unknown image file format" in failures[1][3]


def test_feed_checks(files):
    loader = _core.Loader(files, _config())
    it = loader.iterate(np.arange(4), 2, fed=True)
    it.feed(0, b"x")
    with pytest.raises(ValueError, match="already fed"):
        it.feed(0, b"y")
    with pytest.raises(IndexError):
        it.feed(4, b"y")
    with pytest.raises(TypeError):
        it.feed(1, 12345)  # no buffer protocol
    it.close()
    plain = loader.iterate(np.arange(4), 2)
    with pytest.raises(RuntimeError, match="fed=true"):
        plain.feed(0, b"x")
    plain.close()
