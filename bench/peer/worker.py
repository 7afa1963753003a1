"""``python -m bench.peer.worker``: an RQ worker that imports the report code before forking.

``rq worker`` imports a job's module in every forked work horse, so each report would pay
for importing WeasyPrint again. RQ's documentation recommends a worker script that imports
heavy modules first, which the horses then inherit; this is that script, so the peer's
render figures are its best, not its default.
"""

from __future__ import annotations

import argparse
import sys

import redis
from rq import Queue, SimpleWorker, Worker

from bench.peer import jobs


def main(argv: list[str] | None = None) -> int:
    """Run one worker on the ``reports`` queue until stopped (or empty, with ``--burst``)."""
    parser = argparse.ArgumentParser(prog="python -m bench.peer.worker", description=__doc__)
    parser.add_argument("--url", required=True, help="Redis URL")
    parser.add_argument("--name", default=None, help="worker name")
    parser.add_argument("--burst", action="store_true", help="stop once the queue is empty")
    parser.add_argument("--simple", action="store_true", help="SimpleWorker (no fork per job)")
    args = parser.parse_args(argv)
    jobs.preload()
    connection = redis.Redis.from_url(args.url)
    worker_class = SimpleWorker if args.simple else Worker
    worker = worker_class([Queue("reports", connection=connection)], name=args.name)
    worker.work(burst=args.burst, logging_level="INFO")
    return 0


if __name__ == "__main__":
    sys.exit(main())
