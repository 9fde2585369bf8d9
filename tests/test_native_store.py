"""The native client for s3:// and gs:// (pyimgdir/sources/native_store.py, opendal) against
real servers on 127.0.0.1 (moto's S3 server, gcp-storage-emulator): which client serves which
URL, settings from the environment and storage_options, the listing's shape and request
counts, keys the local copy cannot have, pickled stores in Grain and DataLoader workers, and
the fsspec path as the peer that must give the same arrays."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
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

pytest.importorskip("opendal")  # in the cloud and test extras

from pyimgdir.sources import native_store  # noqa: E402
from pyimgdir.options.spec import RemoteOptions  # noqa: E402
from pyimgdir.sources.remote import FetchError, RemoteStore, classify  # noqa: E402
from conftest import sigint_default  # noqa: E402

HERE = Path(__file__).resolve().parent
KW = dict(image_size=(24, 20), batch_size=4, format="numpy", verbose=False)
# the cloud and test extras install obstore on Python 3.11 and later (its wheels need 3.11)
OBSTORE = "obstore" if sys.version_info >= (3, 11) else "opendal"


def _bucket() -> str:
    return "n" + uuid.uuid4().hex[:16]


def _s3(endpoint, **extra):
    return {"storage_options": {"endpoint_url": endpoint}, **extra}


def _arrays(ds):
    out = [tuple(np.array(b) for b in (batch if isinstance(batch, tuple) else (batch,))) for batch in ds]
    return out


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):  # lengths checked above
        assert len(x) == len(y)
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)


@pytest.fixture
def tree(make_tree):
    return make_tree({"a": 3, "a/sub": 2, "b": 4, "c": 2}, ext=[".jpg", ".png"])


@pytest.fixture
def s3_tree(s3_server, tree):
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    s3_server.upload_tree(tree, bucket, "data")
    return tree, f"s3://{bucket}/data"


# -- which client ---------------------------------------------------------------------------------
def test_s3_and_gs_go_native_other_protocols_fsspec(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert RemoteStore("s3://bucket/data").client == "native"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    assert RemoteStore("gs://bucket/data").client == "native"
    assert RemoteStore("memory://x/data").client == "fsspec"
    assert RemoteStore("file://" + str(tmp_path)).client == "fsspec"
    monkeypatch.setenv(native_store.ENV_SWITCH, "fsspec")
    store = RemoteStore("s3://bucket/data")
    assert store.client == "fsspec" and "PYIMGDIR_REMOTE_CLIENT" in store.fallback_reason


def test_unknown_storage_option_falls_back_to_fsspec(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    store = RemoteStore("s3://bucket/data", RemoteOptions(storage_options={"s3_additional_kwargs": {"X": 1}}))
    assert store.client == "fsspec" and "s3_additional_kwargs" in store.fallback_reason


def test_without_opendal_s3_goes_through_fsspec(monkeypatch, s3_server, s3_tree):
    local, url = s3_tree
    monkeypatch.setitem(sys.modules, "opendal", None)
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), seed=1, **KW)
    assert ds._source.store.client == "fsspec" and "opendal" in ds._source.store.fallback_reason
    _assert_same(_arrays(ds), _arrays(pyimgdir.image_dataset_from_directory(str(local), seed=1, **KW)))


# -- settings ---------------------------------------------------------------------------------------
def test_s3_settings_from_environment_profiles_and_options(monkeypatch, tmp_path):
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    (tmp_path / "config").write_text("[profile p1]\nregion = eu-west-3\nendpoint_url = http://127.0.0.1:7\n"
                                     "[default]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    assert native_store.s3_config("b", {"endpoint_url": "http://h:1"}) == {
        "endpoint": "http://h:1", "region": "ap-south-1", "bucket": "b"}
    monkeypatch.setenv("AWS_PROFILE", "p1")
    assert native_store.s3_config("b", {}) == {"endpoint": "http://127.0.0.1:7", "region": "eu-west-3", "bucket": "b"}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://e:2")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert native_store.s3_config("b", {}) == {"endpoint": "http://e:2", "region": "us-west-2", "bucket": "b"}
    cfg = native_store.s3_config("b", {"anon": True, "key": "K", "secret": "S", "token": "T", "profile": "p1",
                                       "client_kwargs": {"region_name": "r1"}, "requester_pays": True,
                                       "config_kwargs": {"s3": {"addressing_style": "virtual"},
                                                         "retries": {"max_attempts": 2}}})
    assert cfg == {"skip_signature": "true", "access_key_id": "K", "secret_access_key": "S", "session_token": "T",
                   "profile": "p1", "region": "r1", "enable_request_payer": "true",
                   "enable_virtual_host_style": "true", "endpoint": "http://e:2", "bucket": "b"}
    with pytest.raises(native_store.NotNative, match="session"):
        native_store.s3_config("b", {"session": object()})


def test_gcs_settings(monkeypatch, tmp_path):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    key = tmp_path / "key.json"
    key.write_text("{}")
    assert native_store.gcs_config("b", {"token": str(key)}) == {"credential_path": str(key), "bucket": "b"}
    assert native_store.gcs_config("b", {"token": "anon", "project": "p"}) == {"skip_signature": "true", "bucket": "b"}
    assert native_store.gcs_config("b", {"token": {"type": "x"}})["credential"]
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:5")
    assert native_store.gcs_config("b", {}) == {"endpoint": "http://127.0.0.1:5", "skip_signature": "true",
                                                "bucket": "b"}


def test_credentials_from_a_profile_and_anonymous_reads(s3_server, s3_tree, monkeypatch, tmp_path):
    local, url = s3_tree
    want = _arrays(pyimgdir.image_dataset_from_directory(str(local), seed=2, **KW))
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    (tmp_path / "credentials").write_text("[reader]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    (tmp_path / "config").write_text(f"[profile reader]\nregion = us-east-1\nendpoint_url = {s3_server.endpoint}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    ds = pyimgdir.image_dataset_from_directory(url, storage_options={"profile": "reader"}, seed=2, **KW)
    assert ds._source.store.client == "native"
    _assert_same(_arrays(ds), want)
    # unsigned requests: refused on a private bucket (403, naming the URL), read once public
    anon = {"anon": True, "endpoint_url": s3_server.endpoint}
    with pytest.raises(pyimgdir.errors.ImageLoadError, match="HTTP 403"):
        _arrays(pyimgdir.image_dataset_from_directory(url, storage_options=anon, seed=2, **KW))
    bucket = url.split("/")[2]
    s3_server.client.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                               "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    ds = pyimgdir.image_dataset_from_directory(url, storage_options=anon, seed=2, **KW)
    _assert_same(_arrays(ds), want)


# -- errors ---------------------------------------------------------------------------------------
def test_native_errors_name_status_and_code(s3_server, proxied):
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    s3_server.put(bucket, "k/x.jpg", b"x")
    for kind, status, transient, code in (("503", 503, True, "SlowDown"), ("403", 403, False, "AccessDenied"),
                                          ("429", 429, True, "TooManyRequests")):
        proxy = proxied(**{f"p_{kind}": 1.0}, max_faults_per_path=100)
        client = native_store.NativeClient("s3", bucket, {"endpoint_url": proxy.url}, 5.0)
        with pytest.raises(Exception) as e:
            client.read("k/x.jpg")
        t, s, detail = classify(e.value)
        assert (t, s) == (transient, status) and code in detail and "Backtrace" not in detail, detail
    client = native_store.NativeClient("s3", bucket, {"endpoint_url": s3_server.endpoint}, 5.0)
    with pytest.raises(Exception) as e:
        client.read("k/missing.jpg")
    assert classify(e.value)[:2] == (False, 404)
    proxy = proxied(p_drop=1.0, max_faults_per_path=100)
    client = native_store.NativeClient("s3", bucket, {"endpoint_url": proxy.url}, 5.0)
    with pytest.raises(Exception) as e:
        client.read("k/x.jpg")
    assert classify(e.value)[0] is True  # a reset connection is worth another try


def test_obstore_listing_errors_name_status_and_code(s3_server, proxied):
    if OBSTORE == "opendal":
        assert native_store.NativeClient("s3", "b", {}, 5.0).lister == "opendal"
        return
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    s3_server.put(bucket, "k/x.jpg", b"x")
    cases = (("503", 503, True, "SlowDown"), ("403", 403, False, "AccessDenied"),
             ("429", 429, True, "TooManyRequests"), ("drop", None, True, ""), ("cut", None, True, ""))
    for kind, status, transient, code in cases:
        proxy = proxied(**{f"p_{kind}": 1.0}, max_faults_per_path=100, faulty=lambda m, p: True)
        client = native_store.NativeClient("s3", bucket, {"endpoint_url": proxy.url}, 5.0)
        assert client.choose_lister() == "obstore"

        async def pages():
            return [p async for p in client.list_pages("k/", None)]

        with pytest.raises(Exception) as e:
            asyncio.run_coroutine_threadsafe(pages(), native_store.event_loop()).result(30)
        assert type(e.value).__module__.startswith("obstore"), e.value
        t, s, detail = classify(e.value)
        assert (t, s) == (transient, status) and code in detail and "Debug source" not in detail, detail
        assert proxy.requests_for(lambda m, p: True) == 1  # obstore's own retries are off


def test_timeout_is_transient_and_names_the_url(s3_server, proxied):
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    s3_server.put(bucket, "k/x.jpg", b"x")
    proxy = proxied(p_stall=1.0, stall_seconds=3.0, max_faults_per_path=100)
    store = RemoteStore(f"s3://{bucket}/k", RemoteOptions(
        storage_options={"endpoint_url": proxy.url}, request_timeout=0.5, retries=1))
    got = store.fetch_sync(f"s3://{bucket}/k/x.jpg")
    assert isinstance(got, FetchError) and got.transient and got.attempts == 2
    assert f"s3://{bucket}/k/x.jpg" in str(got) and "no response within 0.5 s" in str(got)


# -- listing ----------------------------------------------------------------------------------------
def _populate(s3_server, bucket, folders, per):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    s3_server.make_bucket(bucket)
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    for i in range(folders):
        for j in range(per):
            backend.put_object(bucket, f"d/c{i:05d}/img_{j}.jpg", b"\xff\xd8")


def test_many_small_folders_are_listed_flat(s3_server, proxied):
    bucket = _bucket()
    _populate(s3_server, bucket, 3000, 2)
    proxy = proxied()
    ds = pyimgdir.image_dataset_from_directory(f"s3://{bucket}/d", **_s3(proxy.url), labels=None, **KW)
    assert len(ds.file_paths) == 6000
    lists = proxy.requests_for(lambda m, p: m == "GET" and p.endswith("?"))
    # 6 pages of keys and the top level's 3; ranges that split re-read part of a page
    assert lists <= 20, lists
    with_labels = pyimgdir.image_dataset_from_directory(f"s3://{bucket}/d", **_s3(s3_server.endpoint),
                                                        shuffle=False, **KW)
    assert len(with_labels.class_names) == 3000
    assert list(with_labels.file_paths[:3]) == [f"s3://{bucket}/d/c00000/img_0.jpg",
                                                f"s3://{bucket}/d/c00000/img_1.jpg",
                                                f"s3://{bucket}/d/c00001/img_0.jpg"]


def test_who_lists_s3_and_gs(monkeypatch, tmp_path):
    """obstore lists s3:// with the credentials opendal would use (keys given or in the
    environment, anonymous reads, or botocore's chain for profiles and the rest); opendal with
    role_arn, with the switch and for gs://, saying why."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    ep = {"endpoint_url": "http://127.0.0.1:9"}

    def lister(protocol="s3", options=ep):
        c = native_store.NativeClient(protocol, "b", options, 5.0)
        return c.lister, c.lister_reason

    if OBSTORE == "opendal":
        assert lister() == ("opendal", "obstore is not installed")
        return
    assert lister() == ("obstore", None)
    assert lister(options={**ep, "key": "a", "secret": "b", "token": "t"}) == ("obstore", None)
    assert lister(options={**ep, "anon": True}) == ("obstore", None)
    # a profile, or no keys: botocore's chain resolves them when the listing starts
    assert lister(options={**ep, "profile": "p"}) == ("obstore", None)
    who, why = lister(options={**ep, "role_arn": "arn:aws:iam::1:role/r"})
    assert who == "opendal" and "role_arn" in why
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    assert lister() == ("obstore", None)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv(native_store.ENV_SWITCH, "opendal")
    assert lister() == ("opendal", f"{native_store.ENV_SWITCH}=opendal")
    monkeypatch.delenv(native_store.ENV_SWITCH)
    assert lister("gs", {"endpoint_url": "http://127.0.0.1:9"})[0] == "opendal"
    settings = native_store.obstore_s3_settings(native_store.s3_config("b", {**ep, "key": "a", "secret": "b"}))
    assert settings["config"]["endpoint"] == ep["endpoint_url"] and settings["allow_http"]
    assert settings["credential_provider"]() == {"access_key_id": "a", "secret_access_key": "b", "token": None,
                                                 "expires_at": None}


