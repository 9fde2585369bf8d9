"""Hostile dataset folders: every kind of bad input a real folder can hold, through the
public API. The rules checked for each kind:

* on_error="raise": iteration raises ImageLoadError naming the first bad file (in epoch order)
  and the decoder's or the OS's reason;
* on_error="skip": every good file is delivered and every bad one is reported in
  ``skipped_files`` exactly once (counted), with the same reason;
* nothing hangs, nothing allocates what a header merely claims, nothing crashes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import pyimgdir
from conftest import encode, photo_like, zip_strict
from pyimgdir import _core

FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
KW = dict(image_size=(8, 8), batch_size=4, shuffle=False, verbose=False, format="numpy", num_threads=2)
PKG_PARENT = str(Path(pyimgdir.__file__).resolve().parent.parent)


def build(root, **kw):
    return pyimgdir.image_dataset_from_directory(root, **{**KW, **kw})


def images_of(ds) -> np.ndarray:
    out = [np.array(b[0] if isinstance(b, tuple) else b) for b in ds]
    return np.concatenate(out) if out else np.zeros((0,))


def check_accounted(root, bad, **kw) -> dict:
    """Runs `root` with on_error="skip" and "raise"; returns {bad path: reason}.

    skip: every file not in `bad` is delivered, every file in `bad` reported once.
    raise: the first bad file in epoch order raises, with the same reason as in the report.
    """
    bad = {str(p) for p in bad}
    ds = build(root, on_error="skip", **kw)
    delivered = len(images_of(ds))
    reasons = {f.path: f.reason for f in ds.skipped_files}
    assert len(ds.skipped_files) == len(reasons), "a file was reported twice"
    assert set(reasons) == bad
    assert delivered == len(ds.file_paths) - len(bad)
    assert all(reasons.values())
    strict = build(root, **kw)
    assert strict.file_paths == ds.file_paths
    if bad:
        first = next(p for p in strict.file_paths if p in bad)
        with pytest.raises(pyimgdir.ImageLoadError) as info:
            images_of(strict)
        assert info.value.path == first
        assert info.value.reason == reasons[first]
        assert repr(first) in str(info.value)
    else:
        assert len(images_of(strict)) == len(strict.file_paths)
    return reasons


def good_bytes(fmt: str, h=30, w=40, seed=0) -> bytes:
    img = photo_like(np.random.default_rng(seed), h, w)
    if fmt == "GIF":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(img).convert("P", palette=Image.ADAPTIVE, colors=64).save(buf, "GIF")
        return buf.getvalue()
    return encode(img, fmt)


def write_good(folder: Path, n: int, start_seed=100):
    folder.mkdir(parents=True, exist_ok=True)
    exts = [(".jpg", "JPEG"), (".png", "PNG"), (".bmp", "BMP"), (".gif", "GIF")]
    for i in range(n):
        ext, fmt = exts[i % 4]
        (folder / f"good_{i:02d}{ext}").write_bytes(good_bytes(fmt, seed=start_seed + i))


# ---------------------------------------------------------------------------------------
# Contents


def test_zero_byte_files(tmp_path):
    root = tmp_path / "d"
    write_good(root / "a", 6)
    bad = []
    for ext in FORMATS:
        p = root / "b" / f"empty{ext}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
        bad.append(p)
    reasons = check_accounted(root, bad)
    assert all("empty file (0 bytes)" in r for r in reasons.values())


def truncation_offsets(n: int):
    offs = {1, 2, 3, 4, 6, 8, 11, 13, 16, 20, 25, 26, 30, 33, 40, 54, 60, 100, n - 2, n - 1}
    offs |= {int(v) for v in np.linspace(0, n, 26)[1:-1]}
    return sorted(o for o in offs if 0 < o < n)


# Truncations that still decode, as in TensorFlow: a JPEG missing its EOI marker; a GIF
# missing its trailer byte (the frame is complete).
TRUNCATION_CASES = {
    "jpeg": ("JPEG", {}, lambda n: {n - 2, n - 1}),
    "jpeg_progressive": ("JPEG", {"progressive": True}, lambda n: {n - 2, n - 1}),
    "png": ("PNG", {}, lambda n: set()),
    "bmp": ("BMP", {}, lambda n: set()),
    "gif": ("GIF", {}, lambda n: {n - 1}),
}


def truncated_set(kind: str):
    fmt, kw, may_decode = TRUNCATION_CASES[kind]
    data = encode(photo_like(np.random.default_rng(4), 37, 45), fmt, **kw) if fmt != "GIF" else good_bytes("GIF", 37, 45, 4)
    return data, truncation_offsets(len(data)), may_decode(len(data))


@pytest.mark.parametrize("kind", sorted(TRUNCATION_CASES))
def test_truncated_at_many_offsets(tmp_path, kind):
    data, offsets, may_decode = truncated_set(kind)
    ext = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "GIF": ".gif"}[TRUNCATION_CASES[kind][0]]
    root = tmp_path / "d"
    (root / "c").mkdir(parents=True)
    (root / "c" / f"full{ext}").write_bytes(data)
    paths = {}
    for off in offsets:
        p = root / "c" / f"t{off:06d}{ext}"
        p.write_bytes(data[:off])
        paths[off] = str(p)
    ds = build(root, on_error="skip")
    delivered = len(images_of(ds))
    reported = {f.path for f in ds.skipped_files}
    must_fail = {paths[o] for o in offsets if o not in may_decode}
    assert must_fail <= reported <= set(paths.values())
    assert delivered + len(reported) == len(offsets) + 1
    assert len(ds.skipped_files) == len(reported)
    # Strict mode names the first truncated file (offset order = file order).
    with pytest.raises(pyimgdir.ImageLoadError) as info:
        images_of(build(root))
    assert info.value.path == paths[offsets[0]]


@pytest.mark.tf
@pytest.mark.parametrize("kind", sorted(TRUNCATION_CASES))
def test_truncated_files_decode_exactly_when_tensorflow_does(tf, kind):
    data, offsets, _ = truncated_set(kind)
    for off in offsets:
        part = data[:off]
        try:
            ref = tf.image.decode_image(part, channels=3, expand_animations=False).numpy()
        except tf.errors.InvalidArgumentError:
            ref = None
        try:
            got = _core.decode(part, 3)
        except _core.DecodeError:
            got = None
        assert (ref is None) == (got is None), f"{kind} cut at {off}/{len(data)}: TF {'fails' if ref is None else 'decodes'}"
        if ref is not None:
            np.testing.assert_array_equal(got, ref)


def test_random_bytes_with_image_extensions(tmp_path):
    rng = np.random.default_rng(2024)
    root = tmp_path / "d"
    write_good(root / "a", 4)
    bad = []
    magic = {"": b"", "jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n", "gif": b"GIF89a", "bmp": b"BM"}
    for name, head in magic.items():
        for k, n in enumerate([1, 2, 3, 7, 16, 33, 100, 1000, 5000]):
            ext = FORMATS[k % len(FORMATS)]
            body = rng.bytes(n)
            if not head:  # keep plain noise from starting with a real signature by chance
                body = b"\x00" + body
            p = root / "b" / f"noise_{name or 'plain'}_{n:05d}{ext}"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(head + body)
            bad.append(p)
    reasons = check_accounted(root, bad)
    for p, r in reasons.items():
        if "noise_plain" in p:
            assert "unknown image file format" in r


def test_signature_decides_not_extension(tmp_path):
    """A PNG named .jpg (and every other mix-up) decodes by content, with the same pixels."""
    named_right, named_wrong = tmp_path / "right", tmp_path / "wrong"
    swaps = {"JPEG": (".jpg", ".png"), "PNG": (".png", ".jpg"), "GIF": (".gif", ".bmp"), "BMP": (".bmp", ".jpeg")}
    for i, (fmt, (right, wrong)) in enumerate(swaps.items()):
        data = good_bytes(fmt, seed=i)
        (named_right / "c").mkdir(parents=True, exist_ok=True)
        (named_wrong / "c").mkdir(parents=True, exist_ok=True)
        (named_right / "c" / f"{i}{right}").write_bytes(data)
        (named_wrong / "c" / f"{i}{wrong}").write_bytes(data)
    a = images_of(build(named_right, image_size=(16, 16)))
    b = images_of(build(named_wrong, image_size=(16, 16)))
    assert len(a) == 4
    np.testing.assert_array_equal(a, b)


# Headers that claim 60000 x 60000 pixels (3.6e9 pixels, 10.8 GB as RGB) over a few bytes.


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png(w=60000, h=60000) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(bytes(3 * 64 + 1))) + png_chunk(b"IEND", b"")


def huge_jpeg(w=60000, h=60000) -> bytes:
    data = bytearray(encode(photo_like(np.random.default_rng(1), 16, 16), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def huge_bmp(w=60000, h=60000) -> bytes:
    header = b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54)
    dib = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return header + dib + bytes(64)


def huge_gif(w=60000, h=60000) -> bytes:
    screen = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    image = b"," + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02" + b"\x02\x44\x01" + b"\x00"
    return screen + image + b";"


HUGE = {"png": huge_png, "jpg": huge_jpeg, "bmp": huge_bmp, "gif": huge_gif}

BOMB_SCRIPT = r"""
import json, resource, sys
import numpy as np
import pyimgdir
from pyimgdir import _core
root, files = sys.argv[1], sys.argv[2:]
kw = dict(image_size=(8, 8), batch_size=2, shuffle=False, verbose=False, format="numpy", num_threads=2)
# Warm up: threads, decoders and batch buffers exist before the baseline is taken.
warm = pyimgdir.image_dataset_from_directory(root + "/warm", **kw)
[np.array(x) for x, _ in warm]
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # peak, MiB
before = rss()
ds = pyimgdir.image_dataset_from_directory(root + "/bombs", on_error="skip", **kw)
delivered = sum(len(x) for x, _ in ds)
direct = {}
for f in files:
    try:
        _core.decode(open(f, "rb").read(), 3)
        direct[f] = None
    except _core.DecodeError as e:
        direct[f] = str(e)
