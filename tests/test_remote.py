"""Directories given as URLs (pyimgdir/remote.py): listing, fetching and faults against real
servers on 127.0.0.1 — moto's S3 server through s3fs, gcp-storage-emulator through gcsfs,
fsspec's memory filesystem — compared with the same tree on local disk, array for array.
Fault tests put tests/fault_proxy.py between client and server."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import pyimgdir
from conftest import sigint_default
from pyimgdir.errors import ImageLoadError, InvalidFilesError

HERE = Path(__file__).resolve().parent

LAYOUT = {"a": 4, "a/sub": 3, "a/sub-2": 2, "a/sub/deep": 2, "b": 5, "b/.hdir": 1, "c": 4, ".hidden": 2}


def _bucket() -> str:
    return "t" + uuid.uuid4().hex[:16]


def _is_object_get(method: str, path: str) -> bool:
    return method == "GET" and not path.endswith("?")


@pytest.fixture
def tree(make_tree):
    """A local tree with nested, hidden and empty folders, mixed formats and a stray file."""
    root = make_tree(LAYOUT, ext=[".jpg", ".png", ".JPG"])
    (root / "empty").mkdir()
    (root / "a" / "notes.txt").write_text("not an image")
    make_tree({"": 1}, root=root, ext=".jpg")  # a file directly in the top folder
    return root


@pytest.fixture
def s3_tree(s3_server, tree):
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    s3_server.upload_tree(tree, bucket, "data")
    return tree, f"s3://{bucket}/data"


def _s3(endpoint, **extra):
    return {"storage_options": {"endpoint_url": endpoint}, **extra}


def _epochs(ds, n=1):
    out = []
    for _ in range(n):
        epoch = []
        for batch in ds:
            if isinstance(batch, tuple):
                epoch.append(tuple(np.array(b) for b in batch))
            else:
                epoch.append((np.array(batch),))
        out.append(epoch)
    return out


def _assert_same_epochs(a, b):
    assert len(a) == len(b)
    for ea, eb in zip(a, b):
        assert len(ea) == len(eb)
        for ba, bb in zip(ea, eb):
            assert len(ba) == len(bb)
            for x, y in zip(ba, bb):
                assert x.dtype == y.dtype and x.shape == y.shape
                np.testing.assert_array_equal(x, y)


def _rel(paths, root):
    root = str(root).rstrip("/") + "/"
    assert all(p.startswith(root) for p in paths), paths[:3]
    return [p[len(root):] for p in paths]


KW = dict(image_size=(24, 20), batch_size=4, format="numpy", verbose=False)


# -- without the extra -------------------------------------------------------------------
def test_url_without_either_client_raises_importerror_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec -> ImportError
    monkeypatch.setitem(sys.modules, "opendal", None)  # and the native client
    with pytest.raises(ImportError, match=r"pyimgdir\[cloud\]"):
        pyimgdir.image_dataset_from_directory("s3://bucket/data", **KW)
    with pytest.raises(ImportError, match=r"pyimgdir\[cloud\]"):
        pyimgdir.image_dataset_from_directory("memory://bucket/data", **KW)


def test_storage_options_need_a_url(tmp_path):
    with pytest.raises(ValueError, match="storage_options"):
        pyimgdir.image_dataset_from_directory(tmp_path, storage_options={"anon": True}, **KW)


@pytest.mark.parametrize("name,value", [("requests_in_flight", 0), ("bytes_in_flight", -1),
                                        ("request_timeout", 0), ("retries", -1), ("retries", 1.5)])
def test_remote_option_checks(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        pyimgdir.image_dataset_from_directory(tmp_path, **{name: value}, **KW)


# -- listing: the same classes, files, order and labels as the local copy ----------------------
@pytest.mark.parametrize(
    "labels,class_names,extra",
    [
        ("inferred", None, {}),
        ("inferred", None, dict(shuffle=False)),
        ("inferred", ["c", "a"], {}),
        (None, None, {}),
        ("inferred", None, dict(validation_split=0.3, subset="training", seed=7)),
        ("inferred", None, dict(validation_split=0.3, subset="validation", seed=7)),
    ],
)
def test_s3_listing_and_arrays_match_local(s3_server, s3_tree, labels, class_names, extra):
    local, url = s3_tree
    kw = dict(KW, labels=labels, class_names=class_names, seed=extra.pop("seed", 3), **extra)
    loc = pyimgdir.image_dataset_from_directory(str(local), **kw)
    rem = pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), **kw)
    assert rem.class_names == loc.class_names
    assert _rel(rem.file_paths, url) == _rel(loc.file_paths, local)
    assert all(p.startswith("s3://") for p in rem.file_paths)
    _assert_same_epochs(_epochs(rem, 2), _epochs(loc, 2))


def test_s3_listing_matches_keras_on_the_local_copy(s3_server, s3_tree, keras):
    local, url = s3_tree
    kds = keras.utils.image_dataset_from_directory(str(local), image_size=(24, 20), batch_size=4, seed=5,
                                                   verbose=False)
    rem = pyimgdir.image_dataset_from_directory(url, image_size=(24, 20), batch_size=4, seed=5, verbose=False,
                                                **_s3(s3_server.endpoint))
    assert rem.class_names == kds.class_names == ["a", "b", "c", "empty"]
    assert _rel(rem.file_paths, url) == _rel(kds.file_paths, local)
    # Keras' first epoch (its per-epoch shuffle differs by design; compare unshuffled files)
    kx = np.concatenate([x.numpy() for x, _ in keras.utils.image_dataset_from_directory(
        str(local), image_size=(24, 20), batch_size=4, shuffle=False, verbose=False)])
    rx = np.concatenate([x for x, _ in pyimgdir.image_dataset_from_directory(
        url, image_size=(24, 20), batch_size=4, shuffle=False, format="numpy", verbose=False,
        **_s3(s3_server.endpoint))])
    np.testing.assert_array_equal(rx, kx)


def test_endpoint_from_environment_and_tf_output(s3_server, s3_tree, monkeypatch, tf):
    local, url = s3_tree
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    rem = pyimgdir.image_dataset_from_directory(url + "/", image_size=(24, 20), batch_size=4, seed=1, verbose=False)
    loc = pyimgdir.image_dataset_from_directory(str(local), image_size=(24, 20), batch_size=4, seed=1, verbose=False)
    assert _rel(rem.file_paths, url) == _rel(loc.file_paths, local)
    for (rx, ry), (lx, ly) in zip(rem, loc):
        np.testing.assert_array_equal(rx.numpy(), lx.numpy())
        np.testing.assert_array_equal(ry.numpy(), ly.numpy())


def test_missing_remote_directory(s3_server):
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        pyimgdir.image_dataset_from_directory(f"s3://{bucket}/nothing-here", **_s3(s3_server.endpoint), **KW)


def test_memory_protocol_matches_local(tree):
    fsspec = pytest.importorskip("fsspec")  # part of the cloud and test extras
    mfs = fsspec.filesystem("memory")
    name = "/" + _bucket()
    mfs.put(str(tree), name, recursive=True)
    mfs.makedirs(name + "/empty", exist_ok=True)
    url = "memory://" + name.lstrip("/")
    for labels in ("inferred", None):
        loc = pyimgdir.image_dataset_from_directory(str(tree), labels=labels, seed=2, **KW)
        rem = pyimgdir.image_dataset_from_directory(url, labels=labels, seed=2, **KW)
        assert rem.class_names == loc.class_names
        assert _rel(rem.file_paths, url) == _rel(loc.file_paths, tree)
        _assert_same_epochs(_epochs(rem), _epochs(loc))
    mfs.rm(name, recursive=True)


def test_file_protocol_matches_local(tree):
    url = "file://" + str(tree)
    loc = pyimgdir.image_dataset_from_directory(str(tree), seed=4, **KW)
    rem = pyimgdir.image_dataset_from_directory(url, seed=4, **KW)
    assert rem.class_names == loc.class_names
    assert _rel(rem.file_paths, url) == _rel(loc.file_paths, tree)
    _assert_same_epochs(_epochs(rem), _epochs(loc))


def test_gcs_emulator_matches_local(gcs_server, tree, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    bucket = _bucket()
    gcs_server.upload_tree(tree, bucket, "data")
    url = f"gs://{bucket}/data"
    rem = pyimgdir.image_dataset_from_directory(url, seed=6, **KW)
    loc = pyimgdir.image_dataset_from_directory(str(tree), seed=6, **KW)
    assert rem.class_names == loc.class_names == ["a", "b", "c", "empty"]
    assert _rel(rem.file_paths, url) == _rel(loc.file_paths, tree)
    _assert_same_epochs(_epochs(rem, 2), _epochs(loc, 2))


# -- requests, counted at the server side of a proxy -----------------------------------------
def test_one_get_per_object_and_a_bounded_listing(s3_server, proxied, make_tree):
    # one class of 2,300 objects (three pages of up to 1,000) and nine of 30
    local = make_tree({"k0": 2300, **{f"k{i}": 30 for i in range(1, 10)}}, ext=".png", size_range=(4, 6))
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    s3_server.upload_tree(local, bucket, "d")
    # every listing request waits 0.3 s: class listings that ran one after another would
    # never be in flight together
    proxy = proxied(latency=0.3, slow=lambda m, p: p.endswith("?"))
    ds = pyimgdir.image_dataset_from_directory(f"s3://{bucket}/d", **_s3(proxy.url), seed=2, **KW)
    assert len(ds.file_paths) == 2570
    listing = proxy.requests_for(lambda m, p: m == "GET" and p.endswith("?"))
    # the top level (one page: ten folders), then each folder: 3 pages for k0, 1 for the rest
    assert listing == 1 + 3 + 9, proxy.counts
    # the ten class listings are issued at once; how many meet at the proxy depends on
    # scheduling (a loaded machine may answer one before the last arrives), but listings
    # run one after another would never be two
    assert 2 <= proxy.max_in_flight <= 10, proxy.max_in_flight
    assert proxy.requests_for(lambda m, p: m != "GET") == 0  # no HEAD per object
    loc = pyimgdir.image_dataset_from_directory(str(local), seed=2, **KW)
    assert ds.class_names == loc.class_names and _rel(ds.file_paths, f"s3://{bucket}/d") == _rel(loc.file_paths, local)
    proxy.reset_counts()
    _epochs(ds)
    gets = {p: n for (m, p), n in proxy.counts.items() if _is_object_get(m, p)}
    assert len(gets) == 2570 and set(gets.values()) == {1}


def test_listing_faults_are_retried(s3_server, s3_tree, proxied):
    local, url = s3_tree
    clean = proxied()
    pyimgdir.image_dataset_from_directory(url, **_s3(clean.url), **KW)
    pages = clean.requests_for(lambda m, p: m == "GET" and p.endswith("?"))
    # listing requests answered 503 SlowDown or dropped, at most 5 in all (retries=5 outlasts them)
    proxy = proxied(p_503=0.35, p_drop=0.35, faulty=lambda m, p: p.endswith("?"), max_faults_per_path=5, seed=3)
    rem = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), seed=4, **KW)
    loc = pyimgdir.image_dataset_from_directory(str(local), seed=4, **KW)
    assert rem.class_names == loc.class_names
    assert _rel(rem.file_paths, url) == _rel(loc.file_paths, local)
    faults = sum(proxy.faults.values())
    assert faults >= 2 and set(proxy.faults) == {"503", "drop"}, proxy.faults
    # each failed listing request was asked again, once per failure; a dropped connection
    # may also be re-sent by the HTTP client itself before pyimgdir sees a failure (such a
    # retry reaches the proxy, or not, depending on when the reset lands): bounded both ways
    asked = proxy.requests_for(lambda m, p: m == "GET" and p.endswith("?"))
    assert pages + faults <= asked <= pages + faults + proxy.faults["drop"], (asked, pages, proxy.faults)


def test_a_listing_refused_for_good_names_the_url_and_status(s3_server, s3_tree, proxied):
    local, url = s3_tree
    proxy = proxied(p_403=1.0, faulty=lambda m, p: p.endswith("?"), max_faults_per_path=100)
    with pytest.raises(OSError) as e:
        pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), **KW)
    msg = str(e.value)
    assert url in msg and "listing failed" in msg and "HTTP 403" in msg, msg
    assert proxy.requests_for(lambda m, p: p.endswith("?")) == 1  # permanent: asked once


def test_shards_fetch_only_their_own_objects(s3_server, s3_tree, proxied):
    local, url = s3_tree
    proxy = proxied()
    seen = []
    for index in range(3):
        ds = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), shard=(index, 3), seed=9, **KW)
        epoch = ds._source.epoch_order(0)
        mine = {"/" + ds.file_paths[i].split("://", 1)[1] for i in epoch.tolist()}
        proxy.reset_counts()
        _epochs(ds)
        fetched = {p for (m, p) in proxy.counts if _is_object_get(m, p)}
        assert fetched == mine
        total = proxy.requests_for(_is_object_get)
        assert total == len(epoch)  # one request per sample of this shard (padding included)
        seen.append((fetched, total))
    union = set().union(*(f for f, _ in seen))
    assert len(union) == len(ds.file_paths)
    print("\nshard requests (3 shards):", [t for _, t in seen], "files:", len(ds.file_paths))


def test_cache_makes_later_epochs_request_nothing(s3_server, s3_tree, proxied, tmp_path):
    local, url = s3_tree
    proxy = proxied()
    for cache in ("memory", str(tmp_path / "samples.cache")):
        ds = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), cache=cache, seed=2, **KW)
        loc = pyimgdir.image_dataset_from_directory(str(local), seed=2, **KW)
        proxy.reset_counts()
        first = _epochs(ds)
        n_first = proxy.requests_for(lambda m, p: True)
        assert n_first == len(ds.file_paths)
        proxy.reset_counts()
        later = _epochs(ds, 2)
        assert proxy.requests_for(lambda m, p: True) == 0
        _assert_same_epochs(first + later, _epochs(loc, 3))
        print(f"\ncache={cache!r}: epoch 1 requests {n_first}, epochs 2-3 requests 0")


def test_resume_fetches_only_what_is_left(s3_server, s3_tree, proxied):
    local, url = s3_tree
    proxy = proxied()
    full = _epochs(pyimgdir.image_dataset_from_directory(str(local), seed=11, **KW))[0]
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), seed=11, **KW)
    it = iter(ds)
    next(it), next(it)
    state = ds.state()
    assert (state["epoch"], state["batches"]) == (0, 2)
    it.close()
    proxy.settle()  # the closed iterator's last requests, already on the wire, are counted first
    proxy.reset_counts()
    resumed = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), seed=11, initial_state=state, **KW)
    rest = _epochs(resumed, 1)[0]
    assert proxy.requests_for(_is_object_get) == len(ds.file_paths) - 2 * KW["batch_size"]
    _assert_same_epochs([rest], [full[2:]])


# -- permanent failures: on_error and validate --------------------------------------------------
@pytest.fixture
def s3_broken(s3_server, make_tree):
    """Five good files, one that is not an image, one deleted after listing, one forbidden."""
    local = make_tree({"a": 3, "b": 2}, ext=".jpg")
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    s3_server.upload_tree(local, bucket, "d")
    s3_server.put(bucket, "d/b/garbage.jpg", b"not an image at all")
    s3_server.put(bucket, "d/a/gone.jpg", b"x")
    s3_server.put(bucket, "d/b/secret.jpg", b"x")
    return bucket


def _delete_after_listing(s3_server, bucket):
    s3_server.client.delete_object(Bucket=bucket, Key="d/a/gone.jpg")


def test_permanent_failures_go_through_on_error(s3_server, s3_broken, proxied):
    bucket = s3_broken
    forbidden_path = f"/{bucket}/d/b/secret.jpg"
    proxy403 = proxied(p_403=1.0, faulty=lambda m, p: p == forbidden_path, max_faults_per_path=100)
    url = f"s3://{bucket}/d"
    kw = dict(KW, shuffle=False)
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(proxy403.url), on_error="skip", **kw)
    raising = pyimgdir.image_dataset_from_directory(url, **_s3(proxy403.url), **kw)
    _delete_after_listing(s3_server, bucket)
    got = np.concatenate([x for x, _ in ds])
    assert len(got) == 5
    reasons = {p.rsplit("/", 1)[1]: r for p, r in ds.skipped_files}
    assert set(reasons) == {"gone.jpg", "garbage.jpg", "secret.jpg"}
    assert "HTTP 404" in reasons["gone.jpg"]
    assert "HTTP 403" in reasons["secret.jpg"]
    assert "unknown image file format" in reasons["garbage.jpg"]
    # permanent: asked once each
    assert proxy403.counts[("GET", f"/{bucket}/d/a/gone.jpg")] == 1
    assert proxy403.counts[("GET", forbidden_path)] == 1

    with pytest.raises(ImageLoadError) as err:
        _epochs(raising)
    assert err.value.path == f"{url}/a/gone.jpg" and "HTTP 404" in str(err.value)
    assert url in str(err.value)


def test_validate_lists_remote_failures(s3_server, s3_broken, proxied):
    bucket = s3_broken
    _delete_after_listing(s3_server, bucket)
    url = f"s3://{bucket}/d"
    with pytest.raises(InvalidFilesError) as err:
        pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), validate=True, **KW)
    bad = {f.path.rsplit("/", 1)[1]: f.reason for f in err.value.files}
    assert set(bad) == {"garbage.jpg", "secret.jpg"}  # (gone.jpg was deleted before listing)
    assert all("unknown image file format" in r for r in bad.values())
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), validate=True, on_error="skip", **KW)
    assert len(ds.file_paths) == 5 and len(ds.skipped_files) == 2
    assert sum(len(x) for x, _ in ds) == 5


def test_validate_reports_fetch_failures(s3_server, s3_broken, proxied):
    bucket = s3_broken
    forbidden_path = f"/{bucket}/d/b/secret.jpg"
    proxy = proxied(p_403=1.0, faulty=lambda m, p: p == forbidden_path, max_faults_per_path=100)
    url = f"s3://{bucket}/d"
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), validate=True, on_error="skip", **KW)
    reasons = {p.rsplit("/", 1)[1]: r for p, r in ds.skipped_files}
    assert set(reasons) == {"garbage.jpg", "secret.jpg", "gone.jpg"}  # gone.jpg: b"x" here
    assert "HTTP 403" in reasons["secret.jpg"] and "AccessDenied" in reasons["secret.jpg"]
    assert "unknown image file format" in reasons["garbage.jpg"]
    assert proxy.counts[("GET", forbidden_path)] == 1


# -- transient failures: retried until every epoch equals the local copy ------------------------
def test_faults_are_retried_and_arrays_identical(s3_server, s3_tree, proxied):
    local, url = s3_tree
    proxy = proxied(latency=0.005, p_503=0.12, p_429=0.08, p_drop=0.06, p_cut=0.06, max_faults_per_path=3, seed=5)
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), seed=8, retries=4, **KW)
    loc = pyimgdir.image_dataset_from_directory(str(local), seed=8, **KW)
    proxy.reset_counts()
    epochs = 3
    _assert_same_epochs(_epochs(ds, epochs), _epochs(loc, epochs))
    faults = sum(proxy.faults.values())
    gets = proxy.requests_for(_is_object_get)
    n = len(ds.file_paths)
    assert faults >= 10, proxy.faults  # the test really injected faults
    assert set(proxy.faults) == {"503", "429", "drop", "cut"}
    # every fault was retried once more and nothing else was asked twice; a dropped or cut
    # connection may also be re-sent by the HTTP client itself (whether that request
    # reaches the proxy depends on when the reset lands): bounded both ways
    assert n * epochs + faults <= gets <= n * epochs + faults + proxy.faults["drop"] + proxy.faults["cut"], \
        (gets, n * epochs, dict(proxy.faults))
    # (a connection dropped before any response can also be retried inside the HTTP client)
    # (aiohttp itself re-sends once when a kept-alive connection is reset before any
    # response; the proxy's count above still shows exactly one extra request per fault)
    store = ds._source.store
    assert faults - proxy.faults["drop"] <= store.retried <= faults and store.failed == 0
    print(f"\nfaults: {dict(proxy.faults)} over {n * epochs} object reads; requests {gets}; "
          f"retried by pyimgdir {store.retried}; arrays identical")


def test_request_timeout_counts_as_transient(s3_server, s3_tree, proxied):
    local, url = s3_tree
    proxy = proxied(p_stall=0.15, stall_seconds=8.0, max_faults_per_path=1, seed=3)
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), seed=1, request_timeout=1.5, **KW)
    loc = pyimgdir.image_dataset_from_directory(str(local), seed=1, **KW)
    proxy.reset_counts()
    _assert_same_epochs(_epochs(ds), _epochs(loc))
    store = ds._source.store
    assert proxy.faults["stall"] >= 1
    # every stalled request timed out and was asked again (on a loaded machine a slow
    # answer can time out too: then it is retried the same way)
    assert store.retried >= proxy.faults["stall"] and store.failed == 0
    # Each retry is one more request, but a timed-out attempt may or may not have reached
    # the proxy yet when it was given up (a loaded machine can time a request out before
    # its bytes are read): so between one request per file plus the stalls, and one per
    # file plus every retry.
    gets = proxy.requests_for(_is_object_get)
    assert len(ds.file_paths) + proxy.faults["stall"] <= gets <= len(ds.file_paths) + store.retried, \
        (gets, len(ds.file_paths), proxy.faults["stall"], store.retried)


def test_retries_are_bounded(s3_server, s3_tree, proxied):
    local, url = s3_tree
    ds0 = pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), shuffle=False, **KW)
    victim = "/" + ds0.file_paths[0].split("://", 1)[1]
    proxy = proxied(p_503=1.0, max_faults_per_path=100)
    proxy.faulty = lambda m, p: m == "GET" and p == victim
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), shuffle=False, retries=2,
                                               on_error="skip", **KW)
    proxy.reset_counts()
    got = sum(len(x) for x, _ in ds)
    assert got == len(ds.file_paths) - 1
    (path, reason), = ds.skipped_files
    assert path == ds.file_paths[0]
    assert "HTTP 503" in reason and "SlowDown" in reason and "after 3 attempts" in reason
    assert proxy.counts[("GET", victim)] == 3


# -- stopping: Ctrl-C, dropped iterators ----------------------------------------------------------
def test_dropped_iterator_leaves_no_request_thread_or_socket(s3_server, s3_tree, proxied):
    psutil = pytest.importorskip("psutil")  # in the test extra
    local, url = s3_tree
    proxy = proxied(latency=0.5)
    in_flight = 8
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), requests_in_flight=in_flight, **KW)
    def own_threads():
        # the proxy's per-connection threads live as long as the client keeps an idle
        # keep-alive connection to it: those are bounded below, by the sockets
        return {t.ident for t in threading.enumerate() if "process_request_thread" not in t.name}

    threads_before = own_threads()
    it = iter(ds)
    next(it)  # requests for later objects are in flight now
    time.sleep(0.1)
    it.close()
    del it
    gc.collect()
    # requests already on the wire are read (and counted) by the proxy, however late
    proxy.settle(quiet=0.6)
    count = proxy.requests_for(lambda m, p: True)
    time.sleep(0.6)
    assert proxy.requests_for(lambda m, p: True) == count  # nothing new is asked
    assert own_threads() <= threads_before, [t.name for t in threading.enumerate() if t.ident not in threads_before]

    def sockets_to_proxy():
        return [c for c in psutil.Process().net_connections("tcp")
                if c.raddr and c.raddr.port == proxy.port and c.status == psutil.CONN_ESTABLISHED]

    # The client keeps idle keep-alive connections. fsspec: one pool of at most
    # requests_in_flight (aiohttp's connector limit is strict), the dataset's: dropping the
    # dataset closes them. The native client's pools (idle ones close after their idle
    # timeout): the top level's listing (one request), the listing below it (obstore's store,
    # or opendal's: one chain per top-level folder here, 4) and the fetching's (at most
    # requests_in_flight at once). Its HTTP client hands a finished connection back to the
    # pool on a runtime thread, so on a loaded machine a request may open a new connection
    # before the last one is back (one more than in flight seen): at most 1 + 4 + 9 here,
    # bounded by twice requests_in_flight, and it must not grow once the dataset is gone.
    client = ds._source.store.client
    bound = in_flight if client == "fsspec" else 2 * in_flight
    held = len(sockets_to_proxy())
    assert held <= bound
    del ds
    gc.collect()
    if client == "native":
        assert len(sockets_to_proxy()) <= held
        return
    deadline = time.monotonic() + 3
    while sockets_to_proxy() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sockets_to_proxy() == []


def _interrupt_iteration(s3_server, url, tmp_path):
    """Starts iterating over `url` in a child process with every object request held 30 s
    at a proxy, sends SIGINT, and returns (seconds from the signal to the child's
    KeyboardInterrupt, the child's stdout, stderr, exit status)."""
    script = tmp_path / "interrupt.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(HERE)!r})
        from fault_proxy import FaultProxy
        import pyimgdir
        proxy = FaultProxy({s3_server.port}, latency=30.0, slow=lambda m, p: not p.endswith("?")).start()
        ds2 = pyimgdir.image_dataset_from_directory(
            {url!r}, storage_options={{"endpoint_url": proxy.url}}, image_size=(8, 8), batch_size=4,
            format="numpy", verbose=False, requests_in_flight=16)
        try:
            print("iterating", flush=True)
            for batch in ds2:
                print("unexpected batch", flush=True)
        except KeyboardInterrupt:
            print(f"interrupted {{time.time():.6f}}", flush=True)
        print(f"in flight at the proxy: {{proxy.open_connections}}", flush=True)
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=sigint_default)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "iterating", line + proc.stderr.read()
        time.sleep(1.5)  # requests are now waiting at the proxy
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    interrupted = [float(s.split()[1]) for s in out.splitlines() if s.startswith("interrupted")]
    assert interrupted, out + err
    return interrupted[0] - sent, out, err, proc.returncode


