"""DeleteTopics (20): by name (and by topic id from v6 on, not offered yet)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.common.errors import KafkaError
from core.common.topics import is_internal
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=20, min_version=1, max_version=5)
async def handle_delete_topics(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    if not broker.is_controller():
        return await broker.forward_to_controller(ctx, request)
    results = []
    for name in request.topic_names:
        if is_internal(name):
            results.append(dict(name=name, error_code=ErrorCode.topic_deletion_disabled,
                                error_message="Cannot delete an internal topic"))
            continue
        if not broker.config["delete.topic.enable"]:
            results.append(dict(name=name, error_code=ErrorCode.topic_deletion_disabled,
                                error_message="Topic deletion is disabled."))
            continue
        try:
            await broker.controller.delete_topic(name)
            results.append(dict(name=name, error_code=0))
        except KafkaError as exc:
            results.append(dict(name=name, error_code=exc.code, error_message=str(exc)))
    return build(response_class(20, ctx.version), throttle_time=0, responses=results)
