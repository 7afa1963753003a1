"""The ``agentlink`` command: serve the API, run workers, run the demo, handle dead letters."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import msgspec

from agentlink.errors import (
    AgentLinkError,
    ConfigurationError,
    InvalidJobError,
    RedisCommandError,
    ServiceUnavailableError,
)
from agentlink.observe.redaction import redact_url
from agentlink.settings import Settings

if TYPE_CHECKING:
    from agentlink.jobs import JobRecord
    from agentlink.stream.deadletters import DeadLetters
    from agentlink.stream.keys import Keys

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentlink",
        description="AgentLink: agent and agency PDF reports, queued on Redis Streams.",
        epilog="Configuration comes from the environment (REDIS_URL, AGENTLINK_*); see README.md.",
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

    dlq = sub.add_parser(
        "dlq",
        help="list, replay or purge dead letters",
        description="Dead letters: report requests given up after repeated crashes or "
        "transient errors, kept with their error history in <prefix>:reports:dead.",
    )
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dlq_list = dlq_sub.add_parser(
        "list",
        help="show dead letters, oldest first",
        description="Show dead letters, oldest first: id, job, kind, where, deliveries, error.",
    )
    dlq_list.add_argument("--json", action="store_true", help="print JSON lines")
    dlq_list.add_argument("--count", type=int, default=100, help="at most this many (default 100)")
    replay = dlq_sub.add_parser(
        "replay",
        help="queue dead letters again (same job id)",
        description="Queue one dead letter, or all, again under its original job id.",
    )
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("dead_id", nargs="?", help="the dead letter's id (from dlq list)")
    target.add_argument("--all", action="store_true", help="replay every dead letter")
    purge = dlq_sub.add_parser(
        "purge",
        help="delete every dead letter",
        description="Delete every dead letter (asks first, unless --yes).",
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
        "a prefix is found by scanning Redis's keys). With local storage, result.url is the "
        "PDF's file:// URI on this machine (the API shows its own /api/jobs/<id>/pdf there).",
    )
    job.add_argument(
        "job_id", help="the job id, or its first 8+ characters (from the 202 answer or inspect)"
    )

    dropbox = sub.add_parser(
        "dropbox",
        help="Dropbox storage: check credentials and folder",
        description="Dropbox storage (AGENTLINK_STORAGE=dropbox) tools.",
    )
    dropbox_sub = dropbox.add_subparsers(dest="dropbox_command", required=True, metavar="ACTION")
    check_help = (
        "sign in, show the account and free space, write, share and delete a test file "
        "in AGENTLINK_DROPBOX_FOLDER; exit 0 if reports can be delivered, 1 if not"
    )
    dropbox_sub.add_parser(
        "check", help=check_help, description=check_help[0].upper() + check_help[1:] + "."
    )
    data = sub.add_parser(
        "data",
        help="the sales data source (AGENTLINK_DATA)",
        description="The sales data the reports are made from: the bundled sample, a CSV "
        "file or an HTTP endpoint, chosen by AGENTLINK_DATA.",
    )
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``agentlink`` console script."""
    args = _parser().parse_args(argv)
    if args.command in {"dropbox", "data"}:  # checks that report their own problems
        return (
            _dropbox_check() if args.command == "dropbox" else _data_check(args.suburb, args.state)
        )
    try:
        settings = Settings.from_env()
        if args.command == "api":
            if args.workers is not None:
                if args.workers < 1:
                    raise ConfigurationError("--workers must be at least 1")
                settings = replace(settings, api_workers=args.workers)
            return _api(settings, args.host, args.port, allow_no_auth=args.allow_no_auth)
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
        if args.command in {"inspect", "job"}:
            return _inspect(settings, args)
        return _dlq(settings, args)
    except AgentLinkError as exc:
        print(f"agentlink: {exc}", file=sys.stderr)
        return 2


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _api(settings: Settings, host: str, port: int, *, allow_no_auth: bool = False) -> int:
    import structlog

    from agentlink.api.server import serve
    from agentlink.observe.logging import configure_logging

    opened = allow_no_auth or settings.allow_no_auth
    if not settings.auth_required and not _is_loopback(host) and not opened:
        print(
            f"agentlink: refusing to serve {host} without API keys: anyone who can reach it "
            "could queue reports. Set AGENTLINK_API_KEYS, bind 127.0.0.1, or accept an open "
            "API with --allow-no-auth (AGENTLINK_ALLOW_NO_AUTH=true).",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_format, settings.log_level, secrets=settings.secrets)
    if not settings.auth_required:
        structlog.get_logger(__name__).warning(
            "api.no_api_keys",
            host=host,
            exposed=not _is_loopback(host),
            hint="set AGENTLINK_API_KEYS before exposing the API",
        )
    serve(settings, host, port)
    return 0


