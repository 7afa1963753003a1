"""Callbacks: the SSRF guard at submission, the outcome hook, signed delivery by notifiers,
retries with back-off, dead letters, re-checks at delivery, and crashes mid-delivery."""

from __future__ import annotations

import json
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.callbacks import CallbackPolicy, CallbackUrlError, address_problem, sign, verify
from agentlink.jobs import Status
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from agentlink.stream.records import JobRecords, Outcome
from consumers.callback_sender import classify
from consumers.notifier import Notifier
from tests.conftest import Processes, settings_env, wait_for
from tests.support.callbacks import Receiver, callback_state, enqueue_callback

AGENTS = "/api/generate-agents-report"
SECRET = "s3cret-for-tests"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver answering 200."""
    rec = Receiver()
    rec.start()
    yield rec
    rec.stop()


@pytest.fixture
def cb_settings(settings: Settings) -> Settings:
    """Callbacks allowed to 127.0.0.1 over http (AGENTLINK_CALLBACK_ALLOW_INSECURE), signed,
    with fast retries."""
    return replace(
        settings,
        callback_hosts=("127.0.0.1",),
        callback_allow_insecure=True,
        webhook_secret=SECRET,
        callback_timeout_s=3.0,
        callback_retry_base_s=0.05,
        callback_retry_max_s=0.2,
        callback_max_attempts=4,
    )


@pytest.fixture
def notifier(cb_settings: Settings) -> Iterator[Notifier]:
    """A notifier running in a thread of the test process."""
    running = Notifier(cb_settings, "test-notifier-1")
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    yield running
    running.stopping.set()
    thread.join(10)
    assert not thread.is_alive()


def submit(client: TestClient[Any], callback_url: str) -> str:
    response = client.post(
        AGENTS, json={"suburb": "Manly", "state": "NSW", "callback_url": callback_url}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def finish(r: redis.Redis, keys: Keys, job_id: str, status: Status = Status.COMPLETED) -> None:
    """What a consumer does at the end of a job: the outcome script (with its hook)."""
    records = JobRecords(r, keys, "test-1")
    [[_, [(entry_id, _)]]] = r.xreadgroup(keys.group, "test-1", {keys.stream: ">"}, count=1)
    fields = {"finished_at": "2026-11-26T10:00:00.000+00:00"}
    if status == Status.FAILED:
        fields["error"] = "no sales recorded for Manly, NSW"
    assert records.finish(entry_id, job_id, 3600, Outcome(status, fields, []))[0]


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


class TestSignature:
    def test_sign_and_verify(self) -> None:
        """HMAC-SHA256 of '<timestamp>.<body>'; a changed body, secret or old stamp fails."""
        body = b'{"job_id":"j"}'
        signature = sign(SECRET, "1700000000", body)
        assert signature.startswith("sha256=")
        assert len(signature) == 7 + 64
        assert verify(SECRET, "1700000000", body, signature, now=1700000100)
        assert not verify(SECRET, "1700000000", body + b" ", signature, now=1700000100)
        assert not verify("other", "1700000000", body, signature, now=1700000100)
        assert not verify(SECRET, "1700000000", body, signature, now=1700009999)

    @pytest.mark.parametrize(
        ("status", "verdict"),
        [
            (200, "delivered"),
            (204, "delivered"),
            (429, "retry"),
            (503, "retry"),
            (408, "retry"),
            (404, "give_up"),
            (410, "give_up"),
            (301, "give_up"),
        ],
    )
    def test_answers_are_classified(self, status: int, verdict: str) -> None:
        """2xx delivered; timeouts, 429 and 5xx retried; anything else given up."""
        assert classify(status, None).verdict == verdict


class TestDelivery:
    def test_delivered_signed_and_acked(
        self,
        cb_settings: Settings,
        r: redis.Redis,
        keys: Keys,
        receiver: Receiver,
        notifier: Notifier,
    ) -> None:
        """The receiver gets the job record, signed; the callback leaves the stream."""
        with TestClient(app=create_app(cb_settings)) as client:
            job_id = submit(client, receiver.url)
            finish(r, keys, job_id)
            status_record = client.get(f"/api/job-status/{job_id}").json()
        wait_for(lambda: receiver.received, 10, "the callback")
        [got] = receiver.received
        assert got.path == "/hook?scenario=1"
        assert got.headers["content-type"] == "application/json"
        assert got.headers["x-agentlink-event"] == "job.completed"
        assert got.headers["x-agentlink-job-id"] == job_id
        assert got.headers["x-agentlink-attempt"] == "1"
        assert verify(
            SECRET,
            got.headers["x-agentlink-timestamp"],
            got.body,
            got.headers["x-agentlink-signature"],
        )
        assert got.record["job_id"] == job_id
        assert got.record["status"] == "completed"
        assert got.record.keys() == status_record.keys()
        wait_for(lambda: callback_state(r) == (0, 0, 0, 0), 10, "the callback to be settled")

    def test_connection_is_pinned_to_the_checked_address(
        self,
        cb_settings: Settings,
        r: redis.Redis,
        receiver: Receiver,
    ) -> None:
        """A host name is resolved and checked, the connection goes to that address and the
        Host header still names the host."""
        port = receiver.url.split(":")[2].split("/")[0]
        named = replace(cb_settings, callback_hosts=("localhost",))
        running = Notifier(named, "pin-1")
        thread = threading.Thread(target=running.run, daemon=True)
        thread.start()
        try:
            enqueue_callback(r, f"http://localhost:{port}/hook", job_id="j-pin")
            wait_for(lambda: receiver.received, 10, "the callback")
        finally:
            running.stopping.set()
            thread.join(10)
        assert receiver.received[0].headers["host"] == f"localhost:{port}"

    def test_receiver_errors_are_retried_with_backoff(
        self,
        cb_settings: Settings,
        r: redis.Redis,
        keys: Keys,
        receiver: Receiver,
        notifier: Notifier,
    ) -> None:
        """503, 429 then 200: three attempts, the same delivery id, then acked."""
        receiver.answers = [503, 429, 200]
        with TestClient(app=create_app(cb_settings)) as client:
            job_id = submit(client, receiver.url)
        finish(r, keys, job_id)
        wait_for(lambda: len(receiver.received) == 3, 15, "three attempts")
        attempts = [g.headers["x-agentlink-attempt"] for g in receiver.received]
        assert attempts == ["1", "2", "3"]
        assert len({g.headers["x-agentlink-delivery"] for g in receiver.received}) == 1
        wait_for(lambda: callback_state(r) == (0, 0, 0, 0), 10, "the callback to be settled")

    def test_receiver_down_then_up(self, cb_settings: Settings, r: redis.Redis, keys: Keys) -> None:
        """Nobody listening (connection refused) is retried until the receiver is back."""
        patient = replace(cb_settings, callback_max_attempts=100)
        placeholder = socket.socket()  # holds the port without listening: connections fail
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
        running = Notifier(patient, "patient-1")
        thread = threading.Thread(target=running.run, daemon=True)
        thread.start()
        back = Receiver()
        try:
            with TestClient(app=create_app(patient)) as client:
                job_id = submit(client, f"http://127.0.0.1:{port}/hook")
            finish(r, keys, job_id)
            wait_for(lambda: highest_attempt(r) >= 3, 15, "failed attempts")
            placeholder.close()
            back.start(port=port)
            wait_for(lambda: back.received, 15, "the callback")
            wait_for(lambda: callback_state(r) == (0, 0, 0, 0), 10, "the callback settled")
        finally:
            running.stopping.set()
            thread.join(10)
            back.stop()
            placeholder.close()
        [got] = back.received
        assert got.record["job_id"] == job_id
        assert int(got.headers["x-agentlink-attempt"]) >= 3

    def test_permanent_refusal_goes_to_dead_letters(
        self,
        cb_settings: Settings,
        r: redis.Redis,
        keys: Keys,
        receiver: Receiver,
        notifier: Notifier,
    ) -> None:
        """A 404 is not retried: one attempt, then the callback's own dead letters."""
        receiver.answers = [404]
        with TestClient(app=create_app(cb_settings)) as client:
            job_id = submit(client, receiver.url)
        finish(r, keys, job_id)
        wait_for(lambda: callback_state(r)[3] == 1, 10, "a dead callback")
        [(_, dead)] = r.xrange(keys.callbacks.dead)
        assert dead["job_id"] == job_id
        assert dead["error"] == "answered 404"
        assert len(receiver.received) == 1
        assert callback_state(r) == (0, 0, 0, 1)

    def test_gives_up_after_max_attempts(
        self,
        cb_settings: Settings,
        r: redis.Redis,
        keys: Keys,
        receiver: Receiver,
        notifier: Notifier,
    ) -> None:
        """Always 500: AGENTLINK_CALLBACK_MAX_ATTEMPTS (4) tries, then a dead letter."""
        receiver.answers = [500]
        with TestClient(app=create_app(cb_settings)) as client:
            job_id = submit(client, receiver.url)
        finish(r, keys, job_id)
        wait_for(lambda: callback_state(r)[3] == 1, 15, "a dead callback")
        [(_, dead)] = r.xrange(keys.callbacks.dead)
        assert dead["error"] == "gave up after 4 attempts: answered 500"
        assert dead["attempt"] == "4"
        assert len(receiver.received) == 4

    def test_guard_is_applied_again_at_delivery(
        self,
        cb_settings: Settings,
        r: redis.Redis,
        keys: Keys,
        receiver: Receiver,
    ) -> None:
        """A host that resolves to a private address by delivery time (DNS rebinding) is
        refused then, without a request."""
        port = receiver.url.split(":")[2].split("/")[0]
        strict = replace(
            cb_settings, callback_hosts=("http://localhost",), callback_allow_insecure=False
        )
        running = Notifier(strict, "strict-1")
        thread = threading.Thread(target=running.run, daemon=True)
        thread.start()
        try:
            enqueue_callback(r, f"http://localhost:{port}/hook", job_id="j-rebound")
            wait_for(lambda: callback_state(r)[3] == 1, 10, "a dead callback")
        finally:
            running.stopping.set()
            thread.join(10)
        [(_, dead)] = r.xrange(keys.callbacks.dead)
        assert "refused at delivery" in dead["error"]
        assert "a loopback address" in dead["error"]
        assert receiver.received == []


