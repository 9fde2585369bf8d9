"""Every script in examples/ runs, on a tiny generated sample, in a subprocess.

The scripts start side by side (most of their time is importing TensorFlow or PyTorch)
and each test checks one script's output."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs
from pyimgdir.sample import make_sample

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
HAVE_TF = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("keras") is not None
HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_JAX_GRAIN = all(importlib.util.find_spec(m) is not None for m in ("jax", "grain", "keras"))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
# Runs an example with PyTorch made unimportable, as on a machine without it.
HIDE_TORCH = (
    "import runpy, sys; sys.modules['torch'] = None; script = sys.argv[1]; sys.argv = sys.argv[1:]; "
    "runpy.run_path(script, run_name='__main__')"
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("examples")
    sample = make_sample(base / "sample", classes=3, per_class=10, size_range=(40, 90))
    bad = make_sample(base / "with_bad_file", classes=2, per_class=5, size_range=(40, 90))
    (bad / "class_1" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    small = ["--epochs", "1", "--image-size", "32"]
    scripts = {
        "numpy_default": [sys.executable, EXAMPLES / "numpy_loop.py"],  # generates its own sample
        "numpy_bad": [sys.executable, EXAMPLES / "numpy_loop.py", bad, *small],
        "torch_hidden": [sys.executable, "-c", HIDE_TORCH, EXAMPLES / "pytorch_loop.py", sample, *small],
    }
    if HAVE_TORCH:
        scripts["torch"] = [sys.executable, EXAMPLES / "pytorch_loop.py", sample, *small]
    if HAVE_TF:
        scripts["keras"] = [sys.executable, EXAMPLES / "train_keras.py", sample, *small]
        scripts["distribute"] = [sys.executable, EXAMPLES / "tf_distribute.py", sample, *small]
    if HAVE_JAX_GRAIN:
        scripts["jax"] = [sys.executable, EXAMPLES / "train_jax.py", sample, *small]
    procs = {
        name: subprocess.Popen([str(a) for a in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=base, env=ENV)
        for name, cmd in scripts.items()
    }
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        out[name] = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
    return out


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, f"{r.args}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr[-4000:]}"
    return r.stdout


def test_numpy_loop_default_sample_without_tensorflow(runs):
    out = ok(runs["numpy_default"])
    assert "Found 90 files belonging to 3 classes." in out
    assert "NumpyDataset(files=72, batches=5, image_shape=(32, 32, 3), dtype=uint8)" in out
    assert "epoch 3: loss" in out and "val_accuracy" in out
    assert "TensorFlow imported: False" in out


def test_numpy_loop_skips_a_bad_file(runs):
    out = ok(runs["numpy_bad"])
    assert "epoch 1: loss" in out
    assert "Skipped (cannot be decoded): 1" in out and "broken.jpg" in out


def test_pytorch_loop_without_torch_skips_cleanly(runs):
    out = ok(runs["torch_hidden"])
    assert out.strip() == "PyTorch is not installed: skipping this example (pip install torch to run it)."


@needs("torch")
def test_pytorch_loop(runs):
    out = ok(runs["torch"])
    assert "Using 24 files for training." in out
    assert "epoch 1: loss" in out and "val_accuracy" in out


@pytest.mark.tf
@needs("tensorflow", "keras")
def test_train_keras(runs):
    out = ok(runs["keras"])
    assert "Using 24 files for training." in out and "Using 6 files for validation." in out
    assert "classes: ['class_0', 'class_1', 'class_2']" in out
    assert "final: accuracy" in out and "val_loss" in out


@pytest.mark.tf
@needs("tensorflow", "keras")
def test_tf_distribute(runs):
    out = ok(runs["distribute"])
    assert "replicas: 2" in out and "global batch 16" in out
    assert "steps per epoch: 2" in out  # 30 files, batches of 8 per replica: 4 batches, 2 steps
    assert "final: accuracy" in out


@needs("jax", "grain", "keras")
def test_train_jax_with_grain(runs):
    out = ok(runs["jax"])
    assert "backend: jax" in out
    assert "dataset: grain.IterDataset" in out
    assert "batch: jaxlib float32 (16, 32, 32, 3), labels int32" in out
    assert "final: accuracy" in out and "val_loss" in out
    assert "same next batch: True" in out
