"""Dropbox storage doing its job: uploads (plain and in sessions), shared links, paths,
the API's redirect to a Dropbox PDF, and a consumer delivering into the fake Dropbox.

The real SDK talks to a fake Dropbox over HTTPS (tests/support/fake_dropbox.py), set up
for this folder by tests/storage/conftest.py.
"""

from __future__ import annotations

import io
import signal
from pathlib import Path
from typing import Any

import pypdf
import pytest
import redis
from litestar.testing import TestClient

from agentlink.errors import (
    StorageUnavailableError,
)
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import Processes, job_hash, submit, wait_for, wait_status
from tests.support.dropbox import DROPBOX_PATH, PDF, REPORT, MakeStorage, dropbox_env
from tests.support.fake_dropbox import FakeDropbox
from tests.support.tls import Certificates


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
