"""Shared fixtures: small image trees written with real encoders into tmp_path.

Also, before any test module imports Keras, boto, fsspec or the Google clients, the
environment the tests see is made the same on every machine: Keras' home is an empty
temporary directory (no ``keras.json`` to change the backend or the default data format),
and the cloud credentials and endpoints are fixed dummy values, whatever the user's shell or
home holds. Subprocesses started by the tests inherit it.
"""

from __future__ import annotations

import atexit
import io
import itertools
import os
import re
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _isolate_environment() -> None:
    # Once per run: a subprocess of a test that imports this module (to reuse a helper) keeps
    # the environment the test gave it.
    if os.path.isdir(os.environ.get("PYIMGDIR_TESTS_HOME", "")):
        return
    home = tempfile.mkdtemp(prefix="pyimgdir-tests-home-")
    os.environ["PYIMGDIR_TESTS_HOME"] = home
    owner = os.getpid()  # a forked child that exits through atexit must not remove it
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(home, True))
    env = os.environ
    # Keras reads $KERAS_HOME/keras.json (else ~/.keras/keras.json): backend, image_data_format.
    env["KERAS_HOME"] = os.path.join(home, "keras")
    os.makedirs(env["KERAS_HOME"])
    env.pop("KERAS_BACKEND", None)
    env.pop("TF_CONFIG", None)  # a cluster spec would turn on multi-worker strategies
    env.pop("PYIMGDIR_JPEG_CHECKPOINT_MB", None)  # the tests that need a cap set it themselves
    env.pop("RAY_ADDRESS", None)  # the Ray tests start their own local cluster
    # Ray starts its worker processes at niceness 15: beside any other CPU-heavy process they
    # get almost no CPU (docs/ray.md has the measurement). The Ray tests' workers run at the
    # same priority as the rest.
    env["RAY_worker_niceness"] = "0"
    # Ray turns the node address 127.0.0.1 into the machine's own address on Linux unless
    # "clusters" are off (ray_constants.ENABLE_RAY_CLUSTER, read when ray is imported; it
    # changes nothing else): the tests' cluster stays on the loopback address.
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    # AWS and Google Cloud: nothing of the user's (keys, profiles, endpoints, regions, config
    # files) reaches the clients; the tests' servers take any key.
    # fsspec also takes per-protocol defaults (endpoint_url, ...) from FSSPEC_* variables and
    # from ~/.config/fsspec.
    for k in list(env):
        if k.startswith(("AWS_", "GOOGLE_", "GCLOUD_", "CLOUDSDK_", "FSSPEC_")) or k in (
            "STORAGE_EMULATOR_HOST",
            "BOTO_CONFIG",
        ):
            del env[k]
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=os.path.join(home, "aws-config"),  # absent files: nothing read
        AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        GOOGLE_CLOUD_PROJECT="test-project",
        CLOUDSDK_CONFIG=os.path.join(home, "gcloud"),
        FSSPEC_CONFIG_DIR=os.path.join(home, "fsspec"),
    )
    # The tests' servers listen on 127.0.0.1: never through a proxy the user configured.
    for k in ("NO_PROXY", "no_proxy"):
        env[k] = ",".join(v for v in (env.get(k), "127.0.0.1", "localhost") if v)


