"""Writes the fuzzer's seed corpus: small real files of every format and variant the
decoders handle (fuzz/seeds/<format>/). Deterministic; run from anywhere."""

from __future__ import annotations

import io
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def photo(rng, h, w, c=3):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = [127 + 100 * np.sin(rng.uniform(0.05, 0.4) * x + c_) * np.cos(rng.uniform(0.05, 0.4) * y)
              for c_ in range(c)]
    img = np.stack(planes, -1) + rng.normal(0, 8, (h, w, c))
    return np.clip(img, 0, 255).astype(np.uint8)


def save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_raw(arr: np.ndarray, interlace: bool = False) -> bytes:
    """A PNG written by hand (PIL writes neither Adam7 nor 16-bit colour): filter 0 rows."""
    h, w, c = arr.shape
    depth = 16 if arr.dtype.itemsize == 2 else 8
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    def rows(a):
        return b"".join(b"\0" + a[y].tobytes() for y in range(a.shape[0])) if a.size else b""

    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b"".join(rows(arr[y0::dy, x0::dx]) for x0, y0, dx, dy in passes)
    else:
        raw = rows(arr)
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([depth, ctype, 0, 0, int(interlace)])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def seeds():
    rng = np.random.default_rng(5)
    rgb = Image.fromarray(photo(rng, 13, 17))
    rgba = Image.fromarray(photo(rng, 9, 11, 4), "RGBA")
    gray = Image.fromarray(photo(rng, 10, 12, 1)[:, :, 0], "L")
    big = Image.fromarray(photo(rng, 40, 33))
    out = {}
    # JPEG: baseline 4:2:0 / 4:4:4 / 4:2:2, grayscale, progressive, restart markers,
    # CMYK (Adobe), odd sizes, optimised Huffman tables.
    out["jpeg/baseline.jpg"] = save(rgb, "JPEG", quality=75)
    out["jpeg/444.jpg"] = save(rgb, "JPEG", quality=90, subsampling=0)
    out["jpeg/422.jpg"] = save(big, "JPEG", quality=60, subsampling=1)
    out["jpeg/gray.jpg"] = save(gray, "JPEG", quality=80)
    out["jpeg/progressive.jpg"] = save(big, "JPEG", quality=70, progressive=True)
    out["jpeg/progressive_gray.jpg"] = save(gray, "JPEG", progressive=True)
    out["jpeg/optimized.jpg"] = save(rgb, "JPEG", optimize=True)
    out["jpeg/restart.jpg"] = save(big, "JPEG", quality=50, restart_marker_blocks=1)
    out["jpeg/cmyk.jpg"] = save(rgb.convert("CMYK"), "JPEG")
    # PNG: every colour type, bit depths 1..16, interlaced, tRNS, palette.
    out["png/rgb.png"] = save(rgb, "PNG")
    out["png/rgba.png"] = save(rgba, "PNG")
    out["png/gray.png"] = save(gray, "PNG")
    out["png/la.png"] = save(Image.merge("LA", [gray, gray.point(lambda v: 255 - v)]), "PNG")
    out["png/interlaced.png"] = png_raw(photo(rng, 11, 13), interlace=True)
    out["png/rgba16_interlaced.png"] = png_raw(photo(rng, 6, 9, 4).astype(">u2") * 257, interlace=True)
    out["png/rgb16.png"] = png_raw(photo(rng, 5, 7).astype(">u2") * 257)
    out["png/palette.png"] = save(rgb.convert("P", palette=Image.ADAPTIVE, colors=16), "PNG")
    pal_t = rgb.convert("P", palette=Image.ADAPTIVE, colors=8)
    out["png/palette_trns.png"] = save(pal_t, "PNG", transparency=3)
    out["png/gray_trns.png"] = save(gray, "PNG", transparency=100)
    out["png/rgb_trns.png"] = save(rgb, "PNG", transparency=(10, 20, 30))
    out["png/bilevel.png"] = save(gray.convert("1"), "PNG")
    out["png/gray16.png"] = png_raw(photo(rng, 7, 9, 1).astype(">u2") * 257)
    # GIF: global and local colour tables, transparency, interlace, animation.
    out["gif/global.gif"] = save(rgb.convert("P", palette=Image.ADAPTIVE, colors=32), "GIF")
    out["gif/transparent.gif"] = save(pal_t, "GIF", transparency=2)
    out["gif/interlaced.gif"] = save(big.convert("P", palette=Image.ADAPTIVE), "GIF", interlace=True)
    frames = [Image.fromarray(photo(rng, 12, 10)).convert("P", palette=Image.ADAPTIVE, colors=16) for _ in range(3)]
    out["gif/animated.gif"] = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, disposal=2)
    out["gif/gray.gif"] = save(gray, "GIF")
    # BMP: 8 (palette indices), 24 and 32 bits, bottom-up and top-down.
    out["bmp/rgb24.bmp"] = save(rgb, "BMP")
    out["bmp/pal8.bmp"] = save(rgb.convert("P", palette=Image.ADAPTIVE, colors=16), "BMP")
    out["bmp/gray8.bmp"] = save(gray, "BMP")
    out["bmp/rgba32.bmp"] = save(rgba, "BMP")
    td = bytearray(out["bmp/rgb24.bmp"])
    h = int.from_bytes(td[22:26], "little", signed=True)
    td[22:26] = (-h).to_bytes(4, "little", signed=True)
    out["bmp/topdown24.bmp"] = bytes(td)
    return out


def main(dest: Path) -> None:
    for rel, data in seeds().items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    print(f"wrote {len(seeds())} seeds under {dest}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "seeds")
