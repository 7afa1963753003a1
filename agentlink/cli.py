"""The ``agentlink`` command: its arguments, and which implementation each subcommand runs.

The implementations live beside what they work on: ``agentlink.admin`` for the operator's
tools (serve, inspect, job, dlq, the checks, the demo), ``consumers`` for the workers.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from agentlink.errors import (
    AgentLinkError,
    ConfigurationError,
    RedisCommandError,
    ServiceUnavailableError,
)
from agentlink.observe.redaction import redact_url
from agentlink.settings import Settings

if TYPE_CHECKING:
    from agentlink.stream.keys import Keys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentlink",
        description="AgentLink: agent and agency PDF reports, queued on Redis Streams.",
        epilog="Configuration comes from the environment (REDIS_URL, AGENTLINK_*); "
        "see ops/CONFIGURATION.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    api = sub.add_parser(
        "api",
        help="serve the HTTP API",
        description="Serve the HTTP API (Litestar under uvicorn): accept report requests, "
        "queue them on Redis, answer job status and PDF requests, /health and /metrics. "
        "An address other than loopback needs AGENTLINK_API_KEYS (or --allow-no-auth).",
    )
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    api.add_argument(
        "--workers",
        type=int,
        default=None,
        help="API processes sharing the port (default AGENTLINK_API_WORKERS, 1)",
    )
    api.add_argument(
        "--allow-no-auth",
        action="store_true",
        help="serve a non-loopback address without AGENTLINK_API_KEYS (anyone may submit); "
        "same as AGENTLINK_ALLOW_NO_AUTH=true",
    )

    worker = sub.add_parser(
        "worker",
        help="run consumer processes that render the reports",
        description="Run consumer processes that take report requests from the Redis stream, "
        "render the PDFs in a supervised child process, store them (AGENTLINK_STORAGE) and "
        "deliver callbacks; a consumer that dies is restarted. SIGTERM stops them gracefully.",
    )
    worker.add_argument("--concurrency", type=int, default=1, help="consumer processes (default 1)")

    sub.add_parser(
        "demo",
        help="start Redis (if needed), the API and two consumers; make two reports for Manly NSW",
        description="Start a private Redis (unless REDIS_URL answers), the API and a worker "
        "with two consumers; submit an agents and an agency report for Manly NSW; print where "
        "the PDFs are; stop everything it started.",
    )

    callbacks = sub.add_parser(
        "callbacks",
        help="deliver finished jobs' callbacks (every worker process does this too)",
        description="Deliver finished jobs' callbacks: signed POSTs of the job record to its "
        "callback_url, retried with back-off. Every worker process delivers them too; run "
        "this for more delivery capacity, or with workers elsewhere.",
    )
    callbacks.add_argument(
        "--slot", type=int, default=1, help="runs as <AGENTLINK_CONSUMER_NAME>-notifier-<slot>"
    )

    dlq_sub = _actions(
        sub,
        "dlq",
        help="list, replay or purge dead letters (or, with --callbacks, dead callbacks)",
        description="Dead letters: report requests given up after repeated crashes or "
        "transient errors, kept with their error history in <prefix>:reports:dead. With "
        "--callbacks, each action works on the callbacks given up on instead "
        "(<prefix>:callbacks:dead; a replayed callback is sent again as a first attempt, "
        "with its delivery id).",
    )
    on_callbacks = argparse.ArgumentParser(add_help=False)
    on_callbacks.add_argument(
        "--callbacks", action="store_true", help="act on dead callbacks, not dead letters"
    )
    dlq_list = dlq_sub.add_parser(
        "list",
        parents=[on_callbacks],
        help="show dead letters (or callbacks), oldest first",
        description="Show dead letters, oldest first: id, job, kind, where, deliveries, error "
        "(with --callbacks: id, job, status, the callback URL's host, deliveries, error).",
    )
    dlq_list.add_argument("--json", action="store_true", help="print JSON lines")
    dlq_list.add_argument("--count", type=int, default=100, help="at most this many (default 100)")
    replay = dlq_sub.add_parser(
        "replay",
        parents=[on_callbacks],
        help="queue dead letters again (same job id), or send dead callbacks again",
        description="Queue one dead letter, or all, again under its original job id (with "
        "--callbacks: send one dead callback, or all, again).",
    )
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("dead_id", nargs="?", help="its id (from dlq list)")
    target.add_argument("--all", action="store_true", help="replay every one there is now")
    purge = dlq_sub.add_parser(
        "purge",
        parents=[on_callbacks],
        help="delete every dead letter (or callback)",
        description="Delete every dead letter, or with --callbacks every dead callback "
        "(asks first, unless --yes).",
    )
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    inspect = sub.add_parser(
        "inspect",
        help="the queue at a glance: backlog, pending, consumers, dead letters",
        description="The queue at a glance: backlog (lag), pending entries with their "
        "owner, idle time, deliveries and job, consumers, dead letters, and the statuses of "
        "recent jobs.",
    )
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument(
        "--pending", type=int, default=20, help="list at most this many pending entries (20)"
    )
    job = sub.add_parser(
        "job",
        help="one job's status record, as JSON",
        description="One job's status record, as JSON. The job is named by its id or by a "
        "unique prefix of at least 8 characters (what inspect and the PDF file names show; "
        "a prefix is looked up in the index of job ids). With local storage, result.url is the "
        "PDF's file:// URI on this machine (the API shows its own /api/jobs/<id>/pdf there).",
    )
    job.add_argument(
        "job_id", help="the job id, or its first 8+ characters (from the 202 answer or inspect)"
    )
    cancel = sub.add_parser(
        "cancel",
        help="cancel a job that is not finished",
        description="Cancel a job, named by its id or a unique prefix of at least 8 "
        "characters. A queued job is cancelled at once and never made; a job being made is "
        "stopped by its worker within a third of a lease (AGENTLINK_LEASE_S), nothing stored. "
        "Its callback is sent with status cancelled. Exit 1 if the job is unknown or finished.",
    )
    cancel.add_argument("job_id", help="the job id, or its first 8+ characters")

    dropbox_sub = _actions(
        sub,
        "dropbox",
        help="Dropbox storage: check credentials and folder",
        description="Dropbox storage (AGENTLINK_STORAGE=dropbox) tools.",
    )
    check_help = (
        "sign in, show the account and free space, write, share and delete a test file "
        "in AGENTLINK_DROPBOX_FOLDER; exit 0 if reports can be delivered, 1 if not"
    )
    dropbox_sub.add_parser(
        "check", help=check_help, description=check_help[0].upper() + check_help[1:] + "."
    )
    data_sub = _actions(
        sub,
        "data",
        help="the sales data source (AGENTLINK_DATA)",
        description="The sales data the reports are made from: the bundled sample, a CSV "
        "file or an HTTP endpoint, chosen by AGENTLINK_DATA.",
    )
    data_check = data_sub.add_parser(
        "check",
        help="read and validate the configured source, print its rows, date range and "
        "suburbs; exit 0 if reports can use it, 1 naming the problem",
        description="Read and validate the configured sales source and print what it holds "
        "(rows, date range, suburbs); exit 0 if reports can use it, 1 naming the problem.",
    )
    data_check.add_argument("--suburb", help="also summarise this suburb (needed for HTTP)")
    data_check.add_argument("--state", help="the suburb's state, e.g. NSW")
    return parser


def _actions(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    help: str,
    description: str,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """A command made of actions (``agentlink <name> <action>``); the action's name is in
    ``<name>_command``."""
    command = sub.add_parser(name, help=help, description=description)
    return command.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``agentlink`` console script."""
    args = _parser().parse_args(argv)
    if args.command in {"dropbox", "data"}:  # checks that report their own problems
        from agentlink.admin.checks import data_check, dropbox_check

        return dropbox_check() if args.command == "dropbox" else data_check(args.suburb, args.state)
    try:
        settings = Settings.from_env()
        if args.command == "api":
            from agentlink.admin.serve import serve_api

            if args.workers is not None:
                if args.workers < 1:
                    raise ConfigurationError("--workers must be at least 1")
                settings = replace(settings, api_workers=args.workers)
            return serve_api(settings, args.host, args.port, allow_no_auth=args.allow_no_auth)
        if args.command == "callbacks":
            cmd = [sys.executable, "-m", "consumers.notifier", "--slot", str(args.slot)]
            os.execv(sys.executable, cmd)  # noqa: S606 - replaces this process, no shell
        if args.command == "worker":
            if args.concurrency < 1:
                raise ConfigurationError("--concurrency must be at least 1")
            # Consumers live in their own package, which imports agentlink, not the reverse.
            cmd = [sys.executable, "-m", "consumers", "--concurrency", str(args.concurrency)]
            os.execv(sys.executable, cmd)  # noqa: S606 - replaces this process, no shell
        if args.command == "demo":
            from agentlink.admin.demo import run_demo

            return run_demo(settings)
        return _on_redis(settings, args)
    except AgentLinkError as exc:
        print(f"agentlink: {exc}", file=sys.stderr)
        return 2


