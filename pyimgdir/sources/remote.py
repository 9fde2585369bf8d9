"""Remote sources: listing and fetching a directory given as a URL (``gs://``, ``s3://``,
or any fsspec protocol such as ``memory://`` or ``file://``).

Two clients behind one store. ``s3://`` and ``gs://`` go through the native client
(:mod:`.native_store`: opendal, with obstore's Arrow pages for ``s3://`` listings) when it
is installed; every other protocol (``memory://``, ``file://``, ``hf://``, ...) and the
cases the native client cannot serve (not installed, options it does not know, a process
forked after it ran) go through fsspec (s3fs, gcsfs). The semantics are the same on both:
listing is one delimited listing of the top level, then the folders below it listed
concurrently (paginated by the store: a request per thousand objects, not one per file),
turned into Keras' classes, files, order and labels by the same rules as a local walk;
fetching keeps many requests in flight under a cap on the bytes held, with a timeout per
request and bounded retries with exponential backoff and jitter for transient failures only.
Each object's bytes go to the C++ core's decode threads as they are; failures become the
same per-file failures the core reports for unreadable files, so ``on_error`` applies, and
name the URL and the HTTP status.

The ``cloud`` extra installs both clients; credentials and endpoints come from where the
AWS and Google tools look (environment, shared config files and profiles,
``AWS_ENDPOINT_URL``, ``GOOGLE_APPLICATION_CREDENTIALS``, ``STORAGE_EMULATOR_HOST``), plus
``storage_options`` (docs/remote.md has the table).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import queue
import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..options.spec import RemoteOptions
from ..options.urls import is_url
from . import native_store

__all__ = ["is_url", "RemoteOptions", "RemoteStore", "FetchError"]

_timeout = getattr(asyncio, "timeout", None)  # Python 3.11+: no extra task per request
EXTRA_HINT = 'pip install "pyimgdir[cloud]"'

_BACKOFF_BASE = 0.1  # seconds; attempt k waits uniform(0, min(cap, base * 2**k))
_BACKOFF_CAP = 5.0

_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
    "RequestTimeout", "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable",
    "503", "500", "502", "504", "429",
}
_STATUS_TEXT = {403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 429: "Too Many Requests",
                500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                504: "Gateway Timeout"}


def _fsspec():
    try:
        import fsspec
    except ImportError as e:
        raise ImportError(
            f"Reading a directory given as a URL needs fsspec (and s3fs for s3://, gcsfs for "
            f"gs://): {EXTRA_HINT}"
        ) from e
    return fsspec


class FetchError(OSError):
    """One object could not be fetched: the URL, the HTTP status when there was one, and
    how many attempts were made."""

    def __init__(self, url: str, status: Optional[int], detail: str, attempts: int, transient: bool,
                 what: str = "fetch"):
        self.url = url
        self.what = what  # "fetch", or "listing" for a failed listing request
        self.status = status
        self.detail = detail
        self.attempts = attempts
        self.transient = transient
        super().__init__(url, self.reason)

    @property
    def reason(self) -> str:
        """Why, without the URL (messages that carry the path add it)."""
        what = f"HTTP {self.status} {_STATUS_TEXT.get(self.status, '')}".rstrip() if self.status else "request failed"
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{self.what} failed{tries}: {what} ({self.detail})"

    def __str__(self) -> str:
        return f"{self.url}: {self.reason}"


def _exception_chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


_NATIVE_STATUS = re.compile(r"status: (\d{3})")
_NATIVE_CODE = re.compile(r'code: "([^"]*)"')
_NATIVE_MESSAGE = re.compile(r'message: "([^"]*)"')


def _found(rx: "re.Pattern", text: str) -> Optional[str]:
    m = rx.search(text)
    return m.group(1) if m else None


def _settled(transient: bool, status: Optional[int], code: Optional[str]) -> bool:
    """Whether a failed request is worth another try, given the status and the store's code."""
    if status in _TRANSIENT_STATUS or code in _TRANSIENT_CODES:
        transient = True
    if status is not None and 400 <= status < 500 and status not in _TRANSIENT_STATUS:
        transient = False  # a store's throttling code on another 4xx included
    return transient


