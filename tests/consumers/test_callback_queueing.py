"""Callbacks up to their queue: the SSRF guard at submission, and the outcome hook that
queues a callback with the job's record when a job ends."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.callbacks import CallbackPolicy, CallbackUrlError, address_problem
from agentlink.jobs import Status
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords, Outcome
from tests.support.callbacks import AGENTS, Receiver, finish, submit


class TestSubmissionGuard:
    @pytest.mark.parametrize(
        ("url", "fragment"),
        [
            ("https://10.1.2.3/hook", "a private address"),
            ("https://192.168.0.10/hook", "a private address"),
            ("https://169.254.169.254/latest/meta-data", "a link-local address"),
            ("https://127.0.0.1:8000/hook", "a loopback address"),
            ("https://[::1]/hook", "a loopback address"),
            ("https://[::ffff:10.0.0.1]/hook", "a private address"),
            ("https://[2002:a9fe:a9fe::]/latest", "a 6to4 address of 169.254.169.254"),
            ("https://0.0.0.0/hook", "unspecified"),
            ("https://localhost/hook", "resolves to"),  # a name (/etc/hosts) -> 127.0.0.1
            ("http://hook.eu1.make.com/abc", "must use https"),
            ("https://evil.example.com/hook", "is not allowed"),
            ("https://hook.eu1.make.com.evil.com/x", "is not allowed"),
            ("ftp://hook.eu1.make.com/abc", "https"),
            ("https://user:pw@hook.eu1.make.com/abc", "user name or password"),
            ("not a url", "https"),
            ("https://a..make.com/x", "not a valid host name"),
            ("https://" + "x" * 64 + ".make.com/x", "not a valid host name"),
        ],
    )
    def test_refused_urls_are_422(
        self, settings: Settings, r: redis.Redis, keys: Keys, url: str, fragment: str
    ) -> None:
        """Private, loopback, link-local, non-https and unlisted hosts are refused at once."""
        hosts = ("*.make.com", "10.1.2.3", "192.168.0.10", "169.254.169.254", "127.0.0.1")
        hosts += ("::1", "::ffff:10.0.0.1", "2002:a9fe:a9fe::", "0.0.0.0", "localhost")
        guarded = replace(settings, callback_hosts=hosts)
        with TestClient(app=create_app(guarded)) as client:
            response = client.post(
                AGENTS, json={"suburb": "Manly", "state": "NSW", "callback_url": url}
            )
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["field"] == "callback_url"
        assert fragment in error["message"]
        assert r.xlen(keys.stream) == 0

    def test_http_host_entry_allows_http_but_not_private_addresses(self) -> None:
        """`http://host` in the list allows plain http; the address rule still applies."""
        policy = CallbackPolicy.from_settings(
            replace(Settings(), callback_hosts=("http://localhost", "*.make.com"))
        )
        target = policy.check_url("http://localhost:9/x")
        assert (target.scheme, target.port, target.target) == ("http", 9, "/x")
        with pytest.raises(CallbackUrlError, match="loopback"):
            policy.check_addresses(target, ["127.0.0.1"])
        with pytest.raises(CallbackUrlError, match="must use https"):
            policy.check_url("http://hook.eu1.make.com/x")

    def test_every_resolved_address_must_be_public(self) -> None:
        """One private address among public ones is enough to refuse."""
        policy = CallbackPolicy.from_settings(Settings())
        target = policy.check_url("https://hook.eu1.make.com/abc")
        assert policy.check_addresses(target, ["93.184.215.14"]) == ["93.184.215.14"]
        with pytest.raises(CallbackUrlError, match=r"10\.0\.0\.7, a private address"):
            policy.check_addresses(target, ["93.184.215.14", "10.0.0.7"])

    def test_insecure_lifts_https_and_addresses_but_not_the_host_list(self) -> None:
        """AGENTLINK_CALLBACK_ALLOW_INSECURE=true: http and private addresses, listed hosts only."""
        policy = CallbackPolicy.from_settings(
            replace(Settings(), callback_hosts=("127.0.0.1",), callback_allow_insecure=True)
        )
        target = policy.check_url("http://127.0.0.1:5000/h")
        assert policy.check_addresses(target, ["127.0.0.1"]) == ["127.0.0.1"]
        with pytest.raises(CallbackUrlError, match="not allowed"):
            policy.check_url("http://10.0.0.1/h")

    @pytest.mark.parametrize(
        ("address", "problem"),
        [
            ("8.8.8.8", None),
            ("2606:4700:4700::1111", None),
            ("172.16.5.4", "a private address"),
            ("100.64.0.1", "not a public address"),
            ("224.0.0.1", "a multicast address"),
            ("fe80::1%eth0", "a link-local address"),
            ("fd00::1", "a private address"),
            ("240.0.0.1", "a reserved address"),
        ],
    )
    def test_address_classes(self, address: str, problem: str | None) -> None:
        """Only public unicast addresses pass."""
        assert address_problem(address) == problem

    @pytest.mark.parametrize(
        ("address", "problem"),
        [
            ("2002:7f00:1::", "a 6to4 address of 127.0.0.1, a loopback address"),
            ("2002:a9fe:a9fe::", "a 6to4 address of 169.254.169.254, a link-local address"),
            ("2002:a00:1::", "a 6to4 address of 10.0.0.1, a private address"),
            # Teredo: server 65.54.227.120, client 127.0.0.1 / 10.0.0.1 (stored inverted).
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", "a Teredo address of 127.0.0.1, a loopback"),
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "a Teredo address of 10.0.0.1, a private"),
            ("::ffff:127.0.0.1", "an IPv4-mapped address of 127.0.0.1, a loopback address"),
            ("::7f00:1", "an IPv4-compatible address of 127.0.0.1, a loopback address"),
            ("64:ff9b::a9fe:a9fe", "a NAT64 address of 169.254.169.254, a link-local address"),
            ("2002:808:808::", None),  # 6to4 of 8.8.8.8: public
        ],
    )
    def test_embedded_ipv4_addresses_are_checked(self, address: str, problem: str | None) -> None:
        """6to4, Teredo, NAT64, IPv4-mapped and -compatible addresses are judged by the IPv4
        address they reach."""
        assert (address_problem(address) or "").startswith(problem or "")
        assert (address_problem(address) is None) == (problem is None)

    def test_accepted_url_is_stored_with_the_job(
        self, cb_settings: Settings, r: redis.Redis, keys: Keys, receiver: Receiver
    ) -> None:
        """An allowed URL is accepted and kept in the job hash (not in the status record)."""
        with TestClient(app=create_app(cb_settings)) as client:
            job_id = submit(client, receiver.url + "#fragment")
            record = client.get(f"/api/job-status/{job_id}").json()
        assert r.hget(keys.job(job_id), "callback_url") == receiver.url
        assert "callback_url" not in record


class TestOutcomeHook:
    def test_completion_queues_a_callback_with_the_record(
        self, cb_settings: Settings, r: redis.Redis, keys: Keys, receiver: Receiver
    ) -> None:
        """The outcome script XADDs the callback in the same step: status, URL, snapshot."""
        with TestClient(app=create_app(cb_settings)) as client:
            job_id = submit(client, receiver.url)
        finish(r, keys, job_id)
        [(_, fields)] = r.xrange(keys.callbacks.stream)
        assert fields["job_id"] == job_id
        assert fields["status"] == "completed"
        assert fields["url"] == receiver.url
        assert fields["attempt"] == "1"
        snapshot = json.loads(fields["record"])
        assert snapshot["status"] == "completed"
        assert "callback_url" not in snapshot

    def test_failed_and_dead_jobs_queue_callbacks_too(
        self, cb_settings: Settings, r: redis.Redis, keys: Keys, receiver: Receiver
    ) -> None:
        """failed (finish.lua) and dead (dead_letter.lua) notify as well."""
        with TestClient(app=create_app(cb_settings)) as client:
            failed = submit(client, receiver.url)
            dead = submit(client, receiver.url)
        finish(r, keys, failed, Status.FAILED)
        records = JobRecords(r, keys, "test-1")
        [[_, [(entry_id, entry)]]] = r.xreadgroup(keys.group, "test-1", {keys.stream: ">"})
        gave_up = Outcome(Status.DEAD, {"error": "gave up", "finished_at": "t"}, [])
        assert records.dead_letter(entry_id, dead, 3600, dict(entry), gave_up)
        statuses = {f["job_id"]: f["status"] for _, f in r.xrange(keys.callbacks.stream)}
        assert statuses == {failed: "failed", dead: "dead"}

    def test_no_url_no_callback_and_never_twice(
        self, cb_settings: Settings, r: redis.Redis, keys: Keys, receiver: Receiver
    ) -> None:
        """A job without callback_url queues nothing; a second outcome write queues nothing."""
        with TestClient(app=create_app(cb_settings)) as client:
            plain = client.post(AGENTS, json={"suburb": "Manly", "state": "NSW"}).json()["job_id"]
            with_url = submit(client, receiver.url)
        finish(r, keys, plain)
        finish(r, keys, with_url)
        records = JobRecords(r, keys, "test-1")
        entry_id = r.hget(keys.job(with_url), "entry_id")
        again = Outcome(Status.COMPLETED, {"finished_at": "t"}, [])
        assert not records.finish(str(entry_id), with_url, 3600, again)[0]
        assert r.xlen(keys.callbacks.stream) == 1
