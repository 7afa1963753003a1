"""The dashboard's actions over real Redis: their confirmation steps, cancel (queued and
running), re-run as a new job, replay of one or every dead letter, and sending a dead
callback again (its script run directly too)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.dashboard import actions
from agentlink.dashboard.actions import REPLAY_PAGE
from agentlink.settings import Settings
from agentlink.stream.deadletters import callback_replay_call
from agentlink.stream.keys import Keys
from agentlink.stream.scripts import Scripts
from tests.conftest import job_hash
from tests.support.dashboard import BEARER, TENANT_KEY, bury, dashboard_settings

CONFIRM = {"confirm": "yes"}


@pytest.fixture
def ops(settings: Settings) -> Iterator[TestClient[Any]]:
    """The API with the dashboard open to the test's operator key (as Bearer)."""
    with TestClient(app=create_app(dashboard_settings(settings))) as client:
        client.headers.update(BEARER)
        yield client


def submit(client: TestClient[Any], **extra: Any) -> str:
    answer = client.post(
        "/api/generate-agents-report",
        json={"suburb": "Manly", "state": "NSW", **extra},
        headers={"X-API-Key": TENANT_KEY, "Authorization": ""},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


def timeline(r: redis.Redis, keys: Keys, job_id: str) -> list[dict[str, Any]]:
    return list(json.loads(r.hget(keys.job(job_id), "events") or "[]"))


class TestConfirmation:
    def test_a_get_shows_what_will_happen_and_changes_nothing(
        self, ops: TestClient[Any], r: redis.Redis
    ) -> None:
        """The cancel step names the job and what cancelling it does; the job stays queued."""
        job_id = submit(ops)
        step = ops.get(f"/dashboard/jobs/{job_id}/cancel")
        assert step.status_code == 200
        assert "It is queued: it will be cancelled at once and never made." in step.text
        assert 'name="confirm" value="yes"' in step.text
        assert job_hash(r, job_id)["status"] == "queued"

    def test_a_post_without_confirm_only_shows_the_step(
        self, ops: TestClient[Any], r: redis.Redis
    ) -> None:
        """Skipping the confirmation does nothing but show it."""
        job_id = submit(ops)
        answer = ops.post(f"/dashboard/jobs/{job_id}/cancel", follow_redirects=False)
        assert answer.status_code == 200
        assert "Cancel the job" in answer.text
        assert job_hash(r, job_id)["status"] == "queued"


class TestCancel:
    def test_a_queued_job_is_cancelled_and_says_by_whom(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """cancelled at once; the timeline names the dashboard."""
        job_id = submit(ops)
        answer = ops.post(f"/dashboard/jobs/{job_id}/cancel", data=CONFIRM, follow_redirects=False)
        assert answer.headers["location"] == f"/dashboard/jobs/{job_id}?done=cancelled"
        assert job_hash(r, job_id)["status"] == "cancelled"
        assert timeline(r, keys, job_id)[-1]["detail"] == "by an operator (dashboard)"
        page = ops.get(answer.headers["location"]).text
        assert "Cancelled: the job was queued and will never be made." in page

    def test_a_running_job_gets_a_request(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """processing: cancel requested, the page says its worker stops it; a finished job
        has nothing to cancel."""
        job_id = submit(ops)
        r.hset(keys.job(job_id), "status", "processing")
        answer = ops.post(f"/dashboard/jobs/{job_id}/cancel", data=CONFIRM, follow_redirects=False)
        assert answer.headers["location"].endswith("?done=requested")
        assert r.hexists(keys.job(job_id), "cancel_requested")
        assert "Cancel requested" in ops.get(f"/dashboard/jobs/{job_id}").text
        r.hset(keys.job(job_id), "status", "completed")
        again = ops.post(f"/dashboard/jobs/{job_id}/cancel", data=CONFIRM, follow_redirects=False)
        assert again.headers["location"].endswith("?done=finished")
        assert "there is nothing left to cancel" in ops.get(f"/dashboard/jobs/{job_id}/cancel").text


class TestRerun:
    def test_a_finished_job_runs_again_as_a_new_job(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Same spec (highlight and period included), same owner, a new id; each timeline
        names the other job; the owner's key reads the new job."""
        job_id = submit(ops, highlight="Jane Citizen", period_months=6)
        ops.post(f"/dashboard/jobs/{job_id}/cancel", data=CONFIRM)
        answer = ops.post(f"/dashboard/jobs/{job_id}/rerun", data=CONFIRM, follow_redirects=False)
        assert answer.status_code == 303
        new_id = answer.headers["location"].removeprefix("/dashboard/jobs/").split("?")[0]
        assert new_id != job_id
        old, new = job_hash(r, job_id), job_hash(r, new_id)
        assert new["status"] == "queued"
        for field in ("kind", "suburb", "state", "period_months", "highlight", "owner"):
            assert new[field] == old[field], field
        assert timeline(r, keys, job_id)[-1]["detail"] == f"as job {new_id}"
        assert timeline(r, keys, new_id)[-1]["detail"] == f"of job {job_id}"
        own = ops.get(
            f"/api/job-status/{new_id}", headers={"X-API-Key": TENANT_KEY, "Authorization": ""}
        )
        assert own.status_code == 200
        [entry] = [f for _, f in r.xrange(keys.stream) if f["job_id"] == new_id]
        assert json.loads(entry["payload"])["highlight"] == "Jane Citizen"

    def test_a_job_still_queued_does_not(self, ops: TestClient[Any], r: redis.Redis) -> None:
        """Only a finished job runs again: the step says so, the POST is refused."""
        job_id = submit(ops)
        step = ops.get(f"/dashboard/jobs/{job_id}/rerun").text
        assert "only a finished job runs again" in step
        refused = ops.post(f"/dashboard/jobs/{job_id}/rerun", data=CONFIRM)
        assert refused.status_code == 409
        assert r.zcard(Keys().jobs) == 1


class TestReplay:
    def test_one_dead_letter_is_queued_again(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Same job id, queued, the letter gone; replaying it twice finds it gone."""
        job_id = submit(ops)
        dead_id = bury(r, keys, job_id)
        path = f"/dashboard/dead/{dead_id}/replay"
        answer = ops.post(path, data=CONFIRM, follow_redirects=False)
        assert answer.headers["location"] == "/dashboard/dead?done=replayed"
        assert job_hash(r, job_id)["status"] == "queued"
        assert r.xlen(keys.dead) == 0
        again = ops.post(path, data=CONFIRM, follow_redirects=False)
        assert again.headers["location"] == "/dashboard/dead?done=gone"

    def test_all_a_page_at_a_time_leaving_the_unreadable(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """More letters than a page: every readable one queued again, an unreadable one
        (no payload) left in place."""
        made = [submit(ops) for _ in range(REPLAY_PAGE + 10)]
        for job_id in made:
            bury(r, keys, job_id)
        r.xadd(keys.dead, {"job_id": "broken", "v": "1", "error": "unreadable"})
        answer = ops.post("/dashboard/dead/replay-all", data=CONFIRM, follow_redirects=False)
        assert answer.headers["location"] == "/dashboard/dead?done=replayed-all"
        assert [f["job_id"] for _, f in r.xrange(keys.dead)] == ["broken"]
        assert r.zcard(keys.jobs_with_status("queued")) == len(made)

    def test_all_leaves_letters_added_meanwhile(
        self,
        ops: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A letter added after the first page (a replayed job dying again) is left for the
        next replay-all."""
        made = [submit(ops) for _ in range(REPLAY_PAGE + 1)]
        for job_id in made:
            bury(r, keys, job_id)
        late = dict(r.xrange(keys.dead, count=1)[0][1], job_id="late")
        page_after = actions._page_after

        async def add_a_letter_after_the_first_page(*args: Any) -> list[Any]:
            rows = await page_after(*args)
            if not r.exists(keys.job("late")):
                r.hset(keys.job("late"), "status", "dead")
                r.xadd(keys.dead, late)
            return rows

        monkeypatch.setattr(actions, "_page_after", add_a_letter_after_the_first_page)
        ops.post("/dashboard/dead/replay-all", data=CONFIRM, follow_redirects=False)
        assert [f["job_id"] for _, f in r.xrange(keys.dead)] == ["late"]
        assert r.zcard(keys.jobs_with_status("queued")) == len(made)


def _dead_callback(r: redis.Redis, keys: Keys) -> str:
    return str(
        r.xadd(
            keys.callbacks.dead,
            {
                "job_id": "job-9",
                "status": "completed",
                "url": "https://hook.eu1.make.com/abc",
                "attempt": "10",
                "record": '{"job_id": "job-9"}',
                "delivery": "1796000000000-0",
                "last_error": "receiver answered 500",
                "error": "gave up after 10 attempts: receiver answered 500",
                "dead_at": "2026-11-30T10:00:00.000+00:00",
                "deliveries": "1",
            },
        )
    )


class TestCallbackReplay:
    def test_the_script_sends_it_again_as_a_first_attempt(self, r: redis.Redis, keys: Keys) -> None:
        """callback_replay.lua: back on the callback stream with attempt 1 and its delivery
        id, without the failure's fields; the dead callback removed; '' the second time."""
        dead_id = _dead_callback(r, keys)
        call = callback_replay_call(keys, dead_id)
        new_id = Scripts(r).run("callback_replay.lua", call.keys, call.options)
        [(entry_id, fields)] = r.xrange(keys.callbacks.stream)
        assert entry_id == new_id
        assert fields == {
            "attempt": "1",
            "job_id": "job-9",
            "status": "completed",
            "url": "https://hook.eu1.make.com/abc",
            "record": '{"job_id": "job-9"}',
            "delivery": "1796000000000-0",
        }
        assert r.xlen(keys.callbacks.dead) == 0
        assert Scripts(r).run("callback_replay.lua", call.keys, call.options) == ""

    def test_from_the_dashboard(self, ops: TestClient[Any], r: redis.Redis, keys: Keys) -> None:
        """The dead callbacks page's action queues it for the notifiers."""
        dead_id = _dead_callback(r, keys)
        answer = ops.post(
            f"/dashboard/callbacks/{dead_id}/replay", data=CONFIRM, follow_redirects=False
        )
        assert answer.headers["location"] == "/dashboard/callbacks?done=sent"
        assert r.xlen(keys.callbacks.stream) == 1
        assert msgspec.json.decode(r.xrange(keys.callbacks.stream)[0][1]["record"]) == {
            "job_id": "job-9"
        }

    def test_all_from_the_dashboard(self, ops: TestClient[Any], r: redis.Redis, keys: Keys) -> None:
        """ "Send all again" (after its confirmation step) queues every dead callback, oldest
        first, each with its own delivery id."""
        dead_ids = [_dead_callback(r, keys) for _ in range(3)]
        assert "/dashboard/callbacks/replay-all" in ops.get("/dashboard/callbacks").text
        step = ops.get("/dashboard/callbacks/replay-all")
        assert "Send every dead callback again?" in step.text
        assert r.xlen(keys.callbacks.dead) == 3
        answer = ops.post("/dashboard/callbacks/replay-all", data=CONFIRM, follow_redirects=False)
        assert answer.headers["location"] == "/dashboard/callbacks?done=sent-all"
        assert r.xlen(keys.callbacks.dead) == 0
        sent = r.xrange(keys.callbacks.stream)
        assert len(sent) == len(dead_ids)
        assert {fields["attempt"] for _, fields in sent} == {"1"}
        assert r.xlen(keys.dead) == 0
