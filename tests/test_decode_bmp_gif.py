"""BMP and GIF decoding: the pixels (and refusals) of TensorFlow's decode_image
(expand_animations=False), plus the rgba/grayscale outputs TensorFlow refuses to give.

Files come from Pillow's encoders and, where exact control over the GIF structure is needed
(frame offsets, colour tables, transparency, LZW code sizes, early end codes), from the small
GIF writer below. Tests that need TensorFlow as the oracle are marked `tf`.
"""

from __future__ import annotations

import io
import os
import struct

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import numpy as np
import pytest
from PIL import Image

from pyimgdir import _core

DecodeError = _core.DecodeError


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


# --------------------------------------------------------------------------------------
# helpers


def tf_decode(tf, data: bytes, channels: int = 3):
    """TF's decoded array, or the InvalidArgumentError it raised."""
    try:
        return tf.image.decode_image(data, channels=channels, expand_animations=False).numpy()
    except tf.errors.InvalidArgumentError as e:
        return e


def ours(data: bytes, channels: int = 3, **kw):
    """Our decoded array, or the DecodeError we raised (anything else propagates)."""
    try:
        return _core.decode(data, channels, **kw)
    except DecodeError as e:
        return e


def gray_of(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((9797 * r + 19234 * g + 3737 * b) >> 15).astype(np.uint8)[..., None]


def assert_same_as_tf(tf, data: bytes, channels: int = 3) -> np.ndarray:
    ref = tf_decode(tf, data, channels)
    got = ours(data, channels)
    assert not isinstance(ref, Exception), f"TF refused: {ref}"
    assert not isinstance(got, Exception), f"we refused: {got}"
    assert got.dtype == np.uint8 and got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)
    return got


def assert_both_refuse(tf, data: bytes, channels: int = 3, match: str | None = None):
    ref = tf_decode(tf, data, channels)
    assert isinstance(ref, Exception), "TF decoded it"
    with pytest.raises(DecodeError, match=match):
        _core.decode(data, channels)


def assert_better_than_tf_outputs(data: bytes):
    """rgba = rgb + alpha 255 (GIF) / the file's alpha (BMP); grayscale = rgb_to_gray(rgb)."""
    rgb = _core.decode(data, 3)
    gray = _core.decode(data, 1)
    assert gray.shape == rgb.shape[:2] + (1,)
    np.testing.assert_array_equal(gray, gray_of(rgb))
    rgba = _core.decode(data, 4)
    np.testing.assert_array_equal(rgba[..., :3], rgb)
    return rgba


def pil_bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def patch(data: bytes, offset: int, fmt: str, value) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


# --------------------------------------------------------------------------------------
# a small GIF writer (real variable-width LZW) for structures Pillow does not produce


def lzw_encode(indices, min_code_size: int, defer_clear: bool = False) -> bytes:
    clear, eoi = 1 << min_code_size, (1 << min_code_size) + 1
    out = bytearray()
    acc = nacc = 0
    width = min_code_size + 1

    def emit(code):
        nonlocal acc, nacc
        acc |= code << nacc
        nacc += width
        while nacc >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nacc -= 8

    table: dict = {}
    nxt = eoi + 1
    emit(clear)
    prefix = None
    for px in (int(v) for v in np.asarray(indices).reshape(-1)):
        if prefix is None:
            prefix = px
            continue
        key = (prefix, px)
        if key in table:
            prefix = table[key]
            continue
        emit(prefix)
        if nxt < 4096:
            table[key] = nxt
            nxt += 1
            if nxt > (1 << width) and width < 12:
                width += 1
        elif not defer_clear:
            emit(clear)
            table, nxt, width = {}, eoi + 1, min_code_size + 1
        prefix = px
    if prefix is not None:
        emit(prefix)
    emit(eoi)
    if nacc:
        out.append(acc & 0xFF)
    return bytes(out)


def sub_blocks(data: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(data), 255):
        out.append(len(data[i : i + 255]))
        out += data[i : i + 255]
    return bytes(out) + b"\0"


def colour_table(colours) -> tuple[int, bytes]:
    size_field = max(1, (len(colours) - 1).bit_length()) - 1
    padded = list(colours) + [(0, 0, 0)] * ((2 << size_field) - len(colours))
    return size_field, b"".join(bytes(c) for c in padded)


def gce(transparent: int | None = None, length: int = 4) -> bytes:
    body = bytes([1 if transparent is not None else 0, 10, 0, transparent or 0])
    body = (body + b"\0" * 8)[:length]
    return b"\x21\xf9" + bytes([length]) + body + b"\0"


