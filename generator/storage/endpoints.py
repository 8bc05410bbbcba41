"""The address policy for a storage's custom `endpoint_url` (docs/security.md).

Decisions:
- Syntax as for input URLs (http/https, no userinfo, no control characters, IP literals must be
  public), plus: no query or fragment.
- Ports: a public endpoint must use one of GENERATOR_FETCH_PORTS (80/443 by default: every public
  S3-compatible service listens there). An endpoint whose every address lies inside
  GENERATOR_STORAGE_ENDPOINT_NETS (an operator's MinIO on 10.x:9000) may use any port, because
  the operator vouched for that network. Hosts on GENERATOR_FETCH_ALLOW_HOSTS skip the address
  and port checks (development only, e.g. an emulator on 127.0.0.1:<port>).
- Resolution: every address the host resolves to must be public or inside
  GENERATOR_STORAGE_ENDPOINT_NETS, else the whole endpoint is refused. It runs when a storage is
  saved and again every time a connector is built (each job, each browse).

- DNS rebinding: check_endpoint_address returns the addresses it checked, and the S3 connector
  dials only those (storage/pinning.py), with the host name kept for the Host header, TLS SNI and
  the certificate check. A hostile DNS server that answers a public address to our check and a
  private one to the client's own lookup gains nothing: the client does no lookup of its own.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from django.conf import settings

from generator.netpolicy import (
    UrlRejected,
    address_allowed,
    check_url_syntax,
    host_allowed_by_list,
    is_metadata_name,
    parse_ip_literal,
)

ALL_PORTS = range(1, 65536)


def _in_operator_nets(ip) -> bool:
    nets = settings.GENERATOR_STORAGE_ENDPOINT_NETS
    return bool(nets) and address_allowed(ip, extra_nets=nets) and not address_allowed(ip, extra_nets=())


def check_endpoint_syntax(url: str) -> str:
    """Return the endpoint URL without a trailing '/' if its syntax is allowed, else raise UrlRejected."""
    if not isinstance(url, str):
        raise UrlRejected("endpoint_url must be a string")
    _scheme, host, port = check_url_syntax(
        url,
        ports=ALL_PORTS,  # the port rule needs the resolved addresses: see check_endpoint_address
        allow_hosts=settings.GENERATOR_FETCH_ALLOW_HOSTS,
        extra_nets=settings.GENERATOR_STORAGE_ENDPOINT_NETS,
    )
    parts = urlsplit(url)
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise UrlRejected("endpoint_url must not have a query or fragment")
    if len(url) > 500:
        raise UrlRejected("endpoint_url is longer than 500 characters")
    allowed = host_allowed_by_list(host, port, settings.GENERATOR_FETCH_ALLOW_HOSTS)
    ip = parse_ip_literal(host)
    if not allowed and ip is not None and port not in settings.GENERATOR_FETCH_PORTS and not _in_operator_nets(ip):
        raise UrlRejected(f"port {port} is not allowed for a public endpoint")
    return url.rstrip("/")


def check_endpoint_address(url: str) -> tuple[str, ...] | None:
    """Resolve the endpoint's host and refuse it unless every address is allowed; raise UrlRejected.

    Return the checked addresses, for the connector to dial (and nothing else), or None for a host
    on GENERATOR_FETCH_ALLOW_HOSTS (not resolved: the operator vouched for it).
    """
    check_endpoint_syntax(url)
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    if host_allowed_by_list(host, port, settings.GENERATOR_FETCH_ALLOW_HOSTS):
        return None
    if is_metadata_name(host):
        raise UrlRejected("endpoint_url points to a cloud metadata service")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UrlRejected(f"endpoint_url host {host!r} cannot be resolved") from None
    parsed = [parse_ip_literal(str(info[4][0])) for info in infos]
    addresses = {ip for ip in parsed if ip is not None}
    if not parsed or len(addresses) < len(set(parsed)):
        raise UrlRejected(f"endpoint_url host {host!r} cannot be resolved")
    nets = settings.GENERATOR_STORAGE_ENDPOINT_NETS
    for ip in addresses:
        if not address_allowed(ip, extra_nets=nets):
            raise UrlRejected("endpoint_url resolves to a private, loopback or reserved address")
    if port not in settings.GENERATOR_FETCH_PORTS and not all(_in_operator_nets(ip) for ip in addresses):
        raise UrlRejected(f"port {port} is not allowed for a public endpoint")
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))
