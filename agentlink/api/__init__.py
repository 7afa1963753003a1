"""The Litestar API: ``create_app()`` builds it from the settings."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from agentlink.api import openapi, routes
from agentlink.api.errors import exception_to_response
from agentlink.api.store import JobStore, open_store
from agentlink.callbacks import CallbackPolicy
from agentlink.observe.http import observe_requests
from agentlink.observe.redaction import redact_url
from agentlink.settings import Settings
from agentlink.storage.local import LocalStorage
from agentlink.stream.keys import Keys

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> Litestar:
    """The API application for ``settings`` (default: from the environment)."""
    # Imported here: the dashboard's modules import the API's (its store, its errors).
    from agentlink.dashboard.routes import dashboard_router

    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def redis_lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_store(
            settings.redis_url,
            Keys(settings.key_prefix),
            pool_size=settings.redis_pool_size,
            pool_wait_s=settings.redis_pool_wait_s,
            cache_s=settings.api_cache_s,
            live_within_s=2 * settings.lease_s,
        ) as store:
            app.state.store = store
            log.info("api.started", redis=redact_url(settings.redis_url), storage=settings.storage)
            # The ~60,000 objects of the app live as long as the process: out of the cyclic
            # collector's sight, a full collection no longer pauses a request for ~20 ms.
            gc.freeze()
            yield

    def provide_store() -> JobStore:
        return app.state.store  # type: ignore[no-any-return]

    app = Litestar(
        route_handlers=[*routes.HANDLERS, *dashboard_router()],
        dependencies={"store": Provide(provide_store, sync_to_thread=False)},
        # Request id on every log line and response; request counts by route and status.
        middleware=[observe_requests],
        exception_handlers={Exception: exception_to_response},
        lifespan=[redis_lifespan],
        openapi_config=OpenAPIConfig(
            title="AgentLink",
            version="1",
            description=(
                "Agent and agency PDF reports for Australian suburbs, queued on Redis Streams. "
                "Submit a request, then poll its `status_url` or receive the job record on "
                "a `callback_url`. Errors share one JSON shape: `status`, `title`, `detail`, "
                "and `errors: [{field, message}]` for invalid fields."
            ),
            components=openapi.COMPONENTS,
            use_handler_docstrings=True,
            webhooks={"jobFinished": openapi.callback_path_item()},
        ),
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,
        debug=False,
    )
    app.state.local_storage = LocalStorage(settings.output_dir)
    app.state.settings = settings
    app.state.callback_policy = CallbackPolicy.from_settings(settings)
    return app