def _inspect(settings: Settings, args: argparse.Namespace) -> int:
    from agentlink.admin.inspect import render, snapshot
    from agentlink.stream.connection import call, connect
    from agentlink.stream.keys import Keys

    client = connect(settings.redis_url)
    keys = Keys(settings.key_prefix)
    try:
        if args.command == "job":
            return call(lambda: _job(client, keys, settings, args.job_id))
        snap = call(
            lambda: snapshot(client, keys, lease_s=settings.lease_s, pending_limit=args.pending)
        )
    except (ServiceUnavailableError, RedisCommandError) as exc:
        return _redis_trouble(settings, exc)
    print(msgspec.json.encode(snap).decode() if args.json else render(snap))
    return 0


def _job(client: Any, keys: Keys, settings: Settings, given: str) -> int:
    """``agentlink job``: the record of the job ``given`` (its id, or a unique prefix)."""
    from agentlink.admin.inspect import JOB_PREFIX_MIN_CHARS, job_ids_matching
    from agentlink.jobs import record_from_hash

    found = job_ids_matching(client, keys, given)
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
        print(
            f"agentlink: {given} starts several job ids ({shown}); give more of it", file=sys.stderr
        )
        return 1
    fields: dict[str, str] = client.hgetall(keys.job(found[0])) if found else {}
    if not fields.get("status"):
        hint = (
            ""
            if len(given) >= JOB_PREFIX_MIN_CHARS
            else f"; give the full id or at least its first {JOB_PREFIX_MIN_CHARS} characters"
        )
        print(f"agentlink: no job {given} (unknown or expired{hint})", file=sys.stderr)
        return 1
    record = record_from_hash(fields)
    _show_local_pdf(record, settings)
    print(msgspec.json.format(msgspec.json.encode(record)).decode())
    return 0


def _show_local_pdf(record: JobRecord, settings: Settings) -> None:
    """Fill ``result.url`` of a local-storage job with its file's ``file://`` URI.

    The API fills it at read time with its own public ``/api/jobs/{id}/pdf`` address, which
    depends on how the caller reached it (Host, scheme behind nginx), so it is not stored
    and the CLI cannot know it. What the CLI knows is the file in AGENTLINK_OUTPUT_DIR.
    """
    from agentlink.errors import StorageRejectedError
    from agentlink.storage.local import LocalStorage

    result = record.result
    if result is None or result.url or result.storage != "local":
        return
    try:
        pdf = LocalStorage(settings.output_dir).resolve(result.path)
    except StorageRejectedError:
        return
    if pdf.is_file():
        result.url = pdf.as_uri()
    else:
        print(f"agentlink: the PDF is not at {pdf} on this machine", file=sys.stderr)


def _dlq(settings: Settings, args: argparse.Namespace) -> int:
    from agentlink.stream.connection import connect
    from agentlink.stream.deadletters import DeadLetters
    from agentlink.stream.keys import Keys

    letters = DeadLetters(connect(settings.redis_url), Keys(settings.key_prefix))
    try:
        if args.dlq_command == "list":
            return _dlq_list(letters, args.count, as_json=args.json)
        if args.dlq_command == "replay":
            return _dlq_replay(letters, args.dead_id, replay_all=args.all)
        if not args.yes and input("Delete every dead letter? [y/N] ").strip().lower() != "y":
            print("nothing deleted")
            return 1
        print(f"purged {letters.purge()} dead letter(s)")
        return 0
    except (ServiceUnavailableError, RedisCommandError) as exc:
        return _redis_trouble(settings, exc)


