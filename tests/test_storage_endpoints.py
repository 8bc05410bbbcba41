"""The storage endpoint address policy (resolver stubbed; nothing is dialled but loopback)."""

from __future__ import annotations

import socket

import pytest

from generator.netpolicy import UrlRejected
from generator.storage.endpoints import check_endpoint_address, check_endpoint_syntax


@pytest.fixture
def no_dialling(monkeypatch):
    dials: list = []

    def connect(self, address):
        dials.append(address)
        raise ConnectionRefusedError("stubbed")

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield dials
    assert dials == []


IPV6_FORMS = ["::a00:1", "::8.8.8.8", "fec0::1", "5f00::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"]


@pytest.mark.parametrize("address", IPV6_FORMS)
def test_endpoint_literal_in_an_ipv6_form_python_calls_global_is_refused(settings, address):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = []
    with pytest.raises(UrlRejected, match="private, loopback or reserved"):
        check_endpoint_syntax(f"https://[{address}]")


@pytest.mark.parametrize("address", IPV6_FORMS)
def test_endpoint_name_resolving_to_an_ipv6_form_python_calls_global_is_refused(settings, dns, no_dialling, address):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = []
    answers, _ = dns
    answers["s3.tunnel.test"] = [address]
    with pytest.raises(UrlRejected, match="private, loopback or reserved"):
        check_endpoint_address("https://s3.tunnel.test")
