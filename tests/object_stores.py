"""Real object-store servers on 127.0.0.1 for tests and benchmarks (pip packages, no mocks of
the client libraries): moto's S3 server (reached through s3fs/boto3) and
gcp-storage-emulator's GCS server (reached through gcsfs)."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Dummy credentials: botocore refuses to sign without some, and must never find real ones.
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}



class S3Server:
    """moto's S3 server (``ThreadedMotoServer``) in this process."""

    def __init__(self):
        for k, v in S3_ENV.items():
            os.environ.setdefault(k, v)
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # port 0: the server binds a free port itself and keeps it (no port picked, released,
        # then bound again, which another process could take in between)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        self.endpoint = f"http://{self.host}:{self.port}"
        import boto3

        self.client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self) -> None:
        self._server.stop()

    def make_bucket(self, name: str) -> None:
        self.client.create_bucket(Bucket=name)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def upload_tree(self, local_root, bucket: str, prefix: str, threads: int = 8) -> int:
        """Copies every file under ``local_root`` to ``s3://bucket/prefix/<relative path>``;
        empty directories become ``<dir>/`` marker objects (as consoles create folders)."""
        local_root = Path(local_root)
        jobs = []
        for dirpath, dirnames, filenames in os.walk(local_root):
            rel_dir = Path(dirpath).relative_to(local_root).as_posix()
            base = f"{prefix}/{rel_dir}" if rel_dir != "." else prefix
            if not dirnames and not filenames:
                jobs.append((f"{base}/", b""))
            for f in filenames:
                jobs.append((f"{base}/{f}", (Path(dirpath) / f).read_bytes()))
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda kv: self.put(bucket, kv[0], kv[1]), jobs))
        return len(jobs)


class GCSServer:
    """gcp-storage-emulator's server (in memory) in this process; clients find it through
    ``STORAGE_EMULATOR_HOST``."""

    def __init__(self):
        from gcp_storage_emulator.server import create_server

        logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
        self._server = create_server("127.0.0.1", 0, in_memory=True)  # port 0, as above
        self._server.start()
        self.port = self._server._api._httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.stop()

    def filesystem(self):
        import gcsfs.core

        # The standard class (see pyimgdir/remote.py: the default one probes buckets over gRPC).
        return gcsfs.core.GCSFileSystem(endpoint_url=self.endpoint, token="anon", skip_instance_cache=True)

    def upload_tree(self, local_root, bucket: str, prefix: str) -> int:
        fs = self.filesystem()
        try:
            fs.mkdir(bucket)
        except (FileExistsError, OSError):
            pass
        local_root = Path(local_root)
        items = {}
        for dirpath, dirnames, filenames in os.walk(local_root):
            rel_dir = Path(dirpath).relative_to(local_root).as_posix()
            base = f"{bucket}/{prefix}/{rel_dir}" if rel_dir != "." else f"{bucket}/{prefix}"
            if not dirnames and not filenames:
                items[f"{base}/"] = b""
            for f in filenames:
                items[f"{base}/{f}"] = (Path(dirpath) / f).read_bytes()
        fs.pipe(items)
        return len(items)
