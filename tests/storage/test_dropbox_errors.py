"""Dropbox's errors as AgentLink's (agentlink/storage/dropbox_errors.py): retried, the job
failed, or the worker paused for the operator, each message naming what to change."""

from __future__ import annotations

import pytest

from agentlink.errors import (
    ConfigurationError,
    JobError,
    StorageConfigError,
    StorageRejectedError,
    StorageUnavailableError,
)
from tests.support.dropbox import DROPBOX_PATH, PDF, REPORT, MakeStorage
from tests.support.fake_dropbox import FakeDropbox


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
