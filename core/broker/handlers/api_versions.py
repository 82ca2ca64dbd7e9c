"""ApiVersions (18): advertise exactly what the registry implements."""

from core.broker.api import REGISTRY, RequestContext, api
from core.protocol.build import build
from core.protocol.codec import response_class


@api(key=18, min_version=0, max_version=3)
async def handle_api_versions(ctx: RequestContext, request: object) -> object:
    return build(
        response_class(18, ctx.version),
        error_code=0,
        api_keys=[dict(api_key=s.key, min_version=s.min_version, max_version=s.max_version)
                  for s in sorted(REGISTRY.values(), key=lambda s: s.key)],
        throttle_time=0,
        finalized_features_epoch=-1,
    )
