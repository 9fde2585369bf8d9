"""The command line, driven for real: ``python -m pyimgdir ...`` (and the ``pyimgdir``
console script when installed) in subprocesses, on folders with bad files."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import photo_like, write_image

REPO = Path(__file__).resolve().parent.parent
HAVE_TF = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("keras") is not None
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
# Runs the CLI with TensorFlow and Keras made unimportable: what a machine without them sees.
NO_TF = (
    "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; "
    "from pyimgdir.__main__ import main; sys.exit(main(sys.argv[1:]))"
)


def cli(*args, timeout=120, prefix=None):
    """Runs the CLI with stdout and stderr captured through pipes (so neither is a terminal)."""
    cmd = (prefix or [sys.executable, "-m", "pyimgdir"]) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=ENV)


def cli_with_tty_stderr(*args, timeout=120):
    """Runs the CLI with stderr on a pseudo-terminal; returns (returncode, stdout, stderr)."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyimgdir", *map(str, args)],
        stdout=subprocess.PIPE, stderr=slave, cwd=REPO, env=ENV,
    )
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO once the child has closed its side
            break
        if not chunk:
            break
        err += chunk
    out = proc.stdout.read()
    proc.stdout.close()
    proc.wait(timeout=timeout)
    os.close(master)
    return proc.returncode, out.decode(), err.decode(errors="replace")


# ------------------------------------------------------------------------------ folders

GOOD = {"birds": 3, "cats": 4, "dogs": 5}


@pytest.fixture(scope="module")
def bad_tree(tmp_path_factory):
    """birds/cats/dogs with a zero-byte file, a truncated JPEG, text named .jpg, a .txt,
    a PNG, a GIF and a BMP; plus a top-level image and a hidden folder (both ignored)."""
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("cli") / "data"
    for cls, n in GOOD.items():
        for i in range(n):
            write_image(root / cls / f"img_{i}.jpg", photo_like(rng, 20 + 7 * i, 30 + 5 * i), quality=90)
    write_image(root / "birds" / "b.png", photo_like(rng, 12, 18))
    write_image(root / "birds" / "c.gif", photo_like(rng, 14, 10))
    write_image(root / "dogs" / "d.bmp", photo_like(rng, 9, 11))
    (root / "cats" / "empty.jpg").write_bytes(b"")
    whole = (root / "dogs" / "img_4.jpg").read_bytes()
    (root / "dogs" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "birds" / "text.jpg").write_text("<html><body>not an image</body></html>\n")
    (root / "birds" / "notes.txt").write_text("labels from folders\n")
    write_image(root / "top.jpg", photo_like(rng, 10, 10))
    write_image(root / ".hidden" / "h.jpg", photo_like(rng, 10, 10))
    return root


@pytest.fixture(scope="module")
def good_tree(tmp_path_factory):
    rng = np.random.default_rng(8)
    root = tmp_path_factory.mktemp("cli_good") / "data"
    for c in range(2):
        for i in range(6):
            write_image(root / f"class_{c}" / f"{i}.jpg", photo_like(rng, 24 + i, 32))
    return root


# 3 + 3 (png, gif, text) birds, 4 + 1 (empty) cats, 5 + 2 (bmp, truncated) dogs
FILES = {"birds": 6, "cats": 5, "dogs": 7}
BAD_BY_HEADER = {"cats/empty.jpg": "empty file (0 bytes)", "birds/text.jpg": "unknown image file format"}
BAD_BY_DECODE = dict(BAD_BY_HEADER, **{"dogs/truncated.jpg": "truncated JPEG data"})


def rel(root: Path, path: str) -> str:
    return Path(path).relative_to(root).as_posix()


# ------------------------------------------------------------------------------ scan