def _redis_trouble(settings: Settings, exc: Exception) -> int:
    """Say what went wrong with Redis, naming it without its password; exit code 2."""
    where = redact_url(settings.redis_url)
    cause = f" ({exc.__cause__})" if exc.__cause__ else ""
    if isinstance(exc, ServiceUnavailableError):
        print(f"agentlink: Redis unreachable at {where}: {exc}{cause}", file=sys.stderr)
    else:
        print(f"agentlink: Redis at {where} refused: {exc}", file=sys.stderr)
    return 2


def _dlq_list(letters: DeadLetters, count: int, *, as_json: bool) -> int:
    rows = letters.entries(count)
    if as_json:
        for row in rows:
            print(msgspec.json.encode(row).decode())
        return 0
    if not rows:
        print("no dead letters")
        return 0
    print(f"{'DEAD ID':<17} {'JOB ID':<36} {'KIND':<6} {'WHERE':<22} {'DELIV':>5}  ERROR")
    for row in rows:
        where = f"{row.suburb}, {row.state}"[:22]
        print(f"{row.dead_id:<17} {row.job_id:<36} {row.kind:<6} {where:<22} ", end="")
        print(f"{row.deliveries:>5}  {row.error}")
    return 0


def _dlq_replay(letters: DeadLetters, dead_id: str | None, *, replay_all: bool) -> int:
    if replay_all or dead_id is None:
        print(f"replayed {len(letters.replay_all())} dead letter(s)")
        return 0
    try:
        new_id = letters.replay(dead_id)
    except InvalidJobError as exc:
        print(f"agentlink: cannot replay {dead_id}: {exc}", file=sys.stderr)
        return 1
    if new_id is None:
        print(f"agentlink: no dead letter {dead_id}", file=sys.stderr)
        return 1
    print(f"replayed {dead_id} as entry {new_id}")
    return 0


def _data_check(suburb: str | None, state: str | None) -> int:
    """``agentlink data check``: exit 0 if the source is usable, 1 naming the problem."""
    from agentlink.jobs import AuState
    from agentlink.reports.check import check_lines

    try:
        settings = Settings.from_env()
        wanted = AuState(state.strip().upper()) if state else None
        if (suburb is None) != (wanted is None):
            raise ConfigurationError("--suburb and --state go together")
        for line in check_lines(settings.data, suburb, wanted):
            print(line)
    except ValueError:
        print(f"agentlink data check: --state must be one of {', '.join(AuState)}")
        return 1
    except AgentLinkError as exc:
        print(f"agentlink data check: FAIL: {exc}")
        return 1
    print("ok: reports can use this data")
    return 0


def _dropbox_check() -> int:
    """``agentlink dropbox check``: what an operator runs first; exit 0 ready, 1 not."""
    from agentlink.storage.dropbox import DropboxStorage
    from agentlink.storage.dropbox_settings import require_dropbox

    print("agentlink dropbox check")
    try:
        settings = Settings.from_env()
        require_dropbox(settings)
    except ConfigurationError as exc:
        print(f"  {'settings':<9} FAIL  {exc}")
        print("Dropbox is NOT ready: fix the setting named above and run this again.")
        return 1
    from agentlink.observe.logging import configure_logging

    configure_logging(settings.log_format, "warning", secrets=settings.secrets)  # only trouble
    auth = "refresh token" if settings.dropbox_refresh_token else "access token"
    print(f"  {'settings':<9} ok    {auth}, folder {settings.dropbox_folder or '/'}")
    if settings.storage != "dropbox":
        print(f"  {'':<9} note  AGENTLINK_STORAGE={settings.storage}: set it to dropbox to use it")
    ok = True
    try:
        for step in DropboxStorage(settings).checks():
            print(f"  {step.name:<9} {'ok  ' if step.ok else 'FAIL'}  {step.detail}")
            ok = ok and step.ok
    except AgentLinkError as exc:
        print(f"  {'account':<9} FAIL  {exc}")
        ok = False
    if ok:
        print(f"Dropbox is ready: reports go to {settings.dropbox_folder or '/'}.")
        return 0
    print("Dropbox is NOT ready: fix what is marked FAIL and run this again.")
    return 1