def make_gif(frames, gct=None, screen=None, trailer=True, signature=b"GIF89a") -> bytes:
    """frames: dicts with `indices` (h, w) and optional left, top, lct, transparent,
    interlace, code_size, raw (LZW bytes), pre (raw blocks before the descriptor),
    w/h (descriptor values overriding the array's)."""
    sw, sh = screen or (max(f["indices"].shape[1] for f in frames) if frames else 1,
                        max(f["indices"].shape[0] for f in frames) if frames else 1)
    out = bytearray(signature)
    flags, table = 0, b""
    if gct is not None:
        size_field, table = colour_table(gct)
        flags = 0x80 | (size_field << 4) | size_field
    out += struct.pack("<HHBBB", sw, sh, flags, 0, 0) + table
    for f in frames:
        idx = np.asarray(f["indices"], dtype=np.uint8)
        h, w = idx.shape
        for block in f.get("pre", []):
            out += block
        if f.get("transparent") is not None:
            out += gce(f["transparent"])
        lflags, ltable = 0, b""
        if f.get("lct") is not None:
            size_field, ltable = colour_table(f["lct"])
            lflags = 0x80 | size_field
        rows = idx
        if f.get("interlace"):
            lflags |= 0x40
            order = [*range(0, h, 8), *range(4, h, 8), *range(2, h, 4), *range(1, h, 2)]
            rows = idx[order]
        out += b"\x2c" + struct.pack(
            "<HHHHB", f.get("left", 0), f.get("top", 0), f.get("w", w), f.get("h", h), lflags
        ) + ltable
        cs = f.get("code_size", 8)
        raw = f.get("raw")
        if raw is None:
            raw = lzw_encode(rows, cs, f.get("defer_clear", False))
        out += bytes([cs]) + sub_blocks(raw)
    if trailer:
        out += b"\x3b"
    return bytes(out)


def palette(rng, n: int):
    return [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(n)]


def expected_rgb(indices, colours):
    return np.array(colours, dtype=np.uint8)[np.asarray(indices)]


@pytest.fixture
def gen():
    return np.random.default_rng(2024)


# --------------------------------------------------------------------------------------
# BMP


def bmp_variants():
    rng = np.random.default_rng(5)
    out = {}
    for w, h in [(1, 1), (2, 3), (3, 2), (5, 4), (7, 5), (8, 3), (13, 9)]:  # every row padding
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        out[f"rgb24-{w}x{h}"] = pil_bytes(Image.fromarray(rgba[..., :3]), "BMP")
        out[f"rgba32-{w}x{h}"] = pil_bytes(Image.fromarray(rgba), "BMP")
        out[f"gray8-{w}x{h}"] = pil_bytes(Image.fromarray(rgba[..., 0]), "BMP")
    colour = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    out["palette8-11x9"] = pil_bytes(Image.fromarray(colour).quantize(37), "BMP")
    # BITMAPV5HEADER (124 bytes) with BI_BITFIELDS and the usual BGRA masks, as GIMP and
    # Windows write 32-bit files
    v3 = out["rgba32-7x5"]
    v5 = bytearray(v3[:54] + bytes(84) + v3[54:])
    struct.pack_into("<IIIII", v5, 2, len(v5), 0, 14 + 124, 124, 7)
    struct.pack_into("<I", v5, 30, 3)
    struct.pack_into("<IIII", v5, 54, 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)
    out["rgba32-v5header-bitfields-7x5"] = bytes(v5)
    # top-down: negative height, rows stored first-to-last
    for name in ("rgb24-7x5", "rgba32-7x5", "gray8-7x5", "palette8-11x9"):
        data = out[name]
        h = struct.unpack_from("<i", data, 22)[0]
        off = struct.unpack_from("<I", data, 10)[0]
        rs = (len(data) - off) // h
        rows = [data[off + i * rs : off + (i + 1) * rs] for i in range(h)]
        out[name + "-topdown"] = patch(data[:off] + b"".join(reversed(rows)), 22, "<i", -h)
    return out


BMPS = bmp_variants()


@pytest.mark.tf
@pytest.mark.parametrize("name", sorted(BMPS))
@pytest.mark.parametrize("channels", [3, 4])
def test_bmp_matches_tensorflow(tf, name, channels):
    assert_same_as_tf(tf, BMPS[name], channels)


