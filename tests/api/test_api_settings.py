"""The API's and the callbacks' settings: defaults, parsing, and errors naming the variable."""

from __future__ import annotations

import pytest

from agentlink.callbacks import CallbackPolicy, HostRule
from agentlink.errors import ConfigurationError
from agentlink.settings import Settings


class TestDefaults:
    def test_defaults(self) -> None:
        """Closed by default: no open public bind, https to Make's webhooks only."""
        settings = Settings.from_env({})
        assert settings.allow_no_auth is False
        assert settings.idempotency_ttl_s == 86400
        assert (settings.rate_limit, settings.rate_limit_window_s) == (120, 60.0)
        assert settings.max_wait_s == 3600.0
        assert settings.redis_memory_high_water == 0.9
        assert settings.max_body_bytes == 65536
        assert settings.callback_hosts == ("*.make.com",)
        assert settings.callback_allow_insecure is False
        assert settings.webhook_secret == ""
        assert settings.callback_max_attempts == 10

    def test_secret_stays_out_of_repr(self) -> None:
        """Logging the settings never prints the webhook secret."""
        settings = Settings.from_env({"AGENTLINK_WEBHOOK_SECRET": "hush-hush"})
        assert settings.webhook_secret == "hush-hush"
        assert "hush-hush" not in repr(settings)

    def test_values_are_read(self) -> None:
        """Booleans, numbers and host lists from the environment."""
        settings = Settings.from_env(
            {
                "AGENTLINK_ALLOW_NO_AUTH": "yes",
                "AGENTLINK_CALLBACK_ALLOW_INSECURE": "TRUE",
                "AGENTLINK_CALLBACK_HOSTS": " *.make.com , http://Receiver.internal ,",
                "AGENTLINK_RATE_LIMIT": "0",
                "AGENTLINK_REDIS_MEMORY_HIGH_WATER": "0.75",
            }
        )
        assert settings.allow_no_auth is True
        assert settings.callback_allow_insecure is True
        assert settings.callback_hosts == ("*.make.com", "http://receiver.internal")
        assert settings.rate_limit == 0
        assert settings.redis_memory_high_water == 0.75
        assert CallbackPolicy.from_settings(settings).rules == (
            HostRule("*.make.com", http=False),
            HostRule("receiver.internal", http=True),
        )


class TestErrors:
    @pytest.mark.parametrize(
        ("env", "fragment"),
        [
            ({"AGENTLINK_ALLOW_NO_AUTH": "maybe"}, "AGENTLINK_ALLOW_NO_AUTH must be true or false"),
            ({"AGENTLINK_CALLBACK_HOSTS": "bad host"}, "AGENTLINK_CALLBACK_HOSTS"),
            ({"AGENTLINK_CALLBACK_HOSTS": "https://"}, "AGENTLINK_CALLBACK_HOSTS"),
            ({"AGENTLINK_REDIS_MEMORY_HIGH_WATER": "1.5"}, "AGENTLINK_REDIS_MEMORY_HIGH_WATER"),
            ({"AGENTLINK_IDEMPOTENCY_TTL_S": "10"}, "AGENTLINK_IDEMPOTENCY_TTL_S must be at least"),
            ({"AGENTLINK_MAX_BODY_BYTES": "big"}, "AGENTLINK_MAX_BODY_BYTES must be an integer"),
            (
                {"AGENTLINK_CALLBACK_RETRY_BASE_S": "60", "AGENTLINK_CALLBACK_RETRY_MAX_S": "5"},
                "AGENTLINK_CALLBACK_RETRY_MAX_S",
            ),
        ],
    )
    def test_bad_values_name_the_variable(self, env: dict[str, str], fragment: str) -> None:
        """A bad value stops the start with the variable's name."""
        with pytest.raises(ConfigurationError, match=fragment):
            Settings.from_env(env)