def test_scan_table_lists_classes_formats_and_header_bad_files(bad_tree):
    r = cli("scan", bad_tree)
    assert r.returncode == 1, r.stderr  # bad files exist
    assert r.stderr == ""  # no progress bar: stderr is not a terminal
    out = r.stdout
    assert f"{sum(FILES.values())} image files in 3 classes" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("      ") and line.split()[0].isdigit()]
    assert [row[:3] for row in rows] == [["0", "birds", "6"], ["1", "cats", "5"], ["2", "dogs", "7"]]
    assert "formats (by content):" in out and "JPEG 13" in out and "PNG 1" in out and "GIF 1" in out
    assert "BMP 1" in out and "unknown 1" in out and "empty 1" in out
    assert "image size (pixels):" in out and "file size:" in out
    assert "1 file with other extensions (.txt 1)" in out
    assert "1 image file directly in the folder" in out
    for path, reason in BAD_BY_HEADER.items():
        assert f"{bad_tree / path}: {reason}" in out
    assert "truncated.jpg" not in out  # its header is fine: only --check finds it
    assert "--check" in out


def test_scan_check_json_reports_every_bad_file(bad_tree):
    r = cli("scan", bad_tree, "--check", "--json")
    assert r.returncode == 1
    assert r.stderr == ""
    rep = json.loads(r.stdout)
    assert rep["checked"] is True and rep["labels"] == "inferred"
    assert [(c["label"], c["name"], c["files"]) for c in rep["classes"]] == [
        (0, "birds", 6), (1, "cats", 5), (2, "dogs", 7)]
    assert [c["bad"] for c in rep["classes"]] == [1, 1, 1]
    assert rep["files"] == 18
    assert rep["bytes"] == sum(f.stat().st_size for f in bad_tree.glob("[!.]*/*") if f.suffix != ".txt")
    # 12 good JPEGs and the truncated one; the text file is "unknown", the empty one "empty"
    assert rep["formats"] == {"JPEG": 13, "PNG": 1, "GIF": 1, "BMP": 1, "empty": 1, "unknown": 1}
    assert rep["image_size"]["read"] == 16  # every file but the empty and the text one
    assert rep["image_size"]["height"]["min"] == 9 and rep["image_size"]["width"]["max"] == 50
    assert rep["ignored"] == {"other_extensions": 1, "other_extension_counts": {".txt": 1}, "top_level_images": 1}
    bad = {rel(bad_tree, b["path"]): b["reason"] for b in rep["bad_files"]}
    assert set(bad) == set(BAD_BY_DECODE)
    for path, reason in BAD_BY_DECODE.items():
        assert bad[path].startswith(reason)


def test_scan_check_table(bad_tree):
    r = cli("scan", "--check", bad_tree)
    assert r.returncode == 1
    assert 'Decoded every file (color_mode="rgb"): 3 files cannot be loaded:' in r.stdout
    assert f"{bad_tree / 'dogs/truncated.jpg'}: truncated JPEG data" in r.stdout
    assert 'on_error="skip"' in r.stdout


def test_scan_clean_folder_exits_0(good_tree):
    r = cli("scan", "--check", good_tree)
    assert r.returncode == 0, r.stdout
    assert 'Decoded every file (color_mode="rgb"): all 12 load.' in r.stdout
    r = cli("scan", good_tree, "--json", "--color-mode", "grayscale")
    assert r.returncode == 0
    rep = json.loads(r.stdout)
    assert rep["bad_files"] == [] and rep["checked"] is False and rep["color_mode"] == "grayscale"
    assert rep["color"] == {"rgb": 12}


def test_scan_labels_none_and_max_pixels(bad_tree):
    r = cli("scan", bad_tree, "--labels", "none", "--json")
    rep = json.loads(r.stdout)
    assert rep["classes"] is None and rep["labels"] is None
    assert rep["files"] == 18 + 2  # with labels=None Keras reads every folder, and the top level
    r = cli("scan", bad_tree, "--check", "--json", "--max-pixels", "300")
    rep = json.loads(r.stdout)
    too_big = [b for b in rep["bad_files"] if "max_pixels" in b["reason"]]
    assert too_big and all("more than the limit of 300" in b["reason"] for b in too_big)


