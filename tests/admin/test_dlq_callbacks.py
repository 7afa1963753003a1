"""``agentlink dlq … --callbacks``: the callbacks given up on, listed, sent again and purged
from the command line, against a real notifier and receiver."""

from __future__ import annotations

import json

import pytest
import redis

from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import wait_for
from tests.support.callbacks import Receiver, callback_state, finished_job
from tests.support.cli import run_cli


def dead_callback(settings: Settings, r: redis.Redis, keys: Keys, receiver: Receiver) -> str:
    """A job whose callback the receiver refused (404: not retried); its dead callback id."""
    before = callback_state(r)[3]
    receiver.answers = [404]
    finished_job(settings, r, keys, receiver.url)
    wait_for(lambda: callback_state(r)[3] == before + 1, 10, "a dead callback")
    return str(r.xrevrange(keys.callbacks.dead, count=1)[0][0])


@pytest.mark.usefixtures("notifier")
class TestDeadCallbacksFromTheCli:
    def test_list_shows_the_host_never_the_secret_path(
        self,
        cb_settings: Settings,
        r: redis.Redis,
        keys: Keys,
        receiver: Receiver,
    ) -> None:
        """The table and the JSON lines name the dead callback, its job, status, the URL's
        host and the error; the URL's path and query (a Make webhook's secret) never."""
        dead_id = dead_callback(cb_settings, r, keys, receiver)
        [(_, fields)] = r.xrange(keys.callbacks.dead)
        table = run_cli(cb_settings, "dlq", "list", "--callbacks")
        assert table.returncode == 0, table.stderr
        header, row = table.stdout.splitlines()
        assert header.split() == ["DEAD", "ID", "JOB", "ID", "STATUS", "HOST", "DELIV", "ERROR"]
        assert row.split()[:5] == [dead_id, fields["job_id"], "completed", "127.0.0.1", "1"]
        assert row.endswith("answered 404")
        listed = run_cli(cb_settings, "dlq", "list", "--callbacks", "--json")
        [line] = listed.stdout.splitlines()
        assert json.loads(line) | {"dead_at": ""} == {
            "dead_id": dead_id,
            "job_id": fields["job_id"],
            "status": "completed",
            "host": "127.0.0.1",
            "delivery": fields["delivery"],
            "error": "answered 404",
            "deliveries": 1,
            "dead_at": "",
        }
        for output in (table.stdout, listed.stdout):
            assert "/hook" not in output
            assert "scenario" not in output
        letters = run_cli(cb_settings, "dlq", "list")
        assert letters.stdout.strip() == "no dead letters"

    def test_replay_sends_it_again_with_its_delivery_id(
        self,
        cb_settings: Settings,
        r: redis.Redis,
        keys: Keys,
        receiver: Receiver,
    ) -> None:
        """Replayed: the notifier delivers it again, with the delivery id of the first try
        (receivers de-duplicate on it); a second replay of the same id finds nothing."""
        dead_id = dead_callback(cb_settings, r, keys, receiver)
        receiver.answers = [200]
        done = run_cli(cb_settings, "dlq", "replay", "--callbacks", dead_id)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"replayed {dead_id} as entry ")
        wait_for(lambda: len(receiver.received) == 2, 10, "the callback sent again")
        first, again = receiver.received
        assert again.headers["x-agentlink-delivery"] == first.headers["x-agentlink-delivery"]
        assert again.headers["x-agentlink-attempt"] == "1"
        wait_for(lambda: callback_state(r) == (0, 0, 0, 0), 10, "the delivery acknowledged")
        missing = run_cli(cb_settings, "dlq", "replay", "--callbacks", dead_id)
        assert missing.returncode == 1
        assert f"no dead callback {dead_id}" in missing.stderr

    def test_replay_all_and_purge(
        self,
        cb_settings: Settings,
        r: redis.Redis,
        keys: Keys,
        receiver: Receiver,
    ) -> None:
        """--all sends every dead callback again; purge deletes them (and not the report
        dead letters beside them)."""
        for _ in range(3):
            dead_callback(cb_settings, r, keys, receiver)
        receiver.answers = [200]
        done = run_cli(cb_settings, "dlq", "replay", "--callbacks", "--all")
        assert done.stdout.strip() == "replayed 3 dead callback(s)"
        wait_for(lambda: len(receiver.received) == 6, 10, "three callbacks sent again")
        wait_for(lambda: callback_state(r) == (0, 0, 0, 0), 10, "the deliveries acknowledged")
        receiver.answers = [404]
        dead_callback(cb_settings, r, keys, receiver)
        r.xadd(keys.dead, {"job_id": "x", "error": "boom"})
        purged = run_cli(cb_settings, "dlq", "purge", "--callbacks", "--yes")
        assert purged.stdout.strip() == "purged 1 dead callback(s)"
        assert callback_state(r)[3] == 0
        assert r.xlen(keys.dead) == 1
