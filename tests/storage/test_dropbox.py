"""Dropbox storage: the real SDK against a fake Dropbox over HTTPS (tests/support/fake_dropbox.py).

The SDK reads ``DROPBOX_API_HOST`` / ``DROPBOX_API_CONTENT_HOST`` once, when ``dropbox`` is
first imported, so this module binds the fake's port and sets both before it imports
``agentlink.storage.dropbox`` (nothing imports the SDK earlier: ``create_storage`` imports
it lazily). The variables stay set for the rest of the session; they only matter to code
that uses Dropbox. Trust in the fake's test-made CA comes from ``REQUESTS_CA_BUNDLE``,
exactly as an operator would trust a Dropbox-compatible host.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pypdf
import pytest
import redis
from litestar.testing import TestClient

from agentlink.errors import (
    ConfigurationError,
    JobError,
    StorageConfigError,
    StorageRejectedError,
    StorageUnavailableError,
)
from agentlink.settings import Settings
from agentlink.storage import create_storage
from agentlink.stream.keys import Keys
from tests.conftest import ROOT, Processes, job_hash, submit, wait_for, wait_status
from tests.support.fake_dropbox import (
    APP_KEY,
    APP_SECRET,
    Certificates,
    FakeDropbox,
    make_certificates,
    point_sdk_at,
)

FAKE = FakeDropbox()  # binds its port now; the `fake` fixtures make it serve
point_sdk_at(FAKE)

from agentlink.storage.dropbox import CHUNK_BYTES, DropboxStorage  # noqa: E402 - after point_sdk_at

REPORT = "NSW/Manly/agents-Manly-2026-11-26-3f2a1b4c.pdf"
DROPBOX_PATH = "/AgentLink/" + REPORT
PDF = b"%PDF-1.7\n" + b"x" * 2000 + b"\n%%EOF\n"

MakeStorage = Callable[..., DropboxStorage]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA and server certificate made for this run."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def fake_server(certificates: Certificates) -> Iterator[FakeDropbox]:
    """The fake Dropbox, serving HTTPS for this module."""
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


class TestSave:
    def test_upload_shares_and_reports_where_it_went(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """The PDF lands at folder + report path, overwriting, and the result carries the link."""
        result = make_storage().save(REPORT, PDF)

        stored = fake.file(DROPBOX_PATH)
        assert stored is not None
        assert stored.data == PDF
        assert result.storage == "dropbox"
        assert result.path == DROPBOX_PATH
        assert result.bytes == len(PDF)
        assert result.url == fake.links[DROPBOX_PATH.lower()]
        assert result.url.startswith("https://www.dropbox.com/scl/fi/")
        upload = next(call for call in fake.calls if call.route == "files/upload")
        assert upload.arg["path"] == DROPBOX_PATH
        assert upload.arg["mode"] in ("overwrite", {".tag": "overwrite"})
        assert upload.token in fake.tokens  # signed in with the refreshed access token
        assert [call.route for call in fake.calls] == [
            "oauth2/token",
            "files/upload",
            "sharing/create_shared_link_with_settings",
        ]

    def test_the_same_job_twice_leaves_one_file(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """A redelivered job overwrites its file (new rev) and keeps its one shared link."""
        storage = make_storage()
        first = storage.save(REPORT, PDF)
        first_rev = fake.files[DROPBOX_PATH.lower()].rev
        second = storage.save(REPORT, PDF + b"re-rendered")

        assert list(fake.files) == [DROPBOX_PATH.lower()]
        assert fake.files[DROPBOX_PATH.lower()].data == PDF + b"re-rendered"
        assert fake.files[DROPBOX_PATH.lower()].rev != first_rev
        assert first.rev == first_rev
        assert second.rev == fake.files[DROPBOX_PATH.lower()].rev
        assert second.url == first.url
        assert len(fake.links) == 1
        assert fake.count("oauth2/token") == 1  # one client, one access token

    @pytest.mark.parametrize("with_metadata", [True, False], ids=["metadata", "list-links"])
    def test_an_existing_shared_link_is_reused(
        self, fake: FakeDropbox, make_storage: MakeStorage, with_metadata: bool
    ) -> None:
        """shared_link_already_exists: its metadata's url, else list_shared_links(direct_only)."""
        first = make_storage().save(REPORT, PDF)
        fake.link_metadata_on_conflict = with_metadata
        again = make_storage().save(REPORT, PDF)

        assert again.url == first.url
        shares = [c for c in fake.calls if c.route == "sharing/create_shared_link_with_settings"]
        assert [share.status for share in shares] == [200, 409]
        listed = [call for call in fake.calls if call.route == "sharing/list_shared_links"]
        assert len(listed) == (0 if with_metadata else 1)
        if listed:
            assert listed[0].arg == {"path": DROPBOX_PATH.lower(), "direct_only": True}

    def test_large_reports_go_through_an_upload_session(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """Above the threshold: session start, appends, finish with overwrite; bytes intact."""
        pdf = bytes(range(256)) * 5  # 1280 bytes
        storage = make_storage(session_threshold_bytes=1000, chunk_bytes=300)
        result = storage.save(REPORT, pdf)

        assert fake.file(DROPBOX_PATH).data == pdf  # type: ignore[union-attr]
        assert result.bytes == len(pdf)
        assert fake.count("files/upload") == 0
        assert fake.count("files/upload_session/start") == 1
        assert fake.count("files/upload_session/append_v2") == 3
        finish = next(c for c in fake.calls if c.route == "files/upload_session/finish")
        assert finish.arg["cursor"]["offset"] == 1200
        assert finish.arg["commit"]["mode"] in ("overwrite", {".tag": "overwrite"})
        assert finish.arg["commit"]["path"] == DROPBOX_PATH
        assert result.url == fake.links[DROPBOX_PATH.lower()]

    def test_small_reports_use_one_upload(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """At or below the threshold, a single files/upload."""
        make_storage(session_threshold_bytes=len(PDF)).save(REPORT, PDF)
        assert fake.count("files/upload") == 1
        assert fake.count("files/upload_session/start") == 0

    def test_path_template(self, fake: FakeDropbox, make_storage: MakeStorage) -> None:
        """AGENTLINK_DROPBOX_PATH_TEMPLATE rearranges the report path below the folder."""
        storage = make_storage(folder="/Reports", path_template="{year}/{month}/{state}-{filename}")
        result = storage.save(REPORT, PDF)
        assert result.path == "/Reports/2026/11/NSW-agents-Manly-2026-11-26-3f2a1b4c.pdf"
        assert fake.file(result.path) is not None

    def test_plain_access_token(self, fake: FakeDropbox, make_storage: MakeStorage) -> None:
        """DROPBOX_ACCESS_TOKEN alone works (no refresh)."""
        storage = make_storage(
            app_key="", app_secret="", refresh_token="", access_token=fake.issue_access_token()
        )
        assert storage.save(REPORT, PDF).path == DROPBOX_PATH
        assert fake.count("oauth2/token") == 0

    def test_certificates_are_verified(
        self, fake: FakeDropbox, make_storage: MakeStorage, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without REQUESTS_CA_BUNDLE the fake's certificate is not trusted: TLS is real."""
        monkeypatch.delenv("REQUESTS_CA_BUNDLE")
        with pytest.raises(StorageUnavailableError, match="SSLError"):
            make_storage().save(REPORT, PDF)
        assert fake.calls == []


class TestTransientErrors:
    @pytest.mark.parametrize("reason", ["too_many_requests", "too_many_write_operations"])
    def test_429_is_transient_with_the_servers_retry_after(
        self, fake: FakeDropbox, make_storage: MakeStorage, reason: str
    ) -> None:
        """429 → StorageUnavailableError(retry_after_s from the response); then success."""
        fake.rate_limit("files/upload", retry_after=7, reason=reason)
        storage = make_storage()
        with pytest.raises(StorageUnavailableError, match=reason) as caught:
            storage.save(REPORT, PDF)
        assert caught.value.retry_after_s == 7.0
        assert fake.count("files/upload") == 1

        assert storage.save(REPORT, PDF).url  # the next attempt goes through
        assert fake.file(DROPBOX_PATH) is not None

    def test_too_many_write_operations_route_error_is_transient(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """409 path/too_many_write_operations → retried, not failed."""
        fake.route_fault(
            "files/upload",
            "path/too_many_write_operations",
            {
                ".tag": "path",
                "reason": {".tag": "too_many_write_operations"},
                "upload_session_id": "x",
            },
        )
        with pytest.raises(StorageUnavailableError, match="too_many_write_operations"):
            make_storage().save(REPORT, PDF)

    def test_the_sdk_retries_429_a_bounded_number_of_times(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """max_rate_limit_retries=1: one 429 is absorbed, a second is ours (never forever)."""
        fake.rate_limit("files/upload", retry_after=0, times=1)
        storage = make_storage(max_rate_limit_retries=1)
        storage.save(REPORT, PDF)
        assert fake.count("files/upload") == 2

        fake.rate_limit("files/upload", retry_after=0, times=5)
        with pytest.raises(StorageUnavailableError):
            storage.save(REPORT, PDF)
        assert fake.count("files/upload") == 4

    @pytest.mark.parametrize("status", [500, 503])
    def test_5xx_is_transient(
        self, fake: FakeDropbox, make_storage: MakeStorage, status: int
    ) -> None:
        """A 5xx → StorageUnavailableError; the next attempt succeeds."""
        fake.fail("files/upload", status=status, body="upstream trouble")
        storage = make_storage()
        with pytest.raises(StorageUnavailableError, match=str(status)):
            storage.save(REPORT, PDF)
        assert storage.save(REPORT, PDF).path == DROPBOX_PATH

    def test_the_sdk_retries_5xx_within_its_bound(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """max_retries=1: one 503 is retried inside the SDK and the save succeeds."""
        fake.fail("sharing/create_shared_link_with_settings", status=503)
        result = make_storage(max_retries=1).save(REPORT, PDF)
        assert result.url
        assert fake.count("sharing/create_shared_link_with_settings") == 2

    def test_a_dropped_connection_is_transient(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """The server hangs up without answering → StorageUnavailableError."""
        fake.fail("files/upload", drop=True)
        with pytest.raises(StorageUnavailableError, match="unreachable"):
            make_storage().save(REPORT, PDF)

    def test_a_timeout_is_transient(self, fake: FakeDropbox, make_storage: MakeStorage) -> None:
        """An answer slower than AGENTLINK_DROPBOX_TIMEOUT_S → StorageUnavailableError."""
        fake.fail("files/upload", status=200, body={}, delay_s=1.5)
        with pytest.raises(StorageUnavailableError, match="timed out"):
            make_storage(timeout_s=0.3).save(REPORT, PDF)

    def test_an_answer_the_sdk_cannot_read_is_transient(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """A 200 that is not JSON (a proxy's HTML page) → StorageUnavailableError, not a bug."""
        fake.fail("files/upload", status=200, body="<html>gateway says hello</html>")
        storage = make_storage()
        with pytest.raises(StorageUnavailableError, match="could not read"):
            storage.save(REPORT, PDF)
        assert storage.save(REPORT, PDF).path == DROPBOX_PATH

    def test_an_interrupted_upload_session_is_transient(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """A session lost half-way (lookup_failed/not_found) is retried from the start."""
        fake.route_fault(
            "files/upload_session/append_v2", "not_found", {".tag": "not_found"}, times=1
        )
        storage = make_storage(session_threshold_bytes=100, chunk_bytes=1000)
        with pytest.raises(StorageUnavailableError, match="not_found"):
            storage.save(REPORT, PDF)
        assert storage.save(REPORT, PDF).bytes == len(PDF)
        assert fake.file(DROPBOX_PATH).data == PDF  # type: ignore[union-attr]


class TestRejected:
    def test_a_full_dropbox_fails_the_job(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """insufficient_space → StorageRejectedError that tells the operator what to do."""
        fake.allocated_bytes = 100
        with pytest.raises(StorageRejectedError, match="full: free space") as caught:
            make_storage().save(REPORT, PDF)
        assert "path/insufficient_space" in str(caught.value)
        assert fake.files == {}

    def test_a_full_dropbox_fails_an_upload_session_too(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """insufficient_space at upload_session/finish is the same permanent failure."""
        fake.allocated_bytes = 100
        with pytest.raises(StorageRejectedError, match="full"):
            make_storage(session_threshold_bytes=10, chunk_bytes=1000).save(REPORT, PDF)

    def test_a_malformed_path_fails_the_job(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """malformed_path → StorageRejectedError naming the settings that build the path."""
        fake.route_fault(
            "files/upload",
            "path/malformed_path",
            {".tag": "path", "reason": {".tag": "malformed_path"}, "upload_session_id": "x"},
        )
        with pytest.raises(StorageRejectedError, match="AGENTLINK_DROPBOX_FOLDER"):
            make_storage().save(REPORT, PDF)

    def test_a_disallowed_name_fails_the_job(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """disallowed_name → StorageRejectedError pointing at the path template."""
        storage = make_storage(path_template="{job8}/desktop.ini")
        with pytest.raises(StorageRejectedError, match="AGENTLINK_DROPBOX_PATH_TEMPLATE"):
            storage.save(REPORT, PDF)
        assert fake.files == {}


class TestConfigurationErrors:
    def test_a_revoked_refresh_token_is_not_the_jobs_fault(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """400 invalid_grant on /oauth2/token → StorageConfigError (a ConfigurationError)."""
        fake.revoke()
        with pytest.raises(StorageConfigError, match="DROPBOX_REFRESH_TOKEN") as caught:
            make_storage().save(REPORT, PDF)
        assert not isinstance(caught.value, JobError)
        assert isinstance(caught.value, ConfigurationError)
        assert [call.route for call in fake.calls] == ["oauth2/token"]
        assert fake.files == {}

    def test_revoked_while_running_then_check_fails_too(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """401 invalid_access_token mid-run → StorageConfigError; check() says so as well."""
        storage = make_storage()
        storage.save(REPORT, PDF)
        fake.revoke()
        with pytest.raises(StorageConfigError, match="revoked"):
            storage.save(REPORT, PDF)
        with pytest.raises(StorageConfigError):
            storage.check()

    def test_an_expired_access_token_is_refreshed_once(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """401 expired_access_token → the SDK refreshes once, retries, and the save succeeds."""
        storage = make_storage()
        storage.save(REPORT, PDF)
        fake.expire_access_tokens()
        storage.save(REPORT, PDF + b"2")

        routes = [(call.route, call.status) for call in fake.calls[3:]]
        assert routes[:3] == [("files/upload", 401), ("oauth2/token", 200), ("files/upload", 200)]
        assert fake.count("oauth2/token") == 2
        assert fake.calls[5].token != fake.calls[3].token

    def test_an_expired_plain_access_token_asks_for_a_refresh_token(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """DROPBOX_ACCESS_TOKEN expired (no refresh token) → StorageConfigError that says why."""
        storage = make_storage(
            app_key="", app_secret="", refresh_token="", access_token=fake.issue_access_token()
        )
        fake.expire_access_tokens()
        with pytest.raises(StorageConfigError, match="DROPBOX_REFRESH_TOKEN"):
            storage.save(REPORT, PDF)

    def test_a_missing_scope_is_named(self, fake: FakeDropbox, make_storage: MakeStorage) -> None:
        """401 missing_scope → StorageConfigError naming the scope; check() sees it too."""
        fake.scopes.discard("sharing.write")
        storage = make_storage()
        with pytest.raises(StorageConfigError, match=r"lacks the scope sharing\.write"):
            storage.save(REPORT, PDF)
        with pytest.raises(StorageConfigError, match=r"sharing\.write"):
            storage.check()

    def test_a_wrong_app_secret(self, fake: FakeDropbox, make_storage: MakeStorage) -> None:
        """400 invalid_client on refresh → StorageConfigError naming the app settings."""
        fake.app_secret = "another-secret"
        with pytest.raises(StorageConfigError, match="DROPBOX_APP_SECRET"):
            make_storage().save(REPORT, PDF)


class TestCheck:
    def test_check_passes_and_leaves_nothing_behind(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """check(): account, write scope, sharing scope; no file and no link created."""
        make_storage().check()
        assert fake.count("users/get_current_account") == 1
        assert fake.count("files/upload_session/start") == 1
        assert fake.count("sharing/create_shared_link_with_settings") == 1
        assert fake.files == {}
        assert fake.links == {}

    def test_check_when_dropbox_is_down(self, fake: FakeDropbox, make_storage: MakeStorage) -> None:
        """A 503 during check() is StorageUnavailableError, not a configuration error."""
        fake.fail("users/get_current_account", status=503)
        with pytest.raises(StorageUnavailableError):
            make_storage().check()

    def test_check_recovers_after_a_configuration_error(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """After a StorageConfigError the client signs in afresh, so check() can pass again."""
        storage = make_storage()
        storage.save(REPORT, PDF)
        fake.tokens = dict.fromkeys(fake.tokens, "revoked")  # access tokens only
        with pytest.raises(StorageConfigError):
            storage.save(REPORT, PDF)
        storage.check()
        assert storage.save(REPORT, PDF).path == DROPBOX_PATH

    def test_after_a_permission_error_check_writes_for_real(
        self, fake: FakeDropbox, make_storage: MakeStorage
    ) -> None:
        """no_write_permission pauses; check() then probes a real write until it works."""
        no_permission = {
            ".tag": "path",
            "reason": {".tag": "no_write_permission"},
            "upload_session_id": "x",
        }
        fake.route_fault("files/upload", "path/no_write_permission", no_permission, times=2)
        storage = make_storage()
        with pytest.raises(StorageConfigError, match="AGENTLINK_DROPBOX_FOLDER"):
            storage.save(REPORT, PDF)
        with pytest.raises(StorageConfigError, match="no_write_permission"):
            storage.check()  # the cheap probes would pass; the write does not
        storage.check()
        assert fake.count("files/upload") == 3
        assert fake.count("files/delete_v2") == 1
        assert fake.files == {}
        storage.check()  # back to the cheap probes
        assert fake.count("files/upload") == 3


class TestCheckCommand:
    def run(self, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTLINK_", "DROPBOX_"))}
        return subprocess.run(
            [sys.executable, "-m", "agentlink", "dropbox", "check"],
            env={**base, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def test_exit_0_when_dropbox_works(self, fake: FakeDropbox, certificates: Certificates) -> None:
        """Account, space, write + delete, sharing: all ok, exit 0, no file left."""
        done = self.run(dropbox_env(fake, certificates))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Pat Agent <pat@example.com>" in done.stdout
        assert "GiB free" in done.stdout
        assert "wrote and deleted /AgentLink/.agentlink-check-" in done.stdout
        assert "Dropbox is ready" in done.stdout
        assert fake.count("files/delete_v2") == 1
        assert fake.files == {}

    def test_exit_1_when_the_token_is_revoked(
        self, fake: FakeDropbox, certificates: Certificates
    ) -> None:
        """Rejected credentials: FAIL naming the variable, exit 1."""
        fake.revoke()
        done = self.run(dropbox_env(fake, certificates))
        assert done.returncode == 1, done.stdout + done.stderr
        assert "FAIL" in done.stdout
        assert "DROPBOX_REFRESH_TOKEN" in done.stdout
        assert "NOT ready" in done.stdout

    def test_exit_1_when_settings_are_missing(
        self, fake: FakeDropbox, certificates: Certificates
    ) -> None:
        """No token at all: the settings line fails naming the variable, exit 1."""
        env = dropbox_env(fake, certificates)
        del env["DROPBOX_REFRESH_TOKEN"]
        done = self.run(env)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "settings  FAIL" in done.stdout
        assert "DROPBOX_REFRESH_TOKEN" in done.stdout
        assert fake.calls == []


class TestSettings:
    GOOD = {  # noqa: RUF012 - read-only test data
        "AGENTLINK_STORAGE": "dropbox",
        "DROPBOX_APP_KEY": "key",
        "DROPBOX_APP_SECRET": "secret",
        "DROPBOX_REFRESH_TOKEN": "refresh",
    }

    @pytest.mark.parametrize(
        ("change", "fragment"),
        [
            ({"DROPBOX_REFRESH_TOKEN": ""}, "needs DROPBOX_REFRESH_TOKEN"),
            ({"DROPBOX_APP_KEY": ""}, "DROPBOX_REFRESH_TOKEN needs DROPBOX_APP_KEY"),
            ({"DROPBOX_ACCESS_TOKEN": "sl.x"}, "DROPBOX_REFRESH_TOKEN or DROPBOX_ACCESS_TOKEN"),
            (
                {
                    "DROPBOX_REFRESH_TOKEN": "",
                    "DROPBOX_ACCESS_TOKEN": "sl.x",
                    "DROPBOX_APP_KEY": "",
                },
                "DROPBOX_APP_SECRET is set but DROPBOX_APP_KEY",
            ),
            ({"AGENTLINK_DROPBOX_FOLDER": "/a//b"}, "AGENTLINK_DROPBOX_FOLDER"),
            ({"AGENTLINK_DROPBOX_PATH_TEMPLATE": "{state}/report.pdf"}, "must contain {job8}"),
            ({"AGENTLINK_DROPBOX_PATH_TEMPLATE": "{agent}/{job8}.pdf"}, "unknown fields {agent}"),
            ({"AGENTLINK_DROPBOX_PATH_TEMPLATE": "{job8"}, "AGENTLINK_DROPBOX_PATH_TEMPLATE"),
            (
                {"AGENTLINK_DROPBOX_SESSION_THRESHOLD_BYTES": str(200 * 1024**2)},
                "AGENTLINK_DROPBOX_SESSION_THRESHOLD_BYTES must be at most",
            ),
            ({"AGENTLINK_DROPBOX_TIMEOUT_S": "0"}, "AGENTLINK_DROPBOX_TIMEOUT_S must be at least"),
            ({"AGENTLINK_DROPBOX_MAX_RETRIES": "11"}, "AGENTLINK_DROPBOX_MAX_RETRIES must be at"),
            (
                {"AGENTLINK_DROPBOX_MAX_RATE_LIMIT_RETRIES": "many"},
                "AGENTLINK_DROPBOX_MAX_RATE_LIMIT_RETRIES must be an integer",
            ),
            ({"DROPBOX_API_HOST": " "}, "DROPBOX_API_HOST is set but empty"),
        ],
    )
    def test_bad_dropbox_settings_name_the_variable(
        self, change: dict[str, str], fragment: str
    ) -> None:
        """Missing or inconsistent Dropbox settings stop the process, naming the variable."""
        with pytest.raises(ConfigurationError, match=fragment.replace("{", r"\{")):
            Settings.from_env({**self.GOOD, **change})

    def test_good_settings(self) -> None:
        """Refresh-token settings are read, the folder is normalised, secrets stay hidden."""
        settings = Settings.from_env({**self.GOOD, "AGENTLINK_DROPBOX_FOLDER": "Clients/Reports/"})
        assert settings.dropbox_folder == "/Clients/Reports"
        assert settings.dropbox_refresh_token == "refresh"
        assert settings.dropbox_session_threshold_bytes == 100 * 1024**2
        assert settings.dropbox_max_rate_limit_retries == 1
        assert "secret" not in repr(settings)
        assert "refresh'" not in repr(settings)
        assert (
            Settings.from_env({**self.GOOD, "AGENTLINK_DROPBOX_FOLDER": "/"}).dropbox_folder == ""
        )

    def test_local_storage_needs_no_dropbox_settings(self) -> None:
        """With AGENTLINK_STORAGE=local, missing Dropbox credentials are fine."""
        assert Settings.from_env({"AGENTLINK_STORAGE": "local"}).storage == "local"

    def test_create_storage_builds_dropbox_storage(self) -> None:
        """AGENTLINK_STORAGE=dropbox selects DropboxStorage with the settings' values."""
        settings = Settings.from_env(
            {**self.GOOD, "AGENTLINK_DROPBOX_SESSION_THRESHOLD_BYTES": "4096"}
        )
        storage = create_storage(settings)
        assert isinstance(storage, DropboxStorage)
        assert storage.name == "dropbox"
        assert storage.session_threshold_bytes == 4096
        assert storage.dropbox_path(REPORT) == DROPBOX_PATH


class TestApi:
    def test_pdf_endpoint_redirects_to_the_shared_link(
        self, client: TestClient[Any], r: redis.Redis
    ) -> None:
        """GET /api/jobs/{id}/pdf of a Dropbox job → 302 to its shared link (direct download)."""
        job_id = "3f2a1b4c-0000-4000-8000-000000000001"
        link = "https://www.dropbox.com/scl/fi/abc/agents-Manly.pdf?rlkey=k1&dl=0"
        r.hset(
            Keys().job(job_id),
            mapping={
                "job_id": job_id,
                "kind": "agents",
                "status": "completed",
                "suburb": "Manly",
                "state": "NSW",
                "created_at": "2026-11-26T10:00:00+00:00",
                "finished_at": "2026-11-26T10:00:05+00:00",
                "attempts": "1",
                "result_storage": "dropbox",
                "result_path": DROPBOX_PATH,
                "result_url": link,
                "result_bytes": "2048",
                "result_pages": "3",
            },
        )
        response = client.get(f"/api/jobs/{job_id}/pdf", follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"] == (
            "https://www.dropbox.com/scl/fi/abc/agents-Manly.pdf?rlkey=k1&dl=1"
        )
        status = client.get(f"/api/job-status/{job_id}").json()
        assert status["result"]["url"] == link
        assert status["result"]["storage"] == "dropbox"


@pytest.mark.slow
class TestEndToEnd:
    def test_a_consumer_delivers_into_dropbox(
        self,
        fake: FakeDropbox,
        certificates: Certificates,
        client: TestClient[Any],
        r: redis.Redis,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """API + consumer + fake Dropbox: result.url is the shared link, the bytes the PDF.

        The first upload gets a 503: the consumer retries the job and completes it.
        """
        fake.fail("files/upload", status=503, body="try again")
        env = dropbox_env(fake, certificates, AGENTLINK_DROPBOX_MAX_RETRIES="0")
        processes.consumer(settings, 1, **env)
        job_id = submit(client)

        record = wait_status(r, job_id, "completed", "failed", "dead")
        assert record["status"] == "completed", (record, processes.log("consumer-1"))
        assert record["attempts"] == "2"
        assert "503" in record["errors"]
        stored = fake.file(record["result_path"])
        assert stored is not None
        assert record["result_path"].startswith("/AgentLink/NSW/Manly/agents-Manly-")
        assert record["result_path"].endswith(f"-{job_id[:8]}.pdf")
        assert record["result_storage"] == "dropbox"
        assert record["result_url"] == fake.links[record["result_path"].lower()]
        assert int(record["result_bytes"]) == len(stored.data)
        pdf = pypdf.PdfReader(io.BytesIO(stored.data))
        assert str(pdf.metadata["/jobid"]) == job_id  # type: ignore[index]
        assert len(pdf.pages) == int(record["result_pages"])
        assert not (settings.output_dir / record["result_path"].lstrip("/")).exists()
        assert not Path(settings.output_dir).exists() or not any(settings.output_dir.rglob("*.pdf"))

    def test_revoked_credentials_keep_jobs_queued_until_good_ones_run(
        self,
        fake: FakeDropbox,
        certificates: Certificates,
        client: TestClient[Any],
        r: redis.Redis,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """A revoked refresh token pauses the worker: nothing fails, nothing is lost; a worker
        started with a new token completes every job."""
        fake.revoke()
        bad = processes.consumer(
            settings, 1, **dropbox_env(fake, certificates, AGENTLINK_STORAGE_RECHECK_S="0.2")
        )
        held, waiting = submit(client), submit(client, suburb="Mosman")
        wait_for(
            lambda: processes.log("consumer-1").count("storage.misconfigured") >= 2,
            60,
            "the worker to report the storage misconfigured (twice: it re-checks)",
        )
        assert job_hash(r, held)["status"] in {"processing", "retrying"}
        assert job_hash(r, waiting)["status"] == "queued"  # no new job taken while paused
        assert fake.files == {}

        bad.send_signal(signal.SIGTERM)  # the operator restarts the worker ...
        assert bad.wait(30) == 0
        good = dropbox_env(fake, certificates, DROPBOX_REFRESH_TOKEN=fake.new_refresh_token())
        processes.consumer(settings, 2, **good)  # ... with a new refresh token

        for job_id in (held, waiting):
            record = wait_status(r, job_id, "completed", "failed", "dead")
            assert record["status"] == "completed", (record, processes.log("consumer-2"))
            assert fake.file(record["result_path"]) is not None
        assert len(fake.files) == 2