def test_scan_non_utf8_file_name(tmp_path):
    rng = np.random.default_rng(9)
    root = tmp_path / "d"
    write_image(root / "a" / "ok.jpg", photo_like(rng, 10, 10))
    bad = os.path.join(os.fsencode(root / "a"), b"caf\xe9.jpg")
    try:
        with open(bad, "wb") as f:
            f.write(b"not an image")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    r = cli("scan", root)
    assert r.returncode == 1
    assert "caf\\xe9.jpg: unknown image file format" in r.stdout
    rep = json.loads(cli("scan", root, "--json").stdout)
    assert [os.fsencode(b["path"]) for b in rep["bad_files"]] == [bad]


@pytest.mark.parametrize(
    "args, message",
    [
        (["scan", "/nonexistent/pyimgdir-test"], "directory not found"),
        (["scan", "--labels", "maybe", "."], "invalid choice"),
        (["bench", ".", "--image-size", "64"], "expected 2 argument"),
        (["bench", ".", "--threads", "a,b"], "comma-separated list"),
        ([], "required"),
    ],
)
def test_usage_errors_exit_2(args, message):
    r = cli(*args)
    assert r.returncode == 2
    assert message in r.stderr and "usage: pyimgdir" in r.stderr
    assert r.stdout == ""


def test_scan_file_instead_of_dir_exits_2(bad_tree):
    r = cli("scan", bad_tree / "top.jpg")
    assert r.returncode == 2 and "not a directory" in r.stderr


def test_progress_bars_only_on_a_terminal(bad_tree):
    code, out, err = cli_with_tty_stderr("scan", "--check", bad_tree)
    assert code == 1
    assert "Decoding [" in err and "files" in err
    assert "Decoding" not in out  # results only on stdout
    code, out, err = cli_with_tty_stderr("scan", "--check", "--no-progress", bad_tree)
    assert code == 1 and "Decoding" not in err
    r = cli("scan", "--check", bad_tree)
    assert r.stderr == ""


# ------------------------------------------------------------------------------ bench


def test_bench_json_fields(good_tree):
    r = cli("bench", good_tree, "--json", "--epochs", "1", "--threads", "1,2", "--image-size", "16", "24",
            "--batch-size", "5", "--dtype", "uint8", "--interpolation", "area")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    rep = json.loads(r.stdout)
    assert rep["files"] == 12 and rep["classes"] == 2
    assert rep["bytes"] == sum(f.stat().st_size for f in good_tree.rglob("*.jpg"))
    assert rep["options"]["image_size"] == [16, 24] and rep["options"]["dtype"] == "uint8"
    assert rep["options"]["interpolation"] == "area" and rep["options"]["batch_size"] == 5
    assert [x["num_threads"] for x in rep["runs"]] == [1, 2]
    for x in rep["runs"]:
        assert x["loader"] == "pyimgdir" and x["format"] == "numpy" and x["images"] == 12
        assert len(x["epoch_seconds"]) == 1
        assert x["images_per_s"] > 0 and x["mb_per_s"] > 0
        assert x["mb_per_s"] == pytest.approx(rep["bytes"] / 1e6 / x["median_epoch_s"], rel=0.01)
    assert rep["keras"] is None and rep["skipped_files"] == []


def test_bench_table_with_bad_files(bad_tree):
    r = cli("bench", bad_tree, "--epochs", "1", "--no-scaling", "--image-size", "16", "16")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "18 files" in out and "16x16x3 float32, bilinear, batch 32" in out
    assert "threads" in out and "images/s" in out and "MB/s" in out
    assert "3 files could not be decoded and were left out" in out
    assert f"{bad_tree / 'dogs/truncated.jpg'}: truncated JPEG data" in out


