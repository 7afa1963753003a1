"""The operators' routes: ``/health`` for the load balancer, ``/metrics`` for Prometheus."""

from __future__ import annotations

import time

from litestar import Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency

from agentlink.api import responses
from agentlink.api.store import JobStore
from agentlink.errors import ServiceBusyError, ServiceUnavailableError
from agentlink.observe.scrape import CONTENT_TYPE, exposition
from agentlink.settings import Settings

HEALTHY_WITHIN_S = 1.0
"""A Redis reply this recent answers /health without a round trip of its own."""
_JSON = "application/json"


@get(
    "/health",
    name="health",
    summary="Is the API up and Redis reachable?",
    responses=responses.HEALTH_RESPONSES,
    tags=["operations"],
)
async def health(store: NamedDependency[JobStore]) -> Response[dict[str, str]]:
    """200 when Redis answers, 503 otherwise.

    Cheap under load: a Redis reply within the last ``HEALTHY_WITHIN_S`` is proof enough,
    so a burst of requests costs no extra round trip; otherwise a PING decides. All
    connections in use is not Redis being down: that answers 200 with ``"redis": "busy"``.
    """
    if time.monotonic() - store.last_ok < HEALTHY_WITHIN_S:
        return Response({"status": "ok", "redis": "ok"}, media_type=_JSON)
    try:
        await store.ping()
    except ServiceBusyError:
        return Response({"status": "ok", "redis": "busy"}, media_type=_JSON)
    except ServiceUnavailableError:
        return Response(
            {"status": "unavailable", "redis": "down"}, status_code=503, media_type=_JSON
        )
    return Response({"status": "ok", "redis": "ok"}, media_type=_JSON)


@get("/metrics", name="metrics", include_in_schema=False)
async def metrics_endpoint(store: NamedDependency[JobStore], state: State) -> Response[bytes]:
    """Prometheus exposition: the API's metrics and the stream state, read from Redis now."""
    settings: Settings = state.settings
    text = await exposition(store.client, store.run, settings)
    return Response(text, media_type=CONTENT_TYPE)
