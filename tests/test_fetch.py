"""The input fetcher against real loopback servers; off-machine ranges only with resolver and dialler stubbed."""

from __future__ import annotations

import gzip
import ipaddress
import socket
import ssl
import time
import zlib
from pathlib import Path

import pytest

from generator import fetch
from generator.fetch import FetchError, fetch_image_bytes
from tests.loopback import LOOPBACK_SPELLINGS, LoopbackServer, Route

FIXTURES = Path(__file__).parent / "fixtures"
PNG = (FIXTURES / "coffee.png").read_bytes()
MB = 1024 * 1024


@pytest.fixture
def server():
    srv = LoopbackServer()
    yield srv
    srv.close()


@pytest.fixture
def other_server():
    srv = LoopbackServer()
    yield srv
    srv.close()


@pytest.fixture
def allowed(settings, server):
    """Allow-list the loopback server's 127.0.0.1:<port> (and nothing else)."""
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [f"127.0.0.1:{server.port}"]
    return server


@pytest.fixture
def dials(monkeypatch):
    """Record every TCP connect; refuse any that is not loopback instead of sending traffic."""
    log: list[tuple[str, int]] = []
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        log.append((address[0], address[1]))
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise ConnectionRefusedError("stubbed: no traffic leaves the machine in tests")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return log


@pytest.fixture
def dns(monkeypatch):
    """Stub the resolver: names in the dict answer those addresses; every lookup is recorded."""
    answers: dict[str, list[str]] = {}
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        if host in answers:
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (ip, port, 0, 0) if ":" in ip else (ip, port),
                )
                for ip in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    answers["__lookups__"] = lookups  # type: ignore[assignment]
    return answers


def test_fetch_returns_the_exact_bytes_from_an_allow_listed_loopback_server(allowed):
    allowed.routes["/coffee.png"] = Route(body=PNG, headers={"Content-Type": "image/png"})

    assert fetch_image_bytes(allowed.url("/coffee.png")) == PNG
    assert allowed.requests[0].headers["Host"] == f"127.0.0.1:{allowed.port}"
    assert allowed.requests[0].headers["User-Agent"] == fetch.USER_AGENT


def test_loopback_is_refused_without_the_allow_list_and_nothing_is_sent(settings, server, dials):
    settings.GENERATOR_FETCH_PORTS = [server.port]
    server.routes["/img"] = Route(body=PNG)

    with pytest.raises(FetchError, match="private, loopback or reserved"):
        fetch_image_bytes(server.url("/img"))
    assert server.requests == []
    assert dials == []


def test_a_404_fails_with_the_status(allowed):
    with pytest.raises(FetchError, match="^server answered 404$"):
        fetch_image_bytes(allowed.url("/missing.png"))


def test_a_500_fails_with_the_status(allowed):
    allowed.routes["/boom"] = Route(status=500, body=b"oops")
    with pytest.raises(FetchError, match="^server answered 500$"):
        fetch_image_bytes(allowed.url("/boom"))


def test_three_redirects_are_followed(allowed):
    allowed.routes["/r1"] = Route(status=301, headers={"Location": "/r2"})
    allowed.routes["/r2"] = Route(status=302, headers={"Location": allowed.url("/r3")})
    allowed.routes["/r3"] = Route(status=307, headers={"Location": "img.png"})
    allowed.routes["/img.png"] = Route(body=PNG)

    assert fetch_image_bytes(allowed.url("/r1")) == PNG
    assert allowed.paths() == ["/r1", "/r2", "/r3", "/img.png"]


def test_a_fourth_redirect_is_refused_and_not_followed(allowed):
    for i in range(1, 5):
        allowed.routes[f"/r{i}"] = Route(status=302, headers={"Location": f"/r{i + 1}"})
    allowed.routes["/r5"] = Route(body=PNG)

    with pytest.raises(FetchError, match=r"^too many redirects \(max 3\)$"):
        fetch_image_bytes(allowed.url("/r1"))
    assert allowed.paths() == ["/r1", "/r2", "/r3", "/r4"]


def test_a_redirect_without_location_fails(allowed):
    allowed.routes["/r"] = Route(status=302)
    with pytest.raises(FetchError, match="302 without a Location"):
        fetch_image_bytes(allowed.url("/r"))


