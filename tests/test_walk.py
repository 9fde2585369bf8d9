"""Directory enumeration: the core's walk against Python's os.walk with Keras' rules."""

from __future__ import annotations

import os

import pytest

from pyimgdir import _core

FORMATS = [".bmp", ".gif", ".jpeg", ".jpg", ".png"]


def keras_order(top: str, follow_links: bool):
    """Keras' iter_valid_files + index_subdirectory relative paths, in pure Python."""
    out = []
    for root, _, files in sorted(os.walk(top, followlinks=follow_links), key=lambda x: x[0]):
        for fname in sorted(files):
            if fname.lower().endswith(tuple(FORMATS)):
                out.append(os.path.relpath(os.path.join(root, fname), top))
    return out


def core_order(top: str, follow_links: bool):
    files, _, _ = _core.walk([top], [""], follow_links, FORMATS)
    return files[0]


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


@pytest.fixture
def tricky(tmp_path):
    """Keras' ordering traps: '-' sorts before '/', hidden entries, mixed-case extensions."""
    top = tmp_path / "b"
    for rel in [
        "z.png", "A.PNG", "2.Jpg", "10.jpeg", ".hidden.png", "._apple.jpg", ".jpg", "x.webp",
        "noext", "sub/a.png", "sub-2/a.png", "sub/deep/q.bmp", ".hdir/h.gif", "é/ü.png",
        "with space/f i.jpg", "sub/deep/deeper/x.JPEG",
    ]:
        touch(top / rel)
    return top


def test_order_matches_keras_rules(tricky):
    assert core_order(str(tricky), False) == keras_order(str(tricky), False)
    got = core_order(str(tricky), False)
    # the '-' (0x2D) < '/' (0x2F) trap: sub-2 comes before sub/deep
    assert got.index("sub-2/a.png") < got.index("sub/deep/q.bmp")
    assert ".jpg" in got and "._apple.jpg" in got and ".hdir/h.gif" in got
    assert "x.webp" not in got and "noext" not in got


def test_prefix_and_multiple_tops(tricky, tmp_path):
    other = tmp_path / "c"
    touch(other / "k.png")
    files, _, listed = _core.walk([str(tricky), str(other)], ["P/", "Q/"], False, FORMATS)
    assert files[0] == ["P/" + r for r in keras_order(str(tricky), False)]
    assert files[1] == ["Q/k.png"]
    assert listed >= 8


def test_symlinks(tmp_path):
    top = tmp_path / "a"
    touch(top / "f.png")
    target = tmp_path / "elsewhere"
    touch(target / "e.png")
    touch(target / "inner" / "g.png")
    os.symlink(target, top / "linksub")
    os.symlink(target / "e.png", top / "filelink.png")
    os.symlink(tmp_path / "missing.png", top / "broken.png")
    for follow in (False, True):
        assert core_order(str(top), follow) == keras_order(str(top), follow)
    assert "linksub/inner/g.png" in core_order(str(top), True)
    assert "linksub/e.png" not in core_order(str(top), False)
    assert "broken.png" in core_order(str(top), False)  # indexed; fails later, like Keras


def test_symlink_loop_visited_once(tmp_path):
    top = tmp_path / "a"
    touch(top / "f.png")
    touch(top / "d" / "g.png")
    os.symlink(top, top / "loop")
    os.symlink(top, top / "d" / "up")
    got = core_order(str(top), True)
    assert got == ["f.png", "d/g.png"]


def test_missing_directory_gives_nothing(tmp_path):
    assert core_order(str(tmp_path / "nope"), False) == []
    assert core_order(str(tmp_path / "nope" / "deeper"), True) == []


def test_thread_count_does_not_change_order(tmp_path):
    top = tmp_path / "many"
    for d in range(30):
        for f in range(20):
            touch(top / f"d{d % 7}" / f"s{d}" / f"{f}.jpg")
    ref = keras_order(str(top), False)
    for threads in (1, 2, 5):
        files, _, _ = _core.walk([str(top)], [""], False, FORMATS, threads)
        assert files[0] == ref


def test_non_utf8_and_unicode_names_sort_like_python(tmp_path):
    top = tmp_path / "u"
    top.mkdir()
    names = [b"a.jpg", b"\xe4\xb8\xad.jpg", b"\x80bad.jpg", b"\xffz.png", b"\xc3\xa9.png", b"Z.png",
             b"\xf0\x9f\x98\x80.jpg", b"\xed\xa0\x80s.png", b"\xc0\xafo.png"]
    for n in names:
        with open(os.path.join(os.fsencode(top), n), "wb"):
            pass
        os.makedirs(os.path.join(os.fsencode(top), b"d" + n[:-4]), exist_ok=True)
        with open(os.path.join(os.fsencode(top), b"d" + n[:-4], b"f.png"), "wb"):
            pass
    assert core_order(str(top), False) == keras_order(str(top), False)
    # paths round-trip to the exact bytes on disk
    for rel in core_order(str(top), False):
        assert os.path.exists(os.path.join(str(top), rel))


def test_walk_with_progress_callback_gives_the_same_files(tmp_path):
    top = tmp_path / "p"
    for d in range(40):
        for f in range(30):
            touch(top / f"d{d}" / f"{f}.png")
    calls = []
    files, _, _ = _core.walk([str(top)], [""], False, FORMATS, 1, lambda d, f: calls.append((d, f)))
    assert files[0] == keras_order(str(top), False)
    for d, f in calls:  # may be empty if the walk finished within 100 ms
        assert 0 <= d <= 41 and 0 <= f <= 1200