def test_obstore_lists_with_the_aws_chain_and_opendal_where_it_finds_nothing(s3_server, monkeypatch, tmp_path):
    """No keys in the environment: obstore lists with the credentials botocore's chain finds
    (here the shared credentials file's profile), and where it finds none opendal lists."""
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    for k in ("d/a/1.jpg", "d/a/2.jpg", "d/b/1.jpg"):
        s3_server.put(bucket, k, b"12")
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    (tmp_path / "config").write_text("[default]\nregion = us-east-1\n[profile reader]\nregion = us-east-1\n")
    (tmp_path / "credentials").write_text("[reader]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    want = {"a/1.jpg": 2, "a/2.jpg": 2, "b/1.jpg": 2}
    store = RemoteStore(f"s3://{bucket}/d", RemoteOptions(storage_options={
        "endpoint_url": s3_server.endpoint, "profile": "reader"}))
    assert store.list_tree().files == want
    assert (store.native.lister, store.native.lister_reason) == (OBSTORE, None if OBSTORE == "obstore" else
                                                                 "obstore is not installed")
    if OBSTORE == "obstore":
        creds = native_store._aws_chain_provider("reader")()
        assert (creds["access_key_id"], creds["secret_access_key"]) == ("testing", "testing")
    # no profile named, and no [default] credentials: botocore's chain finds nothing, opendal
    # lists, and finds nothing either: the listing fails naming the URL
    store = RemoteStore(f"s3://{bucket}/d", RemoteOptions(storage_options={"endpoint_url": s3_server.endpoint}))
    with pytest.raises(FetchError, match=f"s3://{bucket}/d/: listing failed"):
        store.list_tree()
    assert store.native.lister == "opendal"
    if OBSTORE == "obstore":
        assert store.native.lister_reason == "obstore does not take credentials: botocore's chain found none"


def test_folder_markers_get_their_slash_back_where_the_order_shows_it():
    restore = native_store._restore_markers
    page = ["d/c1-b/z.jpg", "d/c1.jpg", "d/c1", "d/c1/sub", "d/c1/sub/y.jpg", "d/c1/x.jpg"]
    assert restore(page, None) == ["d/c1-b/z.jpg", "d/c1.jpg", "d/c1/", "d/c1/sub", "d/c1/sub/y.jpg", "d/c1/x.jpg"]
    assert restore(["d/c1", "d/c1/x.jpg"], "d/c1.jpg") == ["d/c1/", "d/c1/x.jpg"]  # across pages
    in_order = ["d/c0/a.jpg", "d/c1", "d/c1/x.jpg"]  # "d/c1": nothing shows it is "d/c1/"
    assert restore(in_order, "d/c0/") is in_order


@pytest.mark.parametrize("empty_segment", [False, True])
@pytest.mark.parametrize("in_flight", [2, 64])  # folders listed flat in ranges / one chain a folder
def test_obstore_and_opendal_list_the_same_tree(s3_server, monkeypatch, in_flight, empty_segment):
    """Keys where object_store's model of a path differs from S3's: folder markers (reported
    without their "/"), a range starting at a folder whose start-after key, as object_store sends
    it, comes before its neighbour ("d/c6" before "d/c6-b/"), a top-level object between folders, characters that need escaping, and, in one
    variant, an empty segment (object_store refuses the page holding it: that chain goes on
    through opendal)."""
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    keys = {"d/c1/": b"", "d/c1/x.jpg": b"12", "d/c1/sub/": b"", "d/c1/sub/y.jpg": b"123",
            "d/c1-b/z.jpg": b"1", "d/c1.jpg": b"1234", "d/empty/": b"", "d/c2/w w+\u00fc.jpg": b"123456",
            "d/c3/n.png": b"1234567", "d/c4/m.jpg": b"1", "d/c5/k.jpg": b"12", "d/c5/l.jpg": b"1"}
    if empty_segment:
        keys["d/c2/a//y.jpg"] = b"12345"
    # a full page over four folders makes a flat listing split in half; the new range starts at
    # "c6/" (the ninth of twelve folders), whose start-after key object_store sends as "d/c6",
    # before "c6-b/"
    keys.update({f"d/c0/{i:04d}.jpg": b"1" for i in range(600)})
    keys.update({f"d/c2/{i:04d}.jpg": b"12" for i in range(600)})
    keys.update({"d/c6/a.jpg": b"1", "d/c6-b/a.jpg": b"12", "d/c7/a.jpg": b"123", "d/c8/a.jpg": b"1"})
    for k, v in keys.items():
        s3_server.put(bucket, k, v)
    listings = {}
    for who in ("obstore", "opendal", "fsspec"):
        if who == "obstore":
            monkeypatch.delenv(native_store.ENV_SWITCH, raising=False)
        else:
            monkeypatch.setenv(native_store.ENV_SWITCH, who)
        store = RemoteStore(f"s3://{bucket}/d", RemoteOptions(storage_options={"endpoint_url": s3_server.endpoint},
                                                              requests_in_flight=in_flight))
        assert store.client == ("fsspec" if who == "fsspec" else "native")
        if who != "fsspec":
            assert store.native.lister == (OBSTORE if who == "obstore" else who)
        listings[who] = store.list_tree()
        if who != "fsspec":  # each key listed once, by one chain
            async def give_up(url, exc, attempt):
                raise exc

            job = native_store.list_tree(store.native, "d/", in_flight, give_up, str)
            (listed, _, _), _ = asyncio.run_coroutine_threadsafe(job, native_store.event_loop()).result(60)
            top_markers = {k for k in keys if k.endswith("/") and k.count("/") == 2}  # folders, not objects
            assert len(listed) == len(set(listed)), who
            # (obstore reports the marker "d/c1/sub/" as "d/c1/sub")
            assert {k.rstrip("/") for k in set(listed) - top_markers} == {
                k.rstrip("/") for k in set(keys) - top_markers}, who
    want = {k[2:]: len(v) for k, v in keys.items() if not k.endswith("/") and k[2:]}
    for who, listing in listings.items():
        assert listing.files == want, who
        assert {"c1", "c1/sub", "c1-b", "empty", "c2", "c3", "c4", "c5"} <= listing.dirs, who
    assert listings["obstore"].dirs == listings["opendal"].dirs
    assert listings["obstore"].stamps == listings["opendal"].stamps


def test_a_failing_folder_listing_stops_the_others(s3_server, proxied):
    bucket = _bucket()
    _populate(s3_server, bucket, 6, 2500)  # three pages a folder
    # the top level answers at once; one folder's first page is refused (403) at once; the
    # other folders' pages wait 2 s each, so their later pages would follow if nothing stopped them
    seen = []
    flag = threading.local()

    def faulty(method, path):
        seen.append(path)
        flag.hit = path.endswith("?") and len(seen) == 3
        return flag.hit

    def slow(method, path):
        return path.endswith("?") and len(seen) > 1 and not getattr(flag, "hit", False)

    proxy = proxied(p_403=1.0, max_faults_per_path=100, latency=2.0, faulty=faulty, slow=slow)
    store = RemoteStore(f"s3://{bucket}/d", RemoteOptions(storage_options={"endpoint_url": proxy.url}))
    with pytest.raises(FetchError, match="HTTP 403"):
        store.list_tree()
    time.sleep(3.0)  # past the other first pages' answers
    # the top level and each folder's first page at most (first pages sent before the
    # failure may reach the proxy after it); no folder's second page was asked
    assert proxy.requests_for(lambda m, p: True) <= 1 + 6, proxy.counts


def test_ctrl_c_during_listing_stops_it(s3_server, tmp_path):
    bucket = _bucket()
    _populate(s3_server, bucket, 6, 2500)
    script = tmp_path / "interrupt_listing.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(HERE)!r})
        from fault_proxy import FaultProxy
        import pyimgdir
        proxy = FaultProxy({s3_server.port}, latency=1.0, slow=lambda m, p: p.endswith("?")).start()
        try:
            print("listing", flush=True)
            pyimgdir.image_dataset_from_directory("s3://{bucket}/d", storage_options={{"endpoint_url": proxy.url}},
                                                  verbose=False)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        n = proxy.requests_for(lambda m, p: True)
        time.sleep(2.5)
        print("requests", n, proxy.requests_for(lambda m, p: True), flush=True)
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=sigint_default)
    try:
        assert proc.stdout.readline().strip() == "listing"
        time.sleep(1.6)  # the top level answered; the folders' first pages are waiting
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "interrupted" in out, out + err
    (before, after), = [tuple(int(v) for v in line.split()[1:]) for line in out.splitlines()
                        if line.startswith("requests")]
    assert after == before, out  # nothing asked after Ctrl-C


