"""What the Dropbox tests share: a report, where it lands, and the environment that points
a process at the fake Dropbox (tests/support/fake_dropbox.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.support.fake_dropbox import APP_KEY, APP_SECRET, FakeDropbox
from tests.support.tls import Certificates

if TYPE_CHECKING:
    # Imported by tests/storage/conftest.py only after it pointed the SDK at the fake.
    from agentlink.storage.dropbox import DropboxStorage

REPORT = "NSW/Manly/agents-Manly-2026-11-26-3f2a1b4c.pdf"
DROPBOX_PATH = "/AgentLink/" + REPORT
PDF = b"%PDF-1.7\n" + b"x" * 2000 + b"\n%%EOF\n"

MakeStorage = Callable[..., "DropboxStorage"]
"""The ``make_storage`` fixture: a DropboxStorage on the fake, settings overridden by name."""


def dropbox_env(fake: FakeDropbox, certificates: Certificates, **extra: str) -> dict[str, str]:
    """What a subprocess needs to use the fake as its Dropbox."""
    return {
        "AGENTLINK_STORAGE": "dropbox",
        "DROPBOX_APP_KEY": APP_KEY,
        "DROPBOX_APP_SECRET": APP_SECRET,
        "DROPBOX_REFRESH_TOKEN": fake.refresh_token,
        "DROPBOX_API_HOST": fake.host,
        "DROPBOX_API_CONTENT_HOST": fake.host,
        "REQUESTS_CA_BUNDLE": str(certificates.ca),
        **extra,
    }