def _classify_native(exc: BaseException) -> Tuple[bool, Optional[int], str]:
    """The native client's errors: a kind (``NotFound``, ``RateLimited``, ``Unexpected``, ...),
    whether it is temporary, and the response's status and the store's error code, in text."""
    text = str(exc)
    first = text.split("\n", 1)[0].strip()
    found = _found(_NATIVE_STATUS, text)
    status = int(found) if found else None
    code = _found(_NATIVE_CODE, text)
    if status is None:
        status = {"NotFound": 404, "PermissionDenied": 403, "RateLimited": 429}.get(type(exc).__name__)
    transient = _settled("(temporary)" in first or "timeout reached" in text, status, code)
    # the first line, plus the lower-level cause (connection reset, body cut short, ...)
    parts = [f"{type(exc).__name__}: {first}"]
    if "Source:" in text:
        source = text.split("Source:", 1)[1].split("Backtrace:", 1)[0].strip().split("\n", 1)[0]
        parts.append(source.strip())
    elif code:
        m = _NATIVE_MESSAGE.search(text)
        parts = [f"{type(exc).__name__}: {code}" + (f": {m.group(1)}" if m and m.group(1) else "")]
    return transient, status, "; ".join(parts)[:300]


_OBSTORE_STATUS = re.compile(r"status code: (\d{3})")
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def _classify_obstore(exc: BaseException) -> Tuple[bool, Optional[int], str]:
    """obstore's errors: the status and the store's error code are in the text; a request
    that got no answer (reset, cut short, timed out) is worth another try."""
    text = str(exc)
    first = text.split("\n", 1)[0].strip()
    found = _found(_OBSTORE_STATUS, first)
    status = int(found) if found else None
    code = _found(_XML_CODE, text)
    no_answer = (status is None and "HTTP error" in first) or "kind: Timeout" in text
    if status is None:
        status = {"NotFoundError": 404, "PermissionDeniedError": 403, "UnauthenticatedError": 401}.get(
            type(exc).__name__)
    transient = _settled(no_answer, status, code)
    detail = first.split(": <?xml", 1)[0]
    if code:
        m = _XML_MESSAGE.search(text)
        detail += f"; {code}" + (f": {m.group(1)}" if m and m.group(1) else "")
    return transient, status, f"{type(exc).__name__}: {detail}"[:300]


def classify(exc: BaseException) -> Tuple[bool, Optional[int], str]:
    """(transient?, HTTP status or None, short description) for a failed request.

    Transient: HTTP 408/429/5xx and S3's throttling codes (``SlowDown``), timeouts, and
    connection errors (resets, refused, dropped mid-body). Permanent: 404, 403, other
    4xx and anything unrecognised (reported, not retried forever)."""
    if type(exc).__module__.startswith("opendal"):
        return _classify_native(exc)
    if type(exc).__module__.startswith("obstore"):
        return _classify_obstore(exc)

    status: Optional[int] = None
    code: Optional[str] = None
    transient = False
    for e in _exception_chain(exc):
        response = getattr(e, "response", None)  # botocore ClientError
        if isinstance(response, dict):
            status = status or response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = code or response.get("Error", {}).get("Code")
        name = type(e).__name__
        # gcsfs' HttpError carries the status as .code, aiohttp's ClientResponseError as
        # .status (other aiohttp errors have a .code that is not the server's status)
        c = getattr(e, "code", None) if name == "HttpError" else None
        if isinstance(c, int) and 100 <= c < 600:
            status = status or c
        s = getattr(e, "status", None) if name == "ClientResponseError" else None
        if isinstance(s, int) and 100 <= s < 600:
            status = status or s
        if isinstance(e, (TimeoutError, asyncio.TimeoutError, ConnectionError)):
            transient = True
        if name in ("ServerDisconnectedError", "ClientConnectionError", "ClientOSError", "ClientPayloadError",
                    "ServerTimeoutError", "HTTPClientError", "ConnectionClosedError", "EndpointConnectionError",
                    "ReadTimeoutError", "ConnectTimeoutError", "IncompleteRead", "FSTimeoutError",
                    "ResponseStreamingError", "ProxyConnectionError", "ClientConnectorError",
                    "ResponseParserError"):
            transient = True
    if status is None:
        if isinstance(exc, FileNotFoundError):
            status = 404
        elif isinstance(exc, PermissionError):
            status = 403
    transient = _settled(transient, status, code)
    detail = f"{type(exc).__name__}: {exc}".strip().replace("\n", " ")
    if code and code not in detail:
        detail = f"{code}; {detail}"
    return transient, status, detail[:300]


