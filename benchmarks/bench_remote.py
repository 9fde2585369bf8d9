"""Object stores: the client process's CPU per image reading ``s3://`` (native client and the
fsspec path, in the same run) against the same tree on local disk, interleaved; requests per
object; then listing a bucket of many objects, and a bucket of many small class folders, by
the native client (obstore's pages), the native client listing through opendal alone, and
the fsspec path.

Three processes, so that only the loader's own work is charged to the measured one:
- the S3 server: moto's app under waitress (HTTP/1.1 keep-alive, as S3; moto's own werkzeug
  server closes every connection, which would charge a reconnect to every request);
- a proxy (tests/fault_proxy.py) adding ``--latency`` ms to every request and counting them;
- this process: pyimgdir, CPU time from ``os.times()`` around each epoch.
Objects are put straight into the server's in-memory backend.

    python benchmarks/bench_remote.py [--dataset photos] [--files 600] [--epochs 2] [--rounds 2]
        [--latency 20] [--list-objects 100000] [--list-rounds 1] [--json benchmarks/results/remote.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # fault_proxy

S3_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
KW = dict(image_size=(224, 224), batch_size=64, seed=1, verbose=False, format="numpy")


# -- the server process: moto's app under waitress ---------------------------------------------
def _serve(conn):
    import logging
    import socket
    import threading

    os.environ.update(S3_ENV)
    logging.disable(logging.WARNING)
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.s3.models import s3_backends
    from waitress.server import create_server

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound here, then handed to waitress: no port race
    sock.listen(512)
    server = create_server(DomainDispatcherApplication(create_backend_app), sockets=[sock], threads=16)
    threading.Thread(target=server.run, daemon=True).start()
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    conn.send(sock.getsockname()[1])
    while True:
        cmd, arg = conn.recv()
        if cmd == "stop":
            break
        if cmd == "upload":  # (local root, bucket, prefix)
            root, bucket, prefix = arg
            backend.create_bucket(bucket, "us-east-1")
            n = 0
            for dirpath, _, files in os.walk(root):
                rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
                for f in files:
                    key = f"{prefix}/{f}" if rel == "." else f"{prefix}/{rel}/{f}"
                    with open(os.path.join(dirpath, f), "rb") as fh:
                        backend.put_object(bucket, key, fh.read())
                    n += 1
            conn.send(n)
        elif cmd == "populate":  # (bucket, folders, per folder): tiny objects
            bucket, folders, per = arg
            backend.create_bucket(bucket, "us-east-1")
            for i in range(folders):
                for j in range(per):
                    backend.put_object(bucket, f"d/c{i:05d}/img_{j:05d}.jpg", b"\xff\xd8")
            conn.send(folders * per)
        elif cmd == "cpu":
            t = os.times()
            conn.send(t.user + t.system)
    conn.send("stopped")


# -- the proxy process -------------------------------------------------------------------------
def _proxy(conn, upstream_port, latency):
    from fault_proxy import FaultProxy

    proxy = FaultProxy(upstream_port, latency=latency).start()
    conn.send(proxy.port)
    while True:
        cmd, _ = conn.recv()
        if cmd == "stop":
            break
        if cmd == "counts":
            with proxy.lock:
                conn.send(dict(proxy.counts))
        elif cmd == "reset":
            proxy.reset_counts()
            conn.send(True)
    proxy.stop()
    conn.send("stopped")


class Child:
    def __init__(self, target, *args):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.proc.start()
        self.port = self.conn.recv()

    def call(self, cmd, arg=None):
        self.conn.send((cmd, arg))
        return self.conn.recv()

    def stop(self):
        try:
            self.call("stop")
        except (EOFError, OSError):
            pass
        self.proc.join(10)


def request_kinds(counts: dict) -> dict:
    out = {"object_get": 0, "listing": 0, "head": 0, "other": 0}
    for (method, path), n in counts.items():
        if method == "GET" and path.endswith("?"):
            out["listing"] += n
        elif method == "GET":
            out["object_get"] += n
        elif method == "HEAD":
            out["head"] += n
        else:
            out["other"] += n
    return out


# -- measured runs -----------------------------------------------------------------------------
def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _client(name: str):
    """Selects the client for the next dataset: the native one, the native one listing
    through opendal alone ("native-opendal", no obstore), or the fsspec path."""
    switch = {"fsspec": "fsspec", "native-opendal": "opendal"}.get(name)
    if switch:
        os.environ["PYIMGDIR_REMOTE_CLIENT"] = switch
    else:
        os.environ.pop("PYIMGDIR_REMOTE_CLIENT", None)


def run_epochs(directory, epochs, client="native", proxy=None, **extra):
    import numpy as np

    import pyimgdir

    _client(client)
    try:
        ds = pyimgdir.image_dataset_from_directory(directory, **KW, **extra)
    finally:
        _client("native")
    store = getattr(ds._source, "store", None)
    if store is not None:
        assert store.client == client, (store.client, store.fallback_reason)
    rates, cpu, per_object = [], [], []
    for _ in range(epochs):
        if proxy is not None:
            proxy.call("reset")
        t, c, n = time.perf_counter(), _cpu(), 0
        for x, _ in ds:
            float(np.asarray(x)[:, ::16, ::16].sum())  # the consumer reads the batch
            n += len(x)
        rates.append(n / (time.perf_counter() - t))
        cpu.append((_cpu() - c) / n * 1000)
        if proxy is not None:
            kinds = request_kinds(proxy.call("counts"))
            per_object.append({k: round(v / n, 3) for k, v in kinds.items()})
    out = {"images_per_s": rates, "cpu_ms_per_image": cpu, "files": n}
    if per_object:
        out["requests_per_image"] = per_object
    return out


LISTERS = ("native", "native-opendal", "fsspec")


def measure_listing(server, proxy, bucket, folders, per, clients=LISTERS, fill=True):
    import pyimgdir

    count = server.call("populate", (bucket, folders, per)) if fill else folders * per
    rows = []
    for client in clients:
        proxy.call("reset")
        _client(client)
        try:
            t, c = time.perf_counter(), _cpu()
            ds = pyimgdir.image_dataset_from_directory(
                f"s3://{bucket}/d", storage_options={"endpoint_url": f"http://127.0.0.1:{proxy.port}"}, **KW)
            wall, cpu = time.perf_counter() - t, _cpu() - c
        finally:
            _client("native")
        assert len(ds.file_paths) == count, len(ds.file_paths)
        store = ds._source.store
        assert store.client == ("fsspec" if client == "fsspec" else "native"), store.fallback_reason
        if store.native is not None:
            want = "opendal" if client == "native-opendal" else "obstore"
            assert store.native.lister == want, store.native.lister_reason
        kinds = request_kinds(proxy.call("counts"))
        row = {"client": client, "objects": count, "folders": folders, "wall_s": round(wall, 2),
               "client_cpu_ms_per_1000_keys": round(cpu / count * 1e6, 2), "list_requests": kinds["listing"]}
        print(f"  listing {count} objects in {folders} folders, {client}: {wall:.1f} s wall, "
              f"{row['list_requests']} list requests, client CPU {row['client_cpu_ms_per_1000_keys']} ms "
              f"per 1,000 keys", flush=True)
        rows.append(row)
    return rows


def subset(root: Path, files: int) -> Path:
    """The first `files` images of `root` (sorted, in their class folders), copied to a temp dir."""
    paths = sorted(p for p in root.rglob("*") if p.is_file())[:files]
    out = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    for p in paths:
        dest = out / p.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest)
    return out


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="photos")
    ap.add_argument("--files", type=int, default=600, help="the first N files of the dataset (0: all)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--latency", type=int, default=20, help="ms the proxy adds to every request")
    ap.add_argument("--list-objects", type=int, default=100_000, help="0: skip the listing measurements")
    ap.add_argument("--list-rounds", type=int, default=1)
    ap.add_argument("--json", default=str(HERE / "results" / "remote.json"))
    args = ap.parse_args()
    os.environ.update(S3_ENV)
    root = Path(args.dataset) if os.path.isdir(args.dataset) else HERE / "data" / args.dataset
    if not root.is_dir():
        sys.path.insert(0, str(HERE))
        from make_datasets import ensure

        root = ensure(args.dataset, HERE / "data")
    tree = subset(root, args.files) if args.files else root
    server = Child(_serve)
    proxy = Child(_proxy, server.port, args.latency / 1000.0)
    rows: dict = {}
    try:
        files = server.call("upload", (str(tree), "bench", "data"))
        url = "s3://bench/data"
        endpoint = f"http://127.0.0.1:{proxy.port}"
        print(f"{files} objects in {url}; {args.latency} ms added per request; CPU: {cpu_name()}", flush=True)

        def record(name, result):
            rows.setdefault(name, []).append(result)
            req = result.get("requests_per_image")
            extra = f"  requests/image {req[-1]}" if req else ""
            print(f"  {name:<16} {statistics.median(result['images_per_s']):8.1f} img/s  "
                  f"{statistics.median(result['cpu_ms_per_image']):6.2f} ms CPU/img{extra}", flush=True)

        for rnd in range(args.rounds):
            print(f"round {rnd + 1}/{args.rounds}", flush=True)
            record("local disk", run_epochs(str(tree), args.epochs))
            record("s3 native", run_epochs(url, args.epochs, "native", proxy,
                                           storage_options={"endpoint_url": endpoint}))
            record("s3 fsspec", run_epochs(url, args.epochs, "fsspec", proxy,
                                           storage_options={"endpoint_url": endpoint}))
            record("local disk", run_epochs(str(tree), args.epochs))

        def med(name, key):
            return round(statistics.median(v for r in rows[name] for v in r[key]), 3)

        local = med("local disk", "cpu_ms_per_image")
        table = {}
        for name in ("s3 native", "s3 fsspec"):
            cpu = med(name, "cpu_ms_per_image")
            table[name] = {"cpu_ms_per_image": cpu, "local_cpu_ms_per_image": local,
                           "remote_vs_local_cpu": round(cpu / local, 2),
                           "transport_ms_per_image": round(cpu - local, 3),
                           "images_per_s": round(med(name, "images_per_s"), 1),
                           "requests_per_image": rows[name][-1]["requests_per_image"][-1]}
        table["local disk"] = {"cpu_ms_per_image": local, "images_per_s": round(med("local disk", "images_per_s"), 1)}
        print(f"\nclient CPU ms/image, median of {args.rounds} rounds x {args.epochs} epochs, {args.latency} ms a request")
        for name, t in table.items():
            ratio = f"  {t['remote_vs_local_cpu']:.2f}x local, transport {t['transport_ms_per_image']:.2f} ms" \
                if "remote_vs_local_cpu" in t else ""
            print(f"  {name:<12} {t['cpu_ms_per_image']:.2f}  {t['images_per_s']:.0f} img/s{ratio}")

        listing = []
        if args.list_objects:
            # rounds interleave the clients; the buckets are filled once
            for rnd in range(args.list_rounds):
                for bucket, folders, per in (("big", 100, max(1, args.list_objects // 100)), ("wide", 3000, 2)):
                    for row in measure_listing(server, proxy, bucket, folders, per, fill=rnd == 0):
                        listing.append({**row, "round": rnd + 1})
            print(f"\nlisting, client CPU ms per 1,000 keys, median (range) of {args.list_rounds} rounds")
            for bucket in ("big", "wide"):
                for client in LISTERS:
                    v = [r["client_cpu_ms_per_1000_keys"] for r in listing
                         if r["client"] == client and r["folders"] == (100 if bucket == "big" else 3000)]
                    print(f"  {bucket:<5} {client:<14} {statistics.median(v):8.2f} ({min(v):.2f}-{max(v):.2f})")
    finally:
        proxy.stop()
        server.stop()
        if tree is not root:
            shutil.rmtree(tree, ignore_errors=True)

    out = {"dataset": root.name, "files": files, "cpu": cpu_name(), "cpus": os.cpu_count(),
           "latency_ms": args.latency,
           "settings": {**{k: v for k, v in KW.items() if k != "format"}, "epochs": args.epochs, "rounds": args.rounds,
                        "list_rounds": args.list_rounds},
           "table": table, "rows": rows, "listing": listing}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