def test_bmp_pixels_and_better_than_tf_outputs():
    rng = np.random.default_rng(11)
    rgba = rng.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    for arr in (rgba[..., :3], rgba):
        data = pil_bytes(Image.fromarray(arr), "BMP")
        np.testing.assert_array_equal(_core.decode(data, 3), arr[..., :3])
        out4 = assert_better_than_tf_outputs(data)
        alpha = arr[..., 3] if arr.shape[2] == 4 else np.full(arr.shape[:2], 255, np.uint8)
        np.testing.assert_array_equal(out4[..., 3], alpha)  # 32-bit: the file's 4th byte
    gray = rgba[..., 0]
    data = pil_bytes(Image.fromarray(gray), "BMP")
    np.testing.assert_array_equal(_core.decode(data, 1)[..., 0], gray)
    assert_better_than_tf_outputs(data)
    # top-down and bottom-up give the same image
    np.testing.assert_array_equal(
        _core.decode(BMPS["rgb24-7x5"], 3), _core.decode(BMPS["rgb24-7x5-topdown"], 3)
    )


def test_bmp_8bit_is_palette_indices_like_tf():
    """TF never reads the BMP colour table: 8-bit pixels are the raw indices as grey."""
    rng = np.random.default_rng(3)
    im = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).quantize(20)
    got = _core.decode(pil_bytes(im, "BMP"), 3)
    np.testing.assert_array_equal(got, np.repeat(np.asarray(im)[..., None], 3, axis=2))


@pytest.mark.tf
def test_bmp_grayscale_refused_by_tf_but_decoded_here(tf):
    data = BMPS["rgb24-13x9"]
    assert isinstance(tf_decode(tf, data, 1), Exception)
    np.testing.assert_array_equal(_core.decode(data, 1), gray_of(_core.decode(data, 3)))


def bmp_refusals():
    base = BMPS["rgb24-5x4"]
    rng = np.random.default_rng(8)
    one_bit = pil_bytes(Image.fromarray(rng.integers(0, 2, (4, 5), dtype=np.uint8) * 255).convert("1"), "BMP")
    return {
        "1bit": (one_bit, "bit depth 1"),
        "16bit": (patch(base, 28, "<h", 16), "bit depth 16"),
        "4bit": (patch(base, 28, "<h", 4), "bit depth 4"),
        "64bit": (patch(base, 28, "<h", 64), "bit depth 64"),
        "trailing-byte": (base + b"\0", "does not match"),
        "trailing-2-bytes": (base + b"\0\0", "does not match"),
        "missing-byte": (base[:-1], "does not match"),
        "width-0": (patch(base, 18, "<i", 0), "width"),
        "width-negative": (patch(base, 18, "<i", -5), "width"),
        "height-0": (patch(base, 22, "<i", 0), "height"),
        "offset-negative": (patch(base, 10, "<i", -1), "offset"),
        "huge": (patch(patch(base, 18, "<i", 1 << 20), 22, "<i", 1 << 20), "too large"),
        "int-min-height": (patch(base, 22, "<i", -(2**31)), "too large"),
        "short-header": (base[:31], "too short"),
        "header-only": (base[:54], "does not match"),
    }


BMP_REFUSALS = bmp_refusals()


@pytest.mark.parametrize("name", sorted(BMP_REFUSALS))
def test_bmp_refusals_reasons(name):
    data, reason = BMP_REFUSALS[name]
    for channels in (1, 3, 4):
        with pytest.raises(DecodeError, match=reason):
            _core.decode(data, channels)


@pytest.mark.tf
@pytest.mark.parametrize("name", sorted(BMP_REFUSALS))
def test_bmp_refusals_match_tf(tf, name):
    assert_both_refuse(tf, BMP_REFUSALS[name][0])


def test_bmp_stricter_than_tf_on_nonsense_headers():
    # TF takes bpp // 8 (26 -> 3 channels) and ignores the compression field; we refuse
    # bit depths other than 8/24/32 and RLE/JPEG/PNG-compressed data by name.
    base = BMPS["rgb24-5x4"]
    with pytest.raises(DecodeError, match="bit depth 26"):
        _core.decode(patch(base, 28, "<h", 26), 3)
    with pytest.raises(DecodeError, match="RLE8"):
        _core.decode(patch(base, 30, "<I", 1), 3)
    with pytest.raises(DecodeError, match="RLE4"):
        _core.decode(patch(base, 30, "<I", 2), 3)
    # BI_BITFIELDS with the usual masks is decoded (TF ignores the masks too).
    np.testing.assert_array_equal(
        _core.decode(patch(BMPS["rgba32-5x4"], 30, "<I", 3), 4), _core.decode(BMPS["rgba32-5x4"], 4)
    )