def _on_redis(settings: Settings, args: argparse.Namespace) -> int:
    """``inspect``, ``job``, ``cancel`` and ``dlq``: an operator's look at Redis, which may
    be down."""
    from agentlink.stream.connection import call, connect
    from agentlink.stream.keys import Keys

    client = connect(settings.redis_url)
    keys = Keys(settings.key_prefix)
    try:
        if args.command == "job":
            from agentlink.admin.job import show_job

            return call(lambda: show_job(client, keys, settings, args.job_id))
        if args.command == "cancel":
            from agentlink.admin.job import cancel_job

            return call(lambda: cancel_job(client, keys, settings, args.job_id))
        if args.command == "inspect":
            return _inspect(client, keys, settings, args)
        return _dlq(client, keys, args)
    except (ServiceUnavailableError, RedisCommandError) as exc:
        return _redis_trouble(settings, exc)


def _inspect(client: Any, keys: Keys, settings: Settings, args: argparse.Namespace) -> int:
    import msgspec

    from agentlink.admin.inspect import render, snapshot
    from agentlink.stream.connection import call

    snap = call(
        lambda: snapshot(client, keys, lease_s=settings.lease_s, pending_limit=args.pending)
    )
    print(msgspec.json.encode(snap).decode() if args.json else render(snap))
    return 0


def _dlq(client: Any, keys: Keys, args: argparse.Namespace) -> int:
    from agentlink.admin import dlq
    from agentlink.stream.deadletters import DeadCallbacks, DeadLetters

    letters = (DeadCallbacks if args.callbacks else DeadLetters)(client, keys)
    if args.dlq_command == "list":
        return dlq.list_letters(letters, args.count, as_json=args.json)
    if args.dlq_command == "replay":
        return dlq.replay(letters, args.dead_id, replay_all=args.all)
    return dlq.purge(letters, confirmed=args.yes)


def _redis_trouble(settings: Settings, exc: Exception) -> int:
    """Say what went wrong with Redis, naming it without its password; exit code 2."""
    where = redact_url(settings.redis_url)
    cause = f" ({exc.__cause__})" if exc.__cause__ else ""
    if isinstance(exc, ServiceUnavailableError):
        print(f"agentlink: Redis unreachable at {where}: {exc}{cause}", file=sys.stderr)
    else:
        print(f"agentlink: Redis at {where} refused: {exc}", file=sys.stderr)
    return 2
