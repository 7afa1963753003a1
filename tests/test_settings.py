"""Settings: defaults, aliases, and start-up errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlink.errors import ConfigurationError
from agentlink.settings import Settings


class TestSettings:
    def test_defaults(self) -> None:
        """With nothing set, the documented defaults apply."""
        settings = Settings.from_env({})
        assert settings.redis_url == "redis://localhost:6379/0"
        assert settings.key_prefix == "agentlink"
        assert settings.storage == "local"
        assert settings.output_dir == Path("reports")
        assert settings.lease_s == 15.0
        assert settings.renew_every_s == 5.0
        assert settings.max_deliveries == 5
        assert settings.job_ttl_s == 7 * 24 * 3600
        assert settings.api_keys == ()
        assert settings.consumer_name

    def test_redis_url_alias_and_lists(self) -> None:
        """REDIS_URL is read, AGENTLINK_REDIS_URL wins; API keys are a trimmed list."""
        env = {"REDIS_URL": "redis://a:1/0", "AGENTLINK_API_KEYS": " k1, ,k2 "}
        assert Settings.from_env(env).redis_url == "redis://a:1/0"
        assert (
            Settings.from_env({**env, "AGENTLINK_REDIS_URL": "redis://b:2/0"}).redis_url
            == "redis://b:2/0"
        )
        assert Settings.from_env(env).api_keys == ("k1", "k2")

    @pytest.mark.parametrize(
        ("env", "fragment"),
        [
            ({"AGENTLINK_LEASE_S": "soon"}, "AGENTLINK_LEASE_S must be a number"),
            ({"AGENTLINK_LEASE_S": "0.5"}, "AGENTLINK_LEASE_S must be at least 1.0"),
            ({"AGENTLINK_MAX_DELIVERIES": "0"}, "AGENTLINK_MAX_DELIVERIES must be at least 1"),
            ({"AGENTLINK_BLOCK_MS": "2.5"}, "AGENTLINK_BLOCK_MS must be an integer"),
            ({"AGENTLINK_STORAGE": "s3"}, "AGENTLINK_STORAGE must be one of local, dropbox"),
            ({"AGENTLINK_LOG_FORMAT": "xml"}, "AGENTLINK_LOG_FORMAT must be one of"),
            (
                {"AGENTLINK_RETRY_BASE_S": "10", "AGENTLINK_RETRY_MAX_S": "5"},
                "AGENTLINK_RETRY_MAX_S",
            ),
            ({"AGENTLINK_CONSUMER_NAME": "two words"}, "take no spaces"),
        ],
    )
    def test_bad_values_name_the_variable(self, env: dict[str, str], fragment: str) -> None:
        """A bad value is refused at start with the variable's name."""
        with pytest.raises(ConfigurationError, match=fragment):
            Settings.from_env(env)
