"""The few Kafka requests the supervisor sends: ApiVersions, Metadata and BrokerHeartbeat.

Short-lived connections through core.network.client.KafkaConnection (which negotiates versions
with ApiVersions v3 on connect); every call is bounded by a timeout.
"""

from __future__ import annotations

from core.common.errors import KafkaError, UnsupportedVersionError
from core.network.client import KafkaConnection

METADATA = 3
BROKER_HEARTBEAT = 63
CLIENT_ID = "kaflab-supervisor"


class ProbeError(Exception):
    """The broker did not answer (refused, closed, timed out, or an error code)."""


async def _connect(host: str, port: int, timeout: float) -> KafkaConnection:
    try:
        return await KafkaConnection.connect(host, port, client_id=CLIENT_ID, timeout=timeout)
    except (KafkaError, OSError) as exc:
        raise ProbeError(f"{host}:{port}: {exc}") from None


async def probe_api_versions(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when the broker at host:port answers an ApiVersions request."""
    try:
        conn = await _connect(host, port, timeout)
    except ProbeError:
        return False
    await conn.close()
    return True


async def probe_controller(host: str, port: int, timeout: float = 1.0) -> int | None:
    """The controller id the broker at host:port reports (Metadata v12, no topics), or None."""
    try:
        async with await _connect(host, port, timeout) as conn:
            response = await conn.request(METADATA, max_version=12, min_version=1, topics=(),
                                          allow_auto_topic_creation=False)
    except (ProbeError, KafkaError, OSError):
        return None
    return int(response.controller_id)


async def probe_registered(host: str, port: int, timeout: float = 1.0) -> set[int] | None:
    """Ids of the live (registered, unfenced) brokers that the broker at host:port lists."""
    try:
        async with await _connect(host, port, timeout) as conn:
            response = await conn.request(METADATA, max_version=12, min_version=1, topics=(),
                                          allow_auto_topic_creation=False)
    except (ProbeError, KafkaError, OSError):
        return None
    return {int(b.node_id) for b in response.brokers}


async def fence_broker(host: str, port: int, dead_broker_id: int, timeout: float = 2.0) -> None:
    """Tell the active controller at host:port that broker `dead_broker_id` died.

    A BrokerHeartbeat (api key 63) on the dead broker's behalf with broker_epoch=-1 and
    want_fence=True: the controller fences it at once, so partition leadership moves without
    waiting for the broker session timeout. Raises ProbeError if the controller refuses.
    """
    fields = {"broker_id": dead_broker_id, "broker_epoch": -1, "current_metadata_offset": -1,
              "want_fence": True, "want_shut_down": False}
    try:
        async with await _connect(host, port, timeout) as conn:
            try:
                version = conn.version_for(BROKER_HEARTBEAT)
            except UnsupportedVersionError:
                version = 0  # not advertised: try the oldest anyway
            response = await conn.request(BROKER_HEARTBEAT, version=version, **fields)
    except (KafkaError, OSError) as exc:
        raise ProbeError(f"{host}:{port}: BrokerHeartbeat(fence {dead_broker_id}): {exc}") \
            from None
    if int(response.error_code) != 0:
        raise ProbeError(f"BrokerHeartbeat(fence {dead_broker_id}) error {response.error_code!r}")