def test_ctrl_c_interrupts_with_requests_in_flight(s3_server, s3_tree, tmp_path):
    _, out, err, returncode = _interrupt_iteration(s3_server, s3_tree[1], tmp_path)
    assert returncode == 0, err


@pytest.mark.timing
def test_ctrl_c_returns_within_a_second_with_requests_in_flight(s3_server, s3_tree, tmp_path):
    seconds, out, err, returncode = _interrupt_iteration(s3_server, s3_tree[1], tmp_path)
    assert seconds < 1.0, (seconds, out, err)
    assert returncode == 0, err


# -- pyimgdir scan ----------------------------------------------------------------------------
def test_scan_reports_a_url_like_its_local_copy(s3_server, s3_tree, monkeypatch):
    from pyimgdir.api import load_spec
    from pyimgdir.cli.scan import scan_directory

    local, url = s3_tree
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    spec = load_spec()
    s3_server.put(url.split("/")[2], "data/b/broken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (local / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    for check in (False, True):
        rem = scan_directory(url, spec, check=check, progress=False)
        loc = scan_directory(str(local), spec, check=check, progress=False)
        for key in ("files", "bytes", "classes", "formats", "color", "image_size", "file_size", "ignored"):
            assert rem[key] == loc[key], key
        assert [b["path"][len(url):] for b in rem["bad_files"]] == [b["path"][len(str(local)):] for b in loc["bad_files"]]
        assert [b["reason"] for b in rem["bad_files"]] == [b["reason"] for b in loc["bad_files"]]
        assert len(rem["bad_files"]) == (1 if check else 0)  # the header alone looks fine


def test_scan_command_line_on_a_url(s3_server, s3_tree):
    local, url = s3_tree
    env = dict(os.environ, AWS_ENDPOINT_URL=s3_server.endpoint,
               PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-m", "pyimgdir", "scan", "--check", "--json", url],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    import json

    report = json.loads(out.stdout)
    assert report["files"] == 21 and report["directory"] == url and report["bad_files"] == []


def test_file_cache_notices_a_changed_object(s3_server, s3_tree, proxied, tmp_path, rng):
    from conftest import encode, photo_like

    local, url = s3_tree
    bucket = url.split("/")[2]
    proxy = proxied()
    kw = dict(KW, shuffle=False, cache=str(tmp_path / "c.cache"))
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), **kw)
    _epochs(ds)
    changed = ds.file_paths[3]
    new = encode(photo_like(rng, 30, 33), "PNG" if changed.lower().endswith(".png") else "JPEG")
    s3_server.put(bucket, changed.split("/", 3)[3], new)
    (local / changed[len(url) + 1:]).write_bytes(new)
    proxy.reset_counts()
    again = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), **kw)
    assert proxy.requests_for(_is_object_get) == 0  # listing only
    got = _epochs(again)
    # its ETag changed, so its entry is stale: that epoch is read again (as for local files,
    # a cache serves an epoch only when it holds every sample of it), with the new pixels
    assert proxy.requests_for(_is_object_get) == len(ds.file_paths)
    _assert_same_epochs(got, _epochs(pyimgdir.image_dataset_from_directory(str(local), **dict(kw, cache=None))))
    proxy.reset_counts()
    _assert_same_epochs(_epochs(again), got)
    assert proxy.requests_for(lambda m, p: True) == 0