def test_bmp_max_pixels_checked_before_decoding():
    data = BMPS["rgb24-13x9"]
    assert _core.decode(data, 3, max_pixels=13 * 9).shape == (9, 13, 3)
    with pytest.raises(DecodeError, match="max_pixels"):
        _core.decode(data, 3, max_pixels=13 * 9 - 1)
    # a header claiming 2^27 pixels in a 100-byte file is refused without allocating
    bomb = patch(patch(data[:100], 18, "<i", 1 << 14), 22, "<i", 1 << 13)
    with pytest.raises(DecodeError):
        _core.decode(bomb, 3)


# --------------------------------------------------------------------------------------
# GIF: files from Pillow


def pil_gifs():
    rng = np.random.default_rng(21)
    out = {}
    for w, h in [(1, 1), (9, 6), (16, 16), (33, 20)]:  # >= 16 rows: Pillow interlaces
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        im = Image.fromarray(arr).quantize(64)
        out[f"still-{w}x{h}"] = pil_bytes(im, "GIF")
        out[f"still-noninterlaced-{w}x{h}"] = pil_bytes(im, "GIF", interlace=False)
    big = np.repeat(np.repeat(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), 5, 0), 5, 1)
    out["still-200x150-256colours"] = pil_bytes(Image.fromarray(big).quantize(256), "GIF")
    noise = Image.fromarray(rng.integers(0, 256, (120, 160), dtype=np.uint8), "L")
    out["still-noise-160x120"] = pil_bytes(noise, "GIF")  # table fills up: clear codes
    tr = Image.fromarray(rng.integers(0, 8, (12, 10), dtype=np.uint8), "P")
    tr.putpalette([int(v) for v in rng.integers(0, 256, 24)])
    out["transparent-index-3"] = pil_bytes(tr, "GIF", transparency=3)
    # animations: different sizes of change so Pillow writes sub-rectangle frames
    frames = []
    base = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
    for k in range(4):
        f = base.copy()
        f[3 + k : 9 + k, 5 : 12 + 2 * k] = rng.integers(0, 256, 3, dtype=np.uint8)
        frames.append(Image.fromarray(f).quantize(32))
    out["animated"] = pil_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out["animated-disposal2"] = pil_bytes(
        frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, disposal=2
    )
    out["animated-rgba"] = pil_bytes(
        Image.fromarray(np.dstack([base, np.where(base[..., 0] > 128, 255, 0).astype(np.uint8)])),
        "GIF", save_all=True,
        append_images=[Image.fromarray(np.dstack([base[::-1], np.full((24, 30), 255, np.uint8)]))],
    )
    return out


PIL_GIFS = pil_gifs()


@pytest.mark.tf
@pytest.mark.parametrize("name", sorted(PIL_GIFS))
def test_pillow_gif_matches_tensorflow(tf, name):
    assert_same_as_tf(tf, PIL_GIFS[name], 3)


@pytest.mark.parametrize("name", sorted(PIL_GIFS))
def test_pillow_gif_first_frame_and_channel_derivations(name):
    data = PIL_GIFS[name]
    rgba = assert_better_than_tf_outputs(data)
    assert (rgba[..., 3] == 255).all()
    if "transparent" in name or name == "animated-rgba":
        return  # Pillow shows transparent pixels differently; TF (black) is the oracle there
    with Image.open(io.BytesIO(data)) as im:
        first = np.asarray(im.convert("RGB"))  # frame 0, full canvas in these files
    np.testing.assert_array_equal(_core.decode(data, 3), first)


# --------------------------------------------------------------------------------------
# GIF: hand-built structures


