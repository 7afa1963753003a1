"""``python -m consumers``: one consumer (``--slot``) or a supervised set (``--concurrency``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from agentlink.errors import ConfigurationError
from agentlink.reports.harfbuzz import HARFBUZZ_SUBSET_HINT, harfbuzz_subset_available
from agentlink.settings import Settings
from consumers.process import start_process


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m consumers",
        description="Consume report requests from the Redis stream and render PDFs.",
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, help="consumer processes to run (default 1)"
    )
    parser.add_argument(
        "--slot",
        type=int,
        default=None,
        help="run one consumer named <AGENTLINK_CONSUMER_NAME>-<slot> in this process",
    )
    args = parser.parse_args(argv)
    settings = start_process("agentlink worker")
    if settings is None:
        return 2
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.slot is None:  # once per worker: the supervisor's children run with --slot
        warn_if_fonts_are_slow()
    if args.slot is None and args.concurrency > 1:
        from consumers.supervisor import Supervisor

        return Supervisor(args.concurrency).run()
    return run_consumer(settings, args.slot or 1)


def run_consumer(settings: Settings, slot: int) -> int:
    """Run one consumer in this process until SIGTERM/SIGINT."""
    from consumers.lease import NameTakenError
    from consumers.worker import Consumer

    if settings.metrics_port:
        serve_metrics(settings.metrics_port + slot - 1, f"{settings.consumer_name}-{slot}")
    try:
        consumer = Consumer(settings, slot)
    except ConfigurationError as exc:
        print(f"agentlink worker: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    consumer.install_signal_handlers()
    # Every worker process also delivers callbacks, in a thread (consumers/notifier.py).
    from consumers.notifier import start_in_thread

    notifier, notifier_thread = start_in_thread(settings, consumer.name)
    try:
        return consumer.run()
    except (NameTakenError, ConfigurationError) as exc:
        print(f"agentlink worker: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    finally:
        notifier.stopping.set()
        notifier_thread.join(settings.callback_timeout_s + settings.block_ms / 1000 + 5)


def warn_if_fonts_are_slow(
    available: Callable[[], bool] = harfbuzz_subset_available,
) -> bool:
    """Log ``worker.fonts_slow`` if renders will use fontTools (no libharfbuzz-subset0);
    True if it warned."""
    if available():
        return False
    import structlog

    structlog.get_logger(__name__).warning("worker.fonts_slow", hint=HARFBUZZ_SUBSET_HINT)
    return True


def serve_metrics(port: int, consumer: str) -> None:
    """Serve this process's metrics on ``port`` (``AGENTLINK_METRICS_PORT + slot - 1``).

    One port per consumer process: each serves its own registry, live values included (its
    render child's memory), with no shared files to clean up (README: "Metrics and
    scaling"). A port already taken is logged, not fatal: rendering matters more.
    """
    import structlog
    from prometheus_client import start_http_server

    from consumers import metrics

    metrics.CONSUMER_INFO.info({"consumer": consumer})
    try:
        start_http_server(port, registry=metrics.CONSUMER_REGISTRY)
    except OSError as exc:
        structlog.get_logger(__name__).error("metrics.port_unavailable", port=port, error=str(exc))


if __name__ == "__main__":
    sys.exit(main())