def _merge(defaults: dict, user: dict) -> dict:
    out = dict(defaults)
    for k, v in user.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _make_filesystem(protocol: str, options: RemoteOptions):
    fsspec = _fsspec()
    try:
        cls = fsspec.get_filesystem_class(protocol)
    except ImportError as e:
        raise ImportError(f"Reading {protocol}:// URLs needs {e}: {EXTRA_HINT}") from e
    except ValueError as e:
        raise ValueError(f"Unknown URL protocol {protocol!r} (fsspec knows no such filesystem)") from e
    defaults: dict = {}
    if protocol in ("s3", "s3a"):
        # Retries and timeouts are pyimgdir's (one place, one budget), so botocore and s3fs
        # each try once; one GET per object (s3fs' chunked reads would HEAD each first).
        defaults = {
            "max_concurrency": 1,
            "config_kwargs": {
                "retries": {"total_max_attempts": 1, "mode": "standard"},
                "max_pool_connections": options.requests_in_flight,
                "connect_timeout": options.request_timeout,
                "read_timeout": options.request_timeout,
            },
        }
    elif protocol in ("gs", "gcs") and os.environ.get("STORAGE_EMULATOR_HOST"):
        # gcsfs' default class probes every bucket's type over gRPC, which an emulator does
        # not answer (a 60 s wait per bucket); the standard class speaks plain JSON API.
        import gcsfs.core

        cls = gcsfs.core.GCSFileSystem
    user = dict(options.storage_options or {})
    if protocol in ("s3", "s3a") and not {"session", "profile"} & set(user):
        # Listing spends two thirds of botocore's parse time turning every object's
        # LastModified into a datetime; pyimgdir reads
        # sizes and ETags only, so timestamps stay text in this filesystem's session.
        try:
            import aiobotocore.session

            session = aiobotocore.session.AioSession()
            session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
            defaults["session"] = session
        except (ImportError, AttributeError, KeyError):  # another aiobotocore: keep its defaults
            pass
    kwargs = _merge(defaults, user)
    kwargs.setdefault("skip_instance_cache", True)
    fs = cls(**kwargs)
    if protocol in ("s3", "s3a"):
        fs.retries = 1  # s3fs' own retry loop (a class attribute, not an option): once
    return fs


@dataclass
class Listing:
    """One URL directory's objects: relative names (POSIX), sizes and change stamps."""

    files: Dict[str, int]  # relative name -> size
    stamps: Dict[str, str]  # relative name -> ETag / generation / mtime, for the cache
    dirs: set  # relative directory names (explicit markers and implied parents)


def _base_url(url: str) -> str:
    """The directory's URL without trailing slashes (``s3://b/data//`` is ``s3://b/data``, as
    ``data//`` is ``data`` on disk); file URLs are this plus ``/`` and the relative key."""
    scheme, _, rest = url.partition("://")
    rest = rest.rstrip("/")
    return f"{scheme}://{rest}" if rest else url


def _split_bucket(url: str) -> Tuple[str, str]:
    """(bucket, key prefix without trailing slashes) of an ``s3://`` or ``gs://`` URL."""
    rest = url.partition("://")[2]
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.rstrip("/")


def _wait_interruptibly(fut, cancel) -> object:
    """``fut.result()``, but a KeyboardInterrupt (or any exception) in the waiting thread
    cancels the work behind it before propagating."""
    import concurrent.futures

    try:
        while True:
            try:
                return fut.result(timeout=0.1)
            except concurrent.futures.TimeoutError:
                continue
    except BaseException:
        cancel()
        raise


