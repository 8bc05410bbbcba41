"""The one safe outbound HTTP client: input images and webhooks (docs/security.md).

Every hop is checked twice: the URL's syntax (netpolicy.check_url_syntax), then the host's
addresses (netpolicy.check_host_addresses). The checked addresses are pinned in a custom httpcore
network backend, so the socket dials exactly those addresses (no second DNS lookup, hence no DNS
rebinding) while the URL keeps the host name: the Host header, TLS SNI and certificate
verification all stay on the name.
"""

from __future__ import annotations

import functools
import ssl
import time
import zlib
from collections.abc import Iterable
from types import TracebackType
from urllib.parse import urljoin

import httpcore
import httpx
from django.conf import settings

from generator import netpolicy

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0
TOTAL_DEADLINE_S = 30.0
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
WEBHOOK_RESPONSE_MAX_BYTES = 64 * 1024
USER_AGENT = "generator-fetch/1.0"
_MB = 1024 * 1024


class FetchError(Exception):
    """The URL could not be fetched; the message is user-facing."""


class _Deadline:
    """A total time budget shared by every connect, read and write of one fetch."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def clamp(self, timeout: float | None, exc_class: type[Exception]) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise exc_class("total deadline exceeded")
        return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write also stops at the fetch's total deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._deadline)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Dial only addresses that were checked for (host, port); anything else fails closed."""

    def __init__(self, deadline: _Deadline) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline
        self._pins: dict[tuple[str, int], tuple[netpolicy.IPAddress, ...]] = {}

    def pin(self, host: str, port: int, addresses: Iterable[netpolicy.IPAddress]) -> None:
        self._pins[(host.lower(), port)] = tuple(addresses)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = self._pins.get((host.lower(), port))
        if not addresses:
            raise httpcore.ConnectError(f"{host}:{port} was not checked by the address policy")
        error: Exception | None = None
        for ip in addresses:
            try:
                stream = self._inner.connect_tcp(
                    str(ip),
                    port,
                    timeout=self._deadline.clamp(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        raise error  # type: ignore[misc]

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Return the TLS context: certifi's roots, hostname checking on, nothing from the environment.

    Built once per process and shared (it is not changed after this): loading the roots costs
    about 18 ms of CPU, more than the rest of an upstream poll's call (bench/upstream.py).
    """
    return httpx.create_ssl_context(trust_env=False)


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's own transport (exception mapping, streaming) over a pool that uses the pinned backend."""

    def __init__(self, backend: _PinnedBackend) -> None:
        ssl_context = _ssl_context()
        super().__init__(verify=ssl_context, trust_env=False, http1=True, http2=False, retries=0)
        # httpx 0.28 has no network_backend argument (encode/httpx#3749), so swap the pool it built.
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=4,
            max_keepalive_connections=0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=backend,
        )


class SafeClient:
    """An HTTP client that connects only to hosts and addresses the policy allows."""

    def __init__(self, *, deadline_s: float | None = None) -> None:
        self.deadline = _Deadline(TOTAL_DEADLINE_S if deadline_s is None else deadline_s)
        self._backend = _PinnedBackend(self.deadline)
        self._client = httpx.Client(
            transport=_PinnedTransport(self._backend),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(
                connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S, write=READ_TIMEOUT_S, pool=CONNECT_TIMEOUT_S
            ),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        )

    def __enter__(self) -> SafeClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.close()

    def check(self, url: str) -> str:
        """Check one hop's URL and pin its addresses; return the host name for messages."""
        allow_hosts = list(settings.GENERATOR_FETCH_ALLOW_HOSTS)
        try:
            scheme, host, port = netpolicy.check_url_syntax(
                url, ports=settings.GENERATOR_FETCH_PORTS, allow_hosts=allow_hosts
            )
        except netpolicy.UrlRejected as exc:
            raise FetchError(str(exc)) from None
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            raise FetchError("URL is malformed") from None
        try:
            # An "xn--" host is decoded by idna here, which refuses a malformed A-label.
            parsed_host = parsed.host
        except UnicodeError:
            raise FetchError("URL host is not a valid name") from None
        # httpx sends what it parsed, so the names checked and the names dialled must agree.
        wire_port = parsed.port or (443 if parsed.scheme == "https" else 80)
        if parsed.scheme != scheme or parsed_host.lower().rstrip(".") != host.lower() or wire_port != port:
            raise FetchError("URL is malformed")
        wire_host = parsed.raw_host.decode("ascii").lower()
        try:
            addresses = netpolicy.check_host_addresses(wire_host, port, allow_hosts=allow_hosts)
        except netpolicy.UrlRejected as exc:
            raise FetchError(str(exc)) from None
        self._backend.pin(wire_host, port, addresses)
        return host

    def open(self, method: str, url: str, *, content: bytes | None = None, headers: dict | None = None):
        """Check url, send one request and return the streaming response (close it)."""
        host = self.check(url)
        request = self._client.build_request(method, url, content=content, headers=headers)
        try:
            return self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self.describe(exc, host) from None
        except UnicodeError:
            # httpx reads a redirect's Location host even when not following it; idna refuses
            # a malformed A-label there (the response is closed by httpx).
            raise FetchError("URL host is not a valid name") from None

    def describe(self, exc: httpx.HTTPError, host: str) -> FetchError:
        """Turn a transport error into a readable FetchError."""
        if self.deadline.expired:
            return FetchError(f"download took longer than {self.deadline.seconds:g} s")
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return FetchError(f"connection timed out ({host})")
        if isinstance(exc, httpx.TimeoutException):
            return FetchError(f"server {host} stopped sending data (read timed out)")
        if isinstance(exc, httpx.ConnectError):
            text = str(exc)
            if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
                return FetchError(f"TLS handshake with {host} failed (certificate not valid for this host?)")
            return FetchError(f"could not connect to {host}")
        if isinstance(exc, httpx.ReadError | httpx.WriteError):
            return FetchError(f"connection to {host} was closed unexpectedly")
        if isinstance(exc, httpx.RemoteProtocolError):
            return FetchError(f"server {host} sent an invalid or incomplete HTTP response")
        return FetchError(f"request to {host} failed")


class _Decoder:
    """Content-decode gzip/deflate bodies without ever producing more than a budget of bytes."""

    def __init__(self, encoding: str) -> None:
        encoding = encoding.strip().lower()
        self._gzip = encoding in {"gzip", "x-gzip"}
        if encoding in {"", "identity"}:
            self._z = None
        elif self._gzip:
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise FetchError(f"unsupported content encoding {encoding!r}")
        self._started = False

    @property
    def identity(self) -> bool:
        return self._z is None

    def decode(self, data: bytes, budget: int) -> bytes:
        """Return the decoded bytes of data, stopping once more than budget bytes came out."""
        if self._z is None:
            return data
        out = bytearray()
        while data:
            try:
                # max_length bounds memory: a gzip bomb never inflates past the cap (+1 to notice).
                out += self._z.decompress(data, budget - len(out) + 1)
            except zlib.error:
                if self._gzip or self._started:
                    raise FetchError("image data is corrupt (bad compressed stream)") from None
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # servers often send raw deflate
                self._started = True
                continue
            self._started = True
            if len(out) > budget:
                break
            data = self._z.unconsumed_tail
            if self._z.eof:
                data = self._z.unused_data
                if not (data and self._gzip):
                    break
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)  # a further gzip member
        return bytes(out)


