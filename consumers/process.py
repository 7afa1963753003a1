"""What every consumer-side process does first: read the settings, set up logging."""

from __future__ import annotations

import sys

from agentlink.errors import ConfigurationError
from agentlink.observe.logging import configure_logging
from agentlink.settings import Settings


def start_process(command: str) -> Settings | None:
    """The settings, with logging set up from them; None (after saying why on stderr,
    prefixed with ``command``) when they are wrong: the caller exits 2."""
    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        print(f"{command}: {exc}", file=sys.stderr)  # noqa: T201
        return None
    configure_logging(settings.log_format, settings.log_level, secrets=settings.secrets)
    return settings