# -- keys the local copy cannot have -------------------------------------------------------------
def test_keys_with_empty_segments_and_a_url_ending_in_slashes(s3_server, make_tree):
    local = make_tree({"a": 2, "b": 2}, ext=".jpg")
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    s3_server.upload_tree(local, bucket, "d")
    a0 = sorted((local / "a").iterdir())[0].read_bytes()
    s3_server.put(bucket, "d/a//y.jpg", a0)
    s3_server.put(bucket, "d//x.jpg", a0)
    for url in (f"s3://{bucket}/d", f"s3://{bucket}/d//"):
        ds = pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), shuffle=False, **KW)
        assert ds.class_names == ["a", "b"]  # "d//x.jpg" makes no class named ""
        assert f"s3://{bucket}/d/a//y.jpg" in list(ds.file_paths)
        assert all(p.startswith(f"s3://{bucket}/d/") and "/d//" not in p for p in ds.file_paths)
        x = np.concatenate([b for b, _ in ds])
        assert len(x) == 5 and not ds.skipped_files
        y = x[list(ds.file_paths).index(f"s3://{bucket}/d/a//y.jpg")]
        np.testing.assert_array_equal(y, x[0])  # the same bytes as a's first file
    whole = pyimgdir.image_dataset_from_directory(f"s3://{bucket}/d", **_s3(s3_server.endpoint), labels=None, **KW)
    assert f"s3://{bucket}/d//x.jpg" in list(whole.file_paths) and len(whole.file_paths) == 6
    assert sum(len(b) for b in whole) == 6