print(json.dumps({"before": before, "after": rss(), "delivered": delivered,
                  "skipped": dict((s.path, s.reason) for s in ds.skipped_files), "direct": direct}))
"""


def run_python(script: str, *args, timeout=60, env=None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e["PYTHONPATH"] = PKG_PARENT + os.pathsep + e.get("PYTHONPATH", "")
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=e)


def run_bombs(tmp_path):
    write_good(tmp_path / "warm" / "c", 4)
    bombs = tmp_path / "bombs" / "c"
    bombs.mkdir(parents=True)
    files = []
    for ext, make in HUGE.items():
        p = bombs / f"huge.{ext}"
        p.write_bytes(make())
        files.append(str(p))
    r = run_python(BOMB_SCRIPT, tmp_path, *files)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1]), files


def test_huge_dimension_headers_refused_before_allocating(tmp_path):
    out, files = run_bombs(tmp_path)
    assert out["delivered"] == 0
    assert set(out["skipped"]) == set(files)
    for f in files:
        reason = out["direct"][f]
        assert reason is not None and out["skipped"][f] == reason
        assert "max_pixels" in reason or "too large" in reason, reason
        assert "60000" in reason


@pytest.mark.timing
def test_huge_dimension_headers_leave_peak_memory_flat(tmp_path):
    out, _ = run_bombs(tmp_path)
    # The peak RSS of the whole process: a single allocation of what the headers claim
    # (10.8 GB as RGB) would show. Allocator-dependent, hence a timing test.
    assert out["after"] - out["before"] < 48, out


def test_max_pixels_is_the_users_limit(tmp_path):
    root = tmp_path / "d"
    (root / "c").mkdir(parents=True)
    for i, (ext, fmt) in enumerate([(".jpg", "JPEG"), (".png", "PNG"), (".bmp", "BMP"), (".gif", "GIF")]):
        (root / "c" / f"{i}{ext}").write_bytes(good_bytes(fmt, 100, 100, seed=i))
    refused = check_accounted(root, [str(p) for p in (root / "c").iterdir()], max_pixels=9999)
    assert all("max_pixels" in r and "100" in r for r in refused.values()), refused
    check_accounted(root, [], max_pixels=10000)


# JPEG entropy-data corruption: libjpeg recovers with warnings ("Corrupt JPEG data: ...").


def jpeg_entropy_span(data: bytes):
    """(start, end) of the longest entropy-coded segment."""
    best, i = (0, 0), 2
    while i < len(data) - 1:
        m = data[i + 1]
        if m == 0xD9:
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if m != 0xDA:
            i += 2 + length
            continue
        s = j = i + 2 + length
        while not (data[j] == 0xFF and data[j + 1] != 0 and not 0xD0 <= data[j + 1] <= 0xD7):
            j += 1
        best = max(best, (s, j), key=lambda t: t[1] - t[0])
        i = j
    return best


def corrupt_jpegs():
    rng = np.random.default_rng(3)
    img = photo_like(rng, 64, 80)
    out = {}
    for name, kw in [("baseline", dict(quality=90)), ("progressive", dict(quality=85, progressive=True)),
                     ("restarts", dict(quality=80, restart_marker_blocks=2))]:
        data = encode(img, "JPEG", **kw)
        s, e = jpeg_entropy_span(data)
        for k in range(4):
            b = bytearray(data)
            for _ in range(1 + 2 * k):
                p = int(rng.integers(s + 1, e - 1))
                if b[p] != 0xFF and b[p - 1] != 0xFF:
                    b[p] = (b[p] ^ (1 << int(rng.integers(0, 8)))) & 0xFE  # never 0xFF
            out[f"{name}_bitflips{k}"] = bytes(b)
        mid = (s + e) // 2
        while data[mid - 1] == 0xFF:
            mid += 1
        out[f"{name}_garbage"] = data[:mid] + bytes(rng.integers(0, 0xFE, 40, dtype=np.uint8)) + data[mid:]
        out[f"{name}_zeros"] = data[:mid] + bytes(64) + data[mid + 64 :]
        out[f"{name}_early_eoi"] = data[:mid] + b"\xff\xd9" + data[mid:]
        out[f"{name}_stray_rst"] = data[:mid] + b"\xff\xd3" + data[mid:]
        out[f"{name}_dropped_bytes"] = data[:mid] + data[mid + 50 :]
        out[f"{name}_extraneous_before_eoi"] = data[:-2] + b"\x12\x34\x56" + data[-2:]
    return out


def test_corrupt_entropy_data_decodes_like_tensorflow(tmp_path):
    """Decision: a JPEG whose entropy-coded data is corrupt but whose structure is intact
    (libjpeg recovers and only *warns*: "Corrupt JPEG data: N extraneous bytes before
    marker", "premature end of data segment", bad Huffman codes) is decoded, not refused.

    TensorFlow decodes every such file (it logs the warning and returns the recovered
    pixels); the reference test below checks that it does and that our pixels are identical,
    so a Keras user switching to pyimgdir sees the same images and the same training data.
    Refusing them would drop files Keras trains on. Truncated files, in contrast, fail in
    both (test_truncated_files_decode_exactly_when_tensorflow_does).
    """
    cases = corrupt_jpegs()
    root = tmp_path / "d"
    (root / "c").mkdir(parents=True)
    for name, data in cases.items():
        (root / "c" / f"{name}.jpg").write_bytes(data)
    assert check_accounted(root, [], image_size=(64, 80), interpolation="nearest") == {}
    ds = build(root, image_size=(64, 80), interpolation="nearest")
    for path, img in zip_strict(ds.file_paths, images_of(ds)):
        np.testing.assert_array_equal(img, _core.decode(cases[Path(path).stem], 3), err_msg=path)


@pytest.mark.tf
def test_corrupt_entropy_pixels_match_tensorflow(tf):
    for name, data in corrupt_jpegs().items():
        ref = tf.image.decode_image(data, channels=3, expand_animations=False).numpy()
        np.testing.assert_array_equal(_core.decode(data, 3), ref, err_msg=name)


def without_segments(data: bytes, marker: int) -> bytes:
    """The JPEG with every marker segment of one kind (0xDB DQT, 0xC4 DHT) removed."""
    out, i = bytearray(data[:2]), 2
    while i < len(data):
        m = data[i + 1]
        if m == 0xDA:
            return bytes(out + data[i:])
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if m != marker:
            out += data[i : i + 2 + length]
        i += 2 + length
    return bytes(out)


def in_fresh_thread(fn):
    box = []
    t = threading.Thread(target=lambda: box.append(fn()))
    t.start()
    t.join()
    return box[0]


def decode_or_reason(data: bytes):
    try:
        return _core.decode(data, 3)
    except _core.DecodeError as e:
        return str(e)


def test_jpeg_tables_do_not_leak_between_files(tmp_path):
    """libjpeg keeps quantization/Huffman tables across images decoded with one object. A
    file without its own tables must not borrow the previous file's: without DQT it fails,
    without DHT it uses the standard tables, whatever the thread decoded before."""
    rng = np.random.default_rng(6)
    plain = encode(photo_like(rng, 24, 40), "JPEG", quality=80)
    optimized = encode(photo_like(rng, 24, 40), "JPEG", quality=30, optimize=True)
    no_dqt, no_dht = without_segments(plain, 0xDB), without_segments(plain, 0xC4)
    for data in (no_dqt, no_dht):
        fresh = in_fresh_thread(lambda: decode_or_reason(data))
        for before in (plain, optimized):
            after = in_fresh_thread(lambda: (_core.decode(before, 3), decode_or_reason(data))[1])
            if isinstance(fresh, str):
                assert after == fresh
            else:
                np.testing.assert_array_equal(after, fresh)
    assert "Quantization table 0x00 was not defined" in in_fresh_thread(lambda: decode_or_reason(no_dqt))
    # Through the pipeline, interleaved with normal files on one thread: same outcome.
    root = tmp_path / "d" / "c"
    root.mkdir(parents=True)
    for i in range(6):
        (root / f"{i}a.jpg").write_bytes(optimized if i % 2 else plain)
        (root / f"{i}b.jpg").write_bytes(no_dqt if i % 2 else no_dht)
    reasons = check_accounted(root.parent, [root / f"{i}b.jpg" for i in range(1, 6, 2)], num_threads=1)
    assert all("Quantization table" in r for r in reasons.values())


@pytest.mark.tf
def test_jpeg_without_tables_like_tensorflow(tf):
    plain = encode(photo_like(np.random.default_rng(6), 24, 40), "JPEG", quality=80)
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.image.decode_image(without_segments(plain, 0xDB), channels=3)
    no_dht = without_segments(plain, 0xC4)
    np.testing.assert_array_equal(_core.decode(no_dht, 3), tf.image.decode_image(no_dht, channels=3).numpy())


# Progressive JPEGs with pathological scan counts.


def progressive_with_extra_scans(extra: int, size=512) -> bytes:
    """A valid progressive JPEG followed by `extra` cheap AC scans of component 1 (all blocks
    covered by end-of-band runs): each scan costs a pass over every block of the image."""
    rng = np.random.default_rng(0)
    img = np.kron(rng.integers(0, 255, (size // 16, size // 16, 3), dtype=np.uint8), np.ones((16, 16, 1), np.uint8))
    base = encode(img, "JPEG", progressive=True, quality=50)
    # An AC table (class 1, id 3) with one symbol, 0xE0 (EOB run of 2^14 + 14 bits), code "0".
    dht = b"\xff\xc4" + struct.pack(">H", 20) + b"\x13" + bytes([1] + [0] * 15) + b"\xe0"
    sos = b"\xff\xda" + struct.pack(">H", 8) + bytes([1, 1, 0x03, 1, 63, 0])
    blocks = ((size + 7) // 8) ** 2
    bits = "".join("0" + "1" * 14 for _ in range(-(-blocks // 32767)))
    bits += "1" * (-len(bits) % 8)
    payload = int(bits, 2).to_bytes(len(bits) // 8, "big").replace(b"\xff", b"\xff\x00")
    return base[:-2] + dht + (sos + payload) * extra + b"\xff\xd9"


def scans_in(data: bytes) -> int:
    return data.count(b"\xff\xda")


def test_progressive_scan_count_is_bounded(tmp_path):
    base_scans = scans_in(progressive_with_extra_scans(0))
    ok = progressive_with_extra_scans(10)
    reference = _core.decode(progressive_with_extra_scans(0), 3)
    np.testing.assert_array_equal(_core.decode(ok, 3), reference)  # the extra scans change nothing
    at_limit = progressive_with_extra_scans(500 - base_scans)
    assert scans_in(at_limit) == 500
    np.testing.assert_array_equal(_core.decode(at_limit, 3), reference)
    for extra in (501 - base_scans, 10000):
        data = progressive_with_extra_scans(extra, size=1024)
        with pytest.raises(_core.DecodeError, match="more than 500 scans"):
            _core.decode(data, 3)
    root = tmp_path / "d"
    (root / "c").mkdir(parents=True)
    (root / "c" / "a_ok.jpg").write_bytes(ok)
    (root / "c" / "b_scans.jpg").write_bytes(progressive_with_extra_scans(2000, size=256))
    reasons = check_accounted(root, [root / "c" / "b_scans.jpg"])
    assert "more than 500 scans" in next(iter(reasons.values()))


@pytest.mark.timing
def test_progressive_scan_limit_is_prompt():
    """Unbounded, 10,000 scans of a 1-megapixel image take seconds (minutes at 16k x 16k):
    the limit applies as the scans are met, not after decoding them."""
    data = progressive_with_extra_scans(10000, size=1024)
    t = time.perf_counter()
    with pytest.raises(_core.DecodeError, match="more than 500 scans"):
        _core.decode(data, 3)
    assert time.perf_counter() - t < 3.0


@pytest.mark.tf
def test_extra_scans_below_the_limit_match_tensorflow(tf):
    data = progressive_with_extra_scans(40, size=128)
    np.testing.assert_array_equal(_core.decode(data, 3), tf.image.decode_image(data, channels=3).numpy())


# ---------------------------------------------------------------------------------------
# Files that are not (or no longer) what the index saw


def test_fifo_device_and_socket_entries_do_not_hang(tmp_path):
    """A FIFO named x.jpg would block open() forever; /dev/zero would never end. Only regular
    files are read: the rest are reported at once."""
    root = tmp_path / "d"
    write_good(root / "a", 4)
    special = root / "b"
    special.mkdir()
    fifo = special / "fifo.jpg"
    os.mkfifo(fifo)
    os.symlink("/dev/zero", special / "zero.png")
    os.symlink("/dev/null", special / "null.gif")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock_path = special / "sock.bmp"
    try:
        sock.bind(str(sock_path))
    except OSError:  # path too long for AF_UNIX on this tmp dir
        sock_path = None
    bad = [fifo, special / "zero.png", special / "null.gif"] + ([sock_path] if sock_path else [])

    stuck = []

    def unblock():
        # Opening a FIFO for writing waits for a reader: this returns only if something still
        # holds the FIFO open for reading 10 s in (a reader stuck in open() or read()); it
        # then lets that reader go, so the test fails instead of hanging. When nothing reads,
        # this daemon thread just waits.
        fd = os.open(fifo, os.O_WRONLY)
        stuck.append(True)
        os.close(fd)

    valve = threading.Timer(10.0, unblock)
    valve.daemon = True
    valve.start()
    try:
        reasons = check_accounted(root, bad)
        validated = pyimgdir.validate_files([str(p) for p in bad])
    finally:
        valve.cancel()
        sock.close()
    assert not stuck, "a reader blocked on the FIFO"
    assert "FIFO" in reasons[str(fifo)]
    assert "character device" in reasons[str(special / "zero.png")]
    if sock_path:
        assert "socket" in reasons[str(sock_path)]
    assert sorted(f.path for f in validated) == sorted(map(str, bad))


def test_files_deleted_or_replaced_after_indexing(tmp_path):
    root = tmp_path / "d"
    c = root / "c"
    c.mkdir(parents=True)
    for i in range(12):
        (c / f"f{i:02d}.png").write_bytes(encode(photo_like(np.random.default_rng(i), 20, 24), "PNG"))
    strict = build(root)
    skipping = build(root, on_error="skip")
    (c / "f03.png").unlink()  # deleted
    replacement = encode(photo_like(np.random.default_rng(99), 50, 31), "JPEG")
    (c / "f05.png").write_bytes(replacement)  # replaced by another image (another format, size)
    (c / "f07.png").write_bytes(b"garbage")  # replaced by garbage
    (c / "f08.png").write_bytes(b"")  # emptied
    (c / "f09.png").unlink()
    (c / "f09.png").mkdir()  # replaced by a directory
    (c / "f10.png").unlink()
    os.mkfifo(c / "f10.png")  # replaced by a FIFO
    (c / "f11.png").unlink()
    os.symlink(c / "f00.png", c / "f11.png")  # replaced by a link to another image
    bad = {str(c / f) for f in ("f03.png", "f07.png", "f08.png", "f09.png", "f10.png")}
    with pytest.raises(pyimgdir.ImageLoadError) as info:
        images_of(strict)
    assert info.value.path == str(c / "f03.png") and "No such file" in info.value.reason
    got = images_of(skipping)
    reasons = {f.path: f.reason for f in skipping.skipped_files}
    assert set(reasons) == bad and len(got) == 12 - len(bad)
    assert "directory" in reasons[str(c / "f09.png")]
    # Delivered files have their current content.
    fresh = images_of(build(root, on_error="skip"))
    np.testing.assert_array_equal(got, fresh)
    np.testing.assert_array_equal(got[-1], got[0])  # f11 -> f00


def test_files_deleted_during_iteration(tmp_path):
    root = tmp_path / "d"
    write_good(root / "c", 40)
    ds = build(root, on_error="skip", batch_size=2, prefetch=1, num_threads=1)
    it = iter(ds)
    first = next(it)[0]
    for p in ds.file_paths[10:]:
        os.unlink(p)
    rest = [np.array(x) for x, _ in it]
    delivered = len(first) + sum(len(x) for x in rest)
    assert delivered + len(ds.skipped_files) == 40
    assert len(ds.skipped_files) >= 20  # workers run ahead by a few batches at most
    assert all("No such file" in f.reason for f in ds.skipped_files)


# ---------------------------------------------------------------------------------------
# Permissions. Tests run as root, where permission bits do not stop reads: the scenario runs
# in a child that first drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (as root) so that
# chmod 000 means what it says. Its folder lives outside pytest's 0700 tmp tree.

DROP_DAC = r"""
import ctypes, os, sys
if os.geteuid() == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
    hdr, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(hdr), data) != 0:
        sys.exit(77)
    data[0].effective &= ~((1 << 1) | (1 << 2))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.capset(ctypes.byref(hdr), data) != 0:
        sys.exit(77)
