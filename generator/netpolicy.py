"""The outbound address policy shared by input URLs, webhooks and storage endpoints (docs/security.md).

Syntax checks (scheme, userinfo, control characters, port, IP literals in any spelling the C
resolver accepts) run at submit time; name resolution runs in the worker (generator/fetch.py).
An address is public when it is globally routable, is in none of the IPv6 ranges denied below
(which Python's is_global lets through), and every IPv4 address it embeds (IPv4-mapped,
IPv4-compatible, 6to4, NAT64, Teredo) is public too.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
SIXTOFOUR = ipaddress.ip_network("2002::/16")
TEREDO = ipaddress.ip_network("2001::/32")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Ranges that Python's is_global calls global (3.11) but that no public server lives in:
# IPv4-compatible ::/96 (deprecated by RFC 4291; ::a.b.c.d reaches a.b.c.d on some stacks),
# site-local fec0::/10 (deprecated by RFC 3879, still routed inside some sites) and the SRv6 SID
# block 5f00::/16 (RFC 9602: not globally reachable). Teredo 2001::/32 is a tunnel whose packets
# go to the IPv4 addresses it embeds; it is refused whatever they are.
DENIED_IPV6 = (
    IPV4_COMPATIBLE,
    ipaddress.ip_network("fec0::/10"),
    ipaddress.ip_network("5f00::/16"),
    TEREDO,
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
    }
)
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


class UrlRejected(ValueError):
    """The URL or address is not allowed; the message is user-facing."""


def parse_ip_literal(host: str) -> IPAddress | None:
    """Return the address a host literal denotes in any spelling the C resolver accepts, else None."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]  # an IPv6 zone id never makes an address public
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not re.fullmatch(r"[0-9a-fA-FxX.]+", host.rstrip(".")):
        return None
    try:
        # inet_aton accepts the classic forms: 127.1, 0x7f.1, 2130706433, 017700000001.
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except OSError:
        return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """Return the IPv4 addresses an IPv6 address carries traffic to (mapped, 6to4, NAT64, Teredo, ::/96)."""
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip in SIXTOFOUR:
        return (ip.sixtofour,)  # type: ignore[return-value]
    if ip.teredo is not None:
        server, client = ip.teredo
        return (server, client)
    if ip in IPV4_COMPATIBLE or any(ip in prefix for prefix in NAT64_PREFIXES):
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    return ()


