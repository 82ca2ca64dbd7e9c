"""IncrementalAlterConfigs (44): SET / DELETE / APPEND / SUBTRACT on topic and broker configs.

APPEND and SUBTRACT apply to list configs only (`cleanup.policy`), starting from the current
override or else the config's default, as Kafka's ConfigAdminManager does.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from core.broker.api import RequestContext, api
from core.broker.handlers.alter_configs import Changes, alter_resources
from core.common.config import BROKER_CONFIGS, TOPIC_CONFIGS
from core.common.errors import KafkaError
from core.protocol.build import build
from core.protocol.codec import response_class

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
_OP_NAMES = {APPEND: "append", SUBTRACT: "subtract"}


def _current(broker: Any, kind: str, name: str) -> dict[str, str]:
    image = broker.image
    if kind == "topic":
        topic = image.topics.get(name)
        return dict(topic.configs) if topic is not None else {}
    return dict(image.broker_configs.get(name, {}))


def plan_for(broker: Any):
    """A plan function turning one resource's operations into set/delete changes."""

    def plan(kind: str, resource: Any) -> Changes:
        current = _current(broker, kind, resource.resource_name)
        definitions = TOPIC_CONFIGS if kind == "topic" else BROKER_CONFIGS
        changes: Changes = {}
        for config in resource.configs:
            name, op, value = config.name, config.config_operation, config.value
            if name in changes:
                raise KafkaError("Error due to duplicate config keys",
                                 ErrorCode.invalid_request)
            if op == SET:
                if value is None:
                    raise KafkaError(f"Null value not supported for : {name}",
                                     ErrorCode.invalid_request)
                changes[name] = value
            elif op == DELETE:
                changes[name] = None
            elif op in (APPEND, SUBTRACT):
                definition = definitions.get(name)
                if definition is None:
                    raise KafkaError(f"Unknown config name: {name}", ErrorCode.invalid_config)
                if definition.type != "list":
                    raise KafkaError(f"Config value {_OP_NAMES[op]} is not allowed for config "
                                     f"key: {name}", ErrorCode.invalid_config)
                old = current.get(name, definition.default or "")
                old_items = [v.strip() for v in old.split(",") if v.strip()]
                items = [v.strip() for v in (value or "").split(",") if v.strip()]
                if op == APPEND:
                    new_items = old_items + [v for v in items if v not in old_items]
                else:
                    new_items = [v for v in old_items if v not in items]
                changes[name] = ",".join(new_items)
            else:
                raise KafkaError(f"Unknown alter configs operation {op} for {name}",
                                 ErrorCode.invalid_request)
        return changes

    return plan


@api(key=44, min_version=0, max_version=1)
async def handle_incremental_alter_configs(ctx: RequestContext, request: Any) -> Any:
    if not ctx.broker.is_controller():
        return await ctx.broker.forward_to_controller(ctx, request)
    responses = await alter_resources(ctx, request.resources, plan_for(ctx.broker),
                                      replace_all=False, validate_only=request.validate_only)
    return build(response_class(44, ctx.version), throttle_time=0, responses=responses)
