"""The dashboard as tests use it: an API with an operator key and a password, signing in
through the form, and dead letters made by the consumers' own script."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import redis
from litestar.testing import TestClient

from agentlink.jobs import JobEvent, Status
from agentlink.settings import Settings
from agentlink.stream.encoding import now_iso
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords, Outcome, error_record

OPERATOR_KEY = "operator-key-for-tests"
TENANT_KEY = "tenant-key-for-tests"
PASSWORD = "dashboard-password-for-tests"
BEARER = {"Authorization": f"Bearer {OPERATOR_KEY}"}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def dashboard_settings(settings: Settings) -> Settings:
    """``settings`` with a tenant key, an operator key and the dashboard password (and no
    rate limit: tests submit hundreds of jobs)."""
    dashboard = replace(settings.dashboard, password=PASSWORD)
    return replace(
        settings,
        api_keys=(TENANT_KEY,),
        operator_keys=(OPERATOR_KEY,),
        dashboard=dashboard,
        rate_limit=0,
    )


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = _CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: TestClient[Any], secret: str = PASSWORD) -> Any:
    """Sign in through the form (its own token included); returns the answer."""
    form = client.get("/dashboard/login")
    return client.post(
        "/dashboard/login",
        data={"csrf": csrf_of(form.text), "secret": secret, "next": "/dashboard"},
        follow_redirects=False,
    )


def bury(r: redis.Redis, keys: Keys, job_id: str, error: str = "storage answered 503") -> str:
    """Read the job's entry as consumer ``c-1`` and dead-letter it as a consumer does
    (``dead_letter.lua``, with an error history); returns the dead letter's id."""
    r.xreadgroup(keys.group, "c-1", {keys.stream: ">"}, count=1000)  # every entry is c-1's
    entry_id = str(r.hget(keys.job(job_id), "entry_id"))
    [(_, fields)] = r.xrange(keys.stream, entry_id, entry_id)
    letter = {
        **fields,
        "original_id": entry_id,
        "error": f"gave up after 1 attempts: {error}",
        "deliveries": "1",
        "consumer": "c-1",
        "dead_at": now_iso(),
    }
    outcome = Outcome(
        Status.DEAD,
        {"finished_at": now_iso(), "error": letter["error"]},
        [JobEvent(event="dead", at=now_iso(), consumer="c-1")],
        record=error_record(1, "c-1", error, transient=True),
    )
    return JobRecords(r, keys, "c-1").dead_letter(entry_id, job_id, 600, letter, outcome)
