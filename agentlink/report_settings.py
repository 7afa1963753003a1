"""The report settings: where sales data comes from, and whose brand the PDFs carry.

Read by ``Settings.from_env`` like every other variable, but kept in their own module
because they have structure of their own (a source URL template, a column mapping, a
TOML brand file) and because the render process receives exactly these two records.
Both are plain frozen dataclasses, so they pickle to a spawned render child as they are.
Nothing here opens a data source: ``agentlink data check`` does that.
"""

from __future__ import annotations

import re
import string
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agentlink.errors import ConfigurationError

DataKind = Literal["sample", "csv", "http"]

SALE_COLUMNS = (
    "sold_date",
    "address",
    "suburb",
    "state",
    "postcode",
    "price",
    "property_type",
    "bedrooms",
    "days_on_market",
    "agent",
    "agency",
)
"""The columns of a sales CSV (and the fields of an HTTP source's records), in order."""

URL_FIELDS = frozenset({"suburb", "state", "start", "end"})
"""Placeholders of an ``AGENTLINK_DATA`` URL; ``start``/``end`` are ISO dates or empty."""

DEFAULT_BRAND_NAME = "AgentLink"
DEFAULT_PRIMARY = "#1f2d3d"
DEFAULT_ACCENT = "#b08d57"
LOGO_MAX_BYTES = 2 * 1024 * 1024
_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_BRAND_KEYS = ("name", "logo", "primary", "accent", "contact")


@dataclass(frozen=True, slots=True)
class DataSettings:
    """Where the sales come from (``AGENTLINK_DATA`` and its companions)."""

    kind: DataKind = "sample"
    location: str = ""  # the CSV path, or the URL template of an HTTP source
    columns: tuple[tuple[str, str], ...] = ()  # (our column, the file's header) pairs
    auth_header: tuple[str, str] | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    label: str = ""  # how the reports name the source; derived from it when empty

    @property
    def spec(self) -> str:
        """The source as ``AGENTLINK_DATA`` spells it, for messages."""
        return {"sample": "sample", "csv": f"csv:{self.location}"}.get(self.kind, self.location)


@dataclass(frozen=True, slots=True)
class BrandSettings:
    """The agency whose reports these are (``AGENTLINK_BRAND_*`` or a TOML file)."""

    name: str = DEFAULT_BRAND_NAME
    logo: Path | None = None  # an .svg or .png file
    primary: str = DEFAULT_PRIMARY  # cover and headings
    accent: str = DEFAULT_ACCENT  # rules, highlights, the leader's bar
    contact: str = ""  # one line: phone, e-mail, web site


def data_from_env(env: Mapping[str, str]) -> DataSettings:
    """``AGENTLINK_DATA`` (or its alias ``AGENTLINK_SALES_CSV``) and companions."""
    raw = env.get("AGENTLINK_DATA", "").strip()
    alias = env.get("AGENTLINK_SALES_CSV", "").strip()
    if alias:
        if raw and raw != f"csv:{alias}":
            raise ConfigurationError(
                f"AGENTLINK_SALES_CSV={alias!r} and AGENTLINK_DATA={raw!r} disagree; "
                "set only AGENTLINK_DATA (AGENTLINK_SALES_CSV=path means AGENTLINK_DATA=csv:path)"
            )
        raw = f"csv:{alias}"
    kind: DataKind
    if raw in {"", "sample"}:
        kind, location = "sample", ""
    elif raw.startswith("csv:"):
        kind, location = "csv", raw.removeprefix("csv:").strip()
        if not location:
            raise ConfigurationError("AGENTLINK_DATA=csv: needs a path, like csv:/data/sales.csv")
    elif raw.startswith(("http://", "https://")):
        kind, location = "http", raw
        _check_url_template(raw)
    else:
        raise ConfigurationError(
            f"AGENTLINK_DATA={raw!r}: use sample (the default), csv:/path/to/sales.csv, or "
            "https://host/path?suburb={suburb}&state={state}"
        )
    return DataSettings(
        kind=kind,
        location=location,
        columns=_columns(env.get("AGENTLINK_DATA_COLUMNS", "")),
        auth_header=_auth_header(env.get("AGENTLINK_DATA_AUTH_HEADER", "")),
        timeout_s=_seconds(env, "AGENTLINK_DATA_TIMEOUT_S", 10.0),
        label=" ".join(env.get("AGENTLINK_DATA_LABEL", "").split()),
    )


def brand_from_env(env: Mapping[str, str]) -> BrandSettings:
    """The brand of ``AGENTLINK_BRAND_FILE`` (TOML), each ``AGENTLINK_BRAND_*`` overriding it."""
    values: dict[str, str] = {}
    base = Path.cwd()
    file = env.get("AGENTLINK_BRAND_FILE", "").strip()
    if file:
        values, base = _brand_file(Path(file))
    for key in _BRAND_KEYS:
        given = env.get(f"AGENTLINK_BRAND_{key.upper()}", "").strip()
        if given:
            values[key] = given
            if key == "logo":
                base = Path.cwd()
    name = " ".join(values.get("name", "").split()) or DEFAULT_BRAND_NAME
    logo = _logo(base / values["logo"]) if values.get("logo") else None
    return BrandSettings(
        name=name,
        logo=logo,
        primary=_colour("primary", values.get("primary", DEFAULT_PRIMARY)),
        accent=_colour("accent", values.get("accent", DEFAULT_ACCENT)),
        contact=" ".join(values.get("contact", "").split()),
    )


