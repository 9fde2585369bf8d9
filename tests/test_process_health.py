"""The process stays healthy: Ctrl-C is prompt, abandoned iterators stop their threads and
give their memory back, interpreter exit never hangs, iterators can run side by side, and
neither memory nor file descriptors grow across epochs (including epochs that hit errors).

The default run checks what holds under any load: the interrupt arrives, the process ends,
the threads an iterator started are gone, no file of the data stays open. How fast, and how
flat the resident memory stays (which depends on the allocator), are checked by the tests
marked ``timing`` (``pytest -m timing``), with margins over what a quiet machine shows.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import pyimgdir
from conftest import encode, photo_like, sigint_default, zip_strict

PKG_PARENT = str(Path(pyimgdir.__file__).resolve().parent.parent)
# Under AddressSanitizer (.ci/sanitize.sh) freed memory sits in a quarantine and every
# allocation carries redzones: RSS says nothing about leaks there (LeakSanitizer does).
SANITIZED = bool(os.environ.get("PYIMGDIR_SANITIZED"))


def task_ids() -> set:
    """Threads of this process, native ones included (threading.active_count() sees only
    Python's). Other libraries loaded by earlier tests (TensorFlow, Grain, the object-store
    servers) start and end threads of their own at any time, so the tests compare sets: the
    threads that appeared while pyimgdir worked must all be gone again."""
    return set(os.listdir("/proc/self/task"))


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def open_files_under(*roots) -> list:
    """Paths of this process's open file descriptors that lie under any of `roots`."""
    roots = [str(Path(r).resolve()) for r in roots]
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if any(target.startswith(r + os.sep) for r in roots):
            found.append(target)
    return found


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def wait_for(cond, timeout=3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def build(root, **kw):
    base = dict(image_size=(32, 32), batch_size=4, shuffle=False, verbose=False, format="numpy", num_threads=2)
    return pyimgdir.image_dataset_from_directory(root, **{**base, **kw})


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """40 images of varied sizes and formats in two classes."""
    rng = np.random.default_rng(11)
    root = tmp_path_factory.mktemp("small")
    for i in range(40):
        ext, fmt = [(".jpg", "JPEG"), (".png", "PNG"), (".bmp", "BMP"), (".jpg", "JPEG")][i % 4]
        h, w = (int(v) for v in rng.integers(20, 90, 2))
        p = root / "ab"[i % 2] / f"{i:02d}{ext}"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(encode(photo_like(rng, h, w), fmt))
    return root


@pytest.fixture(scope="module")
def dirty_set(tmp_path_factory, small_set):
    """small_set plus 5 bad files (empty, truncated, garbage, a FIFO, a dangling link)."""
    root = tmp_path_factory.mktemp("dirty")
    for p in small_set.rglob("*.*"):
        q = root / p.relative_to(small_set)
        q.parent.mkdir(exist_ok=True)
        os.link(p, q)
    jpg = next(small_set.rglob("*.jpg")).read_bytes()
    (root / "a" / "05x_empty.png").write_bytes(b"")
    (root / "a" / "17x_cut.jpg").write_bytes(jpg[: len(jpg) // 2])
    (root / "b" / "02x_text.png").write_bytes(b"not an image at all")
    os.mkfifo(root / "b" / "21x_fifo.jpg")
    os.symlink("nowhere.png", root / "b" / "30x_dangling.png")
    return root


@pytest.fixture(scope="module")
def slow_set(tmp_path_factory):
    """400 names for one 1600x1600 JPEG (hard links): ~20 ms of decoding per file."""
    root = tmp_path_factory.mktemp("slow")
    (root / "c").mkdir()
    src = root / "c" / "000.jpg"
    src.write_bytes(encode(photo_like(np.random.default_rng(1), 1600, 1600), "JPEG", quality=90))
    for i in range(1, 400):
        os.link(src, root / "c" / f"{i:03d}.jpg")
    return root


def run_python(code: str, *args, **popen_kw) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen_kw)


# ---------------------------------------------------------------------------------------
# Ctrl-C

ITERATE = """
import sys, time
import pyimgdir
ds = pyimgdir.image_dataset_from_directory(sys.argv[1], image_size=(64, 64), batch_size=8, shuffle=False,
                                           verbose=False, format=sys.argv[2], num_threads=1)
try:
    for i, (x, y) in enumerate(ds):
        if i == 0:
            print("running", flush=True)
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)  # CLOCK_MONOTONIC: comparable across processes
    raise
print("finished the epoch: too fast for the test", flush=True)
"""

VALIDATE = """
import sys, pathlib, time
import pyimgdir
paths = sorted(str(p) for p in pathlib.Path(sys.argv[1]).rglob("*.jpg"))
print("running", flush=True)
try:
    pyimgdir.validate_files(paths * 4, num_threads=1)
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
    raise
print("finished: too fast for the test", flush=True)
"""


def read_line(p: subprocess.Popen, timeout: float):
    """The next line of the child's stdout, or None if none comes within `timeout`."""
    box = []
    reader = threading.Thread(target=lambda: box.append(p.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box else None


def interrupt_after_start(code: str, *args, settle=0.3, wait=10.0):
    """Starts `code`, waits for its "running" line, sends SIGINT. Returns (seconds until the
    KeyboardInterrupt reached the script, seconds until the process was gone or None if it
    was still there after `wait` (then killed), returncode, stderr)."""
    p = run_python(code, *args, preexec_fn=sigint_default)
    try:
        line = read_line(p, 120)
        assert line is not None and line.strip() == "running", (line, p.stderr.read() if p.poll() is not None else "")
        time.sleep(settle)
        t = time.monotonic()
        p.send_signal(signal.SIGINT)
        line = read_line(p, wait)
        assert line is not None and line.startswith("interrupted"), (line, p.poll())
        latency = float(line.split()[1]) - t  # CLOCK_MONOTONIC: the same clock in both processes
        try:
            p.wait(timeout=max(0.1, wait - (time.monotonic() - t)))
            gone = time.monotonic() - t
        except subprocess.TimeoutExpired:
            gone = None
            p.kill()
            p.wait()
        return latency, gone, p.returncode, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


# A hang is forever: the default tests wait long enough for a loaded machine (HANG_S) and
# check only that the interrupt arrived and the process ended. How soon: the timing tests.
HANG_S = 60.0


@pytest.mark.parametrize("code,args", [(ITERATE, ["numpy"]), (VALIDATE, [])], ids=["iterating", "validating"])
def test_ctrl_c_stops_the_process(slow_set, code, args):
    latency, gone, rc, err = interrupt_after_start(code, slow_set, *args, wait=HANG_S)
    assert gone is not None, f"still running {HANG_S:.0f} s after SIGINT"
    assert "KeyboardInterrupt" in err, err
    assert rc != 0


@pytest.mark.timing
@pytest.mark.parametrize("code,args", [(ITERATE, ["numpy"]), (VALIDATE, [])], ids=["iterating", "validating"])
def test_ctrl_c_is_prompt(slow_set, code, args):
    """The workers finish the image they are on (~20 ms each here) and stop."""
    latency, gone, rc, err = interrupt_after_start(code, slow_set, *args, wait=HANG_S)
    assert gone is not None and "KeyboardInterrupt" in err, err
    print(f"\nKeyboardInterrupt {latency:.3f} s after SIGINT, process gone after {gone:.2f} s")
    assert latency < 2.0 and gone < 4.0, (latency, gone)


# tf.data runs the generator (our epoch) on its own threads. An iterator still alive when the
# interpreter finalizes (held by a global, or by the traceback of the KeyboardInterrupt) would
# be destroyed after CPython has stopped letting other threads back in, and a prefetch thread
# inside the generator would never return. pyimgdir closes live core iterators at exit (so
# their generators leave) and drops the kept traceback; a hang here is a failure.


@pytest.mark.tf
def test_ctrl_c_stops_the_process_through_tf_data(tf, slow_set):
    """Also an interpreter exit (by the exception) with a live tf.data iterator."""
    latency, gone, rc, err = interrupt_after_start(ITERATE, slow_set, "tf", settle=0.5, wait=HANG_S)
    assert gone is not None, "the process hung at exit with a live tf.data iterator"
    assert "KeyboardInterrupt" in err, err[-3000:]


@pytest.mark.tf
@pytest.mark.timing
def test_ctrl_c_is_prompt_through_tf_data(tf, slow_set):
    """TensorFlow's own teardown takes about 2 s at exit (even for a script that only imports it)."""
    latency, gone, rc, err = interrupt_after_start(ITERATE, slow_set, "tf", settle=0.5, wait=HANG_S)
    print(f"\ntf.data: KeyboardInterrupt {latency:.3f} s after SIGINT, process gone after {gone} s")
    assert gone is not None and "KeyboardInterrupt" in err, err[-3000:]
    assert latency < 2.0 and gone < 12.0, (latency, gone)


LIVE_TF_ITERATOR = """
import sys
import pyimgdir
ds = pyimgdir.image_dataset_from_directory(sys.argv[1], image_size=(64, 64), batch_size=8, shuffle=False,
                                           verbose=False, num_threads=1)
it = iter(ds)
next(it)
print("exiting", flush=True)
"""


@pytest.mark.tf
@pytest.mark.parametrize("limit", [pytest.param(HANG_S, id="ends"), pytest.param(12.0, id="prompt", marks=pytest.mark.timing)])
def test_interpreter_exit_with_a_live_tf_iterator(tf, slow_set, limit):
    """Ends (default run: no hang), and promptly (timing run: TensorFlow's teardown ~2 s)."""
    p = run_python(LIVE_TF_ITERATOR, slow_set)
    try:
        assert read_line(p, 120) == "exiting\n", p.stderr.read() if p.poll() is not None else ""
        t = time.monotonic()
        try:
            p.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the process was still there {limit:.0f} s after its last statement, with a live tf.data iterator")
        print(f"\nexit with a live tf.data iterator: {time.monotonic() - t:.2f} s")
        assert p.returncode == 0, p.stderr.read()[-3000:]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


# ---------------------------------------------------------------------------------------
# Abandoned iterators, interpreter exit, concurrent iterators


def abandon_epochs(ds, n):
    for _ in range(n):
        it = iter(ds)
        next(it)
        next(it)
        del it


def test_abandoned_iterator_stops_threads_and_frees_buffers(slow_set, small_set):
    gc.collect()
    before = task_ids()
    slow = build(slow_set, image_size=(128, 128), batch_size=4, num_threads=2)
    it = iter(slow)
    kept = next(it)[0]  # a batch the caller keeps: must survive the abandoned iterator
    snapshot = np.array(kept)
    started = task_ids() - before
    assert len(started) >= 2, started  # the workers are running ahead
    del it
    gc.collect()
    assert wait_for(lambda: not started & task_ids(), HANG_S), started & task_ids()
    np.testing.assert_array_equal(kept, snapshot)
    # Many abandoned epochs: the threads end every time (their buffers go with them; how
    # flat the memory stays is test_abandoned_epochs_keep_memory_flat's, a timing test).
    ds = build(small_set, image_size=(128, 128), batch_size=16, num_threads=2, prefetch=4)
    before = task_ids()
    abandon_epochs(ds, 25)
    gc.collect()
    started = task_ids() - before
    assert wait_for(lambda: not started & task_ids(), HANG_S), started & task_ids()
    np.testing.assert_array_equal(kept, snapshot)
    del ds, slow, kept
    gc.collect()


@pytest.mark.timing
@pytest.mark.skipif(SANITIZED, reason="ASan quarantines freed memory: RSS says nothing there")
def test_abandoned_epochs_keep_memory_flat(small_set):
    ds = build(small_set, image_size=(128, 128), batch_size=16, num_threads=2, prefetch=4)
    abandon_epochs(ds, 3)  # warm-up: the pool's buffers, the allocator's arenas
    gc.collect()
    before = rss_mib()
    abandon_epochs(ds, 25)
    gc.collect()
    grown = rss_mib() - before
    # One batch buffer is 3 MiB and each abandoned epoch had ~3 in flight: 25 leaked epochs
    # would be ~200 MiB; the allocator keeps a few MiB of its own.
    assert grown < 32, f"RSS grew by {grown:.1f} MiB over 25 abandoned epochs"


EXIT_WITH_LIVE_ITERATORS = """
import sys, threading
import pyimgdir
mode = sys.argv[2]
ds = pyimgdir.image_dataset_from_directory(sys.argv[1], image_size=(64, 64), batch_size=8, shuffle=True, seed=1,
                                           verbose=False, format="numpy", num_threads=2)
it1, it2 = iter(ds), iter(ds)
batch1, batch2 = next(it1), next(it2)
if mode == "daemon_thread":
    def consume():
        for _ in ds:
            pass
    threading.Thread(target=consume, daemon=True).start()
    threading.Event().wait(0.3)  # the thread is now waiting inside the core
print("exiting", flush=True)
if mode == "sys_exit":
    sys.exit(3)
if mode == "exception":
    raise RuntimeError("boom")
"""

# A daemon thread blocked in the core when the interpreter finalizes: on its way back into
# Python, CPython (< 3.14) ends such a thread with pthread_exit(); the bindings take the GIL
# back outside any noexcept destructor so that forced unwinding does not abort the process.
@pytest.mark.parametrize(
    "mode,rc", [("normal", 0), ("sys_exit", 3), ("exception", 1), ("daemon_thread", 0)]
)
def test_interpreter_exit_with_live_iterators(slow_set, mode, rc):
    p = run_python(EXIT_WITH_LIVE_ITERATORS, slow_set, mode)
    try:
        out, err = p.communicate(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail("the interpreter hung at exit with live iterators")
    assert "exiting" in out, err
    assert p.returncode == rc, err[-3000:]
    if mode != "exception":
        assert err.strip() == "" or "Traceback" not in err, err[-3000:]


@pytest.mark.timing
def test_interpreter_exit_is_prompt(slow_set):
    """From the last statement to the process being gone: the workers finish the image they
    are on (~20 ms here) and stop; nothing waits for the epoch (whose 400 images take ~8 s)."""
    p = run_python(EXIT_WITH_LIVE_ITERATORS, slow_set, "normal")
    try:
        assert p.stdout.readline().strip() == "exiting"
        t = time.monotonic()
        p.wait(timeout=HANG_S)
        assert time.monotonic() - t < 4.0
        assert p.returncode == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def collect(it):
    return [(np.array(x), np.array(y)) for x, y in it]


def test_several_iterators_of_one_dataset(small_set):
    ds = build(small_set, batch_size=6)
    reference = collect(ds)
    assert sum(len(x) for x, _ in reference) == 40
    # Interleaved by hand: three epochs in flight at once, each complete and identical.
    its = [iter(ds) for _ in range(3)]
    got = [[], [], []]
    for _ in range(len(reference)):
        for k in (2, 0, 1):
            x, y = next(its[k])
            got[k].append((np.array(x), np.array(y)))
    for it in its:
        with pytest.raises(StopIteration):
            next(it)
    for g in got:
        for (x, y), (rx, ry) in zip_strict(g, reference):
            np.testing.assert_array_equal(x, rx)
            np.testing.assert_array_equal(y, ry)
    # From several Python threads at once, while another iterator is abandoned.
    results, errors = {}, []

    def epoch(k):
        try:
            results[k] = collect(ds)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=epoch, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    abandoned = iter(ds)
    next(abandoned)
    del abandoned
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 4
    for r in results.values():
        assert len(r) == len(reference)
        for (x, y), (rx, ry) in zip_strict(r, reference):
            np.testing.assert_array_equal(x, rx)
            np.testing.assert_array_equal(y, ry)


def test_several_shuffled_epochs_at_once(small_set):
    ds = build(small_set, batch_size=8, shuffle=True, seed=5)
    a, b = iter(ds), iter(ds)
    xa, xb = [], []
    for (x1, _), (x2, _) in zip_strict(a, b):
        xa.append(np.array(x1))
        xb.append(np.array(x2))
    xa, xb = np.concatenate(xa), np.concatenate(xb)
    assert not np.array_equal(xa, xb)  # two different epochs ...
    key = lambda arr: sorted(arr.reshape(len(arr), -1).tolist())  # noqa: E731
    assert key(xa) == key(xb)  # ... of the same 40 images


# ---------------------------------------------------------------------------------------
# Memory and file descriptors across epochs


def fifty_epochs(small_set, dirty_set):
    """50 epochs (after 5 of warm-up) of a clean, a skipping and an erroring dataset; returns
    (RSS growth in MiB, growth every 10 epochs, threads seen before, fds before)."""
    gc.collect()
    before_tasks, before_fds = task_ids(), fds()
    clean = build(small_set, image_size=(48, 48), batch_size=8)
    skipping = build(dirty_set, image_size=(48, 48), batch_size=8, on_error="skip", shuffle=True, seed=3)
    strict = build(dirty_set, image_size=(48, 48), batch_size=8)

    def one_epoch(e):
        n = sum(len(x) for x, _ in clean)
        assert n == 40
        n = sum(len(x) for x, _ in skipping)
        assert n + len(skipping.skipped_files) == 45 and n == 40
        with pytest.raises(pyimgdir.ImageLoadError):  # an epoch that ends in an error
            for _ in strict:
                pass
        if e % 10 == 0:
            assert len(pyimgdir.validate_files(strict.file_paths)) == 5

    for e in range(5):  # warm-up
        one_epoch(e)
    gc.collect()
    rss0 = rss_mib()
    samples = []
    for e in range(5, 55):
        one_epoch(e)
        if e % 10 == 4:
            gc.collect()
            samples.append(round(rss_mib() - rss0, 2))
    gc.collect()
    grown = rss_mib() - rss0
    print(f"\nRSS after warm-up {rss0:.1f} MiB; growth every 10 epochs (MiB): {samples}; "
          f"after 50 epochs: {grown:+.2f} MiB; fds {before_fds} -> {fds()}")
    return grown, samples, before_tasks, before_fds


def test_no_fd_or_thread_growth_across_50_epochs(small_set, dirty_set):
    _, _, before_tasks, before_fds = fifty_epochs(small_set, dirty_set)
    # No file of the data stays open (a leak would leave one per epoch, or per bad file).
    assert open_files_under(small_set, dirty_set) == []
    # Other descriptors: libraries loaded by earlier tests may open and close their own
    # meanwhile, so a bound rather than equality; a leak per epoch would be 50 or more.
    assert fds() - before_fds < 10, (before_fds, fds())
    started = task_ids() - before_tasks
    assert wait_for(lambda: not started & task_ids(), HANG_S), started & task_ids()


@pytest.mark.timing
@pytest.mark.skipif(SANITIZED, reason="ASan quarantines freed memory: RSS says nothing there")
def test_no_memory_growth_across_50_epochs(small_set, dirty_set):
    grown, samples, _, _ = fifty_epochs(small_set, dirty_set)
    # one 48x48 float32 batch of 8 is 0.2 MiB: a batch leaked per epoch would be 10 MiB
    assert grown < 6.0, f"RSS grew by {grown:.2f} MiB over 50 epochs: {samples}"