try:
    open(sys.argv[1] + "/a/secret.jpg", "rb").close()
    sys.exit(78)  # permission bits still do not apply here
except PermissionError:
    pass
"""

PERMISSION_SCRIPT = DROP_DAC + r"""
import json, os
import pyimgdir
root = sys.argv[1]
kw = dict(image_size=(8, 8), batch_size=2, shuffle=False, verbose=False, format="numpy", num_threads=2)
out = {}
ds = pyimgdir.image_dataset_from_directory(root, on_error="skip", **kw)
out["delivered"] = sum(len(x) for x, _ in ds)
out["file_paths"] = list(ds.file_paths)  # a read-only sequence, not a list
out["class_names"] = ds.class_names
out["skipped"] = [list(f) for f in ds.skipped_files]
try:
    for _ in pyimgdir.image_dataset_from_directory(root, **kw):
        pass
except pyimgdir.ImageLoadError as e:
    out["raised"] = [e.path, e.reason]
out["validate"] = [list(f) for f in pyimgdir.validate_files(ds.file_paths)]
# Keras' index under the same rights: os.walk, whose listing errors are ignored.
keras = []
for c in sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))):
    for r, _, files in sorted(os.walk(os.path.join(root, c)), key=lambda x: x[0]):
        keras += [os.path.join(r, f) for f in sorted(files) if f.lower().endswith((".jpg", ".png", ".bmp", ".gif", ".jpeg"))]
