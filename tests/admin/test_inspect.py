"""`agentlink inspect` and `agentlink job`, and every command's --help: what an operator
sees."""

from __future__ import annotations

import argparse
import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from agentlink import cli
from agentlink.settings import Settings
from agentlink.stream.keys import Keys
from tests.conftest import Processes, submit, wait_status
from tests.support.cli import run_cli


class TestInspect:
    def test_json_snapshot_reports_backlog_pending_and_consumers(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys, settings: Settings
    ) -> None:
        """Lag, pending entries with their job, consumers and recent statuses, as JSON."""
        job_ids = [submit(client, suburb=s) for s in ("Manly", "Mosman", "Bondi")]
        r.xreadgroup(keys.group, "host-1", {keys.stream: ">"}, count=1)
        r.zadd(keys.consumers, {"host-1": time.time()})
        r.hset(keys.consumer("host-1"), mapping={"state": "busy", "job": job_ids[0]})
        r.xadd(keys.dead, {"job_id": "x", "error": "boom"})
        result = run_cli(settings, "inspect", "--json")
        assert result.returncode == 0, result.stderr
        snap = json.loads(result.stdout)
        assert snap["length"] == 3
        assert snap["lag"] == 2
        assert snap["pending"] == 1
        assert snap["dead_letters"] == 1
        assert 0 <= snap["oldest_pending_age_s"] < 60
        [pending] = snap["pending_entries"]
        assert pending["consumer"] == "host-1"
        assert pending["job_id"] == job_ids[0]
        assert pending["deliveries"] == 1
        [consumer] = snap["consumers"]
        assert consumer["name"] == "host-1"
        assert consumer["live"] is True
        assert consumer["job"] == job_ids[0]
        assert snap["recent_jobs"] == {"queued": 3}

    def test_text_output_names_what_to_do(
        self, r: redis.Redis, keys: Keys, settings: Settings
    ) -> None:
        """The terminal view says when no consumer runs and where dead letters are."""
        r.xgroup_create(keys.stream, keys.group, "0", mkstream=True)
        r.xadd(keys.dead, {"job_id": "x", "error": "boom"})
        result = run_cli(settings, "inspect")
        assert result.returncode == 0, result.stderr
        assert "no consumers" in result.stdout
        assert "agentlink dlq list" in result.stdout

    def test_real_activity_reads_at_80_columns(
        self,
        client: TestClient[Any],
        r: redis.Redis,
        keys: Keys,
        settings: Settings,
        processes: Processes,
    ) -> None:
        """Completed, failed, pending and dead jobs from a real consumer, in 80 columns."""
        consumer = processes.consumer(settings)
        done = submit(client)
        failed = submit(client, suburb="Atlantis")
        wait_status(r, done, "completed")
        wait_status(r, failed, "failed")
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(30) == 0
        held = submit(client, suburb="Mosman")
        r.xreadgroup(keys.group, "a-rather-long-consumer-name-on-host-42", {keys.stream: ">"})
        r.xadd(keys.dead, {"job_id": "x", "error": "boom"})
        result = run_cli(settings, "inspect")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, result.stdout
        text = result.stdout
        assert "test-1" in text
        assert held[:8] in text
        assert "completed 1" in text
        assert "failed 1" in text
        assert "1 dead letter(s)" in text
        assert "1 pending" in text

    def test_empty_redis(self, settings: Settings, redis_url: str) -> None:
        """Before anything was queued, inspect still answers."""
        result = run_cli(settings, "inspect", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["length"] == 0


class TestJobCommand:
    def test_prints_the_record(self, client: TestClient[Any], settings: Settings) -> None:
        """`agentlink job <id>` prints the status record as JSON."""
        job_id = submit(client)
        result = run_cli(settings, "job", job_id)
        assert result.returncode == 0, result.stderr
        record = json.loads(result.stdout)
        assert record["job_id"] == job_id
        assert record["status"] == "queued"

    def test_unknown_job_exits_1(self, settings: Settings, redis_url: str) -> None:
        """An unknown job id is an error."""
        result = run_cli(settings, "job", "nope")
        assert result.returncode == 1
        assert "no job nope" in result.stderr

    def test_a_unique_prefix_of_8_characters_finds_the_job(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys, settings: Settings
    ) -> None:
        """The 8-character id inspect and the PDF file names show is enough."""
        job_id = submit(client)
        other = submit(client, suburb="Mosman")
        assert other[:8] != job_id[:8]
        result = run_cli(settings, "job", job_id[:8])
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["job_id"] == job_id

    def test_an_ambiguous_prefix_names_the_candidates(
        self, r: redis.Redis, keys: Keys, settings: Settings
    ) -> None:
        """Two jobs starting alike: exit 1, both ids listed; a longer prefix picks one."""
        ids = ["d03b6eb8-aaaa-4000-8000-000000000001", "d03b6eb8-bbbb-4000-8000-000000000002"]
        for job_id in ids:
            r.hset(keys.job(job_id), mapping=job_fields(job_id))
            r.zadd(keys.job_ids, {job_id: 0})  # the id index, as the scripts keep it
        r.zadd(keys.job_ids, {"d03b6eb8-cccc-4000-8000-000000000003": 0})  # job expired
        result = run_cli(settings, "job", "d03b6eb8")
        assert result.returncode == 1
        assert "starts several job ids" in result.stderr
        assert ids[0] in result.stderr
        assert ids[1] in result.stderr
        assert "cccc" not in result.stderr
        picked = run_cli(settings, "job", "d03b6eb8-b")
        assert picked.returncode == 0, picked.stderr
        assert json.loads(picked.stdout)["job_id"] == ids[1]

    def test_a_prefix_shorter_than_8_characters_is_refused(
        self, client: TestClient[Any], settings: Settings
    ) -> None:
        """Seven characters: exit 1, saying how many are needed."""
        job_id = submit(client)
        result = run_cli(settings, "job", job_id[:7])
        assert result.returncode == 1
        assert "at least its first 8 characters" in result.stderr

    def test_a_local_pdf_is_shown_as_its_file(
        self, client: TestClient[Any], r: redis.Redis, keys: Keys, settings: Settings
    ) -> None:
        """With local storage, result.url is the PDF's file:// URI where the CLI runs (the API
        shows its own address there); a file that is gone leaves it null, with a note."""
        job_id = submit(client)
        path = f"NSW/Manly/agents-Manly-2026-11-26-{job_id[:8]}.pdf"
        r.hset(
            keys.job(job_id),
            mapping={"status": "completed", "result_storage": "local", "result_path": path},
        )
        pdf = settings.output_dir / path
        pdf.parent.mkdir(parents=True)
        pdf.write_bytes(b"%PDF-1.7\n")
        result = run_cli(settings, "job", job_id)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["result"]["url"] == pdf.resolve().as_uri()
        pdf.unlink()
        gone = run_cli(settings, "job", job_id)
        assert gone.returncode == 0, gone.stderr
        assert json.loads(gone.stdout)["result"]["url"] is None
        assert "the PDF is not at" in gone.stderr


def job_fields(job_id: str) -> dict[str, str]:
    """A queued job's hash, as the API writes it."""
    return {
        "job_id": job_id,
        "kind": "agents",
        "status": "queued",
        "suburb": "Manly",
        "state": "NSW",
        "created_at": "2026-11-26T10:00:00.000+00:00",
        "attempts": "0",
    }


class TestHelp:
    def test_every_command_says_what_it_does(self) -> None:
        """Each subcommand, nested ones included, has a description for its --help."""
        missing = [
            name
            for name, parser in subcommands(cli._parser(), "agentlink")
            if not parser.description
        ]
        assert missing == []

    @pytest.mark.parametrize("command", ["api", "worker"])
    def test_help_prints_the_description(
        self, command: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`agentlink api --help` and `agentlink worker --help` open with what they do."""
        with pytest.raises(SystemExit) as exited:
            cli.main([command, "--help"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        usage, description = out.split("\n\n")[:2]
        assert usage.startswith(f"usage: agentlink {command}")
        assert description.split()[0] in {"Serve", "Run"}


def subcommands(
    parser: argparse.ArgumentParser, name: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every subcommand parser below ``parser``, with its full command name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield f"{name} {sub_name}", sub
                yield from subcommands(sub, f"{name} {sub_name}")
