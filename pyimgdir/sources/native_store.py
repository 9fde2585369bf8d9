"""The native object-store client for ``s3://`` and ``gs://``: opendal (a Rust library) with
the settings users expect from the AWS and Google tools, read concurrently from threads, and
obstore (Rust too: the ``object_store`` crate) for listing ``s3://`` where it can.

Reads go through opendal's blocking ``Operator`` (one GET per object; the GIL is released
while it waits) on up to ``requests_in_flight`` worker threads that take positions in order
under the bytes cap. Listing runs on a private event loop (async calls can be cancelled; a
blocking lister would keep the GIL while it waits for a page): the top level with a
delimiter through opendal, then each top-level folder's subtree, or, when the top level
holds more folders than requests may be in flight, ranges of folders listed flat (one
paginated chain per range, split while there is room for more chains). Below the top
level, ``s3://`` pages come from obstore as Arrow columns (one Python call a page, where
opendal's async lister makes one a key) when obstore is installed, with the credentials
opendal would use (keys from ``storage_options`` or the environment, anonymous reads, or
what botocore's AWS chain finds); with ``role_arn``, where that chain finds nothing, and
for ``gs://``, opendal lists. ``object_store`` cannot represent keys with empty segments
(``a//b``): a chain that meets one goes on through opendal after the last key it had; it
reports a folder marker ``a/b/`` as ``a/b``, put back where the key order shows it, and
taken by the caller as the folder it is when keys below it exist.

opendal's runtime does not survive ``fork()``: in a process forked after it ran (a PyTorch
``DataLoader`` worker started with "fork"), :func:`unavailable_reason` says so and the
caller uses fsspec instead.

Retries, per-request timeouts and the error classification are the caller's
(:mod:`pyimgdir.sources.remote`); this module only builds the client, issues requests and
schedules them.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import configparser
import json
import os
import threading
import urllib.error
import urllib.request
from typing import Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["NativeClient", "NotNative", "unavailable_reason", "ThreadFetcher", "NATIVE_PROTOCOLS"]

# URL scheme -> opendal service
NATIVE_PROTOCOLS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}
ENV_SWITCH = "PYIMGDIR_REMOTE_CLIENT"  # "fsspec": the native client off; "opendal": no obstore
PAGE = 1000  # objects per listing page on S3 and GCS

_state = {"used_in": None, "forked": False}


def _after_fork_in_child() -> None:
    if _state["used_in"] is not None:
        _state["forked"] = True
    _loop_holder.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class NotNative(Exception):
    """The native client cannot serve this URL with these options (the reason says why)."""


def _opendal():
    import opendal

    return opendal


def _obstore():
    import arro3.core  # noqa: F401 - obstore's Arrow pages need it
    import obstore

    return obstore


def _switch() -> str:
    return os.environ.get(ENV_SWITCH, "").strip().lower()


def unavailable_reason(protocol: str) -> Optional[str]:
    """None when the native client can serve ``protocol://`` URLs in this process, else why not."""
    if _switch() == "fsspec":
        return f"{ENV_SWITCH}=fsspec"
    if protocol not in NATIVE_PROTOCOLS:
        return f"no native client for {protocol}://"
    if _state["forked"]:
        return "this process was forked after the native client ran in its parent"
    try:
        _opendal()
    except ImportError:
        return "opendal is not installed"
    return None