def _check_url_template(url: str) -> None:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(url) if name is not None}
    except ValueError as exc:
        raise ConfigurationError(f"AGENTLINK_DATA={url!r} is not a valid template: {exc}") from None
    unknown = fields - URL_FIELDS
    if unknown:
        raise ConfigurationError(
            f"AGENTLINK_DATA={url!r} uses unknown placeholders "
            f"{', '.join('{' + f + '}' for f in sorted(unknown))}; known: "
            f"{', '.join('{' + f + '}' for f in sorted(URL_FIELDS))}"
        )
    if not {"suburb", "state"} <= fields:
        raise ConfigurationError(
            f"AGENTLINK_DATA={url!r} must contain {{suburb}} and {{state}}, so that one request "
            "fetches one suburb's sales"
        )
    if not urllib.parse.urlsplit(url.format(**dict.fromkeys(fields, "x"))).hostname:
        raise ConfigurationError(f"AGENTLINK_DATA={url!r} names no host")


def _columns(raw: str) -> tuple[tuple[str, str], ...]:
    """``"price=Sale Price, sold_date=Date"`` -> ``(("price", "Sale Price"), ...)``."""
    pairs: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        ours, sep, theirs = part.partition("=")
        ours, theirs = ours.strip(), theirs.strip()
        if not sep or not theirs:
            raise ConfigurationError(
                f"AGENTLINK_DATA_COLUMNS: {part.strip()!r} is not column=Header "
                "(e.g. price=Sale Price)"
            )
        if ours not in SALE_COLUMNS:
            raise ConfigurationError(
                f"AGENTLINK_DATA_COLUMNS: unknown column {ours!r}; the columns are "
                f"{', '.join(SALE_COLUMNS)}"
            )
        if ours in pairs:
            raise ConfigurationError(f"AGENTLINK_DATA_COLUMNS maps {ours!r} twice")
        pairs[ours] = theirs
    return tuple(pairs.items())


def _auth_header(raw: str) -> tuple[str, str] | None:
    raw = raw.strip()
    if not raw:
        return None
    name, sep, value = raw.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not value or not _HEADER_NAME.match(name):
        # The value is a secret: the message never repeats it.
        raise ConfigurationError(
            "AGENTLINK_DATA_AUTH_HEADER must be 'Header-Name: value', "
            "e.g. 'Authorization: Bearer <token>'"
        )
    return name, value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0.5 <= value <= 300:
        raise ConfigurationError(f"{name} must be between 0.5 and 300 seconds, got {value:g}")
    return value


def _brand_file(path: Path) -> tuple[dict[str, str], Path]:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"AGENTLINK_BRAND_FILE: cannot read {path}: {exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"AGENTLINK_BRAND_FILE: {path} is not TOML: {exc}") from None
    unknown = sorted(set(data) - set(_BRAND_KEYS))
    if unknown:
        raise ConfigurationError(
            f"AGENTLINK_BRAND_FILE: {path} has unknown keys {', '.join(unknown)}; "
            f"known: {', '.join(_BRAND_KEYS)}"
        )
    wrong = sorted(key for key, value in data.items() if not isinstance(value, str))
    if wrong:
        raise ConfigurationError(
            f"AGENTLINK_BRAND_FILE: {path}: {', '.join(wrong)} must be text (in quotes)"
        )
    # A logo named in the file is found beside the file, wherever the worker starts.
    return {key: str(value).strip() for key, value in data.items()}, path.parent


def _colour(key: str, raw: str) -> str:
    value = raw.strip()
    if not _COLOUR.match(value):
        raise ConfigurationError(
            f"brand {key} colour must be #rgb or #rrggbb (AGENTLINK_BRAND_{key.upper()}), "
            f"got {raw!r}"
        )
    if len(value) == 4:
        value = "#" + "".join(c * 2 for c in value[1:])
    return value.lower()


def _logo(path: Path) -> Path:
    kind = path.suffix.lower()
    if kind not in {".svg", ".png"}:
        raise ConfigurationError(f"brand logo {path} must be an .svg or .png file")
    try:
        head = path.read_bytes()[:4096] if path.stat().st_size <= LOGO_MAX_BYTES else None
    except OSError as exc:
        raise ConfigurationError(f"brand logo: cannot read {path}: {exc}") from None
    if head is None:
        raise ConfigurationError(f"brand logo {path} is larger than 2 MiB")
    if kind == ".png" and not head.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ConfigurationError(f"brand logo {path} is not a PNG image")
    if kind == ".svg" and b"<svg" not in head:
        raise ConfigurationError(f"brand logo {path} is not an SVG image")
    return path.resolve()
