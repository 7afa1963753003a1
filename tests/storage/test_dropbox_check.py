"""Whether Dropbox can work: ``DropboxStorage.check``, ``agentlink dropbox check``, and
the rules of the Dropbox settings (agentlink/storage/dropbox_settings.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agentlink.errors import (
    ConfigurationError,
    StorageConfigError,
    StorageUnavailableError,
)
from agentlink.settings import Settings
from agentlink.storage import create_storage
from agentlink.storage.dropbox import DropboxStorage
from tests.conftest import ROOT
from tests.support.dropbox import DROPBOX_PATH, PDF, REPORT, MakeStorage, dropbox_env
from tests.support.fake_dropbox import FakeDropbox
from tests.support.tls import Certificates


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
