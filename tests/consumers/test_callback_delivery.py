"""Callback delivery by notifiers: signatures and answers, retries with back-off, dead
letters, re-checks at delivery, and crashes mid-delivery."""

from __future__ import annotations

import json
import signal
import socket
import threading
from dataclasses import replace

import pytest
import redis
from litestar.testing import TestClient

from agentlink.api import create_app
from agentlink.callbacks import sign, verify
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from consumers.callback_sender import classify
from consumers.notifier import Notifier
from tests.conftest import Processes, settings_env, wait_for
from tests.support.callbacks import (
    SECRET,
    Receiver,
    callback_state,
    enqueue_callback,
    finish,
    finished_job,
    submit,
)


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
        finished_job(cb_settings, r, keys, receiver.url)
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
        job_id = finished_job(cb_settings, r, keys, receiver.url)
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
        finished_job(cb_settings, r, keys, receiver.url)
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
            job_id = finished_job(cb_settings, r, keys, receiver.url)
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