def test_a_version_query_in_the_url_is_part_of_the_key(s3_server, make_tree, monkeypatch):
    local = make_tree({"a": 2}, ext=".jpg")
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    s3_server.upload_tree(local, bucket, "v?versionId=3")
    url = f"s3://{bucket}/v?versionId=3"
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), **KW)
    assert len(ds.file_paths) == 2 and sum(len(x) for x, _ in ds) == 2
    monkeypatch.setenv(native_store.ENV_SWITCH, "fsspec")
    with pytest.raises(ValueError, match="versionId"):
        pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), **KW)


def test_gcs_emulator_through_the_native_client(gcs_server, tree, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    bucket = _bucket()
    gcs_server.upload_tree(tree, bucket, "data")
    rem = pyimgdir.image_dataset_from_directory(f"gs://{bucket}/data", seed=3, **KW)
    assert rem._source.store.client == "native"
    loc = pyimgdir.image_dataset_from_directory(str(tree), seed=3, **KW)
    assert rem.class_names == loc.class_names
    _assert_same(_arrays(rem), _arrays(loc))


# -- both clients give the same arrays --------------------------------------------------------------
def test_native_and_fsspec_give_the_same_epochs(s3_server, s3_tree, monkeypatch):
    local, url = s3_tree
    native = pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), seed=5, **KW)
    monkeypatch.setenv(native_store.ENV_SWITCH, "fsspec")
    fs = pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), seed=5, **KW)
    assert native._source.store.client == "native" and fs._source.store.client == "fsspec"
    assert list(native.file_paths) == list(fs.file_paths)
    _assert_same(_arrays(native), _arrays(fs))