def is_public_address(ip: IPAddress) -> bool:
    """Return True when the address, and every IPv4 address it embeds, is globally routable."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        if any(not is_public_address(inner) for inner in embedded):
            return False
        if any(ip in net for net in DENIED_IPV6):
            return False
        if embedded:
            # A translated form (mapped, 6to4, NAT64) is as public as the IPv4 address it reaches.
            return True
    if isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT:
        return False
    return bool(ip.is_global) and not ip.is_multicast


def address_allowed(ip: IPAddress, *, extra_nets: Iterable[str] = ()) -> bool:
    """Return True for a public address or one inside an operator-allowed network."""
    if is_public_address(ip):
        return True
    for net in extra_nets:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def host_allowed_by_list(host: str, port: int, allow_hosts: Iterable[str]) -> bool:
    """Return True when `host` or `host:port` is on the development allow-list."""
    host = host.lower().rstrip(".")
    entries = {entry.strip().lower() for entry in allow_hosts if entry.strip()}
    return host in entries or f"{host}:{port}" in entries


def _check_host_name(url: str) -> None:
    """Refuse a host the fetcher could not encode or decode (e.g. the malformed A-label "xn--")."""
    try:
        # httpx is what dials (generator/fetch.py): it IDNA-encodes non-ASCII names and decodes
        # "xn--" ones, and idna refuses what no DNS name can be.
        _ = httpx.URL(url).host
    except httpx.InvalidURL as exc:
        if "IDNA" in str(exc):
            raise UrlRejected("URL host is not a valid name") from None
        raise UrlRejected("URL is malformed") from None
    except UnicodeError:  # idna.IDNAError
        raise UrlRejected("URL host is not a valid name") from None


def check_url_syntax(
    url: str,
    *,
    ports: Iterable[int] = (80, 443),
    allow_hosts: Iterable[str] = (),
    extra_nets: Iterable[str] = (),
) -> tuple[str, str, int]:
    """Check a URL without resolving it; return (scheme, host, port) or raise UrlRejected."""
    if not isinstance(url, str) or not url:
        raise UrlRejected("URL is empty")
    if _CONTROL.search(url):
        raise UrlRejected("URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRejected("URL is malformed") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise UrlRejected("only http and https URLs are allowed")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UrlRejected("URLs with user information are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRejected("URL has no host")
    _check_host_name(url)
    port = port if port is not None else (443 if scheme == "https" else 80)
    if host_allowed_by_list(host, port, allow_hosts):
        return scheme, host, port
    if port not in set(ports):
        raise UrlRejected(f"port {port} is not allowed")
    ip = parse_ip_literal(host)
    if ip is not None and not address_allowed(ip, extra_nets=extra_nets):
        raise UrlRejected("URL points to a private, loopback or reserved address")
    return scheme, host, port


def is_metadata_name(host: str) -> bool:
    """Return True for cloud metadata host names (refused at resolution time, in the worker)."""
    return host.lower().rstrip(".") in METADATA_NAMES


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Resolve a host name to its distinct TCP addresses; raise UrlRejected when it has none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UrlRejected(f"could not resolve host {host}") from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise UrlRejected(f"could not resolve host {host}")
    return addresses


def check_host_addresses(
    host: str,
    port: int,
    *,
    allow_hosts: Iterable[str] = (),
    extra_nets: Iterable[str] = (),
) -> list[IPAddress]:
    """Return the addresses to connect to for host:port, refusing the host if any one is not allowed."""
    if is_metadata_name(host):
        # Named before the allow-list: a metadata service is never a development convenience.
        raise UrlRejected(f"host {host.rstrip('.')} is a cloud metadata service")
    literal = parse_ip_literal(host)
    # A trailing dot only marks the name absolute; /etc/hosts-style resolvers may not know "localhost.".
    addresses = [literal] if literal is not None else resolve_host(host.rstrip(".") or host, port)
    if host_allowed_by_list(host, port, allow_hosts):
        return addresses
    extra_nets = tuple(extra_nets)
    # One bad address refuses the whole host: the resolver may hand out any of them later.
    if any(not address_allowed(ip, extra_nets=extra_nets) for ip in addresses):
        if literal is not None:
            raise UrlRejected(f"address {host} is private, loopback or reserved")
        raise UrlRejected(f"host {host.rstrip('.')} resolves to a private, loopback or reserved address")
    return addresses


# Names no outside service can reach: local-only or reserved for documentation and tests (RFC 6761,
# RFC 8375), and the suffixes private networks commonly use.
LOCAL_ONLY_SUFFIXES = (
    ".localhost",
    ".local",
    ".localdomain",
    ".internal",
    ".lan",
    ".home",
    ".corp",
    ".home.arpa",
    ".test",
    ".example",
    ".invalid",
)


def reachable_from_outside(url: str, *, allow_hosts: Iterable[str] = ()) -> bool:
    """Return True when an outside service (an upstream engine) could fetch or call this URL, judged without DNS.

    An IP literal must be public; a name must have a dot, and neither be `localhost` nor end in
    a local-only or reserved suffix. A host on `allow_hosts` counts as reachable: in development
    the loopback fakes standing in for the upstreams dial it.
    """
    try:
        scheme, host, port = check_url_syntax(url, ports=range(1, 65536), allow_hosts=allow_hosts)
    except UrlRejected:
        return False
    if host_allowed_by_list(host, port, allow_hosts):
        return True
    if parse_ip_literal(host) is not None:
        return True  # check_url_syntax refused every private, loopback or reserved literal
    name = host.lower()
    if "." not in name or name == "localhost" or is_metadata_name(name):
        return False
    return not name.endswith(LOCAL_ONLY_SUFFIXES)
