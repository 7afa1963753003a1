"""``python -m consumers``: one consumer (``--slot``) or a supervised set (``--concurrency``)."""

from __future__ import annotations

import argparse
import sys

from agentlink.errors import ConfigurationError
from agentlink.logging import configure_logging
from agentlink.settings import Settings


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
    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        print(f"agentlink worker: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    configure_logging(settings.log_format, settings.log_level)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.slot is None and args.concurrency > 1:
        from consumers.supervisor import Supervisor

        return Supervisor(args.concurrency).run()
    return run_consumer(settings, args.slot or 1)


def run_consumer(settings: Settings, slot: int) -> int:
    """Run one consumer in this process until SIGTERM/SIGINT."""
    from consumers.lease import NameTakenError
    from consumers.worker import Consumer

    if settings.metrics_port:
        from prometheus_client import start_http_server

        from agentlink import metrics

        start_http_server(settings.metrics_port + slot - 1, registry=metrics.REGISTRY)
    try:
        consumer = Consumer(settings, slot)
    except ConfigurationError as exc:
        print(f"agentlink worker: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    consumer.install_signal_handlers()
    try:
        return consumer.run()
    except NameTakenError as exc:
        print(f"agentlink worker: {exc}", file=sys.stderr)  # noqa: T201
        return 2


if __name__ == "__main__":
    sys.exit(main())
