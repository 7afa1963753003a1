"""The report settings: AGENTLINK_DATA and its companions, and the brand (variables or TOML)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from agentlink.errors import ConfigurationError
from agentlink.report_settings import BrandSettings, DataSettings
from agentlink.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><rect width="9" height="9"/></svg>'


def data(**env: str) -> DataSettings:
    return Settings.from_env(env).data


def brand(**env: str) -> BrandSettings:
    return Settings.from_env(env).brand


class TestDataSource:
    """Which source AGENTLINK_DATA names."""

    def test_default_is_the_sample(self) -> None:
        """Nothing set, or "sample": the bundled data."""
        assert data() == data(AGENTLINK_DATA="sample") == DataSettings()
        assert Settings.from_env({}).sales_csv is None

    def test_csv(self) -> None:
        """csv:/path names a file."""
        got = data(AGENTLINK_DATA="csv:/data/sales.csv")
        assert (got.kind, got.location) == ("csv", "/data/sales.csv")
        assert Settings.from_env({"AGENTLINK_DATA": "csv:/data/sales.csv"}).sales_csv == Path(
            "/data/sales.csv"
        )

    def test_sales_csv_is_an_alias(self) -> None:
        """AGENTLINK_SALES_CSV=path is AGENTLINK_DATA=csv:path, alone or agreeing with it."""
        assert data(AGENTLINK_SALES_CSV="/d/s.csv") == data(AGENTLINK_DATA="csv:/d/s.csv")
        assert (
            data(AGENTLINK_SALES_CSV="/d/s.csv", AGENTLINK_DATA="csv:/d/s.csv").location
            == "/d/s.csv"
        )

    def test_alias_and_data_must_agree(self) -> None:
        """Two different sources are refused, naming both variables."""
        with pytest.raises(
            ConfigurationError, match=r"AGENTLINK_SALES_CSV=.*AGENTLINK_DATA=.*disagree"
        ):
            data(AGENTLINK_SALES_CSV="/a.csv", AGENTLINK_DATA="csv:/b.csv")

    def test_http_template(self) -> None:
        """An https URL with {suburb} and {state} (and optionally {start}, {end})."""
        url = "https://crm.example/api/sales?suburb={suburb}&state={state}&from={start}"
        got = data(
            AGENTLINK_DATA=url,
            AGENTLINK_DATA_AUTH_HEADER="Authorization: Bearer abc",
            AGENTLINK_DATA_TIMEOUT_S="4.5",
        )
        assert (got.kind, got.location, got.auth_header, got.timeout_s) == (
            "http",
            url,
            ("Authorization", "Bearer abc"),
            4.5,
        )
        assert "abc" not in repr(got)

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("ftp://x/y", "use sample"),
            ("csv:", "needs a path"),
            ("https://x.example/sales", "must contain {suburb} and {state}"),
            ("https://x.example/{suburb}/{state}?k={key}", "unknown placeholders {key}"),
            ("https://x.example/{suburb}/{state", "not a valid template"),
            ("https:///{suburb}/{state}", "names no host"),
        ],
    )
    def test_bad_sources(self, value: str, message: str) -> None:
        """Each mistake is named."""
        with pytest.raises(
            ConfigurationError, match=message.replace("{", r"\{").replace("}", r"\}")
        ):
            data(AGENTLINK_DATA=value)

    def test_column_mapping(self) -> None:
        """ "price=Sale Price, sold_date = Date" maps two columns."""
        got = data(AGENTLINK_DATA_COLUMNS="price=Sale Price, sold_date = Date,")
        assert got.columns == (("price", "Sale Price"), ("sold_date", "Date"))

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("price", "is not column=Header"),
            ("cost=Price", "unknown column 'cost'"),
            ("price=A,price=B", "maps 'price' twice"),
        ],
    )
    def test_bad_column_mapping(self, value: str, message: str) -> None:
        """Each mistake is named."""
        with pytest.raises(ConfigurationError, match=message):
            data(AGENTLINK_DATA_COLUMNS=value)

    @pytest.mark.parametrize("value", ["Bearer abc", "Bad Name: x", "X-Key:"])
    def test_bad_auth_header_never_echoes_the_secret(self, value: str) -> None:
        """The message explains the form without repeating the value."""
        with pytest.raises(ConfigurationError, match="Header-Name: value") as caught:
            data(AGENTLINK_DATA_AUTH_HEADER=value)
        assert value not in str(caught.value)

    @pytest.mark.parametrize("value", ["0.1", "301", "soon"])
    def test_bad_timeout(self, value: str) -> None:
        """Between 0.5 and 300 seconds."""
        with pytest.raises(ConfigurationError, match="AGENTLINK_DATA_TIMEOUT_S"):
            data(AGENTLINK_DATA_TIMEOUT_S=value)


class TestBrand:
    """Name, logo, two colours and a contact line, from variables or a TOML file."""

    def test_neutral_default(self) -> None:
        """No setting: AgentLink's own neutral navy and brass, no logo, no contact line."""
        assert brand() == BrandSettings(
            name="AgentLink", logo=None, primary="#1f2d3d", accent="#b08d57", contact=""
        )

    def test_variables(self, tmp_path: Path) -> None:
        """Each AGENTLINK_BRAND_* variable; #abc colours are written out in full."""
        logo = tmp_path / "logo.png"
        logo.write_bytes(PNG)
        got = brand(
            AGENTLINK_BRAND_NAME="  Harbour  & Co ",
            AGENTLINK_BRAND_LOGO=str(logo),
            AGENTLINK_BRAND_PRIMARY="#0F3",
            AGENTLINK_BRAND_ACCENT="#d9a441",
            AGENTLINK_BRAND_CONTACT="02 9977 0000 · harbourco.example",
        )
        assert got == BrandSettings(
            "Harbour & Co", logo.resolve(), "#00ff33", "#d9a441", "02 9977 0000 · harbourco.example"
        )
        assert pickle.loads(pickle.dumps(got)) == got

    def test_toml_file_with_logo_beside_it_and_overrides(self, tmp_path: Path) -> None:
        """The file's logo is found next to the file; a variable overrides the file."""
        (tmp_path / "logo.svg").write_text(SVG)
        toml = tmp_path / "brand.toml"
        toml.write_text(
            'name = "Harbour & Co"\nlogo = "logo.svg"\nprimary = "#0f3b3a"\naccent = "#d9a441"\n'
        )
        got = brand(AGENTLINK_BRAND_FILE=str(toml), AGENTLINK_BRAND_ACCENT="#aa0000")
        assert (got.name, got.logo, got.primary, got.accent) == (
            "Harbour & Co",
            (tmp_path / "logo.svg").resolve(),
            "#0f3b3a",
            "#aa0000",
        )

    @pytest.mark.parametrize(
        ("toml", "message"),
        [
            ('name = "x"\ncolour = "#fff"\n', "unknown keys colour"),
            ("name = 3\n", "name must be text"),
            ("name = \n", "is not TOML"),
        ],
    )
    def test_bad_toml(self, tmp_path: Path, toml: str, message: str) -> None:
        """Each mistake is named, with the file."""
        path = tmp_path / "brand.toml"
        path.write_text(toml)
        with pytest.raises(ConfigurationError, match=message):
            brand(AGENTLINK_BRAND_FILE=str(path))

    def test_missing_toml_file(self, tmp_path: Path) -> None:
        """A brand file that is not there is named."""
        with pytest.raises(ConfigurationError, match="AGENTLINK_BRAND_FILE: cannot read"):
            brand(AGENTLINK_BRAND_FILE=str(tmp_path / "nope.toml"))

    @pytest.mark.parametrize("colour", ["navy", "#12345", "#gggggg"])
    def test_bad_colour(self, colour: str) -> None:
        """#rgb or #rrggbb only."""
        with pytest.raises(ConfigurationError, match="AGENTLINK_BRAND_PRIMARY"):
            brand(AGENTLINK_BRAND_PRIMARY=colour)

    @pytest.mark.parametrize(
        ("name", "content", "message"),
        [
            ("logo.gif", b"GIF89a", "must be an .svg or .png"),
            ("logo.png", b"not a png", "is not a PNG image"),
            ("logo.svg", b"<html></html>", "is not an SVG image"),
            ("logo.png", PNG + b"\0" * (2 * 1024 * 1024), "larger than 2 MiB"),
        ],
    )
    def test_bad_logo(self, tmp_path: Path, name: str, content: bytes, message: str) -> None:
        """Only real SVG and PNG files of a sensible size."""
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ConfigurationError, match=message):
            brand(AGENTLINK_BRAND_LOGO=str(path))

    def test_missing_logo(self, tmp_path: Path) -> None:
        """A logo that is not there is named."""
        with pytest.raises(ConfigurationError, match="brand logo: cannot read"):
            brand(AGENTLINK_BRAND_LOGO=str(tmp_path / "logo.svg"))
