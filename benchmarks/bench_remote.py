"""Object stores: pyimgdir reading ``s3://`` against the same tree on local disk, and against a
plain loop that reads each object with fsspec and decodes it, with 0, 20 and 100 ms added to
every request. Then listing a bucket of many objects.

The S3 server is moto's (``ThreadedMotoServer``) in a separate process, behind
``tests/fault_proxy.py`` (one proxy per latency, no faults), so the server's CPU is not
charged to the loader's process (it still shares this machine's cores). Objects are put
straight into the server's in-memory backend (uploading 100,000 objects over HTTP would
take longer than anything measured here).

    python benchmarks/bench_remote.py [--dataset photos] [--epochs 2] [--rounds 2]
        [--latencies 0,20,100] [--list-objects 100000] [--json benchmarks/results/remote.json]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # fault_proxy

S3_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
KW = dict(image_size=(224, 224), batch_size=64, seed=1, verbose=False, format="numpy")


# -- the server process ------------------------------------------------------------------------
def _serve(conn, latencies):
    os.environ.update(S3_ENV)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    from fault_proxy import FaultProxy

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    proxies = {lat: FaultProxy(port, latency=lat / 1000.0).start() for lat in latencies}
    conn.send({"port": port, "proxies": {lat: p.port for lat, p in proxies.items()}})
    while True:
        cmd, arg = conn.recv()
        if cmd == "stop":
            break
        if cmd == "upload":  # (local root, bucket, prefix): every file, straight into the backend
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
        elif cmd == "populate":  # (bucket, count): count small objects in 100 class folders
            bucket, count = arg
            backend.create_bucket(bucket, "us-east-1")
            per = max(1, count // 100)
            for i in range(count):
                backend.put_object(bucket, f"d/c{i // per:03d}/img_{i % per:05d}.jpg", b"\xff\xd8")
            conn.send(count)
        elif cmd == "stats":
            t = os.times()
            conn.send({"cpu_s": t.user + t.system,
                       "requests": {lat: sum(p.counts.values()) for lat, p in proxies.items()}})
    for p in proxies.values():
        p.stop()
    server.stop()
    conn.send("stopped")


class Server:
    def __init__(self, latencies):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, latencies), daemon=True)
        self.proc.start()
        info = self.conn.recv()
        self.port = info["port"]
        self.proxies = info["proxies"]

    def call(self, cmd, arg=None):
        self.conn.send((cmd, arg))
        return self.conn.recv()

    def endpoint(self, latency):
        return f"http://127.0.0.1:{self.proxies[latency]}"

    def stop(self):
        self.call("stop")
        self.proc.join(10)


# -- loaders -----------------------------------------------------------------------------------
def _cpu():
    t = os.times()
    return t.user + t.system


def run_pyimgdir(directory, epochs, server=None, **extra):
    import numpy as np

    import pyimgdir

    ds = pyimgdir.image_dataset_from_directory(directory, **KW, **extra)
    rates, cpu, server_cpu = [], [], []
    for _ in range(epochs):
        s0 = server.call("stats")["cpu_s"] if server else 0.0
        t, c, n = time.perf_counter(), _cpu(), 0
        for x, _ in ds:
            float(np.asarray(x)[:, ::16, ::16].sum())  # the consumer reads the batch
            n += len(x)
        rates.append(n / (time.perf_counter() - t))
        cpu.append((_cpu() - c) / n * 1000)
        if server:
            server_cpu.append((server.call("stats")["cpu_s"] - s0) / n * 1000)
    out = {"images_per_s": rates, "cpu_ms_per_image": cpu, "files": n}
    if server:
        out["server_cpu_ms_per_image"] = server_cpu
    return out


def run_plain_loop(url, endpoint, limit):
    """What one writes without a loader: for each file, read the object with fsspec, decode
    and resize it (Pillow, bilinear), one after another."""
    import numpy as np
    import s3fs
    from PIL import Image

    import pyimgdir

    ds = pyimgdir.image_dataset_from_directory(url, storage_options={"endpoint_url": endpoint}, **KW)
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    paths = ds.file_paths[:limit]
    t, c = time.perf_counter(), _cpu()
    for p in paths:
        data = fs.cat_file(p)
        img = Image.open(io.BytesIO(data)).convert("RGB").resize((224, 224), Image.BILINEAR)
        np.asarray(img, dtype=np.float32)
    dt = time.perf_counter() - t
    return {"images_per_s": [len(paths) / dt], "cpu_ms_per_image": [(_cpu() - c) / len(paths) * 1000],
            "files": len(paths)}


def measure_listing(server, count, latencies):
    """Lists a bucket of `count` objects in 100 class folders through each latency's proxy:
    wall time, list requests, the CPU time of this process (s3fs/botocore parsing,
    pyimgdir's indexing) and of the server (moto answers every page by walking the whole
    bucket, so its time grows with the bucket, not with the page)."""
    server.call("populate", ("big", count))
    import pyimgdir

    out = []
    for lat in latencies:
        before = server.call("stats")
        t, c = time.perf_counter(), _cpu()
        ds = pyimgdir.image_dataset_from_directory(
            "s3://big/d", storage_options={"endpoint_url": server.endpoint(lat)}, **KW)
        wall, client_cpu = time.perf_counter() - t, _cpu() - c
        after = server.call("stats")
        assert len(ds.file_paths) == count, len(ds.file_paths)
        row = {"objects": count, "classes": len(ds.class_names), "latency_ms": lat, "wall_s": round(wall, 2),
               "client_cpu_s": round(client_cpu, 2), "server_cpu_s": round(after["cpu_s"] - before["cpu_s"], 2),
               "requests": after["requests"][lat] - before["requests"][lat]}
        print(f"\nlisting {count} objects, {lat} ms a request: {wall:.1f} s wall, {row['requests']} requests; "
              f"client CPU {client_cpu:.1f} s, server CPU {row['server_cpu_s']:.1f} s", flush=True)
        out.append(row)
    return out


def run_fetch_only(url, endpoint):
    """s3fs alone: every object fetched with s3fs' own concurrent ``cat`` (64 at a time), no
    decoding and no pyimgdir code: the client's cost per request."""
    import s3fs

    import pyimgdir

    ds = pyimgdir.image_dataset_from_directory(url, storage_options={"endpoint_url": endpoint}, **KW)
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True, max_concurrency=1,
                           config_kwargs={"max_pool_connections": 64})
    t, c = time.perf_counter(), _cpu()
    fs.cat(list(ds.file_paths), batch_size=64)
    dt = time.perf_counter() - t
    n = len(ds.file_paths)
    return {"images_per_s": [n / dt], "cpu_ms_per_image": [(_cpu() - c) / n * 1000], "files": n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="photos")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--latencies", default="0,20,100")
    ap.add_argument("--plain-seconds", type=float, default=8.0, help="about how long each plain loop runs")
    ap.add_argument("--list-objects", type=int, default=100_000)
    ap.add_argument("--json", default=str(HERE / "results" / "remote.json"))
    ap.add_argument("--listing-only", action="store_true",
                    help="measure only the listing and update the 'listing' entry of --json")
    args = ap.parse_args()
    os.environ.update(S3_ENV)
    root = Path(args.dataset) if os.path.isdir(args.dataset) else HERE / "data" / args.dataset
    if not root.is_dir():
        sys.path.insert(0, str(HERE))
        from make_datasets import ensure

        root = ensure(args.dataset, HERE / "data")
    latencies = [int(v) for v in args.latencies.split(",")]
    if args.listing_only:
        server = Server(latencies)
        try:
            listing = measure_listing(server, args.list_objects, latencies)
        finally:
            server.stop()
        out = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
        out["listing"] = listing
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"updated {args.json}")
        return 0
    server = Server(latencies)
    try:
        files = server.call("upload", (str(root), "bench", "data"))
        url = "s3://bench/data"
        print(f"{files} objects from {root} in s3://bench/data; latencies {latencies} ms", flush=True)
        rows = {}

        def record(name, result):
            rows.setdefault(name, []).append(result)
            r = result
            extra = ""
            if "server_cpu_ms_per_image" in r:
                extra = f", {statistics.median(r['server_cpu_ms_per_image']):.2f} ms in the S3 server"
            print(f"  {name:<28} {statistics.median(r['images_per_s']):8.1f} img/s  "
                  f"{statistics.median(r['cpu_ms_per_image']):6.2f} ms CPU/img (this process{extra})", flush=True)

        for rnd in range(args.rounds):
            print(f"round {rnd + 1}/{args.rounds}", flush=True)
            record("local disk", run_pyimgdir(str(root), args.epochs))
            for lat in latencies:
                record(f"s3 {lat} ms", run_pyimgdir(url, args.epochs, server,
                                                     storage_options={"endpoint_url": server.endpoint(lat)}))
            record("local disk", run_pyimgdir(str(root), args.epochs))
        record("s3fs fetch only 0 ms", run_fetch_only(url, server.endpoint(latencies[0])))
        for lat in latencies:
            # sized to run for about --plain-seconds
            per = lat / 1000.0 + 0.012
            limit = max(20, min(files, int(args.plain_seconds / per)))
            record(f"plain loop {lat} ms", run_plain_loop(url, server.endpoint(lat), limit))

        def med(name):
            return statistics.median(v for r in rows[name] for v in r["images_per_s"])

        local = med("local disk")
        def med_of(name, key):
            vals = [v for r in rows[name] for v in r.get(key, [])]
            return round(statistics.median(vals), 2) if vals else None

        table = []
        for lat in latencies:
            s3 = med(f"s3 {lat} ms")
            plain = med(f"plain loop {lat} ms")
            table.append({"latency_ms": lat, "pyimgdir_s3": round(s3, 1), "pyimgdir_local": round(local, 1),
                          "plain_loop": round(plain, 1), "s3_vs_local": round(s3 / local, 3),
                          "s3_vs_plain": round(s3 / plain, 1),
                          "s3_client_cpu_ms_per_image": med_of(f"s3 {lat} ms", "cpu_ms_per_image"),
                          "s3_server_cpu_ms_per_image": med_of(f"s3 {lat} ms", "server_cpu_ms_per_image"),
                          "local_cpu_ms_per_image": med_of("local disk", "cpu_ms_per_image")})
        print("\nlatency  pyimgdir s3://  local disk  s3/local  plain loop   CPU ms/img: s3 client, server, local")
        for t in table:
            print(f"{t['latency_ms']:>5} ms  {t['pyimgdir_s3']:>12.1f}  {t['pyimgdir_local']:>10.1f}  "
                  f"{t['s3_vs_local']:>7.0%}  {t['plain_loop']:>10.1f}   {t['s3_client_cpu_ms_per_image']}, "
                  f"{t['s3_server_cpu_ms_per_image']}, {t['local_cpu_ms_per_image']}")

        listing = measure_listing(server, args.list_objects, latencies) if args.list_objects else None
        if listing is None and Path(args.json).exists():  # keep an earlier --listing-only result
            listing = json.loads(Path(args.json).read_text()).get("listing")
    finally:
        server.stop()

    out = {
        "dataset": str(root.name), "files": files, "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "settings": {**{k: v for k, v in KW.items() if k != "format"}, "epochs": args.epochs, "rounds": args.rounds},
        "table": table, "rows": rows, "listing": listing,
        "s3fs_fetch_only": {"images_per_s": round(med("s3fs fetch only 0 ms"), 1),
                            "client_cpu_ms_per_object": med_of("s3fs fetch only 0 ms", "cpu_ms_per_image")},
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