def _truthy(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


# -- settings --------------------------------------------------------------------------------
# storage_options keys the native client understands, by fsspec's (s3fs/gcsfs) names and
# opendal's own; any other key sends the URL to fsspec, which knows them all.
_S3_SAME = {"region", "endpoint", "access_key_id", "secret_access_key", "session_token", "profile",
            "role_arn", "role_session_name", "external_id", "skip_signature", "enable_virtual_host_style",
            "disable_ec2_metadata", "disable_config_load", "enable_request_payer",
            "server_side_encryption_customer_algorithm", "server_side_encryption_customer_key",
            "server_side_encryption_customer_key_md5"}
_S3_RENAMED = {"key": "access_key_id", "aws_access_key_id": "access_key_id", "secret": "secret_access_key",
               "aws_secret_access_key": "secret_access_key", "token": "session_token",
               "aws_session_token": "session_token", "endpoint_url": "endpoint", "region_name": "region",
               "requester_pays": "enable_request_payer"}
# botocore settings that pyimgdir sets itself (retries, timeouts, pool size): no effect here
_S3_CONFIG_IGNORED = {"retries", "connect_timeout", "read_timeout", "max_pool_connections"}
_GCS_SAME = {"endpoint", "credential", "credential_path", "token", "service_account", "scope", "skip_signature",
             "disable_vm_metadata", "disable_config_load"}


def _aws_profile_settings(profile: Optional[str]) -> Dict[str, str]:
    """The profile's section of the shared config file (region, endpoint_url), as botocore reads it."""
    name = profile or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"
    path = os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except (OSError, configparser.Error):
        return {}
    for section in (f"profile {name}", name) if name != "default" else ("default", "profile default"):
        if parser.has_section(section):
            return dict(parser.items(section))
    return {}


def _detect_bucket_region(bucket: str, timeout: float) -> Optional[str]:
    """AWS answers a HEAD on a bucket, even an anonymous one, with the bucket's region."""
    req = urllib.request.Request(f"https://s3.amazonaws.com/{bucket}", method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=min(timeout, 10.0)) as r:
            return r.headers.get("x-amz-bucket-region")
    except urllib.error.HTTPError as e:
        return e.headers.get("x-amz-bucket-region")
    except (OSError, ValueError):
        return None


def s3_config(bucket: str, storage_options: dict, timeout: float = 10.0) -> Dict[str, str]:
    """opendal's S3 settings for ``bucket``: storage_options first, then the environment and
    the shared config files as the AWS tools read them (credentials themselves are loaded by
    opendal: keys in the environment, profiles, web identity, instance metadata)."""
    cfg: Dict[str, object] = {}
    for k, v in (storage_options or {}).items():
        if k in ("skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_concurrency",
                 "default_block_size", "default_fill_cache", "default_cache_type", "version_aware",
                 "cache_regions", "asynchronous", "loop"):
            continue  # fsspec/s3fs caching and concurrency knobs: nothing to do here
        if k == "anon":
            if _truthy(v):
                cfg["skip_signature"] = True
        elif k == "client_kwargs" and isinstance(v, dict):
            for ck, cv in v.items():
                if ck in ("endpoint_url", "region_name", "aws_access_key_id", "aws_secret_access_key",
                          "aws_session_token"):
                    cfg[_S3_RENAMED[ck]] = cv
                else:
                    raise NotNative(f"client_kwargs[{ck!r}]")
        elif k == "config_kwargs" and isinstance(v, dict):
            for ck, cv in v.items():
                if ck == "s3" and isinstance(cv, dict) and set(cv) <= {"addressing_style"}:
                    if cv.get("addressing_style") == "virtual":
                        cfg["enable_virtual_host_style"] = True
                elif ck not in _S3_CONFIG_IGNORED:
                    raise NotNative(f"config_kwargs[{ck!r}]")
        elif k in _S3_RENAMED:
            cfg[_S3_RENAMED[k]] = v
        elif k in _S3_SAME:
            cfg[k] = v
        else:
            raise NotNative(f"storage option {k!r}")
    profile_settings = _aws_profile_settings(cfg.get("profile"))  # type: ignore[arg-type]
    if "endpoint" not in cfg:
        endpoint = (os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
                    or profile_settings.get("endpoint_url"))
        if endpoint:
            cfg["endpoint"] = endpoint
    if "region" not in cfg:
        region = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                  or profile_settings.get("region"))
        if not region and "endpoint" not in cfg:
            region = _detect_bucket_region(bucket, timeout)
        cfg["region"] = region or "us-east-1"
    cfg["bucket"] = bucket
    return {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in cfg.items()}


