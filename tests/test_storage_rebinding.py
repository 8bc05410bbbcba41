"""DNS rebinding against a storage endpoint: the S3 client dials only the addresses the policy checked.

The resolver is stubbed (the name answers one address to the check and another afterwards) and
socket connects are recorded: a loopback one goes through to moto's server on 127.0.0.1, any other
is refused before a packet leaves (ConnectionRefusedError), so nothing is dialled off this machine.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from generator.storage.base import StorageError
from generator.storage.s3 import S3Connector

PUBLIC = "93.184.216.34"  # global, so the policy accepts it; never actually dialled
HOST = "minio"  # no dot: moto reads the bucket from the path, as for a MinIO host


@pytest.fixture
def rebinding(monkeypatch):
    """(answers, dials): HOST resolves to answers[0] the first time, to answers[1] from then on."""
    answers: list[str] = []
    dials: list[tuple] = []
    lookups = {"count": 0}
    real_connect = socket.socket.connect

    def getaddrinfo(host, port, *args, **kwargs):
        if host == HOST:
            lookups["count"] += 1
            ip = answers[0] if lookups["count"] == 1 else answers[1]
        else:
            ip = str(ipaddress.ip_address(host))  # literals only: no name but HOST resolves here
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port)))]

    def connect(self, address):
        dials.append(address)
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise ConnectionRefusedError("stubbed: an off-machine connect is never made")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return answers, dials


def _connector(s3_server, bucket: str) -> S3Connector:
    port = s3_server.host_port.rsplit(":", 1)[1]
    return S3Connector(
        parameters={"bucket": bucket, "endpoint_url": f"http://{HOST}:{port}", "region": "us-east-1"},
        secrets={"access_key": s3_server.access_key, "secret_access_key": s3_server.secret_key},
        team_slug="acme",
    )


def test_a_name_checked_as_public_is_never_dialled_at_the_private_address_it_rebinds_to(
    settings, rebinding, s3_server, s3_bucket
):
    answers, dials = rebinding
    dials.clear()  # the fixtures' own bucket setup
    port = int(s3_server.host_port.rsplit(":", 1)[1])
    settings.GENERATOR_FETCH_ALLOW_HOSTS = []
    settings.GENERATOR_STORAGE_ENDPOINT_NETS = []
    settings.GENERATOR_FETCH_PORTS = [80, 443, port]
    answers[:] = [PUBLIC, "127.0.0.1"]  # public for the check, the internal server (moto) afterwards
    connector = _connector(s3_server, s3_bucket)
    with pytest.raises(StorageError, match="list failed"):
        connector.list("")
    assert dials, "the client made no connection attempt"
    assert {address[0] for address in dials} == {PUBLIC}  # only the checked address, and it was refused


def test_a_name_checked_inside_the_operator_nets_keeps_that_address_when_it_rebinds_to_a_public_one(
    settings, rebinding, s3_server, s3_bucket
):
    answers, dials = rebinding
    settings.GENERATOR_FETCH_ALLOW_HOSTS = []
    settings.GENERATOR_STORAGE_ENDPOINT_NETS = ["127.0.0.0/8"]
    answers[:] = ["127.0.0.1", PUBLIC]  # the operator's server for the check, a public one afterwards
    s3_server.client().put_object(Bucket=s3_bucket, Key="shoe.png", Body=b"x")
    dials.clear()
    connector = _connector(s3_server, s3_bucket)
    assert [entry.key for entry in connector.list("")] == ["shoe.png"]
    connector.write_bytes("out/video.mp4", b"mp4", content_type="video/mp4")  # a PUT, too
    assert {address[0] for address in dials} == {"127.0.0.1"}
