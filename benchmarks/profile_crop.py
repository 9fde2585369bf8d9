"""Where pyimgdir's training-input time goes: `perf record` over epochs of
random_resized_crop=True, random_flip="horizontal" (224x224, batch 64, numpy output),
samples grouped by library and function.

    python benchmarks/profile_crop.py --dataset photos --epochs 3
    python benchmarks/profile_crop.py --dataset camera --epochs 2 --dtype uint8

Needs Linux `perf`. Writes benchmarks/results/crop-profile-<dataset>-<dtype>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKLOAD = """
import sys, pyimgdir
ds = pyimgdir.image_dataset_from_directory(sys.argv[1], format="numpy", image_size=(224, 224), batch_size=64,
    shuffle=False, seed=1, verbose=False, random_resized_crop=True, random_flip="horizontal", dtype=sys.argv[2])
for e in range(int(sys.argv[3])):
    for x, y in ds:
        x.reshape(-1)[0]
"""


def exported_symbols(so: str) -> list:
    """(address, name) of the extension's exported functions, sorted: the build strips
    local symbols, so an unnamed address is put with the exported function that follows it
    (a file's static helpers are laid out before its exported functions)."""
    out = subprocess.run(["nm", "-D", "-C", "--defined-only", so], capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "Tt":
            syms.append((int(parts[0], 16), parts[2]))
    return sorted(syms)


def resolve(sym: str, syms: list) -> str:
    if not sym.startswith("0x") or not syms:
        return sym
    addr = int(sym, 16)
    for a, name in syms:
        if a > addr:
            return name
    return sym


def group(dso: str, sym: str) -> str:
    if "libjpeg" in dso:
        return "libjpeg-turbo: Huffman decoding, IDCT, upsampling, colour conversion"
    if "decode_jpeg_eighth" in sym or "jpeg_checkpoint_stats" in sym:  # the file's statics precede the latter
        return "entropy-data decoder (1/8, 1/4 crops): Huffman walk of the crop's MCU rows, IDCTs"
    if "region_scan" in sym:  # the file's statics (walker, bit writer) precede it
        return "pyimgdir: crop rewrite (checkpoint walk, bit copy into a smaller JPEG)"
    if "_core" in dso:
        if "process_random_crop" in sym or "mirror" in sym or "flip" in sym:
            return "pyimgdir: crop sample set-up"
        if "decode" in sym:
            return "pyimgdir: decode set-up"
        return "pyimgdir: resize and other core code"
    if "kernel" in dso:
        return "kernel: file reads, page faults, scheduling"
    if "libc" in dso:
        return "libc: memset/memcpy/malloc"
    if "python" in dso.lower():
        return "Python interpreter"
    return "other"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="photos")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--epochs", type=int, default=3)
    a = ap.parse_args(argv)
    root = HERE / "data" / a.dataset
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "work.py"
        script.write_text(WORKLOAD)
        data = Path(tmp) / "perf.data"
        subprocess.run(["perf", "record", "-F", "1999", "-o", str(data), sys.executable, str(script), str(root),
                        a.dtype, str(a.epochs)], check=True, capture_output=True, env=dict(os.environ))
        rep = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "dso,symbol", "--stdio"],
                             check=True, capture_output=True, text=True).stdout
    import pyimgdir._core

    syms = exported_symbols(pyimgdir._core.__file__)
    groups: dict = {}
    for line in rep.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*?)\s*$", line)
        if m:
            sym = m.group(3).split()[0] if m.group(3).startswith("0x") else m.group(3)
            if "_core" in m.group(2):
                sym = resolve(sym, syms)
            g = group(m.group(2), sym)
            groups[g] = groups.get(g, 0.0) + float(m.group(1))
    rows = sorted(((round(v, 1), k) for k, v in groups.items()), reverse=True)
    for v, k in rows:
        print(f"{v:5.1f}%  {k}")
    out = HERE / "results" / f"crop-profile-{a.dataset}-{a.dtype}.json"
    out.write_text(json.dumps(dict(dataset=a.dataset, dtype=a.dtype, epochs=a.epochs,
                                   percent_of_samples={k: v for v, k in rows}), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
