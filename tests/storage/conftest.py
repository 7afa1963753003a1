"""The Dropbox tests' fake Dropbox, pointed at before anything imports the SDK.

The SDK reads ``DROPBOX_API_HOST`` / ``DROPBOX_API_CONTENT_HOST`` once, when ``dropbox`` is
first imported, so this conftest binds the fake's port and sets both before the test
modules of this folder import ``agentlink.storage.dropbox`` (nothing imports the SDK
earlier: ``create_storage`` imports it lazily). The variables stay set for the rest of the
session; they only matter to code that uses Dropbox. Trust in the fake's test-made CA comes
from ``REQUESTS_CA_BUNDLE``, exactly as an operator would trust a Dropbox-compatible host.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from agentlink.settings import Settings
from tests.support.dropbox import MakeStorage
from tests.support.fake_dropbox import APP_KEY, APP_SECRET, FakeDropbox, point_sdk_at
from tests.support.tls import Certificates, make_certificates

FAKE = FakeDropbox()  # binds its port now; the `fake` fixtures make it serve
point_sdk_at(FAKE)

from agentlink.storage.dropbox import CHUNK_BYTES, DropboxStorage  # noqa: E402 - after point_sdk_at


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA and server certificate made for this run."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def fake_server(certificates: Certificates) -> Iterator[FakeDropbox]:
    """The fake Dropbox, serving HTTPS for the Dropbox tests."""
    FAKE.serve(certificates)
    yield FAKE
    FAKE.stop()


@pytest.fixture
def fake(
    fake_server: FakeDropbox, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> FakeDropbox:
    """An empty fake Dropbox with valid credentials, trusted through REQUESTS_CA_BUNDLE."""
    fake_server.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates.ca))
    return fake_server


@pytest.fixture
def make_storage(fake: FakeDropbox) -> MakeStorage:
    """A DropboxStorage on the fake's refresh token; the SDK does not retry unless asked."""

    def make(*, chunk_bytes: int = CHUNK_BYTES, **overrides: Any) -> DropboxStorage:
        options: dict[str, Any] = {
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "refresh_token": fake.refresh_token,
            "timeout_s": 10.0,
            "max_retries": 0,
            "max_rate_limit_retries": 0,
            **overrides,
        }
        settings = replace(Settings(), **{f"dropbox_{k}": v for k, v in options.items()})
        return DropboxStorage(settings, chunk_bytes=chunk_bytes)

    return make