def gif_cases():
    """(files, expected rgb for the cases whose pixels follow directly from construction)."""
    rng = np.random.default_rng(77)
    pal16, pal16b = palette(rng, 16), palette(rng, 16)
    idx = rng.integers(0, 16, (6, 9)).astype(np.uint8)
    big = rng.integers(0, 16, (8, 12)).astype(np.uint8)
    t = int(idx[0, 0])
    c, e = {}, {}
    c["basic"] = make_gif([dict(indices=idx)], gct=pal16)
    c["gif87a"] = make_gif([dict(indices=idx)], gct=pal16, signature=b"GIF87a")
    e["basic"] = e["gif87a"] = expected_rgb(idx, pal16)
    for h in (1, 2, 3, 4, 5, 7, 8, 9, 13, 17):
        ind = rng.integers(0, 16, (h, 5)).astype(np.uint8)
        c[f"interlaced-h{h}"] = make_gif([dict(indices=ind, interlace=True)], gct=pal16)
        e[f"interlaced-h{h}"] = expected_rgb(ind, pal16)
    c["local-table"] = make_gif([dict(indices=idx, lct=pal16b)], gct=pal16)
    c["local-table-only"] = make_gif([dict(indices=idx, lct=pal16b)])
    c["offset-in-screen"] = make_gif([dict(indices=idx, left=3, top=2)], screen=(20, 20), gct=pal16)
    c["second-frame-larger"] = make_gif(
        [dict(indices=idx), dict(indices=big, left=1, top=1)], gct=pal16, screen=(30, 30)
    )
    c["second-frame-wider-first-offset"] = make_gif(
        [dict(indices=idx, left=2, top=1), dict(indices=rng.integers(0, 16, (3, 15)).astype(np.uint8))],
        gct=pal16,
    )
    c["version-digits-ignored"] = make_gif([dict(indices=idx)], gct=pal16, signature=b"GIF8xx")
    c["interlaced-offset-under-larger-frame"] = make_gif(
        [dict(indices=rng.integers(0, 16, (11, 7)).astype(np.uint8), left=4, top=3, interlace=True),
         dict(indices=rng.integers(0, 16, (13, 10)).astype(np.uint8))],
        gct=pal16,
    )
    c["transparent-with-offset"] = make_gif(
        [dict(indices=idx, left=1, top=1, transparent=t), dict(indices=big)], gct=pal16
    )
    c["first-frame-outside-canvas"] = make_gif([dict(indices=idx, left=20, top=1), dict(indices=big)], gct=pal16)
    clipped = (idx % 4).astype(np.uint8)
    clipped[:, 6:] = 15  # beyond the 4-entry table, but only in columns clipped off the canvas
    c["out-of-table-index-clipped-away"] = make_gif([dict(indices=clipped, left=3)], gct=pal16[:4])
    c["transparent"] = make_gif([dict(indices=idx, transparent=t)], gct=pal16)
    c["transparent-beyond-table"] = make_gif(
        [dict(indices=np.where(idx == t, 200, idx).astype(np.uint8), transparent=200)], gct=pal16
    )
    c["gce-first-wins"] = make_gif([dict(indices=idx, pre=[gce(t), gce(None)])], gct=pal16)
    c["gce-first-wins-opaque"] = make_gif([dict(indices=idx, pre=[gce(None), gce(t)])], gct=pal16)
    c["gce-length-5-ignored"] = make_gif([dict(indices=idx, pre=[gce(t, 5)])], gct=pal16)
    c["gce-in-second-frame-only"] = make_gif(
        [dict(indices=idx), dict(indices=idx, transparent=t)], gct=pal16
    )
    app = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    c["app-and-comment-blocks"] = make_gif(
        [dict(indices=idx, pre=[app, b"\x21\xfe\x05hello\x00", gce(t)])], gct=pal16
    )
    c["no-trailer"] = make_gif([dict(indices=idx)], gct=pal16, trailer=False)
    c["garbage-after-frame"] = make_gif([dict(indices=idx)], gct=pal16, trailer=False) + b"\x99junk"
    c["extra-pixels-in-data"] = make_gif(
        [dict(indices=idx, raw=lzw_encode(np.concatenate([idx.ravel()] * 3), 8))], gct=pal16
    )
    c["no-end-code"] = make_gif([dict(indices=idx, raw=lzw_encode(idx, 8)[:-1])], gct=pal16)
    for cs in range(1, 9):
        colours = palette(rng, 1 << cs)
        ind = rng.integers(0, 1 << cs, (7, 11)).astype(np.uint8)
        c[f"code-size-{cs}"] = make_gif([dict(indices=ind, code_size=cs)], gct=colours)
        e[f"code-size-{cs}"] = expected_rgb(ind, colours)
    two = [(0, 0, 0), (255, 255, 255)]
    ind = rng.integers(0, 2, (9, 9)).astype(np.uint8)
    c["code-size-2-two-colours"] = make_gif([dict(indices=ind, code_size=2)], gct=two)
    e["code-size-2-two-colours"] = expected_rgb(ind, two)
    noise = rng.integers(0, 256, (90, 110)).astype(np.uint8)
    pal256 = palette(rng, 256)
    c["table-full-clear"] = make_gif([dict(indices=noise)], gct=pal256)
    c["table-full-deferred-clear"] = make_gif([dict(indices=noise, defer_clear=True)], gct=pal256)
    e["table-full-clear"] = e["table-full-deferred-clear"] = expected_rgb(noise, pal256)
    runs = np.repeat(rng.integers(0, 4, 40), rng.integers(1, 400, 40))[: 120 * 100]
    runs = np.resize(runs, (100, 120)).astype(np.uint8)
    pal4 = palette(rng, 4)
    c["long-runs-long-strings"] = make_gif([dict(indices=runs, code_size=2)], gct=pal4)
    e["long-runs-long-strings"] = expected_rgb(runs, pal4)
    # later frames that giflib drops: TF keeps the frames before them
    c["second-frame-truncated"] = make_gif([dict(indices=idx), dict(indices=big)], gct=pal16)[:-12]
    c["second-frame-early-end-code"] = make_gif(
        [dict(indices=idx), dict(indices=big, raw=lzw_encode(big.ravel()[:30], 8))], gct=pal16
    )
    c["second-frame-short-data"] = make_gif(
        [dict(indices=idx), dict(indices=big, raw=lzw_encode(big, 8)[:10])], gct=pal16
    )
    c["second-frame-zero-width"] = make_gif([dict(indices=idx), dict(indices=big, w=0)], gct=pal16)
    c["second-frame-code-size-9"] = make_gif([dict(indices=idx), dict(indices=big, code_size=9, raw=b"\0")], gct=pal16)
    c["second-frame-colour-out-of-table"] = make_gif(
        [dict(indices=idx), dict(indices=big * 0 + 15, lct=pal16[:4])], gct=pal16
    )
    c["third-frame-larger-after-good-second"] = make_gif(
        [dict(indices=idx), dict(indices=idx), dict(indices=big)], gct=pal16
    )
    return c, e