out["keras"] = keras
from pyimgdir import _core
out["unreadable"] = _core.walk([os.path.join(root, c) for c in ds.class_names], ["", "", ""], False, [".jpg", ".png"])[1]
print(json.dumps(out))
"""


@pytest.fixture
def locked_tree():
    base = Path(tempfile.mkdtemp(prefix="pyimgdir-perm-"))
    os.chmod(base, 0o755)
    root = base / "d"
    write_good(root / "a", 4)
    write_good(root / "a" / "locked", 2)  # a sub-directory that cannot be listed
    write_good(root / "b", 2)
    write_good(root / "c_locked", 2)  # a whole class that cannot be listed
    (root / "a" / "secret.jpg").write_bytes(good_bytes("JPEG"))
    os.chmod(root / "a" / "secret.jpg", 0)
    os.chmod(root / "a" / "locked", 0)
    os.chmod(root / "c_locked", 0)
    yield root
    for p in (root / "a" / "locked", root / "c_locked"):
        os.chmod(p, 0o755)
    shutil.rmtree(base)


def run_locked(root):
    r = run_python(PERMISSION_SCRIPT, root)
    if r.returncode in (77, 78):
        pytest.skip("cannot make permission bits apply in this environment (no capset as root)")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_unreadable_files_and_unlistable_directories(locked_tree):
    root = locked_tree
    out = run_locked(root)
    secret = str(root / "a" / "secret.jpg")
    # The unreadable file is indexed (as Keras does) and then reported with the OS's reason.
    assert secret in out["file_paths"]
    assert out["skipped"] == [[secret, "cannot open file: Permission denied"]]
    assert out["raised"] == [secret, "cannot open file: Permission denied"]
    assert out["validate"] == out["skipped"]
    assert out["delivered"] == len(out["file_paths"]) - 1 == 6
    # Directories that cannot be listed contribute no files, as in Keras (os.walk ignores
    # them); the class itself still exists.
    assert out["file_paths"] == out["keras"]
    assert out["class_names"] == ["a", "b", "c_locked"]
    assert sorted(out["unreadable"]) == sorted([str(root / "a" / "locked"), str(root / "c_locked")])


def test_unlistable_directories_are_reported(locked_tree):
    """Keras drops them without a word; pyimgdir warns and lists them on the dataset."""
    script = PERMISSION_SCRIPT.replace("out = {}", """out = {}
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    d = pyimgdir.image_dataset_from_directory(root, on_error="skip", **kw)
out["warnings"] = [[w.category.__name__, str(w.message)] for w in caught]
out["unreadable_directories"] = d.unreadable_directories""")
    r = run_python(script, locked_tree)
    if r.returncode in (77, 78):
        pytest.skip("cannot make permission bits apply in this environment")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    locked = sorted([str(locked_tree / "a" / "locked"), str(locked_tree / "c_locked")])
    assert sorted(out["unreadable_directories"]) == locked
    said = [m for c, m in out["warnings"] if c == "UnreadableDirectoryWarning"]
    assert len(said) == 2 and all(any(d in m for m in said) for d in locked), out["warnings"]


# ---------------------------------------------------------------------------------------
# Names and shapes of the tree


def keras_like_walk(root: Path, follow_links: bool):
    out = []
    for c in sorted(d for d in os.listdir(root) if os.path.isdir(root / d) and not d.startswith(".")):
        top = os.path.join(root, c)
        for r, _, files in sorted(os.walk(top, followlinks=follow_links), key=lambda x: x[0]):
            out += [os.path.join(r, f) for f in sorted(files) if f.lower().endswith(FORMATS)]
    return out


@pytest.fixture
def loops(tmp_path):
    root = tmp_path / "d"
    write_good(root / "a", 2)
    write_good(root / "a" / "sub", 1, start_seed=50)
    write_good(root / "b", 1, start_seed=60)
    os.symlink("..", root / "a" / "sub" / "up")  # back to an ancestor
    os.symlink("self.jpg", root / "a" / "self.jpg")  # ELOOP when opened
    os.symlink("missing.png", root / "a" / "dangling.png")  # ENOENT when opened
    os.symlink("loopdir", root / "a" / "loopdir")  # a link to itself, no image extension
    os.symlink("../a", root / "b" / "to_a")  # across classes
    os.symlink("../../b", root / "a" / "sub" / "to_b")  # and back: a -> b -> a
    return root


def test_symlink_loops(loops):
    root = loops
    follow = build(root, follow_links=True, on_error="skip")
    a, b = str(root / "a"), str(root / "b")
    # Every real file once per class it is reachable from; no link back up a class's own
    # tree is followed (Keras walks such loops ~40 levels deep).
    assert follow.file_paths == [
        f"{a}/dangling.png", f"{a}/good_00.jpg", f"{a}/good_01.png", f"{a}/self.jpg", f"{a}/sub/good_00.jpg",
        f"{a}/sub/to_b/good_00.jpg",
        f"{b}/good_00.jpg", f"{b}/to_a/dangling.png", f"{b}/to_a/good_00.jpg", f"{b}/to_a/good_01.png",
        f"{b}/to_a/self.jpg", f"{b}/to_a/sub/good_00.jpg",
    ]
    got = images_of(follow)
    reasons = {p: r for p, r in follow.skipped_files}
    assert len(got) == 8 and len(reasons) == 4
    assert "Too many levels of symbolic links" in reasons[f"{a}/self.jpg"]
    assert "No such file" in reasons[f"{a}/dangling.png"]
    # Without following links the index is exactly Keras' (os.walk) one.
    plain = build(root, on_error="skip")
    assert plain.file_paths == keras_like_walk(root, False)
    assert len(images_of(plain)) + len(plain.skipped_files) == len(plain.file_paths)


@pytest.mark.tf
def test_symlinks_index_like_keras(keras, loops):
    from keras.src.utils import dataset_utils

    paths, _, _ = dataset_utils.index_directory(str(loops), "inferred", formats=FORMATS, shuffle=False, verbose=False)
    assert build(loops).file_paths == paths


NON_UTF8 = [b"caf\xe9.png", b"\xff\xfe.jpg", b"ok.jpg", b"\xed\xa0\x80.gif", b"\xc3\x28.bmp", "é.png".encode()]


@pytest.fixture
def non_utf8_tree(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    rootb = os.fsencode(root)
    exts = {b".png": "PNG", b".jpg": "JPEG", b".gif": "GIF", b".bmp": "BMP"}
    expected = {}
    for k, cls in enumerate([b"cl\xe9ss", b"plain"]):
        os.mkdir(rootb + b"/" + cls)
        for i, name in enumerate(NON_UTF8):
            data = good_bytes(exts[name[name.rindex(b"."):]], seed=10 * k + i)
            path = rootb + b"/" + cls + b"/" + name
            with open(path, "wb") as f:
                f.write(data)
            expected[os.fsdecode(path)] = data
    return root, expected


def test_non_utf8_file_names(non_utf8_tree):
    root, expected = non_utf8_tree
    ds = build(root, image_size=(16, 16))
    assert ds.file_paths == keras_like_walk(root, False)
    assert sorted(ds.file_paths) == sorted(expected)
    assert ds.class_names == [os.fsdecode(b"cl\xe9ss"), "plain"]
    got = images_of(ds)
    for path, img in zip_strict(ds.file_paths, got):
        ref = _core.resize(_core.decode(expected[path], 3), 16, 16)
        np.testing.assert_array_equal(img, ref, err_msg=path)
    # Errors name such files in the same (surrogate-escaped) form.
    bad = os.fsencode(root) + b"/plain/\xff\xfe.jpg"
    with open(bad, "wb") as f:
        f.write(b"broken")
    with pytest.raises(pyimgdir.ImageLoadError) as info:
        images_of(build(root))
    assert info.value.path == os.fsdecode(bad)
    assert os.fsencode(info.value.path) == bad


@pytest.mark.tf
def test_non_utf8_file_names_like_keras(keras, non_utf8_tree):
    from keras.src.utils import dataset_utils

    root, _ = non_utf8_tree
    paths, labels, names = dataset_utils.index_directory(str(root), "inferred", formats=FORMATS, shuffle=False, verbose=False)
    ds = build(root)
    assert ds.file_paths == paths
    assert ds.class_names == names


def make_deep(base: Path, name_len: int, depth: int):
    """Creates `depth` nested directories named 'd'*name_len below `base` (relative to an open
    directory, so that paths longer than PATH_MAX can be made); returns the path as a string."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    path = str(base)
    try:
        for i in range(depth):
            name = f"{i:02d}" + "d" * (name_len - 2)
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            path += "/" + name
    finally:
        os.close(fd)
    return path


