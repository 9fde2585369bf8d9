"""format="grain" under the JAX and PyTorch backends (each in its own process): Keras'
element types and dtypes, the batches the core made, and the measured pixel difference
from Keras' own grain output (keras.ops.image.resize differs from TensorFlow's there)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import photo_like, write_image

HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.tf, pytest.mark.slow]

# Largest |difference| (0-255 scale) between pyimgdir's grain output (TensorFlow's resize
# numerics) and Keras' under each backend, as documented in the README.
# torch's bicubic uses the cubic coefficient -0.75 (TensorFlow: -0.5).
BOUNDS = {
    "jax": {"bilinear": 0.01, "nearest": 0.0, "bicubic": 0.2, "lanczos3": 0.01},
    "torch": {"bilinear": 0.01, "nearest": 0.0, "bicubic": 30.0},
}


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    rng = np.random.default_rng(9)
    root = tmp_path_factory.mktemp("backends") / "data"
    for i in range(10):
        ext = [".jpg", ".png", ".gif", ".bmp"][i % 4]
        write_image(root / f"c{i % 2}" / f"{i:02d}{ext}", photo_like(rng, int(rng.integers(20, 90)), int(rng.integers(20, 90))))
    return root


def run_backend(backend: str, directory: Path) -> dict:
    for mod in {"jax": ["jax"], "torch": ["torch"]}[backend] + ["grain", "keras"]:
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"missing module: {mod}")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.run([sys.executable, str(HERE / "grain_backend_check.py"), str(directory)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_jax_backend(small_tree):
    r = run_backend("jax", small_tree)
    assert r["backend"] == "jax"
    assert r["methods"]["area"] == "refused by both"
    for method, bound in BOUNDS["jax"].items():
        m = r["methods"][method]
        assert m["types"] == ["ArrayImpl"] * 4
        assert m["dtypes"] == ["float32", "float32", "int32", "int32"]
        assert m["shapes"] == [[4, 20, 28, 3], [4, 20, 28, 3]]
        assert m["labels_equal"] and m["equals_numpy_format"]
        assert m["max_diff"] <= bound, (method, m)


def test_torch_backend(small_tree):
    r = run_backend("torch", small_tree)
    assert r["backend"] == "torch"
    assert r["methods"]["lanczos3"] == "refused by both" and r["methods"]["area"] == "refused by both"
    for method, bound in BOUNDS["torch"].items():
        m = r["methods"][method]
        assert m["types"] == ["Tensor"] * 4
        assert m["dtypes"] == ["torch.float32", "torch.float32", "torch.int32", "torch.int32"]
        assert m["shapes"] == [[4, 20, 28, 3], [4, 20, 28, 3]]
        assert m["labels_equal"] and m["equals_numpy_format"]
        assert m["max_diff"] <= bound, (method, m)