GIF_CASES, GIF_EXPECTED = gif_cases()


@pytest.mark.tf
@pytest.mark.parametrize("name", sorted(GIF_CASES))
def test_gif_structure_matches_tensorflow(tf, name):
    assert_same_as_tf(tf, GIF_CASES[name], 3)


def test_gif_semantics_without_tf():
    rng = np.random.default_rng(77)
    pal16, pal16b = palette(rng, 16), palette(rng, 16)
    idx = rng.integers(0, 16, (6, 9)).astype(np.uint8)
    big = rng.integers(0, 16, (8, 12)).astype(np.uint8)
    t = int(idx[0, 0])
    exp = expected_rgb(idx, pal16)
    np.testing.assert_array_equal(_core.decode(GIF_CASES["basic"]), exp)
    np.testing.assert_array_equal(_core.decode(GIF_CASES["local-table"]), expected_rgb(idx, pal16b))
    # output size = largest frame, not the logical screen; frame 0 drawn at its offset, clipped
    got = _core.decode(GIF_CASES["offset-in-screen"])
    want = np.zeros_like(exp)
    want[2:, 3:] = exp[:4, :6]
    np.testing.assert_array_equal(got, want)
    got = _core.decode(GIF_CASES["second-frame-larger"])
    assert got.shape == big.shape + (3,)
    np.testing.assert_array_equal(got[:6, :9], exp)
    assert not got[6:].any() and not got[:, 9:].any()
    # transparent index of frame 0 -> black
    want = exp.copy()
    want[idx == t] = 0
    np.testing.assert_array_equal(_core.decode(GIF_CASES["transparent"]), want)
    np.testing.assert_array_equal(_core.decode(GIF_CASES["gce-first-wins"]), want)
    np.testing.assert_array_equal(_core.decode(GIF_CASES["gce-first-wins-opaque"]), exp)
    np.testing.assert_array_equal(_core.decode(GIF_CASES["gce-length-5-ignored"]), exp)
    np.testing.assert_array_equal(_core.decode(GIF_CASES["gce-in-second-frame-only"]), exp)
    # broken later frames are dropped: the output keeps frame 0's size
    for name in ("second-frame-truncated", "second-frame-early-end-code", "second-frame-short-data",
                 "second-frame-zero-width", "second-frame-code-size-9"):
        np.testing.assert_array_equal(_core.decode(GIF_CASES[name]), exp, err_msg=name)
    assert _core.decode(GIF_CASES["third-frame-larger-after-good-second"]).shape == (8, 12, 3)
    assert not _core.decode(GIF_CASES["first-frame-outside-canvas"]).any()
    clipped = _core.decode(GIF_CASES["out-of-table-index-clipped-away"])
    assert clipped.shape == (6, 9, 3) and not clipped[:, :3].any()
    # LZW: full tables (with and without a clear code), every code size, interlacing
    for name, want in GIF_EXPECTED.items():
        np.testing.assert_array_equal(_core.decode(GIF_CASES[name]), want, err_msg=name)


