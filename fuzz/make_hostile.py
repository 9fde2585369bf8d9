"""Writes the hand-made hostile inputs of the regression corpus (tests/data/fuzz_corpus/
hostile-*): headers claiming huge sizes, a progressive JPEG past the scan limit, corrupt
entropy data, truncations at structure boundaries, empty and WebP files. Deterministic."""

from __future__ import annotations

import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# The JPEG segment remover the hostile-input tests use.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_hostile_inputs import without_segments  # noqa: E402


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def jpeg(img: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", **kw)
    return buf.getvalue()




def hostile() -> dict:
    rng = np.random.default_rng(9)
    img = np.clip(rng.normal(128, 40, (16, 16, 3)), 0, 255).astype(np.uint8)
    out = {}
    # Headers claiming 60000 x 60000 pixels over a few bytes of data.
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    out["huge.png"] = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                       + png_chunk(b"IDAT", zlib.compress(bytes(193))) + png_chunk(b"IEND", b""))
    j = bytearray(jpeg(img))
    sof = j.index(b"\xff\xc0")
    j[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
    out["huge.jpg"] = bytes(j)
    out["huge.bmp"] = (b"BM" + struct.pack("<IHHI", 118, 0, 0, 54)
                       + struct.pack("<IiiHHIIiiII", 40, 60000, -60000, 1, 32, 0, 0, 0, 0, 0, 0) + bytes(64))
    out["huge.gif"] = (b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
                       + b"," + struct.pack("<HHHHB", 0, 0, 60000, 60000, 0) + b"\x02\x02\x44\x01\x00;")
    # A small animated GIF whose second frame claims 65535 x 65535 (output size = max frame).
    out["huge_second_frame.gif"] = (out["huge.gif"][:-1].replace(struct.pack("<HH", 60000, 60000), struct.pack("<HH", 1, 1), 1)
                                    + b"," + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x44\x01\x00;")
    # Progressive JPEG with 501 scans (the limit is 500): cheap EOB-run AC scans appended.
    base = jpeg(img, progressive=True)
    dht = b"\xff\xc4" + struct.pack(">H", 20) + b"\x13" + bytes([1] + [0] * 15) + b"\xe0"
    sos = b"\xff\xda" + struct.pack(">H", 8) + bytes([1, 1, 0x03, 1, 63, 0])
    extra = 501 - base.count(b"\xff\xda")
    out["scans501.jpg"] = base[:-2] + dht + (sos + b"\x7f\xff") * extra + b"\xff\xd9"
    # Corrupt entropy data that libjpeg (and TF) recover from with warnings: decodes.
    b = bytearray(jpeg(np.kron(img, np.ones((4, 4, 1), np.uint8)), quality=90))
    for p in range(len(b) // 2, len(b) - 40, 37):
        if b[p] != 0xFF and b[p - 1] != 0xFF:
            b[p] = (b[p] ^ 0x24) & 0xFE
    out["corrupt_entropy.jpg"] = bytes(b)
    out["early_eoi.jpg"] = bytes(b[: len(b) // 2]) + b"\xff\xd9"
    # Truncations at structure boundaries.
    full = jpeg(img)
    out["jpeg_header_only.jpg"] = full[: full.index(b"\xff\xda") + 14]
    png = io.BytesIO()
    Image.fromarray(img).save(png, "PNG")
    png = png.getvalue()
    out["png_no_idat.png"] = png[: png.index(b"IDAT") - 4]
    out["png_bad_crc.png"] = png[:29] + b"\0\0\0\0" + png[33:]
    out["bmp_one_byte_short.bmp"] = b"BM" + struct.pack("<IHHI", 54 + 48, 0, 0, 54) + struct.pack(
        "<IiiHHIIiiII", 40, 4, 4, 1, 24, 0, 48, 0, 0, 0, 0) + bytes(47)
    out["gif_no_image.gif"] = b"GIF89a" + struct.pack("<HHBBB", 4, 4, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff;"
    # JPEGs without their own tables: with no DQT they fail, with no DHT libjpeg's standard
    # tables apply; neither may borrow the tables of the file decoded before on the thread.
    out["jpeg_no_dqt.jpg"] = without_segments(full, 0xDB)
    out["jpeg_no_dht.jpg"] = without_segments(full, 0xC4)
    out["empty"] = b""
    out["webp.webp"] = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(24)
    out["text.txt"] = b"<html><body>not an image</body></html>\n"
    return {"hostile-" + k: v for k, v in out.items()}


if __name__ == "__main__":
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/data/fuzz_corpus"
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in hostile().items():
        (dest / name).write_bytes(data)
    print(f"wrote {len(hostile())} hostile inputs to {dest}")