def test_redirect_from_allow_listed_host_to_another_loopback_port_is_refused(allowed, other_server, dials):
    other_server.routes["/img"] = Route(body=PNG)
    allowed.routes["/hop"] = Route(status=302, headers={"Location": other_server.url("/img")})

    with pytest.raises(FetchError, match=f"port {other_server.port} is not allowed"):
        fetch_image_bytes(allowed.url("/hop"))
    assert other_server.requests == []
    assert dials == [("127.0.0.1", allowed.port)]


def test_redirect_from_allow_listed_host_to_localhost_is_refused(allowed, dials):
    allowed.routes["/hop"] = Route(status=302, headers={"Location": allowed.url("/img", host="localhost")})
    allowed.routes["/img"] = Route(body=PNG)

    with pytest.raises(FetchError, match="not allowed"):
        fetch_image_bytes(allowed.url("/hop"))
    assert allowed.paths() == ["/hop"]


def test_redirect_to_localhost_on_an_allowed_port_is_refused_by_resolution(settings, allowed, dials):
    settings.GENERATOR_FETCH_PORTS = [80, 443, allowed.port]
    allowed.routes["/hop"] = Route(status=302, headers={"Location": allowed.url("/img", host="localhost")})
    allowed.routes["/img"] = Route(body=PNG)

    with pytest.raises(FetchError, match="^host localhost resolves to a private, loopback or reserved address$"):
        fetch_image_bytes(allowed.url("/hop"))
    assert allowed.paths() == ["/hop"]
    assert dials == [("127.0.0.1", allowed.port)]


def test_redirect_to_a_non_http_scheme_is_refused(allowed):
    allowed.routes["/hop"] = Route(status=302, headers={"Location": "file:///etc/passwd"})
    with pytest.raises(FetchError, match="only http and https"):
        fetch_image_bytes(allowed.url("/hop"))


def test_plain_body_over_the_cap_is_refused_while_streaming(allowed):
    # No Content-Length: the cap has to be enforced on the bytes as they arrive.
    allowed.routes["/big"] = Route(body=b"\xff" * (MB + 1), content_length=False)
    with pytest.raises(FetchError, match="^image is larger than 1 MB$"):
        fetch_image_bytes(allowed.url("/big"), max_bytes=MB)


def test_body_exactly_at_the_cap_is_accepted(allowed):
    allowed.routes["/exact"] = Route(body=b"\x01" * MB, content_length=False)
    assert len(fetch_image_bytes(allowed.url("/exact"), max_bytes=MB)) == MB


def test_declared_length_over_the_cap_is_refused(allowed):
    allowed.routes["/big"] = Route(body=b"\xff" * (MB + 1))
    with pytest.raises(FetchError, match="larger than 1 MB"):
        fetch_image_bytes(allowed.url("/big"), max_bytes=MB)


def test_default_cap_comes_from_settings_and_reads_in_megabytes(settings, allowed):
    settings.GENERATOR_FETCH_MAX_BYTES = 2 * MB
    allowed.routes["/big"] = Route(body=b"\x00" * (2 * MB + 1), content_length=False)
    with pytest.raises(FetchError, match="^image is larger than 2 MB$"):
        fetch_image_bytes(allowed.url("/big"))


def test_gzip_encoded_image_is_decoded(allowed):
    allowed.routes["/z"] = Route(body=gzip.compress(PNG), headers={"Content-Encoding": "gzip"})
    assert fetch_image_bytes(allowed.url("/z")) == PNG


def test_deflate_encoded_image_is_decoded_zlib_and_raw(allowed):
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    allowed.routes["/zlib"] = Route(body=zlib.compress(PNG), headers={"Content-Encoding": "deflate"})
    allowed.routes["/raw"] = Route(body=raw.compress(PNG) + raw.flush(), headers={"Content-Encoding": "deflate"})
    assert fetch_image_bytes(allowed.url("/zlib")) == PNG
    assert fetch_image_bytes(allowed.url("/raw")) == PNG


def test_gzip_bomb_stops_at_the_cap_on_decoded_bytes(allowed):
    bomb = gzip.compress(b"\x00" * (64 * MB))
    assert len(bomb) < MB // 4  # small on the wire, so only the decoded count can catch it
    allowed.routes["/bomb"] = Route(body=bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="^image is larger than 1 MB$"):
        fetch_image_bytes(allowed.url("/bomb"), max_bytes=MB)


