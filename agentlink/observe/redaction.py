"""Keeping secrets out of log lines, error messages and CLI output.

Four kinds of secret pass through AgentLink: API keys, the Redis password (inside
``REDIS_URL``), Dropbox credentials, and callback URLs — a Make webhook's path *is* its
secret. Code that names a Redis URL or a callback URL in a message goes through
``redact_url`` or ``redact_urls``; and every rendered log line of every process passes
``SecretScrubber``, which masks the configured secret values wherever they appear (an
exception message, a library's log line, a traceback) and the path of any http(s) URL, as
a second line of defence.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

MASK = "***"
MIN_SECRET_CHARS = 8
"""Shorter values are not masked by value (a key like ``test`` would mangle every line);
real keys, passwords and tokens are far longer."""

_HTTP_URL = re.compile(r"(?i)\b(https?://[^/\s?#'\"]+)([/?#][^\s'\"]*)")


def redact_url(url: str) -> str:
    """``url`` with its password masked, and for http(s) its path and query too.

    ``redis://:s3cret@host:6379/0`` → ``redis://:***@host:6379/0``;
    ``https://hook.eu1.make.com/abc123?x=1`` → ``https://hook.eu1.make.com/***``.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{MASK}@{hostport}"
    if parts.scheme.lower() in {"http", "https"}:
        tail = "/" + MASK if (parts.path.strip("/") or parts.query) else parts.path
        return f"{parts.scheme}://{netloc}{tail}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def redact_urls(text: str) -> str:
    """Every http(s) URL in ``text`` reduced to its scheme and host (``https://host/***``)."""
    return _HTTP_URL.sub(lambda m: f"{m.group(1)}/{MASK}", text)


def url_password(url: str) -> str:
    """The password inside a URL (empty if none or unparsable)."""
    try:
        return urllib.parse.unquote(urllib.parse.urlsplit(url).password or "")
    except ValueError:
        return ""


class SecretScrubber:
    """A structlog processor, last in the chain: masks the secret values in a rendered line,
    and the path and query of every http(s) URL in it (``redact_urls``)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = {s for s in secrets if len(s) >= MIN_SECRET_CHARS}
        # URL-quoted forms too: a password with '@' or '/' sits quoted in REDIS_URL.
        values |= {urllib.parse.quote(s, safe="") for s in values}
        self.secrets = sorted(values, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` with every secret value replaced by ``***``."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __call__(self, _logger: Any, _method: str, rendered: Any) -> Any:
        if isinstance(rendered, bytes):
            return self.clean(rendered.decode("utf-8", "replace")).encode()
        if isinstance(rendered, str):
            return self.clean(rendered)
        return rendered

    def clean(self, text: str) -> str:
        """``text`` without secret values and without URL paths (a line with no URL skips
        the pattern: most lines have none)."""
        text = self.scrub(text)
        return redact_urls(text) if "://" in text else text