class _LoopJob:
    """A coroutine running on an event loop, cancellable from any thread."""

    def __init__(self, coro, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.future = asyncio.run_coroutine_threadsafe(coro, loop)

    def cancel(self, timeout: float = 1.0) -> None:
        fut = self.future
        if fut.done():
            return
        self.loop.call_soon_threadsafe(fut.cancel)
        try:
            fut.result(timeout=timeout)
        except BaseException:  # noqa: BLE001 - cancelled on purpose, or it failed
            pass


class RemoteStore:
    """The client behind one URL directory, its listing, and its fetching.

    ``client`` is ``"native"`` (``s3://``/``gs://`` through opendal) or ``"fsspec"``;
    ``fallback_reason`` says why an ``s3://``/``gs://`` URL went to fsspec. A store pickles
    as its URL, options and listed sizes and stamps (a Grain or DataLoader worker rebuilds
    the client in its own process)."""

    def __init__(self, url: str, options: Optional[RemoteOptions] = None):
        self.url = url
        self.options = options or RemoteOptions()
        self.protocol = url.split("://", 1)[0].lower()
        self.base = _base_url(url)
        self.listing: Optional[Listing] = None  # the last listing (index_remote)
        self.sizes: Dict[str, int] = {}  # URL -> size, from the listing
        self.stamps: Dict[str, str] = {}
        # Counters (requests issued, retried, failed for good), for reports and benchmarks.
        self.requests = 0
        self.retried = 0
        self.failed = 0
        self._count_lock = threading.Lock()
        self._setup()

    def _setup(self) -> None:
        self.native: Optional[native_store.NativeClient] = None
        self._fs = None
        self.fallback_reason: Optional[str] = None
        reason = native_store.unavailable_reason(self.protocol)
        if reason is None:
            bucket, self.prefix = _split_bucket(self.base)
            try:
                self.native = native_store.NativeClient(self.protocol, bucket, self.options.storage_options,
                                                        self.options.request_timeout)
            except native_store.NotNative as e:
                reason = f"the native client does not take {e}"
        if self.native is None:
            if self.protocol in native_store.NATIVE_PROTOCOLS:
                self.fallback_reason = reason
            self._check_fsspec_url()
            self.fs  # noqa: B018 - fails now (no fsspec, unknown protocol) rather than at listing

    @property
    def client(self) -> str:
        self._after_fork()
        return "native" if self.native is not None else "fsspec"

    def _after_fork(self) -> None:
        # A forked child (a DataLoader worker started with "fork") inherits this store as it
        # is, but not the native client's runtime: fsspec serves it there.
        native = self.native
        if native is not None and native.pid != os.getpid():
            self.native = None
            self.fallback_reason = "this process was forked after the native client ran in its parent"
            self._check_fsspec_url()

    def __getstate__(self):
        return {"url": self.url, "options": self.options, "sizes": self.sizes, "stamps": self.stamps}

    def __setstate__(self, state):
        self.__init__(state["url"], state["options"])
        self.sizes = state["sizes"]
        self.stamps = state["stamps"]

    def _check_fsspec_url(self) -> None:
        # s3fs reads "?versionId=" in a path as an object version and gcsfs "?generation="
        # (or "#") as a generation: the key would silently be another one.
        rest = self.url.partition("://")[2]
        marker = {"s3": "?versionId=", "s3a": "?versionId=", "gs": "?generation=", "gcs": "?generation="}.get(
            self.protocol)
        if marker and (marker in rest or (self.protocol in ("gs", "gcs") and "#" in rest)):
            raise ValueError(
                f"{self.url!r}: fsspec ({self.protocol}fs) would read {marker!r} in this URL as an object "
                f"version, not as part of the key; pyimgdir's native client (pip install opendal) reads the "
                f"whole URL as a key prefix")

    @property
    def fs(self):
        """The fsspec filesystem (built on first use: the native client needs it only for keys
        it cannot address)."""
        if self._fs is None:
            self._fs = _make_filesystem(self.protocol, self.options)
            self.root = self._fs._strip_protocol(self.base).rstrip("/")
        return self._fs

    def _count(self, requests: int = 0, retried: int = 0, failed: int = 0) -> None:
        with self._count_lock:
            self.requests += requests
            self.retried += retried
            self.failed += failed

    # -- listing ----------------------------------------------------------------------
    def list_tree(self) -> Listing:
        """Every object under the directory. On an object store: one listing of the top level
        (with a delimiter: its objects and its folders), then the folders listed concurrently
        (up to ``requests_in_flight`` chains of pages at a time), retried like a fetch.
        Ctrl-C, or one listing failing for good, cancels every listing still running."""
        self._after_fork()
        if self.native is not None:
            return self._list_native()
        fs = self.fs
        try:
            fs.invalidate_cache(self.root)
        except Exception:  # noqa: BLE001 - a filesystem without a listing cache
            pass
        if getattr(fs, "async_impl", False) and hasattr(fs, "_ls") and hasattr(fs, "_find"):
            job = _LoopJob(self._list_concurrently(), self.loop)
            entries = _wait_interruptibly(job.future, job.cancel)
        else:
            entries = fs.find(self.root, withdirs=True, detail=True)
        files: Dict[str, int] = {}
        stamps: Dict[str, str] = {}
        dirs: set = set()
        prefix = self.root + "/" if self.root else ""
        for name, info in entries.items():
            name = name.rstrip("/") if info.get("type") == "directory" else name
            if not name.startswith(prefix):
                continue
            rel = name[len(prefix):]
            if not rel:
                continue
            if info.get("type") == "directory" or rel.endswith("/"):
                # a directory (or an empty "folder/" marker object)
                d = rel.rstrip("/")
                if d:
                    dirs.add(d)
                continue
            files[rel] = int(info.get("size") or 0)
            stamp = info.get("ETag") or info.get("etag") or info.get("generation") or info.get("mtime") \
                or info.get("LastModified") or info.get("created")
            stamps[rel] = str(stamp)
        return _with_parents(files, stamps, dirs)

    def _list_native(self) -> Listing:
        prefix = self.prefix + "/" if self.prefix else ""
        bucket_url = self.base[: len(self.base) - len(self.prefix)] if self.prefix else self.base + "/"

        async def on_failure(url, exc, attempt):
            await self._after_failure(url, self._as_timeout(exc), attempt, "listing")

        job = _LoopJob(native_store.list_tree(self.native, prefix, self.options.requests_in_flight, on_failure,
                                              lambda key: bucket_url + key), native_store.event_loop())
        (keys, sizes, etags), folders = _wait_interruptibly(job.future, job.cancel)
        dirs: set = set()
        plen = len(prefix)
        for key in folders:
            d = key[plen:].rstrip("/")
            if d:
                dirs.add(d)
        rels = [key[plen:] for key in keys]
        files: Dict[str, int] = dict(zip(rels, sizes))
        stamps: Dict[str, str] = dict(zip(rels, etags))
        for rel in [r for r in rels if r[-1:] == "/" or not r]:
            # an empty "folder/" marker object (or the prefix itself)
            del files[rel], stamps[rel]
            d = rel.rstrip("/")
            if d:
                dirs.add(d)
        self._native_saw_root = bool(keys) or bool(folders)
        listing = _with_parents(files, stamps, dirs)
        if self.native.lister == "obstore":
            # obstore reports a folder marker "a/b/" as "a/b": where keys below it exist, a folder
            for rel in [r for r in files if r in listing.dirs]:
                del files[rel], stamps[rel]
        return listing

    def _as_timeout(self, exc: BaseException) -> BaseException:
        """A native client's timeout (opendal's or obstore's) as a TimeoutError saying how long
        was waited; any other error as it is."""
        module, text = type(exc).__module__, str(exc)
        if (module.startswith("opendal") and "timeout reached" in text) or (
                module.startswith("obstore") and "kind: Timeout" in text):
            return TimeoutError(f"no response within {self.options.request_timeout:g} s")
        return exc

    async def _after_failure(self, url: str, exc: BaseException, attempt: int, what: str) -> None:
        """Returns after the backoff when a failed request is to be asked again; raises
        FetchError naming `url` when it is not (permanent, or out of retries)."""
        transient, status, detail = classify(exc)
        if not transient or attempt > self.options.retries:
            self._count(failed=1)
            raise FetchError(url, status, detail, attempt, transient, what) from exc
        self._count(retried=1)
        await asyncio.sleep(_backoff(attempt))

    async def _list_concurrently(self) -> dict:
        fs = self.fs
        try:
            top = await self._retrying(self.url, lambda: fs._ls(self.root, detail=True), "listing")
        except FetchError as e:
            if e.status == 404:  # no such directory: an empty listing, reported by the caller
                return {}
            raise
        entries = {}
        folders = []
        for info in top:
            entries[info["name"]] = info
            if info.get("type") == "directory":
                folders.append(info["name"].rstrip("/"))
        gate = asyncio.Semaphore(self.options.requests_in_flight)

        async def subtree(path: str) -> dict:
            async with gate:
                return await self._retrying(f"{self.protocol}://{path}/",
                                            lambda: fs._find(path, withdirs=True, detail=True), "listing")

        tasks = [asyncio.ensure_future(subtree(f)) for f in folders]
        try:
            # one subtree failing for good stops the others (no listing left running)
            for found in await asyncio.gather(*tasks):
                entries.update(found)
        finally:
            for t in tasks:
                t.cancel()
        return entries

    async def _retrying(self, url: str, request, what: str = "fetch"):
        """Awaits ``request()`` under the per-attempt timeout, retrying transient failures
        with backoff and jitter up to ``retries`` times; raises FetchError naming `url`."""
        opts = self.options
        attempt = 0
        while True:
            attempt += 1
            self._count(requests=1)
            try:
                if _timeout is not None:
                    async with _timeout(opts.request_timeout):
                        return await request()
                return await asyncio.wait_for(request(), opts.request_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - classified below
                if isinstance(e, (TimeoutError, asyncio.TimeoutError)) and not str(e):
                    e = TimeoutError(f"no response within {opts.request_timeout:g} s")
                await self._after_failure(url, e, attempt, what)

    def exists(self) -> bool:
        if self.native is not None:
            # an empty listing: the bucket's root exists (it answered); a prefix does not
            return not self.prefix or getattr(self, "_native_saw_root", False)
        try:
            return bool(self.fs.exists(self.root)) or bool(self.fs.isdir(self.root))
        except Exception:  # noqa: BLE001
            return False

    def join(self, *parts: str) -> str:
        """The URL of a relative key (kept as listed: empty segments too)."""
        return "/".join((self.base,) + parts)

    # -- fetching ---------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        fs = self.fs
        if getattr(fs, "async_impl", False):
            return fs.loop
        import fsspec.asyn

        return fsspec.asyn.get_loop()

    def path_of(self, url: str) -> str:
        return self.fs._strip_protocol(url)

    def key_of(self, url: str) -> str:
        """The object key of one of this store's URLs (native client)."""
        return url.partition("://")[2].partition("/")[2]

    async def _get_once(self, path: str) -> bytes:
        if getattr(self.fs, "async_impl", False):
            return await self.fs._cat_file(path)
        return await asyncio.get_running_loop().run_in_executor(None, self.fs.cat_file, path)

    async def fetch(self, url: str) -> bytes:
        """The object's bytes, retrying transient failures; raises FetchError (fsspec)."""
        path = self.path_of(url)
        return await self._retrying(url, lambda: self._get_once(path))

    def fetch_sync(self, url: str, stop: Optional[threading.Event] = None):
        """The object's bytes through the native client, or a FetchError (returned, not
        raised), retrying transient failures with backoff; `stop` cuts a backoff short."""
        key = self.key_of(url)
        native = self.native
        if not native.addressable(key):
            get = self._fsspec_get
            key = self.path_of(url)
        else:
            get = native.read
        attempt = 0
        while True:
            attempt += 1
            self._count(requests=1)
            try:
                return get(key)
            except Exception as e:  # noqa: BLE001 - classified below
                e = self._as_timeout(e)
                transient, status, detail = classify(e)
                if not transient or attempt > self.options.retries:
                    self._count(failed=1)
                    return FetchError(url, status, detail, attempt, transient)
                self._count(retried=1)
                if stop is not None:
                    if stop.wait(_backoff(attempt)):
                        return FetchError(url, None, "stopped", attempt, True)
                else:
                    time.sleep(_backoff(attempt))

    def _fsspec_get(self, path: str) -> bytes:
        """Keys the native client cannot address (repeated or leading slashes) go through fsspec."""
        try:
            fs = self.fs
        except ImportError as e:
            raise FileNotFoundError(f"a key with repeated slashes needs fsspec: {e}") from e
        return fs.cat_file(path)

    def start_fetching(self, positions: Sequence[int], urls: Sequence[str], sizes: Sequence[int], deliver,
                       poll_released, held, cond, on_broken=None):
        """Starts fetching `positions` in order (see :func:`schedule_fetches`); returns a handle
        whose ``cancel(timeout)`` stops it (requests not yet sent are never sent)."""
        self._after_fork()
        if self.native is not None:
            fetcher = native_store.ThreadFetcher(
                None, urls, sizes, positions, self.options.requests_in_flight, self.options.bytes_in_flight,
                deliver, poll_released, held, cond, on_broken)
            fetcher.fetch = lambda url: self.fetch_sync(url, fetcher.stopped)
            return fetcher.start()
        job = _LoopJob(schedule_fetches(self, list(positions), urls, sizes, deliver, poll_released, held, cond),
                       self.loop)
        if on_broken is not None:
            def done(fut):
                if not fut.cancelled() and fut.exception() is not None:
                    on_broken(fut.exception())

            job.future.add_done_callback(done)
        return job

    def fetch_blocking(self, urls: Sequence[str]):
        """Yields (index, bytes or FetchError) for `urls` as they complete, with the same
        concurrency and bytes cap as an epoch (the cap counts what the caller has not yet
        taken). Used by validation and ``pyimgdir scan``."""
        results: "queue.Queue" = queue.Queue()
        sizes = [self.sizes.get(u, 0) for u in urls]
        held = [0]
        cond = threading.Condition()
        finished = object()
        n = len(urls)
        got = [0]

        def deliver(i, r):
            results.put((i, r))
            got[0] += 1
            if got[0] == n:
                results.put((None, finished))

        def broken(exc):
            results.put((None, exc))

        if n == 0:
            return
        job = self.start_fetching(range(n), urls, sizes, deliver, lambda: None, held, cond, broken)
        try:
            while True:
                try:
                    i, result = results.get(timeout=0.1)
                except queue.Empty:
                    continue
                if result is finished:
                    break
                if i is None:
                    raise result
                taken = max(int(sizes[i]), 1)
                if isinstance(result, (bytes, bytearray)):
                    taken = max(taken, len(result))
                yield i, result
                with cond:
                    held[0] -= taken
        finally:
            job.cancel(2.0)


def _backoff(attempt: int) -> float:
    return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1)))