@pytest.fixture(scope="module")
def keras_runs(good_tree, tmp_path_factory):
    """The two commands that import TensorFlow, run side by side (each spends seconds importing)."""
    if not HAVE_TF:
        pytest.skip("missing module: " + next(m for m in ("tensorflow", "keras") if importlib.util.find_spec(m) is None))
    sample = tmp_path_factory.mktemp("demo") / "sample"
    commands = {
        "bench": ["bench", good_tree, "--keras", "--json", "--epochs", "1", "--no-scaling", "--image-size", "16", "16"],
        "demo": ["demo", "--dir", sample, "--per-class", "4", "--epochs", "1", "--size", "32"],
    }
    procs = {
        k: subprocess.Popen([sys.executable, "-m", "pyimgdir", *map(str, v)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=ENV)
        for k, v in commands.items()
    }
    results = {}
    for k, p in procs.items():
        out, err = p.communicate(timeout=300)
        results[k] = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    results["sample"] = sample
    return results


@pytest.mark.tf
def test_bench_against_keras(keras_runs):
    r = keras_runs["bench"]
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert [x["format"] for x in rep["runs"]] == ["numpy", "tf"]
    assert rep["keras"]["loader"] == "keras" and rep["keras"]["images"] == 12
    assert rep["keras"]["images_per_s"] > 0


# ------------------------------------------------------------------------------ demo


@pytest.mark.tf
def test_demo_tiny_against_keras(keras_runs):
    r = keras_runs["demo"]
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert f"Sample dataset: {keras_runs['sample']} (5 classes x 4 images)" in out
    assert "Outputs: file_paths and class_names identical; labels identical; largest pixel difference 0" in out
    assert "Throughput, 20 images -> 32x32 float32, batch 32" in out
    for name in ("pyimgdir (numpy)", "pyimgdir (tf.data)", "keras"):
        assert name in out
    assert "x Keras)" in out
    # TensorFlow's start-up INFO lines (oneDNN, CPU features) stay out of the report
    for r in (keras_runs["demo"], keras_runs["bench"]):
        assert "oneDNN" not in r.stderr and "InitializeLog" not in r.stderr and "cpu_feature_guard" not in r.stderr, r.stderr


def test_startup_info_filter_keeps_warnings_and_errors():
    from pyimgdir.outputs.quiet_tf import drop_startup_info

    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796048454.656213   12465 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1796048454.7   12465 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n"
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
        "W0000 00:00:1796048455.1   12465 gpu_device.cc:2344] Cannot dlopen some GPU libraries.\n"
        "a continuation of the warning\n"
        "E1130 14:01:02.123456   12465 foo.cc:1] an error\n"
        "Traceback (most recent call last):\n"
    )
    assert drop_startup_info(text) == (
        "W0000 00:00:1796048455.1   12465 gpu_device.cc:2344] Cannot dlopen some GPU libraries.\n"
        "a continuation of the warning\n"
        "E1130 14:01:02.123456   12465 foo.cc:1] an error\n"
        "Traceback (most recent call last):\n"
    )


@pytest.mark.parametrize("mode", ["python -m", "import"])
def test_unbuilt_source_checkout_says_what_to_do(tmp_path, mode):
    # A checkout whose core is not built, run from its root: Python imports the package from
    # the current directory. (-S: without site-packages' .pth files, as with a non-editable
    # install, so nothing else supplies the package.)
    shutil.copytree(REPO / "pyimgdir", tmp_path / "pyimgdir", ignore=shutil.ignore_patterns("_core*", "__pycache__"))
    shutil.copy(REPO / "setup.py", tmp_path / "setup.py")
    cmd = ["-m", "pyimgdir", "demo"] if mode == "python -m" else ["-c", "import pyimgdir"]
    r = subprocess.run([sys.executable, "-S", *cmd], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                       env=dict(ENV, PYTHONPATH=""))
    assert r.returncode == 1
    assert f"pyimgdir's compiled core (pyimgdir/_core) is not built in {tmp_path / 'pyimgdir'}" in r.stderr
    assert "source checkout" in r.stderr and "pip install -e ." in r.stderr
    assert "partially initialized" not in r.stderr
    if mode == "python -m":
        assert "Traceback" not in r.stderr and r.stderr.startswith("pyimgdir: ")
    else:
        assert r.stderr.rstrip().splitlines()[-1].endswith("or install the package and run from another directory.")