def test_decoder_never_inflates_past_the_budget():
    bomb = gzip.compress(b"\x00" * (64 * MB))
    assert len(fetch._Decoder("gzip").decode(bomb, 1000)) == 1001


def test_unsupported_content_encoding_is_refused(allowed):
    allowed.routes["/br"] = Route(body=b"xx", headers={"Content-Encoding": "br"})
    with pytest.raises(FetchError, match="unsupported content encoding 'br'"):
        fetch_image_bytes(allowed.url("/br"))


def test_corrupt_gzip_is_refused(allowed):
    allowed.routes["/bad"] = Route(body=b"\x1f\x8bnot gzip at all", headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="corrupt"):
        fetch_image_bytes(allowed.url("/bad"))


def test_slow_server_hits_the_read_timeout(monkeypatch, allowed):
    monkeypatch.setattr(fetch, "READ_TIMEOUT_S", 0.3)
    allowed.routes["/slow"] = Route(body=PNG, delay_s=5)

    started = time.monotonic()
    with pytest.raises(FetchError, match="read timed out"):
        fetch_image_bytes(allowed.url("/slow"))
    assert time.monotonic() - started < 2


def test_dripping_server_hits_the_total_deadline(monkeypatch, allowed):
    # Each byte arrives well inside the read timeout; only the total deadline can stop this.
    monkeypatch.setattr(fetch, "READ_TIMEOUT_S", 1.0)
    monkeypatch.setattr(fetch, "TOTAL_DEADLINE_S", 0.8)
    allowed.routes["/drip"] = Route(body=b"x" * 100, drip_s=0.05)

    started = time.monotonic()
    with pytest.raises(FetchError, match=r"^download took longer than 0.8 s$"):
        fetch_image_bytes(allowed.url("/drip"))
    assert time.monotonic() - started < 1.5