def _with_parents(files: Dict[str, int], stamps: Dict[str, str], dirs: set) -> Listing:
    """The listing with every folder above a file or a folder: each path climbs only until
    it meets a folder already added (one lookup per file in a flat class folder)."""
    parents: set = set()
    add = parents.add
    for rel in itertools.chain(files, list(dirs)):
        d = rel.rpartition("/")[0]
        while d and d not in parents:
            add(d)
            d = d.rpartition("/")[0]
    dirs |= parents
    return Listing(files, stamps, dirs)


async def schedule_fetches(store: RemoteStore, positions: List[int], urls: Sequence[str], sizes: Sequence[int],
                           deliver, poll_released, held, cond) -> None:
    """Fetches `positions` in order with at most `requests_in_flight` requests and at most
    `bytes_in_flight` bytes fetched and not yet released (at least one request always
    runs). `deliver(position, bytes | FetchError)` is called on the loop thread as each
    completes; `poll_released()` lets the consumer's releases count before the cap check.
    (fsspec; the native client's counterpart is native_store.ThreadFetcher.)"""
    opts = store.options
    pending: Dict[asyncio.Future, int] = {}
    finished: "asyncio.Queue[asyncio.Future]" = asyncio.Queue()
    nxt = 0
    n = len(positions)

    def handle(task) -> bool:
        pos = pending.pop(task)
        if task.cancelled():
            return True
        exc = task.exception()
        if exc is None:
            data = task.result()
            need = max(int(sizes[pos]), 1)
            if len(data) > need:
                with cond:
                    held[0] += len(data) - need
            return deliver(pos, data) is not False
        if not isinstance(exc, FetchError):
            transient, status, detail = classify(exc)
            exc = FetchError(urls[pos], status, detail, 1, transient)
        return deliver(pos, exc) is not False

    try:
        while nxt < n or pending:
            poll_released()
            blocked = False
            while nxt < n and len(pending) < opts.requests_in_flight:
                pos = positions[nxt]
                need = max(int(sizes[pos]), 1)
                with cond:
                    if held[0] > 0 and held[0] + need > opts.bytes_in_flight:
                        blocked = True
                        break
                    held[0] += need
                task = asyncio.ensure_future(store.fetch(urls[pos]))
                pending[task] = pos
                task.add_done_callback(finished.put_nowait)
                nxt += 1
            if pending and not blocked:
                if not handle(await finished.get()):
                    return
            else:
                # over the bytes cap (or all fetched and held): the consumer's releases
                # are polled, completions handled as they come
                await asyncio.sleep(0.002)
            while not finished.empty():
                if not handle(finished.get_nowait()):
                    return
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def stamps_array(store: RemoteStore, urls: Sequence[str]) -> np.ndarray:
    """(size, hash of the object's ETag/generation) per URL, like a local file's (size, mtime)."""
    import hashlib

    out = np.zeros((len(urls), 2), dtype=np.int64)
    for i, u in enumerate(urls):
        h = hashlib.blake2b(store.stamps.get(u, "").encode(), digest_size=7).digest()
        out[i] = (store.sizes.get(u, -1), int.from_bytes(h, "little"))
    return out
