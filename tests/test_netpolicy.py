"""The address policy: syntax checks at submit, resolution checks in the worker (resolver stubbed)."""

from __future__ import annotations

import ipaddress

import pytest

from generator import netpolicy
from generator.netpolicy import (
    UrlRejected,
    check_host_addresses,
    check_url_syntax,
    is_public_address,
)
from tests.loopback import (
    LOOPBACK_SPELLINGS,
)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[fe80::1%25eth0]", "fe80::1"),
    ],
)
def test_ip_literals_are_read_the_way_the_c_resolver_reads_them(spelling, address):
    assert netpolicy.parse_ip_literal(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize("name", ["example.com", "localhost", "deadbeef", "cafe.be", "1.2.3.4.5", ""])
def test_names_are_not_ip_literals(name):
    assert netpolicy.parse_ip_literal(name) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.255",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::10.0.0.1",
        "64:ff9b::127.0.0.1",
        "64:ff9b:1::a00:1",
        "2002:0a00:0001::",
        "2002:7f00:0001::",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "ff02::1",
    ],
)
def test_non_public_addresses_in_every_wrapping_are_refused(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "100.63.255.255",
        "100.128.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
    ],
)
def test_public_addresses_pass(address):
    assert is_public_address(ipaddress.ip_address(address))


def test_syntax_check_returns_scheme_host_and_default_port():
    assert check_url_syntax("https://Example.com./a.png") == ("https", "example.com", 443)
    assert check_url_syntax("http://example.com/a.png") == ("http", "example.com", 80)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("ftp://example.com/a", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("data:image/png;base64,AAAA", "only http and https"),
        ("http://user@example.com/", "user information"),
        ("http://user:pw@example.com/", "user information"),
        ("http://example.com:22/", "port 22 is not allowed"),
        ("http://example.com:99999/", "malformed"),
        ("http://example.com/a\nb", "control characters"),
        ("http:///a.png", "no host"),
        ("http://127.1/", "private, loopback or reserved"),
        ("http://[::ffff:169.254.169.254]/", "private, loopback or reserved"),
        ("https://xn--/a.jpg", "host is not a valid name"),
        ("https://xn--zz.example/a.jpg", "host is not a valid name"),
        ("https://\u2603.example/a.jpg", "host is not a valid name"),
    ],
)
def test_syntax_check_refuses_bad_urls(url, message):
    with pytest.raises(UrlRejected, match=message):
        check_url_syntax(url)


def test_allow_list_skips_port_and_address_checks_for_that_host_only():
    allow = ["127.0.0.1:8001", "dev.test"]
    assert check_url_syntax("http://127.0.0.1:8001/", allow_hosts=allow) == ("http", "127.0.0.1", 8001)
    assert check_url_syntax("http://dev.test:9999/", allow_hosts=allow) == ("http", "dev.test", 9999)
    with pytest.raises(UrlRejected, match="port 8002"):
        check_url_syntax("http://127.0.0.1:8002/", allow_hosts=allow)
    with pytest.raises(UrlRejected, match="private"):
        check_url_syntax("http://127.0.0.1/", allow_hosts=allow)


def test_configured_ports_replace_the_defaults():
    assert check_url_syntax("http://example.com:8080/", ports=[8080])[2] == 8080
    with pytest.raises(UrlRejected, match="port 80 is not allowed"):
        check_url_syntax("http://example.com/", ports=[8080])


def test_resolution_returns_every_distinct_address(dns):
    answers, _ = dns
    answers["cdn.test"] = ["93.184.216.34", "93.184.216.34", "2606:2800:220:1::1"]
    assert check_host_addresses("cdn.test", 443) == [
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("2606:2800:220:1::1"),
    ]


def test_one_bad_address_refuses_the_whole_host(dns):
    answers, _ = dns
    answers["cdn.test"] = ["93.184.216.34", "100.64.1.1"]
    with pytest.raises(UrlRejected, match="^host cdn.test resolves to a private, loopback or reserved address$"):
        check_host_addresses("cdn.test", 443)


def test_unresolvable_host_is_named_in_the_message(dns):
    with pytest.raises(UrlRejected, match="^could not resolve host nowhere.test$"):
        check_host_addresses("nowhere.test", 80)


def test_ip_literal_is_checked_without_a_lookup(dns):
    _, lookups = dns
    assert check_host_addresses("93.184.216.34", 80) == [ipaddress.ip_address("93.184.216.34")]
    with pytest.raises(UrlRejected, match="^address 0x7f.1 is private, loopback or reserved$"):
        check_host_addresses("0x7f.1", 80)
    assert lookups == []


def test_metadata_names_are_refused_before_any_lookup(dns):
    answers, lookups = dns
    answers["metadata.google.internal"] = ["93.184.216.34"]
    with pytest.raises(UrlRejected, match="cloud metadata service"):
        check_host_addresses("METADATA.google.internal.", 80)
    assert lookups == []