def test_closed_port_fails_with_could_not_connect(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [f"127.0.0.1:{port}"]
    with pytest.raises(FetchError, match="^could not connect to 127.0.0.1$"):
        fetch_image_bytes(f"http://127.0.0.1:{port}/x.png")


def test_connection_goes_to_the_pinned_address_with_the_host_name_kept(settings, allowed, dns, dials):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [f"images.test:{allowed.port}"]
    dns["images.test"] = ["127.0.0.1"]
    allowed.routes["/coffee.png"] = Route(body=PNG)

    assert fetch_image_bytes(f"http://images.test:{allowed.port}/coffee.png") == PNG
    assert allowed.requests[0].headers["Host"] == f"images.test:{allowed.port}"
    assert dials == [("127.0.0.1", allowed.port)]
    assert dns["__lookups__"].count("images.test") == 1


def test_a_resolver_that_changes_its_answer_after_the_check_is_never_asked_again(settings, allowed, dials, monkeypatch):
    # DNS rebinding: the first answer is checked and pinned; a later answer would point elsewhere.
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [f"images.test:{allowed.port}"]
    allowed.routes["/coffee.png"] = Route(body=PNG)
    answers = iter(["127.0.0.1", "10.0.0.1", "10.0.0.1"])
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "images.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert fetch_image_bytes(f"http://images.test:{allowed.port}/coffee.png") == PNG
    assert lookups == ["images.test"]
    assert dials == [("127.0.0.1", allowed.port)]


def test_unresolvable_host_is_refused_with_its_name(dns, dials):
    with pytest.raises(FetchError, match="^could not resolve host nothing.invalid$"):
        fetch_image_bytes("http://nothing.invalid/x.png")
    assert dials == []


def test_userinfo_and_bad_ports_are_refused_before_resolving(dns, dials):
    for url, message in [
        ("http://user:pw@example.com/x.png", "user information"),
        ("http://example.com:8080/x.png", "port 8080 is not allowed"),
        ("ftp://example.com/x.png", "only http and https"),
        ("http://exa mple.com/x.png", "whitespace or control"),
    ]:
        with pytest.raises(FetchError, match=message):
            fetch_image_bytes(url)
    assert dns["__lookups__"] == []
    assert dials == []


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_loopback_ip_literals_are_refused_before_resolving(host, dns, dials):
    with pytest.raises(FetchError, match="private, loopback or reserved"):
        fetch_image_bytes(f"http://{host}/x.png")
    assert dns["__lookups__"] == []
    assert dials == []


@pytest.mark.parametrize("host", ["localhost", "localhost.", "LOCALHOST"])
def test_loopback_names_resolve_and_are_refused_without_connecting(host, dns, dials):
    with pytest.raises(FetchError, match="^host localhost resolves to a private, loopback or reserved address$"):
        fetch_image_bytes(f"http://{host}/x.png")
    assert len(dns["__lookups__"]) == 1
    assert dials == []


PRIVATE_ANSWERS = [
    "10.0.0.1",
    "172.16.5.4",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.254",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "64:ff9b::10.0.0.1",
    "2002:0a00:0001::",
    "::ffff:10.0.0.1",
    "224.0.0.1",
    # Python 3.11 calls these global; the policy denies them (and Teredo) explicitly.
    "::8.8.8.8",
    "::a00:1",
    "fec0::1",
    "5f00::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
]


@pytest.mark.parametrize("address", PRIVATE_ANSWERS)
def test_name_resolving_to_a_private_range_is_refused_without_connecting(address, dns, dials):
    dns["internal.test"] = [address]
    with pytest.raises(FetchError, match="^host internal.test resolves to a private, loopback or reserved address$"):
        fetch_image_bytes("https://internal.test/x.png")
    assert dials == []


@pytest.mark.parametrize("address", PRIVATE_ANSWERS)
def test_private_ip_literals_are_refused_before_resolving(address, dns, dials):
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(FetchError, match="private, loopback or reserved"):
        fetch_image_bytes(f"http://{host}/x.png")
    assert dns["__lookups__"] == []
    assert dials == []


def test_one_private_address_among_public_ones_refuses_the_host(dns, dials):
    dns["mixed.test"] = ["93.184.216.34", "10.0.0.1"]
    with pytest.raises(FetchError, match="resolves to a private"):
        fetch_image_bytes("http://mixed.test/x.png")
    assert dials == []


@pytest.mark.parametrize("host", ["metadata.google.internal", "metadata.google.internal.", "metadata"])
def test_metadata_names_are_refused_before_resolving(host, dns, dials):
    dns[host] = ["169.254.169.254"]
    with pytest.raises(FetchError, match="cloud metadata service"):
        fetch_image_bytes(f"http://{host}/computeMetadata/v1/")
    assert dns["__lookups__"] == []
    assert dials == []


def test_metadata_name_stays_refused_even_when_allow_listed(settings, dns, dials):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = ["metadata.google.internal"]
    with pytest.raises(FetchError, match="cloud metadata service"):
        fetch_image_bytes("http://metadata.google.internal/")
    assert dials == []


def test_public_answer_is_dialled_only_at_the_checked_address(dns, dials):
    # The dialler stub refuses it, so nothing leaves the machine; the point is where it would have gone.
    dns["public.test"] = ["93.184.216.34"]
    with pytest.raises(FetchError, match="^could not connect to public.test$"):
        fetch_image_bytes("http://public.test/x.png")
    assert dials == [("93.184.216.34", 80)]


def test_environment_proxies_are_ignored(monkeypatch, allowed):
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
    allowed.routes["/img"] = Route(body=PNG)
    assert fetch_image_bytes(allowed.url("/img")) == PNG


def _make_tls(tmp_path: Path, hostname: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Return (server context with a leaf for hostname, client context trusting only the test CA)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fetch test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)
    client_ctx = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server_ctx, client_ctx


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """An HTTPS loopback server whose certificate names images.test; records the SNI it was sent."""
    server_ctx, client_ctx = _make_tls(tmp_path, "images.test")
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)
    monkeypatch.setattr(fetch, "_ssl_context", lambda: client_ctx)
    srv = LoopbackServer(ssl_context=server_ctx)
    srv.sni = sni
    yield srv
    srv.close()


def test_https_to_a_pinned_address_sends_sni_and_verifies_the_host_name(settings, tls_server, dns, dials):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [f"images.test:{tls_server.port}"]
    dns["images.test"] = ["127.0.0.1"]
    tls_server.routes["/coffee.png"] = Route(body=PNG)

    assert fetch_image_bytes(f"https://images.test:{tls_server.port}/coffee.png") == PNG
    assert tls_server.sni == ["images.test"]
    assert tls_server.requests[0].headers["Host"] == f"images.test:{tls_server.port}"
    assert dials == [("127.0.0.1", tls_server.port)]