def obstore_s3_settings(cfg: Dict[str, str]) -> dict:
    """obstore's settings for listing the bucket that opendal's ``cfg`` describes, the same
    way: the same endpoint, region and addressing, and the same credentials: keys given or in
    the environment, anonymous reads, or else (``chain``: the profile, "" for the default)
    what botocore's AWS chain finds when the listing starts. Raises NotNative (the reason)
    for settings obstore cannot follow (``role_arn``, credential sources turned off)."""
    cfg = dict(cfg)
    if cfg.get("disable_ec2_metadata") == "true" or cfg.get("disable_config_load") == "true":
        raise NotNative("settings that turn credential sources off")
    anonymous = cfg.get("skip_signature") == "true"
    chain = None
    if cfg.get("access_key_id") and cfg.get("secret_access_key"):
        keys = (cfg["access_key_id"], cfg["secret_access_key"], cfg.get("session_token"))
    elif anonymous:
        keys = None
    elif "role_arn" in cfg:
        raise NotNative("role_arn")
    elif not cfg.get("profile") and os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        keys = (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
                os.environ.get("AWS_SESSION_TOKEN") or None)
    else:
        # profiles, the shared files, web identity, container and instance credentials: the
        # AWS chain as botocore (the cloud extra has it) resolves it, on first use
        try:
            import botocore.session  # noqa: F401
        except ImportError:
            raise NotNative("credentials other than keys without botocore") from None
        keys, chain = None, cfg.get("profile") or ""
    region = cfg.get("region") or "us-east-1"
    endpoint = cfg.get("endpoint") or f"https://s3.{region}.amazonaws.com"
    config = {
        "region": region,
        "endpoint": endpoint,
        # everything stated, so that no AWS_* variable obstore reads on its own changes it
        "virtual_hosted_style_request": cfg.get("enable_virtual_host_style") == "true",
        "skip_signature": anonymous,
        "request_payer": cfg.get("enable_request_payer") == "true",
    }
    provider = None
    if keys is not None:
        access, secret, token = keys

        def provider():
            return {"access_key_id": access, "secret_access_key": secret, "token": token, "expires_at": None}

    return {"bucket": cfg["bucket"], "config": config, "credential_provider": provider, "chain": chain,
            "allow_http": endpoint.startswith("http://")}


def _aws_chain_provider(profile: str):
    """obstore's credential callback over the credentials botocore's chain finds (the profile
    ``profile``, or the default chain for ""); NotNative when it finds none."""
    from datetime import datetime, timedelta, timezone

    import botocore.credentials
    import botocore.session

    session = botocore.session.Session(profile=profile or None)
    creds = session.get_credentials()
    if creds is None:
        raise NotNative("credentials: botocore's chain found none")
    refreshable = isinstance(creds, botocore.credentials.RefreshableCredentials)

    def provider():
        frozen = creds.get_frozen_credentials()  # refreshed by botocore when due
        return {"access_key_id": frozen.access_key, "secret_access_key": frozen.secret_key,
                "token": frozen.token or None,
                "expires_at": datetime.now(timezone.utc) + timedelta(minutes=5) if refreshable else None}

    return provider


def gcs_config(bucket: str, storage_options: dict) -> Dict[str, str]:
    """opendal's GCS settings: storage_options (gcsfs' names or opendal's), then
    ``STORAGE_EMULATOR_HOST`` (no credentials, as gcsfs does for an emulator); credentials
    otherwise come from ``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's default credentials
    file, or the VM metadata server (opendal loads them)."""
    cfg: Dict[str, object] = {}
    for k, v in (storage_options or {}).items():
        if k in ("skip_instance_cache", "use_listings_cache", "listings_expiry_time", "project", "asynchronous",
                 "loop", "default_block_size", "cache_timeout", "version_aware", "check_connection"):
            continue
        if k == "token":
            if v in (None, "google_default", "cloud"):
                continue
            if v == "anon":
                cfg["skip_signature"] = True
            elif isinstance(v, dict):
                cfg["credential"] = base64.b64encode(json.dumps(v).encode()).decode()
            elif isinstance(v, (str, os.PathLike)) and os.path.isfile(os.fspath(v)):
                cfg["credential_path"] = os.fspath(v)
            else:
                raise NotNative("this kind of token")
        elif k == "endpoint_url":
            cfg["endpoint"] = v
        elif k in _GCS_SAME:
            cfg[k] = v
        else:
            raise NotNative(f"storage option {k!r}")
    if "endpoint" not in cfg:
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            cfg["endpoint"] = emulator if "://" in emulator else "http://" + emulator
            cfg.setdefault("skip_signature", True)
    cfg["bucket"] = bucket
    return {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in cfg.items()}


