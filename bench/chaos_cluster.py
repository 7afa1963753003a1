"""The processes of a chaos run (redis-server, ``agentlink api``, the consumer slots) and
the faults done to them: ``kill -9`` and restart, with what each kill left behind."""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
import redis.exceptions

from agentlink.admin.devredis import RedisServer, free_port
from agentlink.stream.keys import Keys
from bench.chaos_record import ConsumerKill, RedisKill
from bench.chaos_watch import JobMonitor
from bench.harness import Api, Processes, clean_env

CONSUMER_NAME = "chaos"


class Cluster:
    """Redis, the API and the consumer slots of one chaos run, and the faults done to them."""

    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.work = work
        self.args = args
        self.keys = Keys()
        self.processes = Processes(work)
        self.server = RedisServer(work / "redis")
        self.consumers: dict[int, subprocess.Popen[bytes]] = {}
        self.incarnations: dict[int, int] = {}
        self.restart_at: dict[int, float] = {}
        self.unexpected_exits: list[tuple[int, int | None]] = []
        self.saves_file = work / "saves.jsonl"
        self.output_dir = work / "reports"
        self.api: Api | None = None
        self.env: dict[str, str] = {}

    @property
    def slots(self) -> range:
        """The consumer slot numbers."""
        return range(1, self.args.workers + 1)

    def log_files(self) -> list[Path]:
        """Every consumer slot's JSON log."""
        return [self.work / f"consumer-{slot}.jsonl" for slot in self.slots]

    def client(self) -> Any:
        """A short-lived Redis client with short timeouts."""
        return redis.Redis.from_url(
            self.server.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2
        )

    def start(self) -> None:
        """Start Redis, the API and every consumer slot."""
        self._start_redis()
        self.env = clean_env(
            REDIS_URL=self.server.url,
            AGENTLINK_OUTPUT_DIR=str(self.output_dir),
            AGENTLINK_CONSUMER_NAME=CONSUMER_NAME,
            AGENTLINK_LEASE_S=str(self.args.lease_s),
            AGENTLINK_LOG_FORMAT="json",
            # The run measures durability, not the API's per-caller rate limit (one
            # client here sends ~3 requests/s); --rate-limit turns it back on.
            AGENTLINK_RATE_LIMIT=str(self.args.rate_limit),
        )
        port = free_port()
        self.api = Api(
            self.processes.start(
                ["-m", "agentlink", "api", "--port", str(port)],
                {**self.env, "AGENTLINK_LOG_LEVEL": "warning"},
                "api.log",
            ),
            port,
        )
        for slot in self.slots:
            self.start_consumer(slot)

    def _start_redis(self) -> None:
        self.server.start(timeout_s=60)
        if self.args.fsync == "always":
            # RedisServer starts with everysec; the setting lives in memory, so set it
            # again after every restart.
            with self.client() as client:
                client.config_set("appendfsync", "always")

    def start_consumer(self, slot: int) -> None:
        """Start (or restart) the consumer of ``slot`` under its stable name."""
        incarnation = self.incarnations.get(slot, -1) + 1
        self.incarnations[slot] = incarnation
        self.consumers[slot] = self.processes.start(
            [
                "-m",
                "bench.chaos_consumer",
                "--slot",
                str(slot),
                "--saves-file",
                str(self.saves_file),
                "--log-file",
                str(self.work / f"consumer-{slot}.jsonl"),
                "--failure-rate",
                str(self.args.storage_failure_rate),
                "--seed",
                str(self.args.seed),
                "--incarnation",
                str(incarnation),
            ],
            self.env,
            f"consumer-{slot}.out",
        )
        self.restart_at.pop(slot, None)

    def revive(self) -> None:
        """Restart killed slots whose delay is over, and any consumer that exited by itself."""
        now = time.monotonic()
        for slot, process in self.consumers.items():
            if process.poll() is None:
                continue
            if slot not in self.restart_at:  # not killed by us
                self.unexpected_exits.append((slot, process.returncode))
                self.restart_at[slot] = now
            if now >= self.restart_at[slot]:
                self.start_consumer(slot)

    def kill_consumer(self, slot: int, monitor: JobMonitor) -> ConsumerKill:
        """``kill -9`` the consumer of ``slot`` (not its render child); restart it later."""
        name = f"{CONSUMER_NAME}-{slot}"
        jobs = monitor.in_progress_on(name)
        pel: dict[str, int] | None = None
        try:
            with self.client() as client:
                current = client.hget(self.keys.consumer(name), "job")
                rows = client.xpending_range(
                    self.keys.stream, self.keys.group, "-", "+", 100, consumername=name
                )
                owners = (
                    client.hmget(self.keys.index, [r["message_id"] for r in rows]) if rows else []
                )
            if current:
                jobs.add(current)
            pel = {
                job_id: int(row["time_since_delivered"])
                for row, job_id in zip(rows, owners, strict=True)
                if job_id
            }
            jobs |= set(pel)
        except redis.exceptions.RedisError:
            pass
        process = self.consumers[slot]
        process.kill()
        killed_at = time.time()
        process.wait(10)
        self.restart_at[slot] = time.monotonic() + self.args.restart_delay_s
        return ConsumerKill(slot, name, killed_at, jobs, pel)

    def kill_redis(self, acked: list[str], completed: set[str]) -> RedisKill:
        """``kill -9`` Redis, wait, restart it from its AOF and check what survived."""
        started = time.monotonic()
        self.server.kill()
        killed_at = time.time()
        time.sleep(self.args.redis_down_s)
        self._start_redis()
        down_s = time.monotonic() - started
        with self.client() as client:
            pipe = client.pipeline(transaction=False)
            for job_id in acked:
                pipe.exists(self.keys.job(job_id))
            for job_id in completed:
                pipe.hget(self.keys.job(job_id), "status")
            replies = pipe.execute()
        exists, status = replies[: len(acked)], replies[len(acked) :]
        return RedisKill(
            at=killed_at,
            down_s=down_s,
            acked_before=len(acked),
            missing_after=[j for j, e in zip(acked, exists, strict=True) if not e],
            completed_before=len(completed),
            regressed=[j for j, s in zip(completed, status, strict=True) if s != "completed"],
        )

    def final_state(self, job_ids: list[str]) -> tuple[dict[str, Any], dict[str, Any], int, int]:
        """Job hashes of ``job_ids``, hashes of jobs nobody got a 202 for, dead letters, pending."""
        known = set(job_ids)
        with self.client() as client:
            pipe = client.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.hgetall(self.keys.job(job_id))
            final = dict(zip(job_ids, pipe.execute(), strict=True))
            prefix = self.keys.job("")
            orphan_ids = [
                key.removeprefix(prefix)
                for key in client.scan_iter(match=f"{prefix}*", count=1000)
                if key.removeprefix(prefix) not in known
            ]
            orphans = {j: client.hgetall(self.keys.job(j)) for j in orphan_ids}
            dead = int(client.xlen(self.keys.dead))
            pending = int(client.xpending(self.keys.stream, self.keys.group)["pending"])
        return final, orphans, dead, pending

    def stop(self) -> None:
        """Stop every process of the run."""
        self.processes.stop_all()
        self.server.stop()
