"""Settings: defaults, aliases, and start-up errors that name the variable."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from agentlink.env import variables
from agentlink.errors import ConfigurationError
from agentlink.settings import Settings


class TestSettings:
    """Reading the environment."""

    def test_defaults(self) -> None:
        """With nothing set, the documented defaults apply."""
        settings = Settings.from_env({})
        assert settings.redis_url == "redis://localhost:6379/0"
        assert settings.key_prefix == "agentlink"
        assert settings.storage == "local"
        assert settings.output_dir == Path("reports")
        assert settings.lease_s == 10.0
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


class TestTable:
    """Each variable is declared once: name, parser, default, purpose."""

    def test_every_field_is_declared(self) -> None:
        """No field of Settings is read by hand: each names its variable or its group."""
        declared = {v.name for v in variables(Settings)}
        assert len(declared) == len(list(variables(Settings))), "a variable is declared twice"
        for spec in fields(Settings):
            assert spec.metadata, f"Settings.{spec.name} declares no variable"
        assert {"AGENTLINK_LEASE_S", "REDIS_URL", "AGENTLINK_DATA", "AGENTLINK_BRAND_FILE"} <= (
            declared | {alias for v in variables(Settings) for alias in v.aliases}
        )

    def test_every_variable_says_what_it_is_for(self) -> None:
        """The table documents each variable."""
        undocumented = [v.name for v in variables(Settings) if len(v.doc.split()) < 3]
        assert not undocumented

    def test_empty_environment_gives_the_declared_defaults(self) -> None:
        """from_env with nothing set is the dataclass's own defaults: no second copy."""
        assert Settings.from_env({}) == Settings()

    def test_a_list_of_blanks_is_unset(self) -> None:
        """ " , " leaves a list's default, as an empty value does."""
        settings = Settings.from_env({"AGENTLINK_CALLBACK_HOSTS": " , ", "AGENTLINK_API_KEYS": ","})
        assert settings.callback_hosts == ("*.make.com",)
        assert settings.api_keys == ()

    def test_values_are_parsed(self) -> None:
        """Each kind of variable: numbers, choices in any case, folders, a port of 0."""
        settings = Settings.from_env(
            {
                "AGENTLINK_LEASE_S": " 20 ",
                "AGENTLINK_LOG_LEVEL": "DEBUG",
                "AGENTLINK_DROPBOX_FOLDER": "Reports/AgentLink/",
                "AGENTLINK_METRICS_PORT": "0",
                "AGENTLINK_OUTPUT_DIR": "/tmp/pdfs",
            }
        )
        assert settings.lease_s == 20.0
        assert settings.log_level == "debug"
        assert settings.dropbox_folder == "/Reports/AgentLink"
        assert settings.metrics_port is None
        assert settings.output_dir == Path("/tmp/pdfs")
        assert Settings.from_env({"AGENTLINK_METRICS_PORT": "9100"}).metrics_port == 9100
        assert Settings.from_env({"AGENTLINK_DROPBOX_FOLDER": "/"}).dropbox_folder == ""
