"""BrokerRegistration (62): a broker joins the cluster (handled by the active controller)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=62, min_version=0, max_version=0)
async def handle_broker_registration(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(62, ctx.version)
    broker = ctx.broker
    if not broker.is_controller():
        return build(cls, throttle_time=0, error_code=ErrorCode.not_controller, broker_epoch=-1)
    if request.cluster_id != broker.cluster_id:
        return build(cls, throttle_time=0, error_code=ErrorCode.inconsistent_cluster_id,
                     broker_epoch=-1)
    listener = request.listeners[0] if request.listeners else None
    if listener is None:
        return build(cls, throttle_time=0, error_code=ErrorCode.invalid_request, broker_epoch=-1)
    try:
        epoch = await broker.controller.register_broker(
            request.broker_id, listener.host, listener.port, request.rack,
            request.incarnation_id.hex)
    except KafkaError as exc:
        return build(cls, throttle_time=0, error_code=exc.code, broker_epoch=-1)
    return build(cls, throttle_time=0, error_code=0, broker_epoch=epoch)
