"""The Lua scripts of ``agentlink/stream/lua``, registered on a client and run through
the Redis seam (``agentlink.stream.connection.call``).

Every change that touches more than one key is one script, so it is atomic and lands in
the AOF as one unit; each script's header names its KEYS and ARGV.
"""

from __future__ import annotations

from typing import Any

from agentlink.stream.connection import call
from agentlink.stream.lua import source

SERVICE_EWMA_ALPHA = 0.2
"""Weight of the newest completed job in the service-time average (the API's wait
estimate)."""
TIMELINE_CAP = 50
"""Events kept per job; renewals fold into one, so a normal job has fewer than ten."""


class Scripts:
    """The scripts one client runs, registered on first use."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._registered: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        """The registered script ``name`` (e.g. ``"finish.lua"``), for a pipeline."""
        script = self._registered.get(name)
        if script is None:
            script = self._registered[name] = self.client.register_script(source(name))
        return script

    def run(self, name: str, keys: list[str], *args: Any) -> Any:
        """Run script ``name`` with ``keys`` and ``args``; Redis's errors come out as ours."""
        script = self.get(name)
        return call(lambda: script(keys=keys, args=list(args)))