def highest_attempt(r: redis.Redis) -> int:
    """The highest attempt number among queued and parked callbacks."""
    keys = Keys().callbacks
    attempts = [int(f.get("attempt", 0)) for _, f in r.xrange(keys.stream)]
    attempts += [int(json.loads(m)["attempt"]) for m in r.zrange(keys.delayed, 0, -1)]
    return max(attempts, default=0)


class TestCrashes:
    def test_notifier_killed_mid_delivery_callback_still_arrives(
        self,
        cb_settings: Settings,
        r: redis.Redis,
        keys: Keys,
        processes: Processes,
    ) -> None:
        """kill -9 while the receiver holds the request: another notifier reclaims the entry
        after one lease and delivers it; the receiver sees the same delivery twice."""
        receiver = Receiver(answers=["hang", 200])
        receiver.start()
        try:
            with TestClient(app=create_app(cb_settings)) as client:
                job_id = submit(client, receiver.url)
            finish(r, keys, job_id)
            env = settings_env(
                cb_settings,
                AGENTLINK_CALLBACK_HOSTS="127.0.0.1",
                AGENTLINK_CALLBACK_ALLOW_INSECURE="true",
                AGENTLINK_WEBHOOK_SECRET=SECRET,
                AGENTLINK_CALLBACK_TIMEOUT_S="60",
            )
            first = processes.start(["-m", "consumers.notifier", "--slot", "1"], env, "n1")
            wait_for(lambda: receiver.received, 30, "the first delivery")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            assert callback_state(r)[1] == 1, "the entry stays pending with the dead notifier"
            processes.start(["-m", "consumers.notifier", "--slot", "2"], env, "n2")
            wait_for(lambda: len(receiver.received) == 2, 30, "the second delivery")
            wait_for(lambda: callback_state(r) == (0, 0, 0, 0), 10, "the callback settled")
        finally:
            receiver.stop()
        one, two = receiver.received
        assert one.record["job_id"] == two.record["job_id"] == job_id
        assert one.headers["x-agentlink-delivery"] == two.headers["x-agentlink-delivery"]
        for got in (one, two):
            assert verify(
                SECRET,
                got.headers["x-agentlink-timestamp"],
                got.body,
                got.headers["x-agentlink-signature"],
            )
        assert "callback.reclaimed" in processes.log("n2")

    def test_worker_delivers_the_callback_of_a_real_job(
        self,
        cb_settings: Settings,
        r: redis.Redis,
        processes: Processes,
        receiver: Receiver,
    ) -> None:
        """End to end: a consumer process renders the report and its notifier thread posts
        the completed record."""
        with TestClient(app=create_app(cb_settings)) as client:
            job_id = submit(client, receiver.url)
        processes.consumer(
            cb_settings,
            1,
            AGENTLINK_CALLBACK_HOSTS="127.0.0.1",
            AGENTLINK_CALLBACK_ALLOW_INSECURE="true",
            AGENTLINK_WEBHOOK_SECRET=SECRET,
        )
        wait_for(lambda: receiver.received, 60, "the callback of the rendered job")
        [got] = receiver.received
        assert got.record["job_id"] == job_id
        assert got.record["status"] == "completed"
        assert got.record["result"]["pages"] >= 1
        assert verify(
            SECRET,
            got.headers["x-agentlink-timestamp"],
            got.body,
            got.headers["x-agentlink-signature"],
        )
