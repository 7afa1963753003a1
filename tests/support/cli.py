"""Running the agentlink command as an operator would, against a test's settings."""

from __future__ import annotations

import subprocess
import sys

from agentlink.settings import Settings
from tests.conftest import (
    ROOT,
    settings_env,
)


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``agentlink …`` against the test Redis."""
    return subprocess.run(
        [sys.executable, "-m", "agentlink", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
