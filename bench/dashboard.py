"""``python -m bench.dashboard``: how long the dashboard's pages take with 100,000 jobs and
10,000 dead letters.

A private redis-server is filled straight from here, pipelined: ``--jobs`` synthetic job
hashes (finished ones spread over the statuses and over the sample data's suburbs, each
with the index entries the Lua scripts keep: by age, by status, by id, by suburb), and
``--dead`` dead letters with an error history. ``agentlink api`` then serves the dashboard
to an operator key, and every page and part is fetched ``--repeat`` times over HTTP; the
table gives the median and the slowest answer of each, as the browser would wait for it.
No timed assert: the figures are for reading.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import redis

from agentlink.admin.devredis import RedisServer, free_port
from agentlink.jobs import Status
from agentlink.stream.keys import Keys
from bench.harness import (
    Api,
    Processes,
    bench_parser,
    clean_env,
    interrupt_on_sigterm,
    median,
    sample_suburbs,
    table,
    uninterrupted,
    wait_for_health,
    work_folder,
)

OPERATOR_KEY = "bench-operator-key"
BATCH = 2000
WEIGHTS = {
    Status.COMPLETED: 80,
    Status.FAILED: 8,
    Status.DEAD: 2,
    Status.CANCELLED: 3,
    Status.QUEUED: 5,
    Status.PROCESSING: 1,
    Status.RETRYING: 1,
}


def fill_jobs(client: redis.Redis, keys: Keys, count: int, seed: int = 7) -> list[str]:
    """``count`` job hashes and their index entries, newest last; returns the job ids."""
    rng = random.Random(seed)
    suburbs = [(suburb, state) for suburb, state, _ in sample_suburbs()]
    statuses, weights = list(WEIGHTS), list(WEIGHTS.values())
    idx = keys.indexes
    start = datetime.now(UTC) - timedelta(days=6)
    step_ms = int(6 * 86400 * 1000 / max(1, count))
    job_ids = []
    for first in range(0, count, BATCH):
        pipe = client.pipeline(transaction=False)
        for n in range(first, min(count, first + BATCH)):
            job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            suburb, state = suburbs[n % len(suburbs)]
            status = rng.choices(statuses, weights)[0].value
            created = start + timedelta(milliseconds=n * step_ms)
            created_ms = int(created.timestamp() * 1000)
            fields = {
                "job_id": job_id,
                "kind": "agents" if n % 2 else "agency",
                "status": status,
                "suburb": suburb,
                "state": state,
                "period_months": "12",
                "created_at": created.isoformat(timespec="milliseconds"),
                "created_ms": str(created_ms),
                "attempts": "1",
                "owner": "key-bench",
            }
            if status in {"failed", "dead"}:
                fields["error"] = f"no sales recorded for {suburb}, {state}"
            where = f"{state}|{suburb.lower()}"
            pipe.hset(keys.job(job_id), mapping=fields)
            pipe.zadd(idx["all"], {job_id: created_ms})
            pipe.zadd(idx["by_status"] + status, {job_id: created_ms})
            pipe.zadd(idx["ids"], {job_id: 0})
            pipe.zadd(idx["suburb"] + where, {job_id: created_ms})
            pipe.hset(idx["where"], job_id, where)
            pipe.zadd(idx["suburbs"], {f"{suburb.lower()}|{state}": 0})
            job_ids.append(job_id)
        pipe.execute()
    return job_ids


def fill_dead(client: redis.Redis, keys: Keys, job_ids: list[str], count: int) -> None:
    """``count`` dead letters of the first jobs, each with a five-attempt history."""
    for first in range(0, count, BATCH):
        pipe = client.pipeline(transaction=False)
        for job_id in job_ids[first : min(count, first + BATCH)]:
            history = [
                {
                    "attempt": attempt,
                    "at": "2026-11-30T10:00:00.000+00:00",
                    "consumer": "bench-1",
                    "error": "Dropbox answered 503 (service unavailable)",
                    "transient": True,
                }
                for attempt in range(1, 6)
            ]
            payload = {"kind": "agents", "suburb": "Manly", "state": "NSW", "period_months": 12}
            pipe.xadd(
                keys.dead,
                {
                    "job_id": job_id,
                    "kind": "agents",
                    "suburb": "Manly",
                    "state": "NSW",
                    "submitted_at": "2026-11-30T09:59:00.000+00:00",
                    "v": "1",
                    "payload": json.dumps(payload),
                    "original_id": "1796000000000-0",
                    "error": "gave up after 5 attempts: Dropbox answered 503",
                    "deliveries": "5",
                    "dead_at": "2026-11-30T10:05:00.000+00:00",
                    "errors": json.dumps(history),
                },
            )
        pipe.execute()


def pages(job_ids: list[str], client: redis.Redis, keys: Keys) -> list[tuple[str, str]]:
    """(what, path) of every page measured."""
    deep_dead = client.xrevrange(keys.dead, count=5000)[-1][0]
    middle = job_ids[len(job_ids) // 2]
    return [
        ("overview, whole page", "/dashboard"),
        ("part: queue and workers", "/dashboard?part=queue"),
        ("part: charts (25 hour hashes)", "/dashboard?part=charts"),
        ("jobs, page 1", "/dashboard?part=jobs"),
        ("jobs, page 2,000 (start=49,975)", "/dashboard?part=jobs&start=49975"),
        ("jobs, last page", f"/dashboard?part=jobs&start={len(job_ids) - 25}"),
        ("jobs, status failed", "/dashboard?part=jobs&status=failed"),
        ("jobs, status failed, page 100", "/dashboard?part=jobs&status=failed&start=2475"),
        ("search: 8-char id prefix", f"/dashboard?part=jobs&q={middle[:8]}"),
        ("search: 2-char id prefix", f"/dashboard?part=jobs&q={middle[:2]}"),
        ("search: suburb (Manly NSW)", "/dashboard?part=jobs&q=Manly+NSW"),
        ("search: suburb + status dead", "/dashboard?part=jobs&q=Manly+NSW&status=dead"),
        ("search: ambiguous prefix", "/dashboard?part=jobs&q=m"),
        ("job page", f"/dashboard/jobs/{middle}"),
        ("dead letters, page 1", "/dashboard/dead"),
        ("dead letters, page 200", f"/dashboard/dead?before={deep_dead}"),
        ("dead callbacks", "/dashboard/callbacks"),
    ]


def measure(base: str, targets: list[tuple[str, str]], repeat: int) -> list[list[str]]:
    """Each page ``repeat`` times (after one untimed fetch); its median and slowest."""
    rows = []
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}, timeout=60
    ) as http:
        for what, path in targets:
            first = http.get(path)
            first.raise_for_status()
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                answer = http.get(path)
                times.append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
            rows.append(
                [what, f"{median(times):.1f} ms", f"{max(times):.1f} ms", f"{len(first.content):,}"]
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Fill Redis, start the API, time the pages, print the table."""
    parser = bench_parser("python -m bench.dashboard", __doc__)
    parser.add_argument("--jobs", type=int, default=100_000, help="synthetic jobs (100,000)")
    parser.add_argument("--dead", type=int, default=10_000, help="dead letters (10,000)")
    parser.add_argument("--repeat", type=int, default=10, help="timed fetches per page (10)")
    args: argparse.Namespace = parser.parse_args(argv)
    interrupt_on_sigterm()
    with work_folder("agentlink-bench-dashboard-", keep=args.keep) as work:
        server = RedisServer(work / "redis")
        processes = Processes(work)
        try:
            server.start()
            client = redis.Redis.from_url(server.url, decode_responses=True)
            keys = Keys()
            started = time.perf_counter()
            job_ids = fill_jobs(client, keys, args.jobs)
            fill_dead(client, keys, job_ids, min(args.dead, len(job_ids)))
            filled_s = time.perf_counter() - started
            memory = client.info("memory")["used_memory_human"]
            print(f"filled {args.jobs:,} jobs and {args.dead:,} dead letters in {filled_s:.1f} s")
            print(f"(Redis uses {memory})")
            port = free_port()
            env = clean_env(REDIS_URL=server.url, AGENTLINK_OPERATOR_KEYS=OPERATOR_KEY)
            process = processes.start(
                ["-m", "agentlink", "api", "--port", str(port)], env, "api.log"
            )
            api = Api(process, port)
            with httpx.Client(base_url=api.base_url) as http:
                wait_for_health(http, api)
            rows = measure(api.base_url, pages(job_ids, client, keys), args.repeat)
            print(table(["page", "median", "slowest", "bytes"], rows, "lrrr"))
        finally:
            with uninterrupted():
                processes.stop_all()
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