def test_fetching_stops_when_the_consumer_stops(s3_server, proxied, make_tree, tf):
    local = make_tree({"a": 100, "b": 100}, ext=".png", size_range=(8, 10))
    bucket = _bucket()
    s3_server.make_bucket(bucket)
    s3_server.upload_tree(local, bucket, "d")
    proxy = proxied(latency=0.05, slow=lambda m, p: not p.endswith("?"))
    ds = pyimgdir.image_dataset_from_directory(f"s3://{bucket}/d", **_s3(proxy.url), image_size=(8, 8), batch_size=4,
                                               requests_in_flight=4, verbose=False)  # format="tf"
    it = iter(ds)
    next(it)  # then the consumer stops taking batches, the iterator left as it is
    time.sleep(1.0)
    proxy.settle(quiet=0.5)
    asked = proxy.requests_for(lambda m, p: m == "GET" and not p.endswith("?"))
    time.sleep(1.0)
    # fetching ran at most 4 * requests_in_flight objects ahead of the decoding (which holds
    # tf's prefetched batches and the core's window), then stopped
    assert proxy.requests_for(lambda m, p: m == "GET" and not p.endswith("?")) == asked
    assert asked < 200, asked
    del it


# -- pickled stores: Grain workers, DataLoader workers ------------------------------------------------
def test_store_pickles_with_its_listing_sizes(s3_server, s3_tree):
    local, url = s3_tree
    ds = pyimgdir.image_dataset_from_directory(url, **_s3(s3_server.endpoint), **KW)
    store = pickle.loads(pickle.dumps(ds._source.store))
    assert store.client == "native" and store.sizes == ds._source.store.sizes
    assert store.fetch_sync(ds.file_paths[0]) == (local / ds.file_paths[0][len(url) + 1:]).read_bytes()


