"""Make a boto3 client dial only the addresses the endpoint policy checked (docs/security.md).

botocore sends through urllib3 pools whose connections resolve the host again on every new
connection, so a hostile DNS server could answer a public address to our check and a private one a
moment later. The pools installed here dial the checked addresses in turn and never resolve; the
host name still goes into the Host header, TLS SNI and the certificate check. A connection to any
other host (botocore has no reason to make one for a custom endpoint) is refused.
"""

from __future__ import annotations

from botocore.awsrequest import AWSHTTPConnectionPool, AWSHTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection


def _pinned_pool(pool_class: type, host: str, addresses: tuple[str, ...]) -> type:
    class PinnedConnection(pool_class.ConnectionCls):  # type: ignore[name-defined]
        def _new_conn(self):
            if self.host.lower() != host:
                raise NewConnectionError(self, f"refused: {self.host!r} is not the checked storage endpoint")
            failure: Exception = NewConnectionError(self, "no checked address to connect to")
            for address in addresses:
                try:
                    return urllib3_connection.create_connection(
                        (address, self.port),
                        self.timeout,
                        source_address=self.source_address,
                        socket_options=self.socket_options,
                    )
                except TimeoutError:
                    failure = ConnectTimeoutError(self, f"Connection to {self.host} timed out")
                except OSError as exc:
                    failure = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
            raise failure

    return type(f"Pinned{pool_class.__name__}", (pool_class,), {"ConnectionCls": PinnedConnection})


def pin_client(client, *, host: str, addresses: tuple[str, ...]) -> None:
    """Make every connection of this boto3 client (and its pools, proxies included) dial `addresses`."""
    session = client._endpoint.http_session
    if getattr(session, "pinned_addresses", None) == addresses:
        return
    # PoolManager and every proxy manager share this dict (botocore's URLLib3Session).
    classes = session._pool_classes_by_scheme
    classes["http"] = _pinned_pool(AWSHTTPConnectionPool, host.lower().rstrip("."), addresses)
    classes["https"] = _pinned_pool(AWSHTTPSConnectionPool, host.lower().rstrip("."), addresses)
    session._manager.clear()
    session.pinned_addresses = addresses