@pytest.mark.parametrize("name", ["basic", "transparent", "offset-in-screen", "interlaced-h13", "code-size-3"])
def test_gif_rgba_and_grayscale_derived_from_rgb(name):
    rgba = assert_better_than_tf_outputs(GIF_CASES[name])
    assert (rgba[..., 3] == 255).all()


@pytest.mark.tf
@pytest.mark.parametrize("channels", [1, 4])
def test_gif_channels_tf_refuses_we_decode(tf, channels):
    data = GIF_CASES["basic"]
    assert isinstance(tf_decode(tf, data, channels), Exception)
    assert _core.decode(data, channels).shape == (6, 9, channels)


def gif_refusals():
    rng = np.random.default_rng(5)
    pal16 = palette(rng, 16)
    idx = rng.integers(0, 16, (6, 9)).astype(np.uint8)
    good = make_gif([dict(indices=idx)], gct=pal16)
    bad_codes = bytes([0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF] * 20)
    return {
        "no-colour-table": (make_gif([dict(indices=idx)]), "colour table"),
        "index-outside-table": (make_gif([dict(indices=idx)], gct=pal16[:4]), "colour index"),
        "early-end-code": (make_gif([dict(indices=idx, raw=lzw_encode(idx.ravel()[:30], 8))], gct=pal16), "before all pixels"),
        "short-data": (make_gif([dict(indices=idx, raw=lzw_encode(idx, 8)[:10])], gct=pal16), "before all pixels"),
        "corrupt-codes": (make_gif([dict(indices=idx, raw=bad_codes)], gct=pal16), "corrupt GIF LZW"),
        "first-code-after-clear-not-literal": (make_gif([dict(indices=idx, raw=bytes([0x00, 0x05, 0x02, 0x00, 0x00]))], gct=pal16), "corrupt GIF LZW"),
        "code-size-9": (make_gif([dict(indices=idx, code_size=9, raw=b"\0")], gct=pal16), "code size 9"),
        "zero-width": (make_gif([dict(indices=idx, w=0)], gct=pal16), "zero width"),
        "zero-height": (make_gif([dict(indices=idx, h=0)], gct=pal16), "zero width"),
        "no-image": (make_gif([], gct=pal16), "no image"),
        "unknown-block-before-image": (good[:13 + 48] + b"\x99" + good[13 + 48:], "unexpected GIF block"),
        "bad-signature": (b"GIF7" + good[4:], "unknown image file format"),  # TF needs "GIF8" too
        "header-only": (good[:13], "truncated"),
        "truncated-global-table": (good[:40], "truncated"),
        "truncated-descriptor": (good[:13 + 48 + 5], "truncated"),
        "truncated-data": (good[:-10], "truncated"),
        "missing-block-terminator": (good[:-2], "truncated"),
    }


GIF_REFUSALS = gif_refusals()


@pytest.mark.parametrize("name", sorted(GIF_REFUSALS))
def test_gif_refusal_reasons(name):
    data, reason = GIF_REFUSALS[name]
    for channels in (1, 3, 4):
        with pytest.raises(DecodeError, match=reason):
            _core.decode(data, channels)


@pytest.mark.tf
@pytest.mark.parametrize("name", sorted(GIF_REFUSALS))
def test_gif_refusals_match_tf(tf, name):
    assert_both_refuse(tf, GIF_REFUSALS[name][0])