ONEDNN_PROBE = """
import hashlib, sys
import numpy as np
from pyimgdir.outputs.quiet_tf import import_tensorflow
tf, keras = import_tensorflow()
import pyimgdir
kw = dict(image_size=(37, 53), batch_size=4, shuffle=False, verbose=False)
h = hashlib.sha256()
for x, y in keras.utils.image_dataset_from_directory(sys.argv[1], **kw):
    h.update(x.numpy().tobytes())
p = hashlib.sha256()
for x, y in pyimgdir.image_dataset_from_directory(sys.argv[1], format="numpy", **kw):
    p.update(x.tobytes())
print(h.hexdigest(), p.hexdigest())
"""


@pytest.mark.tf
def test_onednn_setting_does_not_change_pixels(good_tree):
    # The command line leaves TF_ENABLE_ONEDNN_OPTS alone (it only hides TensorFlow's start-up
    # lines). Either way, Keras' pixels are the same, and the same as pyimgdir's.
    digests = set()
    for setting in ("0", "1"):
        r = subprocess.run([sys.executable, "-c", ONEDNN_PROBE, str(good_tree)], capture_output=True, text=True,
                           timeout=300, cwd=REPO, env=dict(ENV, TF_ENABLE_ONEDNN_OPTS=setting))
        assert r.returncode == 0, r.stderr
        keras_digest, pyimgdir_digest = r.stdout.split()
        assert keras_digest == pyimgdir_digest
        digests.add(keras_digest)
    assert len(digests) == 1


def test_demo_json_without_tensorflow(tmp_path):
    r = cli("demo", "--dir", tmp_path / "sample", "--per-class", "4", "--epochs", "1", "--size", "32",
            "--classes", "2", "--json", prefix=[sys.executable, "-c", NO_TF])
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)  # stdout is only the JSON document
    assert rep["images"] == 8 and rep["keras_installed"] is False and rep["comparison"] is None
    assert list(rep["images_per_s"]) == ["pyimgdir (numpy)"] and rep["images_per_s"]["pyimgdir (numpy)"] > 0
    assert rep["sample"]["directory"] == str(tmp_path / "sample")


def test_demo_text_without_tensorflow(tmp_path):
    r = cli("demo", "--dir", tmp_path / "s", "--per-class", "3", "--classes", "2", "--epochs", "1", "--size", "16",
            prefix=[sys.executable, "-c", NO_TF])
    assert r.returncode == 0, r.stderr
    assert "TensorFlow/Keras are not installed" in r.stdout
    assert "pyimgdir (numpy)" in r.stdout and "x Keras" not in r.stdout


# ------------------------------------------------------------------------------ help, entry points


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], ["scan", "bench", "demo", "Exit status"]),
        (["scan"], ["--check", "--json", "--follow-links", "--color-mode", "--labels", "Exit status: 0"]),
        (["bench"], ["--image-size H W", "--batch-size", "--dtype", "--interpolation", "--jpeg-downscale",
                     "--epochs", "--keras", "--threads", "--json"]),
        (["demo"], ["--per-class", "--epochs", "--json"]),
    ],
)
def test_help(args, expected):
    r = cli(*args, "--help")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("usage: pyimgdir")
    for word in expected:
        assert word in r.stdout


@pytest.mark.skipif(shutil.which("pyimgdir") is None, reason="the console script is not installed")
def test_console_script(bad_tree):
    exe = shutil.which("pyimgdir")
    r = cli("--version", prefix=[exe])
    assert r.returncode == 0 and r.stdout.startswith("pyimgdir ")
    r = cli("scan", bad_tree, "--json", prefix=[exe])
    assert r.returncode == 1 and json.loads(r.stdout)["files"] == 18