def test_requests_in_flight_and_the_bytes_cap(s3_server, proxied, make_tree):
    local = make_tree({"a": 40, "b": 40}, ext=".png", size_range=(60, 61))  # ~equal sizes
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    s3_server.upload_tree(local, bucket, "d")
    sizes = [p.stat().st_size for p in local.rglob("*.png")]
    proxy = proxied(latency=0.15, slow=lambda m, p: not p.endswith("?"))
    url = f"s3://{bucket}/d"
    runs = {}
    for name, extra in {"default": {}, "16 requests": dict(requests_in_flight=16),
                        "cap of 3 objects": dict(bytes_in_flight=3 * max(sizes))}.items():
        ds = pyimgdir.image_dataset_from_directory(url, **_s3(proxy.url), prefetch=1, **KW, **extra)
        proxy.reset_counts()
        _epochs(ds)
        runs[name] = proxy.max_in_flight
    # the decode window alone (prefetch=1: 4 images) would allow 4; fetching runs far ahead
    assert runs["default"] > 16, runs
    # at most 16 at once; how many meet at the proxy depends on scheduling
    assert 2 <= runs["16 requests"] <= 16, runs
    assert 1 <= runs["cap of 3 objects"] <= 3, runs
    print("\nmost requests in flight at once:", runs)


def test_training_crops_and_flips_over_a_url(s3_server, s3_tree):
    local, url = s3_tree
    kw = dict(KW, seed=12, random_resized_crop=True, random_flip="horizontal")
    rem = pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), **kw)
    loc = pyimgdir.image_dataset_from_directory(str(local), **kw)
    _assert_same_epochs(_epochs(rem, 2), _epochs(loc, 2))
    rb, lb = rem.crop_boxes(1), loc.crop_boxes(1)
    assert rb.keys() == lb.keys()
    for k in lb:
        np.testing.assert_array_equal(rb[k], lb[k])