def test_gif_max_pixels():
    data = GIF_CASES["second-frame-larger"]  # output 12x8 from frames of 9x6 and 12x8
    assert _core.decode(data, 3, max_pixels=96).shape == (8, 12, 3)
    with pytest.raises(DecodeError, match="max_pixels"):
        _core.decode(data, 3, max_pixels=95)
    with pytest.raises(DecodeError, match="max_pixels"):
        _core.decode(data, 3, max_pixels=53)
    # a 40000x40000 frame 0 in a tiny file: refused before anything is allocated
    bomb = make_gif([dict(indices=np.zeros((1, 1), np.uint8), w=40000, h=40000)], gct=[(0, 0, 0)] * 2)
    with pytest.raises(DecodeError, match="max_pixels"):
        _core.decode(bomb, 3)
    # beyond giflib's int limit (TF refuses it too)
    bomb = make_gif([dict(indices=np.zeros((1, 1), np.uint8), w=65535, h=65535)], gct=[(0, 0, 0)] * 2)
    with pytest.raises(DecodeError, match="too large"):
        _core.decode(bomb, 3, max_pixels=1 << 40)


# --------------------------------------------------------------------------------------
# truncation and random bytes: never a crash, and the same verdict as TF


@pytest.mark.tf
@pytest.mark.parametrize("name", ["second-frame-larger", "interlaced-h9", "transparent"])
def test_every_gif_prefix_matches_tf(tf, name):
    data = GIF_CASES[name]
    for cut in range(len(data) + 1):
        ref, got = tf_decode(tf, data[:cut]), ours(data[:cut])
        if isinstance(ref, Exception):
            assert isinstance(got, Exception), f"cut {cut}: TF refused ({ref}), we decoded"
        else:
            assert not isinstance(got, Exception), f"cut {cut}: we refused ({got})"
            np.testing.assert_array_equal(got, ref, err_msg=f"cut {cut}")


@pytest.mark.tf
def test_pillow_animation_prefixes_match_tf(tf):
    data = PIL_GIFS["animated"]
    for cut in list(range(0, 64)) + list(range(64, len(data) + 1, 7)):
        ref, got = tf_decode(tf, data[:cut]), ours(data[:cut])
        assert isinstance(ref, Exception) == isinstance(got, Exception), f"cut {cut}: {ref} / {got}"
        if not isinstance(ref, Exception):
            np.testing.assert_array_equal(got, ref, err_msg=f"cut {cut}")


@pytest.mark.tf
def test_bmp_prefixes_refused_like_tf(tf):
    data = BMPS["rgba32-7x5"]
    for cut in (0, 1, 2, 14, 31, 32, 53, 54, 60, len(data) - 4, len(data) - 1):
        if cut == 0:
            with pytest.raises(DecodeError):
                _core.decode(data[:cut], 3)
            continue
        assert_both_refuse(tf, data[:cut])


def test_random_and_mutated_bytes_never_crash():
    rng = np.random.default_rng(99)
    seeds = [GIF_CASES["second-frame-larger"], GIF_CASES["interlaced-h17"], PIL_GIFS["animated"],
             BMPS["rgba32-7x5"], BMPS["palette8-11x9"]]
    for _ in range(300):
        prefix = [b"BM", b"GIF87a", b"GIF89a"][rng.integers(3)]
        blob = prefix + rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
        for channels in (1, 3, 4):
            r = ours(blob, channels)
            assert isinstance(r, (np.ndarray, DecodeError))
    for _ in range(600):
        b = bytearray(seeds[rng.integers(len(seeds))])
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(len(b)))] = int(rng.integers(256))
        r = ours(bytes(b), int(rng.choice([1, 3, 4])))
        assert isinstance(r, (np.ndarray, DecodeError))


@pytest.mark.tf
def test_mutated_files_we_decode_tf_decodes_identically(tf):
    """Whenever we accept a corrupted file TF accepts it too, with the same pixels (TF may
    keep a later frame whose corrupt LZW codes giflib tolerates, so its canvas can be larger;
    only equal shapes are compared)."""
    rng = np.random.default_rng(1234)
    seeds = [GIF_CASES["second-frame-larger"], GIF_CASES["transparent"], PIL_GIFS["animated"],
             BMPS["rgba32-7x5"]]
    for _ in range(250):
        b = bytearray(seeds[rng.integers(len(seeds))])
        for _ in range(int(rng.integers(1, 3))):
            b[int(rng.integers(len(b)))] = int(rng.integers(256))
        got = ours(bytes(b))
        if isinstance(got, Exception):
            continue
        ref = tf_decode(tf, bytes(b))
        assert not isinstance(ref, Exception), f"TF refused what we decoded: {ref}"
        assert ref.shape[0] >= got.shape[0] and ref.shape[1] >= got.shape[1]
        if ref.shape == got.shape:
            np.testing.assert_array_equal(got, ref)