def _size_text(max_bytes: int) -> str:
    return f"{max_bytes / _MB:g} MB" if max_bytes % (_MB // 4) == 0 else f"{max_bytes} bytes"


def _read_body(client: SafeClient, response: httpx.Response, host: str, max_bytes: int) -> bytes:
    decoder = _Decoder(response.headers.get("content-encoding", ""))
    declared = response.headers.get("content-length", "")
    if decoder.identity and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"image is larger than {_size_text(max_bytes)}")
    body = bytearray()
    try:
        for chunk in response.iter_raw():
            body += decoder.decode(chunk, max_bytes - len(body))
            if len(body) > max_bytes:
                raise FetchError(f"image is larger than {_size_text(max_bytes)}")
            if client.deadline.expired:
                raise FetchError(f"download took longer than {client.deadline.seconds:g} s")
    except httpx.HTTPError as exc:
        raise client.describe(exc, host) from None
    return bytes(body)


def fetch_image_bytes(url: str, *, max_bytes: int | None = None) -> bytes:
    """Download an input URL under the address policy, following at most 3 checked redirects."""
    max_bytes = max_bytes or settings.GENERATOR_FETCH_MAX_BYTES
    with SafeClient() as client:
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            response = client.open("GET", current, headers={"Accept": "image/*, */*;q=0.5"})
            host = httpx.URL(current).host
            try:
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("location", "")
                    if not location:
                        raise FetchError(f"server answered {status} without a Location header")
                    if hop == MAX_REDIRECTS:
                        raise FetchError(f"too many redirects (max {MAX_REDIRECTS})")
                    try:
                        # Joined as text so the next hop's syntax check sees the raw Location.
                        current = urljoin(current, location)
                    except ValueError:
                        raise FetchError(f"server answered {status} with a malformed Location") from None
                    continue
                if not 200 <= status < 300:
                    raise FetchError(f"server answered {status}")
                return _read_body(client, response, host, max_bytes)
            finally:
                response.close()
    raise AssertionError("unreachable")  # pragma: no cover


def post_bytes(url: str, *, content: bytes, headers: dict[str, str]) -> int:
    """POST content to url under the address policy (no redirects) and return the status code."""
    with SafeClient() as client:
        response = client.open("POST", url, content=content, headers=headers)
        try:
            # Drain a little of the answer so the server sees a clean exchange; ignore the rest.
            _read_body(client, response, httpx.URL(url).host, WEBHOOK_RESPONSE_MAX_BYTES)
        except FetchError:
            pass
        finally:
            response.close()
        return response.status_code
