"""A small HTTP proxy for tests and benchmarks: sits between a client and a real object-store
server on 127.0.0.1, adds latency, answers a share of requests with 503 (S3 ``SlowDown``),
429 or 403, drops connections, cuts bodies short, or stalls past the client's timeout — and counts
every request it sees, so tests can assert what the client asked for.

Faults are drawn from a seeded generator and apply to requests chosen by ``faulty(method,
path)``; ``max_faults_per_path`` bounds how often one object fails, so a client with enough
retries must always succeed (and a test can require it).
"""

from __future__ import annotations

import http.client
import random
import socket
import socketserver
import struct
import threading
import time
from collections import Counter
from typing import Callable, Optional
from urllib.parse import unquote, urlsplit

_SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
_TOO_MANY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>TooManyRequests</Code>'
    b"<Message>Too many requests.</Message></Error>"
)

_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)
_CANNED = {"503": (_SLOWDOWN, "Slow Down"), "429": (_TOO_MANY, "Too Many Requests"), "403": (_DENIED, "Forbidden")}


class FaultProxy:
    """Usage::

        with FaultProxy(upstream_port, latency=0.02, p_503=0.1) as proxy:
            ...  # point the client at proxy.url
            proxy.counts  # Counter of (method, path) -> requests seen
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        latency: float = 0.0,
        p_503: float = 0.0,
        p_429: float = 0.0,
        p_drop: float = 0.0,
        p_cut: float = 0.0,
        p_stall: float = 0.0,
        p_403: float = 0.0,
        stall_seconds: float = 5.0,
        max_faults_per_path: int = 2,
        faulty: Optional[Callable[[str, str], bool]] = None,
        slow: Optional[Callable[[str, str], bool]] = None,
        seed: int = 0,
    ):
        self.upstream_port = upstream_port
        self.latency = latency
        self.p = {"503": p_503, "429": p_429, "drop": p_drop, "cut": p_cut, "stall": p_stall, "403": p_403}
        self.stall_seconds = stall_seconds
        self.max_faults_per_path = max_faults_per_path
        self.faulty = faulty or (lambda method, path: method == "GET" and "?" not in path)
        # which requests get the latency (default: all)
        self.slow = slow or (lambda method, path: True)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter = Counter()  # (method, path without query) -> requests
        self.faults: Counter = Counter()  # kind -> faults injected
        self.faults_by_path: Counter = Counter()
        self.served = 0  # requests answered with the upstream's response
        self.open_connections = 0
        self.in_flight = 0  # requests received and not yet answered
        self.max_in_flight = 0
        self._server: Optional[socketserver.ThreadingTCPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                proxy._serve_connection(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="fault-proxy")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset_counts(self) -> None:
        with self.lock:
            self.counts.clear()
            self.faults.clear()
            self.faults_by_path.clear()
            self.served = 0
            self.max_in_flight = self.in_flight

    def settle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Waits until nothing is being answered and no new request has arrived for
        ``quiet`` seconds: requests a closed iterator had already written to its sockets
        are read (and counted) by the proxy's threads, which on a loaded machine can be
        well after the client gave up on them."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            with self.lock:
                now = (sum(self.counts.values()), self.in_flight)
            if now != last:
                last, since = now, time.monotonic()
            elif now[1] == 0 and time.monotonic() - since >= quiet:
                return
            time.sleep(0.02)

    def requests_for(self, predicate: Callable[[str, str], bool]) -> int:
        with self.lock:
            return sum(n for (m, p), n in self.counts.items() if predicate(m, p))

    # -- one client connection (keep-alive: many requests) -------------------------------
    def _serve_connection(self, sock: socket.socket) -> None:
        with self.lock:
            self.open_connections += 1
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        reader = sock.makefile("rb")
        try:
            while True:
                request = _read_request(reader)
                if request is None:
                    return
                method, target, headers, body = request
                path = unquote(urlsplit(target).path)
                key = (method, path + ("?" if urlsplit(target).query else ""))
                with self.lock:
                    self.counts[key] += 1
                    kind = self._draw(method, key[1])
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    if not self._answer(sock, upstream, method, target, headers, body, key, kind):
                        return
                finally:
                    with self.lock:
                        self.in_flight -= 1
        except OSError:
            return
        finally:
            upstream.close()
            try:
                reader.close()
            except OSError:
                pass
            with self.lock:
                self.open_connections -= 1

    def _answer(self, sock, upstream, method, target, headers, body, key, kind) -> bool:
        """Answers one request; False when the connection was closed."""
        if self.latency and self.slow(method, key[1]):
            time.sleep(self.latency)
        if kind == "drop":
            _reset(sock)
            return False
        if kind in ("503", "429", "403"):
            body_out, reason = _CANNED[kind]
            head = _response_head(int(kind), reason, [("Content-Type", "application/xml")], len(body_out))
            sock.sendall(head + body_out)
            return True
        if kind == "stall":
            time.sleep(self.stall_seconds)
            _reset(sock)
            return False
        fwd = [(k, v) for k, v in headers if k.lower() not in ("connection", "keep-alive")]
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for k, v in fwd:
                upstream.putheader(k, v)
            upstream.endheaders(body if body else None)
            resp = upstream.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            upstream.close()
            _reset(sock)
            return False
        drop = {"transfer-encoding", "connection", "keep-alive"}
        if method != "HEAD":
            drop.add("content-length")  # the body is re-sent whole (de-chunked)
        out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in drop]
        head = _response_head(resp.status, resp.reason, out_headers,
                              None if method == "HEAD" else len(data))
        if kind == "cut" and len(data) > 1:
            sock.sendall(head + data[: len(data) // 2])
            _reset(sock)
            return False
        sock.sendall(head + (b"" if method == "HEAD" else data))
        with self.lock:
            self.served += 1
        return True

    def _draw(self, method: str, path: str) -> Optional[str]:
        if not any(self.p.values()) or not self.faulty(method, path):
            return None
        if self.faults_by_path[path] >= self.max_faults_per_path:
            return None
        r = self.rng.random()
        for kind, p in self.p.items():
            if r < p:
                self.faults[kind] += 1
                self.faults_by_path[path] += 1
                return kind
            r -= p
        return None


def _read_request(reader):
    line = reader.readline(65537)
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        return None
    method, target, _ = parts
    headers = []
    length = 0
    while True:
        h = reader.readline(65537)
        if not h or h in (b"\r\n", b"\n"):
            break
        k, _, v = h.decode("latin-1").partition(":")
        k, v = k.strip(), v.strip()
        headers.append((k, v))
        if k.lower() == "content-length":
            length = int(v)
    body = reader.read(length) if length else b""
    return method, target, headers, body


def _response_head(status: int, reason: str, headers, length: Optional[int]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _reset(sock: socket.socket) -> None:
    """Close with an RST (what a crashed server or a middlebox dropping state sends)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


__all__ = ["FaultProxy"]