def test_allow_listed_host_may_resolve_to_loopback(dns):
    answers, _ = dns
    answers["images.test"] = ["127.0.0.1"]
    assert check_host_addresses("images.test", 8001, allow_hosts=["images.test:8001"]) == [
        ipaddress.ip_address("127.0.0.1")
    ]
    with pytest.raises(UrlRejected, match="resolves to a private"):
        check_host_addresses("images.test", 8002, allow_hosts=["images.test:8001"])


def test_operator_networks_allow_a_private_endpoint(dns):
    answers, _ = dns
    answers["minio.test"] = ["10.1.2.3"]
    assert check_host_addresses("minio.test", 9000, extra_nets=["10.0.0.0/8"]) == [ipaddress.ip_address("10.1.2.3")]
    with pytest.raises(UrlRejected):
        check_host_addresses("minio.test", 9000, extra_nets=["192.168.0.0/16"])


# Forms Python 3.11's is_global calls global, and Teredo (which tunnels to the IPv4 addresses it embeds).
IPV6_FORMS_PYTHON_CALLS_GLOBAL = [
    "::8.8.8.8",  # IPv4-compatible ::/96 (deprecated), even around a public address
    "::10.0.0.1",
    "::127.0.0.1",
    "::a9fe:a9fe",  # ::169.254.169.254
    "fec0::1",  # site-local (deprecated)
    "feff:ffff::1",
    "5f00::1",  # SRv6 SIDs
    "5f00:1234:5678::9",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, public server and client
    "2001:0:808:808:0:f7f7:f7f7:f7f7",  # Teredo whose client is 8.8.8.8
    "2001:0:a00:1::1",  # Teredo whose server is 10.0.0.1
]


@pytest.mark.parametrize("address", IPV6_FORMS_PYTHON_CALLS_GLOBAL)
def test_ipv6_forms_python_calls_global_are_refused(address):
    assert not is_public_address(ipaddress.ip_address(address))
    assert not netpolicy.address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("address", "embedded"),
    [
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", ["65.54.227.120", "192.0.2.45"]),
        ("::10.0.0.1", ["10.0.0.1"]),
        ("::ffff:8.8.8.8", ["8.8.8.8"]),
        ("2002:0808:0808::1", ["8.8.8.8"]),
        ("64:ff9b::a00:1", ["10.0.0.1"]),
        ("2606:4700::1111", []),
    ],
)
def test_teredo_is_unwrapped_like_the_other_embedded_forms(address, embedded):
    assert netpolicy.embedded_ipv4(ipaddress.ip_address(address)) == tuple(ipaddress.ip_address(a) for a in embedded)


@pytest.mark.parametrize("address", IPV6_FORMS_PYTHON_CALLS_GLOBAL)
def test_ipv6_literal_forms_are_refused_at_submit(address):
    with pytest.raises(UrlRejected, match="private, loopback or reserved"):
        check_url_syntax(f"https://[{address}]/a.jpg")


@pytest.mark.parametrize("address", IPV6_FORMS_PYTHON_CALLS_GLOBAL)
def test_names_resolving_to_ipv6_forms_are_refused_by_the_resolution_check(address, dns):
    answers, _ = dns
    answers["sneaky.test"] = [address]
    with pytest.raises(UrlRejected, match="resolves to a private, loopback or reserved address"):
        check_host_addresses("sneaky.test", 443)


@pytest.mark.parametrize(
    "url",
    ["https://video.acme.com", "http://video.acme.com:8443/x", "https://8.8.8.8", "https://[2606:4700::1111]"],
)
def test_a_public_name_or_address_is_reachable_from_outside(url):
    assert netpolicy.reachable_from_outside(url)


@pytest.mark.parametrize(
    "url",
    [
        *(f"http://{spelling}:8000" for spelling in LOOPBACK_SPELLINGS),
        "http://testserver",
        "http://localhost:8000",
        "http://app.localhost",
        "http://10.0.0.5",
        "http://100.64.0.1",
        "https://video.internal",
        "https://nas.local",
        "https://box.home.arpa",
        "http://metadata.google.internal",
        "ftp://video.acme.com",
        "https://user:pw@video.acme.com",
        "",
    ],
)
def test_a_local_name_a_private_address_or_a_bad_url_is_not_reachable_from_outside(url):
    assert not netpolicy.reachable_from_outside(url)


def test_an_allow_listed_development_host_counts_as_reachable():
    assert netpolicy.reachable_from_outside("http://127.0.0.1:8123", allow_hosts=["127.0.0.1:8123"])
    assert not netpolicy.reachable_from_outside("http://127.0.0.1:8124", allow_hosts=["127.0.0.1:8123"])
