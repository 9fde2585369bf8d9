"""Keras' own test file for image_dataset_from_directory, from the installed keras,
unmodified, run with pyimgdir's function in place of Keras' (both formats: "tf", "grain")."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.tf, pytest.mark.slow]

HERE = Path(__file__).resolve().parent


def _keras_test_file() -> Path:
    keras = pytest.importorskip("keras")
    pytest.importorskip("grain")
    path = Path(keras.__file__).parent / "src" / "utils" / "image_dataset_utils_test.py"
    if not path.exists():
        pytest.fail(f"the installed keras has no {path}")
    return path


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_keras_image_dataset_utils_test_passes_with_pyimgdir(tmp_path, backend):
    if backend == "jax":
        pytest.importorskip("jax")
    test_file = _keras_test_file()
    calls = tmp_path / "calls.txt"
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")  # none of this project's settings
    root = str(HERE.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYIMGDIR_KERAS_SUITE_CALLS"] = str(calls)
    env["KERAS_BACKEND"] = backend
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "keras_suite_plugin",
         "-p", "no:cacheprovider", "-c", str(ini), "--rootdir", str(tmp_path)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    summary = [ln for ln in proc.stdout.splitlines() if " passed" in ln]
    assert summary and "failed" not in summary[-1] and "skipped" not in summary[-1], tail
    passed = int(summary[-1].split(" passed")[0].split()[-1])
    assert passed >= 29, tail  # 29 in keras 3.15: 14 grain, 15 tf
    tf_calls, grain_calls, used = calls.read_text().split()
    # pyimgdir (this checkout) answered the calls of both formats
    assert int(tf_calls) > 10 and int(grain_calls) > 10
    assert Path(used).resolve().parent == (HERE.parent / "pyimgdir").resolve()