_isolate_environment()

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def sigint_default() -> None:
    """``preexec_fn`` for a child process a test interrupts with SIGINT: the signal's default
    action back, so that Python installs its KeyboardInterrupt handler there. A process
    started in the background by a non-interactive shell (``cmd &`` in a CI script) ignores
    SIGINT, and its children inherit that; without this, such a child never sees Ctrl-C."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def zip_strict(*iterables):
    """zip() that fails when the iterables differ in length (zip(strict=True) before 3.10)."""
    missing = object()
    for n, items in enumerate(itertools.zip_longest(*iterables, fillvalue=missing)):
        if any(v is missing for v in items):
            lengths = ["ended" if v is missing else "has more" for v in items]
            raise AssertionError(f"iterables differ in length at item {n}: {lengths}")
        yield items


def photo_like(rng: np.random.Generator, h: int, w: int, channels: int = 3) -> np.ndarray:
    """Smooth gradients, a few shapes and mild noise: content with real JPEG statistics."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = []
    for c in range(channels):
        fx, fy, ph = rng.uniform(0.01, 0.15), rng.uniform(0.01, 0.15), rng.uniform(0, 6.28)
        base.append(127 + 100 * np.sin(fx * x + ph) * np.cos(fy * y - ph))
    img = np.stack(base, -1)
    for _ in range(3):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(2, max(3, min(h, w) // 2))
        mask = (y - cy) ** 2 + (x - cx) ** 2 < r * r
        img[mask] = rng.integers(0, 256, channels)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    from PIL import Image

    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


def write_image(path: Path, arr: np.ndarray, fmt: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt is None:
        ext = path.suffix.lower()
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF"}[ext]
    path.write_bytes(encode(arr, fmt, **kw))
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def make_tree(tmp_path, rng):
    """make_tree({"a": 3, "b/sub": 2}, ext=".jpg") writes photo-like images of varied sizes."""

    def _make(layout: dict, ext: str = ".jpg", root: Path | None = None, size_range=(16, 90)):
        root = root or tmp_path / "data"
        root.mkdir(parents=True, exist_ok=True)
        exts = [ext] if isinstance(ext, str) else list(ext)
        k = 0
        for rel, count in layout.items():
            for i in range(count):
                h, w = (int(v) for v in rng.integers(size_range[0], size_range[1], 2))
                e = exts[k % len(exts)]
                k += 1
                write_image(root / rel / f"img_{i:03d}{e}", photo_like(rng, h, w))
        return root

    return _make


@pytest.fixture(scope="session")
def tf():
    tf = pytest.importorskip("tensorflow")
    return tf


@pytest.fixture(scope="session")
def keras(tf):
    return pytest.importorskip("keras")


def pytest_terminal_summary(terminalreporter):
    """Prints how many Keras-vs-pyimgdir comparisons ran and the largest pixel difference
    seen per interpolation method (the parity suite's figures), and the skips that fail the
    run because a package of the test extra is missing."""
    offending = _offending_skips()
    if offending:
        tr = terminalreporter
        tr.section("skipped for want of a package the test extra installs (this fails the run)", red=True)
        for nodeid, mod in offending:
            tr.write_line(f"{nodeid}: {mod} is missing; install with pip install -e \".[tf,test]\"", red=True)
    try:
        from parity_util import Stats
    except ImportError:
        return
    if not Stats.cases:
        return
    tr = terminalreporter
    tr.section("pyimgdir vs Keras")
    tr.write_line(f"dataset calls compared against Keras: {Stats.cases}; samples compared: {Stats.samples}")
    for method, diff in sorted(Stats.max_diff.items()):
        tr.write_line(f"  {method:<14} largest |pixel difference|: {diff:g}")


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 for the whole session (installed by the test extra)."""
    from object_stores import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def proxied(s3_server):
    """Makes fault-injecting proxies in front of the S3 server (tests/fault_proxy.py), stopped
    after the test."""
    from fault_proxy import FaultProxy

    proxies = []

    def make(**kw):
        p = FaultProxy(s3_server.port, **kw).start()
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.stop()


@pytest.fixture(scope="session")
def gcs_server():
    """gcp-storage-emulator on 127.0.0.1 for the whole session (installed by the test extra)."""
    from object_stores import GCSServer

    server = GCSServer()
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------
# Timing tests: wall-clock limits, process thread counts and memory ceilings. They hold on
# a quiet machine, with generous margins, but depend on load, on the allocator and on what
# earlier tests left running, so the default run leaves them out; `pytest -m timing` runs
# them (CI does, as a separate step). Deselected here rather than by an addopts `-m`, so that
# a caller's own `-m` expression does not bring them back by replacing it.


def pytest_collection_modifyitems(config, items):
    if "timing" in (config.getoption("markexpr") or ""):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("timing") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# ---------------------------------------------------------------------------------------
# A test skipped because a package of the `test` or `tf` extra is missing fails the run:
# `pip install -e ".[tf,test]"` installs them, so such a skip means the suite did not test
# what it claims to. PYIMGDIR_TESTS_MAY_LACK="tensorflow,keras" names modules a job hides on
# purpose (the sanitizer job runs without TensorFlow).

_EXTRAS = ("tf", "test")
# distribution name -> the module its tests import (where the two differ)
_MODULE_OF = {
    "pillow": "PIL",
    "opencv-python-headless": "cv2",
    "opencv-python": "cv2",
    "tensorflow-cpu": "tensorflow",
    "moto": "moto",
    "gcp-storage-emulator": "gcp_storage_emulator",
    "pytest-benchmark": "pytest_benchmark",
    "pyyaml": "yaml",
}
# used when pyproject.toml cannot be read (no tomllib/tomli, or the tests run from a copy)
_FALLBACK_MODULES = {
    "tensorflow", "keras", "PIL", "cv2", "simplejpeg", "psutil", "grain", "jax", "scipy",
    "fsspec", "s3fs", "gcsfs", "boto3", "moto", "gcp_storage_emulator", "torch",
}
_MISSING_RE = (
    re.compile(r"could not import '([\w.]+)'"),  # pytest.importorskip
    re.compile(r"No module named '([\w.]+)'"),
    re.compile(r"missing module: ([\w.]+)"),  # needs() below
)


def extra_modules() -> set[str]:
    """Top-level modules the `tf` and `test` extras install on this platform."""
    root = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        try:
            import tomllib
        except ImportError:
            import tomli as tomllib
        from packaging.requirements import Requirement

        extras = tomllib.loads(root.read_text())["project"]["optional-dependencies"]
    except (ImportError, OSError, KeyError, ValueError):
        return set(_FALLBACK_MODULES)
    mods = set()
    for extra in _EXTRAS:
        for spec in extras.get(extra, []):
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            name = req.name.lower()
            mods.add(_MODULE_OF.get(name, name.replace("-", "_")))
    return mods


def needs(*modules: str):
    """A skipif mark for tests that need optional modules, worded so the check below reads it."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"missing module: {missing[0] if missing else ''}")


_skips_of_extras: list[tuple[str, str]] = []


def pytest_collectreport(report):  # a module skipped as a whole (importorskip at import)
    pytest_runtest_logreport(report)


def pytest_runtest_logreport(report):
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    for pattern in _MISSING_RE:
        m = pattern.search(reason)
        if m:
            _skips_of_extras.append((report.nodeid, m.group(1).partition(".")[0]))
            return


def _offending_skips() -> list[tuple[str, str]]:
    allowed = {m.strip() for m in os.environ.get("PYIMGDIR_TESTS_MAY_LACK", "").split(",") if m.strip()}
    required = extra_modules() - allowed
    return [(nodeid, mod) for nodeid, mod in _skips_of_extras if mod in required]


def pytest_sessionfinish(session, exitstatus):
    # 5: nothing ran (a module skipped whole was all there was)
    if _offending_skips() and session.exitstatus in (0, 5):
        session.exitstatus = 1