# -- the private event loop (listing) ----------------------------------------------------------
_loop_holder: Dict[str, object] = {}
_loop_lock = threading.Lock()


def event_loop() -> asyncio.AbstractEventLoop:
    with _loop_lock:
        loop = _loop_holder.get("loop")
        if loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="pyimgdir-native-listing", daemon=True)
            thread.start()
            _loop_holder["loop"] = loop
        return loop  # type: ignore[return-value]


# -- the client --------------------------------------------------------------------------------
class NativeClient:
    """One bucket through opendal: blocking reads (for threads) and async listing."""

    def __init__(self, protocol: str, bucket: str, storage_options: dict, request_timeout: float):
        service = NATIVE_PROTOCOLS[protocol]
        self.service = service
        self.bucket = bucket
        self.config = (s3_config(bucket, storage_options, request_timeout) if service == "s3"
                       else gcs_config(bucket, storage_options))
        self.request_timeout = float(request_timeout)
        self._op = None
        self._aop = None
        self._ostore = None
        self.pid = os.getpid()  # the process whose runtime this client may use
        # who lists below the top level: "obstore" (s3:// where it can) or "opendal"
        self.lister, self.lister_reason = "opendal", None
        if service == "s3":
            if _switch() == "opendal":
                self.lister_reason = f"{ENV_SWITCH}=opendal"
            else:
                try:
                    _obstore()
                    self._obstore_settings = obstore_s3_settings(self.config)
                    self.lister = "obstore"
                except ImportError:
                    self.lister_reason = "obstore is not installed"
                except NotNative as e:
                    self.lister_reason = f"obstore does not take {e}"

    def _layered(self, op):
        opendal = _opendal()
        return op.layer(opendal.layers.TimeoutLayer(timeout=self.request_timeout, io_timeout=self.request_timeout))

    @property
    def op(self):
        if self._op is None:
            self._op = self._layered(_opendal().Operator(self.service, **self.config))
            _state["used_in"] = os.getpid()
        return self._op

    @property
    def aop(self):
        if self._aop is None:
            self._aop = self._layered(_opendal().AsyncOperator(self.service, **self.config))
            _state["used_in"] = os.getpid()
        return self._aop

    @property
    def ostore(self):
        if self._ostore is None:
            from datetime import timedelta

            from obstore.store import S3Store

            st = self._obstore_settings
            provider = st["credential_provider"]
            if st["chain"] is not None:
                provider = _aws_chain_provider(st["chain"])  # NotNative: opendal lists
            timeout = f"{self.request_timeout:g}s"
            self._ostore = S3Store(
                st["bucket"], config=st["config"], credential_provider=provider,
                client_options={"allow_http": st["allow_http"], "timeout": timeout, "connect_timeout": timeout},
                # retries are the caller's (one budget, backoff with jitter, transient errors only)
                retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=self.request_timeout)})
            _state["used_in"] = os.getpid()
        return self._ostore

    def lists_after_a_key(self) -> bool:
        """Whether the store lists from a given key on (``start-after``), which flat
        listings of folder ranges need."""
        try:
            return bool(self.aop.capability().list_with_start_after)
        except Exception:  # noqa: BLE001 - an opendal without capabilities: do without
            return False

    @staticmethod
    def addressable(key: str) -> bool:
        """opendal folds repeated slashes and drops a leading one: such keys are out of its reach."""
        return "//" not in key and not key.startswith("/")

    def read(self, key: str) -> bytes:
        return self.op.read(key)

    def choose_lister(self) -> str:
        """Who lists below the top level, once the credentials are resolved: obstore's store
        is built here (botocore's chain, where it is used, runs now), and a chain that finds
        no credentials leaves the listing to opendal."""
        if self.lister == "obstore" and self._ostore is None:
            try:
                self.ostore  # noqa: B018 - builds the store, resolving the credentials
            except NotNative as e:
                self.lister, self.lister_reason = "opendal", f"obstore does not take {e}"
        return self.lister

    async def list_pages(self, prefix: str, start_after: Optional[str]):
        """Pages ``(keys, sizes, etags)`` of every object under ``prefix`` (recursive, in key
        order) after ``start_after``: obstore's Arrow pages where this client lists through
        obstore, else opendal's entries gathered a page at a time. A key obstore cannot
        represent (an empty segment) hands the rest of the listing to opendal."""
        last = start_after
        if self.lister == "obstore" and "//" not in prefix and "//" not in (start_after or ""):
            obstore = _obstore()
            from obstore.exceptions import InvalidPathError

            stream = obstore.list(self.ostore, prefix, offset=start_after or None, chunk_size=PAGE,
                                  return_arrow=True)
            before = None  # the stream's previous key
            try:
                async for batch in stream:
                    keys = _restore_markers(batch.column("path").to_pylist(), before)
                    if not keys:
                        continue
                    before = keys[-1]
                    if last is not None and keys[0] <= last:
                        # object_store drops a trailing "/" from the offset: skip what is not after it
                        keys = keys[bisect.bisect_right(keys, last):]
                        skip = batch.num_rows - len(keys)
                        if not keys:
                            continue
                        batch = batch.slice(skip)
                    sizes = batch.column("size").to_numpy().tolist()
                    etags = batch.column("e_tag").to_pylist()
                    if None in etags:
                        etags = [e or "" for e in etags]
                    last = keys[-1]
                    yield keys, sizes, etags
                return
            except InvalidPathError:
                pass  # an empty segment: the rest through opendal, after the last key listed
        kwargs = {"recursive": True}
        if last:
            kwargs["start_after"] = last
        keys: List[str] = []
        sizes: List[int] = []
        etags: List[str] = []
        async for e in await self.aop.list(prefix, **kwargs):
            m = e.metadata
            keys.append(e.path)
            sizes.append(m.content_length or 0)
            etags.append(m.etag or "")
            if len(keys) == PAGE:
                yield keys, sizes, etags
                keys, sizes, etags = [], [], []
        if keys:
            yield keys, sizes, etags

    async def list_top(self, prefix: str):
        """(objects as keys, sizes, etags; folder prefixes) directly under ``prefix`` (one
        delimited listing)."""
        keys: List[str] = []
        sizes: List[int] = []
        etags: List[str] = []
        folders: List[str] = []
        async for e in await self.aop.list(prefix):
            path = e.path
            if path.endswith("/"):
                if path != prefix:
                    folders.append(path)
                continue
            m = e.metadata
            keys.append(path)
            sizes.append(m.content_length or 0)
            etags.append(m.etag or "")
        return (keys, sizes, etags), folders

    def pickle_state(self):
        return None


