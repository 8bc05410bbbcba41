"""Real storage protocol servers on loopback for the storage tests: moto's S3 server, gcp-storage-emulator.

Both run in threads of the test process on 127.0.0.1 with ports chosen by the kernel; they start
once per session and stop at its end. Moto runs with request authentication switched on (after an
IAM user with S3 rights is created), so wrong keys really fail the way AWS fails them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import uuid
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"

# Keys that try to leave a storage's prefix; a connector must refuse each before any request.
TRAVERSAL_KEYS = [
    "../outside.png",
    "a/../../outside.png",
    "/outside.png",
    "%2e%2e/outside.png",
    "..%2foutside.png",
    "a%252f..%252f..%252foutside.png",
    "a\\..\\outside.png",
    "a//b.png",
    "nul\x00.png",
    "k" * 1025,
]


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    host_port: str
    access_key: str
    secret_key: str

    def client(self):
        """Return an admin boto3 client for inspecting buckets from the test side."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    @contextlib.contextmanager
    def presigned_requests_allowed(self):
        """Switch moto's header authentication off: it crashes (500) on query-string signed requests.

        Moto never verifies presigned signatures anyway; what the tests prove with it is that the
        URL names the right endpoint, bucket, key and expiry and that the object is served.
        """
        from moto import settings as moto_settings

        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
        try:
            yield
        finally:
            moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0

    def keys(self, bucket: str) -> list[str]:
        """Return every object key in the bucket."""
        response = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in response.get("Contents", ()))


@dataclass(frozen=True)
class GcsServer:
    endpoint_url: str
    host_port: str
    server: object

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": self.endpoint_url}
        )

    def keys(self, bucket: str) -> list[str]:
        return sorted(blob.name for blob in self.client().list_blobs(bucket))


def free_closed_port() -> int:
    """Return a loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    iam = boto3.client(
        "iam", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="setup", aws_secret_access_key="setup"
    )
    iam.create_user(UserName="generator-tests")
    iam.put_user_policy(
        UserName="generator-tests",
        PolicyName="s3-all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    created = iam.create_access_key(UserName="generator-tests")["AccessKey"]
    # From here on every request must be signed by a known key, as on AWS (the server runs in
    # this process, so its switch is flipped directly).
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    yield S3Server(
        endpoint_url=endpoint,
        host_port=f"{host}:{port}",
        access_key=created["AccessKeyId"],
        secret_key=created["SecretAccessKey"],
    )
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    ActionAuthenticatorMixin.request_count = 0
    server.stop()


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """Create and return a fresh, empty bucket on the moto server."""
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def gcs_server():
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    host, port = server._api._httpd.server_address[:2]
    yield GcsServer(endpoint_url=f"http://{host}:{port}", host_port=f"{host}:{port}", server=server)
    server.stop()


@pytest.fixture
def gcs_bucket(gcs_server) -> str:
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    gcs_server.client().create_bucket(name)
    return name


def assert_reads_with_a_size_cap(connector, key: str, data: bytes) -> None:
    """The connector reads an object whole, refuses it past max_bytes, and says ObjectMissing for none."""
    from generator.storage.base import ObjectMissing, StorageError

    assert connector.read(key, max_bytes=10_000_000) == data
    with pytest.raises(StorageError, match="larger than"):
        connector.read(key, max_bytes=100)
    with pytest.raises(ObjectMissing):
        connector.read(key.rsplit("/", 1)[0] + "/missing.png", max_bytes=100)