def test_https_certificate_for_another_name_is_refused(settings, tls_server, dns):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [f"cdn.test:{tls_server.port}"]
    dns["cdn.test"] = ["127.0.0.1"]
    tls_server.routes["/coffee.png"] = Route(body=PNG)

    with pytest.raises(FetchError, match="^TLS handshake with cdn.test failed"):
        fetch_image_bytes(f"https://cdn.test:{tls_server.port}/coffee.png")
    assert tls_server.sni == ["cdn.test"]
    assert tls_server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://%31%32%37.0.0.1/x.png",  # percent-encoded 127
        "http://ｌｏｃａｌｈｏｓｔ/x.png",  # full-width letters that normalise to localhost
        "http://①②⑦.0.0.1/x.png",  # circled digits that normalise to 127
        "http://127.0.0.1#@example.com/",
        "http://[::ffff:7f00:1]/",
        "http://0177.1/",
    ],
)
def test_url_parser_tricks_never_reach_loopback(url, dials):
    with pytest.raises(FetchError):
        fetch_image_bytes(url)
    assert dials == []


def test_redirect_with_a_malformed_location_fails_readably(allowed):
    allowed.routes["/hop"] = Route(status=302, headers={"Location": "http://[bad"})
    with pytest.raises(FetchError, match="malformed"):
        fetch_image_bytes(allowed.url("/hop"))


def test_redirect_into_a_private_range_by_name_is_refused_without_connecting(allowed, dns, dials):
    dns["internal.test"] = ["10.0.0.5"]
    allowed.routes["/hop"] = Route(status=302, headers={"Location": "http://internal.test/secret"})
    with pytest.raises(FetchError, match="^host internal.test resolves to a private"):
        fetch_image_bytes(allowed.url("/hop"))
    assert dials == [("127.0.0.1", allowed.port)]


@pytest.mark.parametrize("address", ["::a00:1", "fec0::5", "5f00::1", "2001:0:808:808:0:f7f7:f7f7:f7f7"])
def test_redirect_to_a_name_resolving_to_an_ipv6_form_python_calls_global_is_refused(allowed, dns, dials, address):
    dns["tunnel.test"] = [address]
    allowed.routes["/hop"] = Route(status=302, headers={"Location": "https://tunnel.test/secret"})
    with pytest.raises(FetchError, match="^host tunnel.test resolves to a private"):
        fetch_image_bytes(allowed.url("/hop"))
    assert dials == [("127.0.0.1", allowed.port)]


def test_connect_timeout_is_five_seconds_and_reads_as_connection_timed_out(dns, monkeypatch):
    dns["slow.test"] = ["93.184.216.34"]
    timeouts = []

    def create_connection(address, timeout=None, **kwargs):
        timeouts.append(timeout)
        raise TimeoutError("stubbed: the SYN went unanswered")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    with pytest.raises(FetchError, match=r"^connection timed out \(slow.test\)$"):
        fetch_image_bytes("https://slow.test/x.png")
    assert len(timeouts) == 1
    assert 4.9 < timeouts[0] <= fetch.CONNECT_TIMEOUT_S == 5.0


def test_every_address_of_a_host_is_tried_in_order(dns, dials):
    dns["dual.test"] = ["2606:2800:220:1::1", "93.184.216.34"]
    with pytest.raises(FetchError, match="^could not connect to dual.test$"):
        fetch_image_bytes("http://dual.test/x.png")
    assert dials == [("2606:2800:220:1::1", 80), ("93.184.216.34", 80)]


@pytest.mark.parametrize("url", ["https://xn--/a.jpg", "http://xn--zz.example/a.jpg"])
def test_malformed_idna_host_fails_as_a_fetch_error_without_dialling(url, dials):
    with pytest.raises(FetchError, match="^URL host is not a valid name$"):
        fetch_image_bytes(url)
    assert dials == []


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://xn--/img.png", "^URL host is not a valid name$"),
        ("http://\u2603.example/img.png", "invalid or incomplete HTTP response"),
    ],
)
def test_redirect_to_a_malformed_idna_host_fails_as_a_fetch_error(allowed, location, message):
    allowed.routes["/r"] = Route(status=302, headers={"Location": location})
    with pytest.raises(FetchError, match=message):
        fetch_image_bytes(allowed.url("/r"))
    assert allowed.paths() == ["/r"]