def _restore_markers(keys: List[str], before: Optional[str]) -> List[str]:
    """obstore's keys with the "/" put back on folder markers where their place in the
    listing shows it: keys come in order, so "a/b" after "a/b.jpg" can only be "a/b/"."""
    if not any(a > b for a, b in zip(keys, keys[1:])) and (before is None or not keys or keys[0] >= before):
        return keys
    out = []
    for k in keys:
        if before is not None and k < before < k + "/":
            k += "/"
        out.append(k)
        before = k
    return out


# -- fetching from threads ---------------------------------------------------------------------
class ThreadFetcher:
    """Fetches ``positions`` in order on ``requests`` worker threads: each worker takes the
    next position while the bytes cap allows it (at least one request always runs; the
    worker that waits for the cap polls the consumer's releases, the others wait for it),
    runs ``fetch(url)`` (bytes, or an exception object it returns) and hands the result to
    ``deliver(position, result)``, one delivery at a time. ``deliver`` returning False stops
    everything. ``cancel()`` stops taking positions at once; a request already on the wire
    finishes (bounded by the per-request timeout) without being delivered."""

    def __init__(self, fetch: Callable[[str], object], urls: Sequence[str], sizes: Sequence[int],
                 positions: Sequence[int], requests: int, bytes_cap: int, deliver, poll_released,
                 held: List[int], cond: threading.Condition, on_broken: Optional[Callable] = None):
        self.fetch = fetch
        self.urls = urls
        self.sizes = sizes
        self.positions = list(positions)
        self.requests = max(1, min(int(requests), len(self.positions) or 1))
        self.bytes_cap = bytes_cap
        self.deliver = deliver
        self.poll_released = poll_released
        self.held = held
        self.cond = cond  # guards held[0]
        self.on_broken = on_broken
        self.stopped = threading.Event()
        self.finished = threading.Event()
        self._take_lock = threading.Lock()
        self._next = 0
        self._deliver_lock = threading.Lock()
        self._workers: List[threading.Thread] = []
        self._remaining = len(self.positions)

    def start(self) -> "ThreadFetcher":
        if not self.positions:
            self.finished.set()
            return self
        for i in range(self.requests):
            t = threading.Thread(target=self._worker, name=f"pyimgdir-fetch-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def _take(self) -> Optional[int]:
        """The next position, once the bytes cap admits it; None when done or stopped."""
        with self._take_lock:
            if self._next >= len(self.positions) or self.stopped.is_set():
                return None
            pos = self.positions[self._next]
            need = max(int(self.sizes[pos]), 1)
            while True:
                self.poll_released()
                with self.cond:
                    if self.held[0] <= 0 or self.held[0] + need <= self.bytes_cap:
                        self.held[0] += need
                        break
                if self.stopped.wait(0.002):
                    return None
            self._next += 1
            return pos

    def _worker(self) -> None:
        try:
            while True:
                pos = self._take()
                if pos is None:
                    return
                result = self.fetch(self.urls[pos])
                with self._deliver_lock:
                    if self.stopped.is_set():
                        return
                    need = max(int(self.sizes[pos]), 1)
                    if isinstance(result, (bytes, bytearray, memoryview)) and len(result) > need:
                        with self.cond:
                            self.held[0] += len(result) - need
                    ok = self.deliver(pos, result) is not False
                    self._remaining -= 1
                    if not ok:
                        self.stopped.set()
                    if not ok or self._remaining == 0:
                        self.finished.set()
        except BaseException as e:  # noqa: BLE001 - fetch returns its failures; this is a bug
            self._broken(e)

    def _broken(self, exc: BaseException) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self.on_broken is not None:
            self.on_broken(exc)
        self.finished.set()

    def cancel(self, timeout: float = 1.0) -> None:
        """Stops taking positions; returns at once (a worker waiting on the bytes cap sees it
        within milliseconds; one whose request is on the wire ends after it)."""
        self.stopped.set()
        self.finished.set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self.finished.wait(timeout)


# -- listing -----------------------------------------------------------------------------------

async def list_tree(client: NativeClient, prefix: str, concurrency: int, on_failure, url_of) -> Tuple[tuple, list]:
    """Every object under ``prefix`` (which ends with "/", or is "" for a bucket's root):
    (objects as three lists: keys, sizes, etags; folder prefixes seen at the top level).
    Keys ending with "/" are folder markers.

    One delimited listing of the top level, then: with at most ``concurrency`` folders, each
    folder's subtree listed side by side; with more, the folders cut into contiguous ranges
    listed flat (``start_after`` the range's first folder, stopping at the next range's), a
    range splitting its untouched half off to a new chain after each full page while fewer
    than ``concurrency`` chains run, or, when a full page held no more than two folders,
    handing each of its remaining folders to a chain of its own (big folders: no page read
    past a range's end). So 3,000 folders of 2 objects take a handful of requests and 100
    folders of 1,000 take one request each, up to ``concurrency`` at once.

    ``on_failure(url, exc, attempt)`` is awaited after a failed request: it returns after
    the backoff when the request should be asked again (the listing resumes after the last
    key it received) or raises. Cancelling the returned coroutine cancels every chain."""
    async def attempt_loop(what_url, body):
        attempt = 0
        while True:
            attempt += 1
            try:
                return await body()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the caller classifies
                await on_failure(what_url, e, attempt)

    # (off the loop: botocore's chain may wait on a metadata server; Ctrl-C must not)
    await asyncio.get_running_loop().run_in_executor(None, client.choose_lister)
    state = {"top": None}

    async def top():
        state["top"] = await client.list_top(prefix)

    await attempt_loop(url_of(prefix), top)
    objects, folders = state["top"]
    okeys, osizes, oetags = objects
    folders.sort()
    if not folders:
        return objects, folders

    def add(keys, sizes, etags):
        okeys.extend(keys)
        osizes.extend(sizes)
        oetags.extend(etags)

    plen = len(prefix)
    active = [0]  # chains started and not finished (some may wait for the gate)
    gate = asyncio.Semaphore(concurrency)  # chains listing at once
    tasks: List[asyncio.Task] = []

    async def chain(lo: int, hi_box: List[int], bounded: bool) -> None:
        """Objects of folders[lo:hi_box[0]]; hi_box may shrink when this chain splits."""
        last = None
        cur = lo
        nfolders = len(folders)

        async def run():
            nonlocal last, cur
            if not bounded:  # one folder's subtree: every key under it is one of its objects
                start = folders[lo]
                async for keys, sizes, etags in client.list_pages(start, last):
                    if not keys[0].startswith(start):  # a marker reported without its "/"
                        keys, sizes, etags = keys[1:], sizes[1:], etags[1:]
                    if keys:
                        last = keys[-1]
                        add(keys, sizes, etags)
                return
            async for keys, sizes, etags in client.list_pages(prefix, last if last is not None else folders[lo]):
                hi = hi_box[0]
                n = len(keys)
                page_from = cur
                end = bisect.bisect_left(keys, folders[hi]) if hi < nfolders else n
                if end:
                    last = keys[end - 1]
                    cur = max(cur, bisect.bisect_right(folders, last, cur, hi) - 1)
                    keys, sizes, etags = keys[:end], sizes[:end], etags[:end]
                    # keys below a folder, not top-level objects listed between folders
                    keep = [i for i, k in enumerate(keys) if "/" in k[plen:].rstrip("/")]
                    if len(keep) < end:
                        keys, sizes, etags = ([c[i] for i in keep] for c in (keys, sizes, etags))
                    add(keys, sizes, etags)
                if end < n:
                    return  # reached the next range
                if n < PAGE:
                    continue
                if cur - page_from <= 1 and hi - cur - 1 >= 1:
                    # a full page within two folders: folders this big are listed one chain
                    # each (no page read past a range's end), as many at once as allowed
                    hi_box[0] = cur + 1
                    for i in range(cur + 1, hi):
                        spawn(i, [i + 1], False)
                elif active[0] < concurrency and hi - cur - 1 >= 2:
                    mid = cur + 1 + (hi - cur - 1) // 2
                    hi_box[0] = mid
                    spawn(mid, [hi], True)

        try:
            async with gate:
                await attempt_loop(url_of(folders[lo]), run)
        finally:
            active[0] -= 1

    def spawn(lo, hi_box, bounded):
        active[0] += 1
        tasks.append(asyncio.ensure_future(chain(lo, hi_box, bounded)))

    if len(folders) <= concurrency or not client.lists_after_a_key():
        for i in range(len(folders)):
            spawn(i, [i + 1], False)
    else:
        k = max(1, min(concurrency, len(folders) // PAGE))
        bounds = [len(folders) * j // k for j in range(k + 1)]
        for j in range(k):
            spawn(bounds[j], [bounds[j + 1]], True)
    try:
        done = 0
        while done < len(tasks):
            pending = [t for t in tasks if not t.done()]
            if not pending:
                break
            finished, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for t in finished:
                if t.exception() is not None:
                    raise t.exception()
            done = sum(t.done() for t in tasks)
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    return objects, folders
