"""The Redis seam's start-up check: AgentLink refuses a Redis older than 7.0 by name."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis

from agentlink.errors import ConfigurationError
from agentlink.stream.connection import ensure_group, ensure_group_async
from agentlink.stream.keys import Keys

OLD_SERVER = {"redis_version": "6.2.14", "redis_mode": "standalone"}
"""What ``INFO server`` says on Redis 6.2 (none runs here: its reply stands in for one)."""


class TestRedisVersion:
    def test_redis_7_gets_its_group(self, r: redis.Redis, keys: Keys) -> None:
        """The group is created once; a second call finds it (BUSYGROUP) and passes."""
        ensure_group(r, keys)
        ensure_group(r, keys)
        assert [g["name"] for g in r.xinfo_groups(keys.stream)] == [keys.group]

    def test_an_older_redis_is_refused_by_name(
        self, r: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """ConfigurationError naming the version found and the one needed; nothing created."""
        monkeypatch.setattr(r, "info", lambda section=None: OLD_SERVER)
        with pytest.raises(ConfigurationError, match=r"Redis 7\.0 or later.*runs Redis 6\.2\.14"):
            ensure_group(r, keys)
        assert not r.exists(keys.stream)

    def test_the_api_refuses_it_too(
        self, redis_url: str, keys: Keys, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The asyncio path (the API's) checks the same."""

        async def old_info(section: str | None = None) -> dict[str, str]:
            return OLD_SERVER

        async def attempt() -> None:
            client = aioredis.Redis.from_url(redis_url, decode_responses=True)
            monkeypatch.setattr(client, "info", old_info)
            try:
                await ensure_group_async(client, keys)
            finally:
                await client.aclose()

        with pytest.raises(ConfigurationError, match=r"runs Redis 6\.2\.14"):
            asyncio.run(attempt())
