"""One structlog set-up for the API, the consumers and the CLI.

Production logs are one JSON object per line (``AGENTLINK_LOG_FORMAT=json``, the default
when stderr is not a terminal); a terminal gets structlog's console renderer. Standard
library loggers (uvicorn) go through the same processors, so every line has one shape.
Context such as ``job_id`` is bound with ``structlog.contextvars`` and merged first. The
last step masks secrets (``agentlink.redaction``), whatever wrote the line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

import structlog

from agentlink.redaction import SecretScrubber
from agentlink.settings import LogFormat


def configure_logging(
    log_format: LogFormat = "auto", level: str = "info", *, secrets: Iterable[str] = ()
) -> None:
    """Route structlog and stdlib logging to stderr in the chosen format.

    Every rendered line passes through ``SecretScrubber(secrets)`` (pass
    ``Settings.secrets``) and loses the path and query of any http(s) URL in it: a
    callback URL's path is its secret, and no library line may print one.
    """
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if as_json:
        shared.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
                SecretScrubber(secrets),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Per-request access lines would drown the job events; the API logs its own.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # WeasyPrint narrates every layout step at INFO; only its warnings are worth a line.
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    # httpx logs every request's full URL at INFO; for a callback that URL is a secret.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
