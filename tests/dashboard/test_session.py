"""Who may use the dashboard: the sign-in form, the signed session cookie, Bearer operator
keys, and the CSRF token every POST must carry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.dashboard import forms, pages, session
from agentlink.dashboard.session import SESSION_COOKIE
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import job_hash
from tests.support.dashboard import (
    BEARER,
    OPERATOR_KEY,
    PASSWORD,
    TENANT_KEY,
    bury,
    csrf_of,
    dashboard_settings,
    sign_in,
)


@pytest.fixture
def ops(settings: Settings) -> Iterator[TestClient[Any]]:
    """The API with a tenant key, an operator key and the dashboard password."""
    with TestClient(app=create_app(dashboard_settings(settings))) as client:
        yield client


def _set_cookie(answer: Any) -> str:
    [cookie] = [
        value
        for value in answer.headers.get_list("set-cookie")
        if value.startswith(f"{SESSION_COOKIE}=")
    ]
    return str(cookie)


class TestSignIn:
    def test_without_a_session_pages_redirect_to_the_form(self, ops: TestClient[Any]) -> None:
        """A page: 303 to the sign-in form, remembering where to go; a part: 401."""
        page = ops.get("/dashboard/dead?before=1-0", follow_redirects=False)
        assert page.status_code == 303
        wanted = "/dashboard/login?next=%2Fdashboard%2Fdead%3Fbefore%3D1-0"
        assert page.headers["location"] == wanted
        assert ops.get("/dashboard?part=queue").status_code == 401

    def test_the_password_opens_a_signed_httponly_samesite_session(
        self, ops: TestClient[Any]
    ) -> None:
        """The password signs in: the cookie is HttpOnly, SameSite=Lax, for /dashboard only."""
        answer = sign_in(ops)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dashboard"
        cookie = _set_cookie(answer).lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "path=/dashboard" in cookie
        assert PASSWORD.lower() not in cookie
        assert ops.get("/dashboard").status_code == 200

    def test_an_operator_key_signs_in_a_tenant_key_does_not(self, ops: TestClient[Any]) -> None:
        """Operator keys see every tenant, so only they open the dashboard."""
        assert sign_in(ops, TENANT_KEY).status_code == 401
        assert ops.get("/dashboard", follow_redirects=False).status_code == 303
        answer = sign_in(ops, OPERATOR_KEY)
        assert answer.status_code == 303
        assert OPERATOR_KEY not in _set_cookie(answer)

    def test_a_wrong_secret_is_refused_then_rate_limited(self, settings: Settings) -> None:
        """Failed sign-ins count per address like the API's failed keys: 401, then 429."""
        limited = replace(dashboard_settings(settings), auth_failure_limit=2)
        with TestClient(app=create_app(limited)) as client:
            answers = [sign_in(client, "guess").status_code for _ in range(4)]
        assert answers[:2] == [401, 401]
        assert answers[-1] == 429

    def test_past_the_limit_even_the_right_password_waits(self, settings: Settings) -> None:
        """Otherwise the guess that happens to be right would still be let in: the limit
        would not stop anybody guessing a password."""
        limited = replace(dashboard_settings(settings), auth_failure_limit=2)
        with TestClient(app=create_app(limited)) as client:
            assert [sign_in(client, "guess").status_code for _ in range(3)] == [401, 401, 429]
            answer = sign_in(client)
            assert answer.status_code == 429
            assert int(answer.headers["retry-after"]) >= 1
            assert SESSION_COOKIE not in client.cookies

    def test_the_right_password_spends_no_budget(self, settings: Settings) -> None:
        """Checking the limit before the password counts nothing: people who sign in right
        never run out."""
        limited = replace(dashboard_settings(settings), auth_failure_limit=2)
        with TestClient(app=create_app(limited)) as client:
            for _ in range(5):
                assert sign_in(client).status_code == 303
                client.cookies.clear()
            assert sign_in(client, "guess").status_code == 401

    def test_the_form_needs_its_own_token(self, ops: TestClient[Any]) -> None:
        """A sign-in POST that did not come from the form is refused: no session."""
        answer = ops.post(
            "/dashboard/login", data={"secret": PASSWORD, "csrf": "forged"}, follow_redirects=False
        )
        assert answer.status_code == 403
        assert not any(
            value.startswith(f"{SESSION_COOKIE}=")
            for value in answer.headers.get_list("set-cookie")
        )

    def test_next_never_leads_off_the_dashboard(self, ops: TestClient[Any]) -> None:
        """?next= is followed only to dashboard pages."""
        form = ops.get("/dashboard/login")
        answer = ops.post(
            "/dashboard/login",
            data={"csrf": csrf_of(form.text), "secret": PASSWORD, "next": "//evil.example/x"},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/dashboard"

    def test_a_tampered_cookie_is_no_session(self, ops: TestClient[Any]) -> None:
        """Changing who the cookie names breaks its signature."""
        sign_in(ops)
        value = ops.cookies[SESSION_COOKIE]
        expires, nonce, _, signature = value.split(".")
        ops.cookies.clear()
        ops.cookies.set(SESSION_COOKIE, f"{expires}.{nonce}.key-0000000000000000.{signature}")
        assert ops.get("/dashboard", follow_redirects=False).status_code == 303

    def test_a_session_ends_after_its_time(
        self, ops: TestClient[Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past AGENTLINK_DASHBOARD_SESSION_S (8 h by default) the cookie opens nothing."""
        sign_in(ops)
        assert ops.get("/dashboard", follow_redirects=False).status_code == 200
        later = time.time() + 8 * 3600 + 1
        monkeypatch.setattr(session, "now_s", lambda: later)
        assert ops.get("/dashboard", follow_redirects=False).status_code == 303

    def test_changing_the_password_signs_everybody_out(
        self, ops: TestClient[Any], settings: Settings
    ) -> None:
        """The signing key derives from the password: a session of the old one is void."""
        sign_in(ops)
        cookie = ops.cookies[SESSION_COOKIE]
        changed = dashboard_settings(settings)
        changed = replace(changed, dashboard=replace(changed.dashboard, password="new-one"))
        with TestClient(app=create_app(changed)) as other:
            other.cookies.set(SESSION_COOKIE, cookie)
            assert other.get("/dashboard", follow_redirects=False).status_code == 303

    def test_a_new_password_ends_sessions_even_with_a_fixed_secret(
        self, ops: TestClient[Any], settings: Settings
    ) -> None:
        """With AGENTLINK_DASHBOARD_SECRET the signing key stays: the session still names
        the password it was opened with, so changing the password ends it."""
        fixed = dashboard_settings(settings)
        fixed = replace(fixed, dashboard=replace(fixed.dashboard, session_secret="s" * 32))
        changed = replace(fixed, dashboard=replace(fixed.dashboard, password="new-one"))
        with TestClient(app=create_app(fixed)) as before:
            sign_in(before)
            cookie = before.cookies[SESSION_COOKIE]
            assert PASSWORD not in cookie
        with TestClient(app=create_app(fixed)) as same:
            same.cookies.set(SESSION_COOKIE, cookie)
            assert same.get("/dashboard", follow_redirects=False).status_code == 200
        with TestClient(app=create_app(changed)) as other:
            other.cookies.set(SESSION_COOKIE, cookie)
            assert other.get("/dashboard", follow_redirects=False).status_code == 303

    def test_sign_out_forgets_the_session(self, ops: TestClient[Any]) -> None:
        """The sign-out form (with its token) clears the cookie, and a copy of the cookie
        kept elsewhere opens nothing afterwards either."""
        sign_in(ops)
        kept = ops.cookies[SESSION_COOKIE]
        page = ops.get("/dashboard")
        answer = ops.post(
            "/dashboard/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False
        )
        assert answer.status_code == 303
        assert "max-age=0" in _set_cookie(answer).lower()
        ops.cookies.set(SESSION_COOKIE, kept)
        assert ops.get("/dashboard", follow_redirects=False).status_code == 303

    def test_nobody_signs_in_without_keys_or_password(self, settings: Settings) -> None:
        """Neither an operator key nor a password: the form says how to open the dashboard."""
        with TestClient(app=create_app(settings)) as client:
            assert client.get("/dashboard", follow_redirects=False).status_code == 303
            form = client.get("/dashboard/login")
            assert "AGENTLINK_DASHBOARD_PASSWORD" in form.text
            assert 'name="secret"' not in form.text


class TestBearer:
    def test_scripts_send_an_operator_key(self, ops: TestClient[Any]) -> None:
        """An operator key as Bearer reads the pages; a tenant key is 401."""
        assert ops.get("/dashboard?part=queue", headers=BEARER).status_code == 200
        tenant = {"Authorization": f"Bearer {TENANT_KEY}"}
        assert ops.get("/dashboard?part=queue", headers=tenant).status_code == 401

    def test_wrong_bearer_keys_count_as_failed_authentications(self, settings: Settings) -> None:
        """Guessing keys at the dashboard is limited like guessing them at the API."""
        limited = replace(dashboard_settings(settings), auth_failure_limit=2)
        wrong = {"Authorization": "Bearer not-a-key"}
        with TestClient(app=create_app(limited)) as client:
            answers = [client.get("/dashboard?part=queue", headers=wrong) for _ in range(3)]
            assert [answer.status_code for answer in answers] == [401, 401, 429]
            assert int(answers[-1].headers["retry-after"]) >= 1

    def test_a_bearer_post_needs_no_csrf_token(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """A browser never adds an Authorization header by itself: no token needed."""
        job_id = _submit(ops)
        answer = ops.post(
            f"/dashboard/jobs/{job_id}/cancel",
            data={"confirm": "yes"},
            headers=BEARER,
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert job_hash(r, job_id)["status"] == "cancelled"


def _submit(client: TestClient[Any]) -> str:
    answer = client.post(
        "/api/generate-agents-report",
        json={"suburb": "Manly", "state": "NSW"},
        headers={"X-API-Key": TENANT_KEY},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


class TestCsrf:
    def test_every_post_without_the_token_is_refused(
        self, ops: TestClient[Any], r: redis.Redis, keys: Keys
    ) -> None:
        """Each POST route of the dashboard, signed in by cookie, without the token: 403,
        and nothing changed (the job still queued, the dead letter still there)."""
        job_id = _submit(ops)
        dead_job = _submit(ops)
        dead_id = bury(r, keys, dead_job)
        sign_in(ops)
        paths = {
            "/jobs/{job_id:str}/cancel": f"/dashboard/jobs/{job_id}/cancel",
            "/jobs/{job_id:str}/rerun": f"/dashboard/jobs/{dead_job}/rerun",
            "/dead/{dead_id:str}/replay": f"/dashboard/dead/{dead_id}/replay",
            "/dead/replay-all": "/dashboard/dead/replay-all",
            "/callbacks/{dead_id:str}/replay": f"/dashboard/callbacks/{dead_id}/replay",
            "/callbacks/replay-all": "/dashboard/callbacks/replay-all",
            "/logout": "/dashboard/logout",
        }
        posts = {
            path
            for handler in [*pages.HANDLERS, *forms.HANDLERS]
            if "POST" in handler.http_methods
            for path in handler.paths
        } - {"/login"}
        assert posts == set(paths), "a POST route of the dashboard is not checked here"
        for path in paths.values():
            refused = ops.post(path, data={"confirm": "yes"}, follow_redirects=False)
            assert refused.status_code == 403, path
            assert "CSRF token" in refused.text
        assert job_hash(r, job_id)["status"] == "queued"
        assert r.xlen(keys.dead) == 1
        assert r.zcard(keys.jobs) == 2
        assert ops.get("/dashboard", follow_redirects=False).status_code == 200

    def test_with_the_token_the_same_post_works(self, ops: TestClient[Any], r: redis.Redis) -> None:
        """The token of the confirmation page lets the cancel through."""
        job_id = _submit(ops)
        sign_in(ops)
        step = ops.get(f"/dashboard/jobs/{job_id}/cancel")
        answer = ops.post(
            f"/dashboard/jobs/{job_id}/cancel",
            data={"csrf": csrf_of(step.text), "confirm": "yes"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert job_hash(r, job_id)["status"] == "cancelled"
