"""Settings for tests: a given Redis, reports below a temporary folder, and the short lease,
short blocks and quick retries that let a test see a crash, a reclaim or a retry in
seconds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from agentlink.settings import Settings


def quick_settings(redis_url: str, folder: Path, consumer_name: str, **changes: Any) -> Settings:
    """The defaults, made quick, for the Redis at ``redis_url``; reports go to
    ``folder/reports``; ``changes`` on top."""
    return replace(
        Settings(),
        redis_url=redis_url,
        output_dir=folder / "reports",
        consumer_name=consumer_name,
        lease_s=3.0,
        block_ms=200,
        retry_base_s=0.05,
        retry_max_s=0.2,
        **changes,
    )