def test_grain_mp_prefetch_over_s3(s3_server, s3_tree, monkeypatch):
    pytest.importorskip("grain")
    local, url = s3_tree
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)  # the workers' environment too
    kw = dict(KW, format="grain", shuffle=False)
    rem = pyimgdir.image_dataset_from_directory(url, **kw)
    loc = pyimgdir.image_dataset_from_directory(str(local), **kw)
    import grain
    from absl import flags

    if not flags.FLAGS.is_parsed():  # Grain's worker code reads its absl flags
        flags.FLAGS.mark_as_parsed()
    opts = grain.MultiprocessingOptions(num_workers=2)
    got = [tuple(np.asarray(v) for v in b) for b in rem.mp_prefetch(opts)]
    want = [tuple(np.asarray(v) for v in b) for b in loc.mp_prefetch(opts)]
    assert sum(len(b[0]) for b in got) == len(rem.file_paths)
    _assert_same(got, want)


def test_torch_dataloader_workers_over_s3(s3_server, s3_tree, monkeypatch):
    torch = pytest.importorskip("torch")
    local, url = s3_tree
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    kw = dict(image_size=(24, 20), batch_size=4, shuffle=True, seed=4)
    rem = pyimgdir.TorchDataset(url, **kw)
    loc = pyimgdir.TorchDataset(str(local), **kw)

    def batches(ds):
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
        return sorted((tuple(np.asarray(t).tobytes() for t in b) for b in loader))

    # "fork" workers (the default here) inherit a used native client: they read through
    # fsspec; the arrays are the same either way
    assert batches(rem) == batches(loc)
