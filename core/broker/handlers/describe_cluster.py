"""DescribeCluster (60): cluster id, controller and the live brokers, from the image."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class

BROKERS_ENDPOINT = 1
#: cluster_authorized_operations when the client did not ask for them (Integer.MIN_VALUE)
OPERATIONS_OMITTED = -2**31
#: every cluster operation: ALTER, ALTER_CONFIGS, CLUSTER_ACTION, CREATE, DESCRIBE,
#: DESCRIBE_CONFIGS, IDEMPOTENT_WRITE (no authorizer: everything is allowed)
ALL_CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12))


@api(key=60, min_version=0, max_version=1)
async def handle_describe_cluster(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    endpoint_type = getattr(request, "endpoint_type", BROKERS_ENDPOINT)
    if endpoint_type != BROKERS_ENDPOINT:
        return build(response_class(60, ctx.version), throttle_time=0,
                     error_code=ErrorCode.unsupported_endpoint_type,
                     error_message="The request was sent to an endpoint of type BROKER, but "
                                   f"we wanted an endpoint of type {endpoint_type}",
                     endpoint_type=endpoint_type, cluster_id=broker.cluster_id,
                     controller_id=-1, brokers=[])
    image = broker.image
    brokers = [dict(broker_id=b.broker_id, host=b.host, port=b.port, rack=b.rack)
               for b in sorted(image.brokers.values(), key=lambda b: b.broker_id)
               if not b.fenced]
    operations = (ALL_CLUSTER_OPERATIONS if request.include_cluster_authorized_operations
                  else OPERATIONS_OMITTED)
    return build(response_class(60, ctx.version), throttle_time=0, error_code=0,
                 error_message=None, endpoint_type=BROKERS_ENDPOINT,
                 cluster_id=broker.cluster_id, controller_id=broker.controller_id,
                 brokers=brokers, cluster_authorized_operations=operations)