def write_at(dir_path: str, base: Path, name: str, data: bytes):
    """Writes base/<dir_path relative part>/name without ever passing a path > PATH_MAX."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in Path(os.path.relpath(dir_path, base)).parts:
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        wfd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(wfd, data)
        os.close(wfd)
    finally:
        os.close(fd)


def test_very_long_paths(tmp_path):
    """Deep nesting up to PATH_MAX (4096) and beyond: what fits is indexed and read; a
    directory deeper than PATH_MAX cannot be listed (skipped, as os.walk does); a file whose
    own path passes PATH_MAX is indexed (as in Keras) and reported when it cannot be opened."""
    root = tmp_path / "d"
    cls = root / "c"
    cls.mkdir(parents=True)
    jpg = good_bytes("JPEG")
    n = -(-(4090 - 1 - 255 - len(str(cls))) // 251)  # leaves room for a name of 5..255 bytes
    deep = make_deep(cls, 250, n)
    fits = "f" * (4090 - len(deep) - 1 - 4) + ".jpg"  # full path: 4090 bytes
    write_at(deep, cls, fits, jpg)
    write_at(deep, cls, "short.jpg", jpg)
    too_long = "g" * 250 + ".jpg"  # its directory fits, the full path does not
    write_at(deep, cls, too_long, jpg)
    deeper = make_deep(Path(deep), 250, 2)  # beyond PATH_MAX: cannot even be listed
    write_at(deeper, cls, "lost.jpg", jpg)
    write_at(str(cls), cls, "top.jpg", jpg)
    assert len(f"{deep}/{fits}") == 4090 and len(f"{deep}/{too_long}") > 4096
    with pytest.warns(pyimgdir.UnreadableDirectoryWarning, match="File name too long|Cannot list"):
        ds = build(root, on_error="skip")
    got = images_of(ds)
    assert len(ds.unreadable_directories) == 1 and ds.unreadable_directories[0].startswith(deep)
    assert ds.file_paths == keras_like_walk(root, False)
    assert ds.file_paths == [f"{cls}/top.jpg", f"{deep}/{fits}", f"{deep}/{too_long}", f"{deep}/short.jpg"]
    assert len(got) == 3
    assert [(p, r) for p, r in ds.skipped_files] == [(f"{deep}/{too_long}", "cannot open file: File name too long")]
    # A long name (NAME_MAX: 255 bytes) is fine.
    (cls / ("n" * 251 + ".png")).write_bytes(good_bytes("PNG"))
    with pytest.warns(pyimgdir.UnreadableDirectoryWarning):
        assert len(images_of(build(root, on_error="skip"))) == 4


@pytest.fixture(scope="module")
def hundred_thousand():
    """100,000 files in one class folder, on tmpfs when there is one (creating 100k inodes on
    a disk file system takes several seconds): every 100th a real JPEG, the rest empty."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    top = Path(tempfile.mkdtemp(prefix="pyimgdir-100k-", dir=base))
    cls = top / "c"
    cls.mkdir()
    jpg = cls / "real.src"
    jpg.write_bytes(good_bytes("JPEG", 8, 8))
    fd = os.open(cls, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(100_000):
            name = f"{i:06d}.jpg"
            if i % 100 == 0:
                os.link("real.src", name, src_dir_fd=fd, dst_dir_fd=fd)
            else:
                os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    yield top
    shutil.rmtree(top)


@pytest.mark.parametrize("timed", [pytest.param(False, id="complete"),
                                   pytest.param(True, id="fast", marks=pytest.mark.timing)])
def test_hundred_thousand_files(hundred_thousand, timed):
    top = hundred_thousand
    t = time.perf_counter()
    ds = build(top, on_error="skip", batch_size=1024)
    t_index = time.perf_counter() - t
    assert len(ds.file_paths) == 100_000
    assert ds.file_paths == sorted(ds.file_paths)
    t = time.perf_counter()
    delivered = len(images_of(ds))
    t_iter = time.perf_counter() - t
    assert delivered == 1000
    assert len(ds.skipped_files) == 99_000
    print(f"\n100k files: index {t_index:.2f} s, one epoch (99% empty files) {t_iter:.2f} s")
    if timed:
        assert t_index < 6.0 and t_iter < 20.0, (t_index, t_iter)


@pytest.mark.tf
@pytest.mark.parametrize("timed", [pytest.param(False, id="same-files"),
                                   pytest.param(True, id="not-slower", marks=pytest.mark.timing)])
def test_hundred_thousand_files_index_like_keras(keras, hundred_thousand, timed):
    from keras.src.utils import dataset_utils

    t = time.perf_counter()
    paths, _, _ = dataset_utils.index_directory(str(hundred_thousand), "inferred", formats=FORMATS, shuffle=False, verbose=False)
    t_keras = time.perf_counter() - t
    t = time.perf_counter()
    ds = build(hundred_thousand)
    t_ours = time.perf_counter() - t
    assert ds.file_paths == paths
    print(f"\n100k files: pyimgdir builds the dataset in {t_ours:.2f} s, Keras indexes in {t_keras:.2f} s")
    if timed:
        assert t_ours < t_keras + 1.0
