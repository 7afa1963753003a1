"""The report settings: where sales data comes from, and whose brand the PDFs carry.

Declared and read like every other setting (``agentlink.env``), but kept in their own
module because they have structure of their own (a source URL template, a column mapping,
a TOML brand file) and because the render process receives exactly these two records.
Both are plain frozen dataclasses, so they pickle to a spawned render child as they are.
Nothing here opens a data source: ``agentlink data check`` does that.
"""

from __future__ import annotations

import re
import string
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from agentlink.env import Variable, default, number, read, setting, squashed, text, variable
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

LOGO_MAX_BYTES = 2 * 1024 * 1024
_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def _columns(name: str, pairs_given: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``("price=Sale Price", "sold_date=Date")`` -> ``(("price", "Sale Price"), ...)``."""
    pairs: dict[str, str] = {}
    for part in pairs_given:
        ours, sep, theirs = part.partition("=")
        ours, theirs = ours.strip(), theirs.strip()
        if not sep or not theirs:
            raise ConfigurationError(
                f"{name}: {part!r} is not column=Header (e.g. price=Sale Price)"
            )
        if ours not in SALE_COLUMNS:
            raise ConfigurationError(
                f"{name}: unknown column {ours!r}; the columns are {', '.join(SALE_COLUMNS)}"
            )
        if ours in pairs:
            raise ConfigurationError(f"{name} maps {ours!r} twice")
        pairs[ours] = theirs
    return tuple(pairs.items())


def _auth_header(name: str, raw: str) -> tuple[str, str]:
    header, sep, value = raw.partition(":")
    header, value = header.strip(), value.strip()
    if not sep or not value or not _HEADER_NAME.match(header):
        # The value is a secret: the message never repeats it.
        raise ConfigurationError(
            f"{name} must be 'Header-Name: value', e.g. 'Authorization: Bearer <token>'"
        )
    return header, value


@dataclass(frozen=True, slots=True)
class DataSettings:
    """Where the sales come from (``AGENTLINK_DATA`` and its companions)."""

    kind: DataKind = "sample"
    location: str = setting(
        "AGENTLINK_DATA",
        "",
        None,
        "sample (the default), csv:/path/to/sales.csv, or an http(s) URL template with "
        "{suburb} and {state}",
    )
    """The CSV path, or the URL template of an HTTP source (``data_from_env`` reads it)."""
    columns: tuple[tuple[str, str], ...] = setting(
        "AGENTLINK_DATA_COLUMNS",
        (),
        _columns,
        "our column=the source's header pairs, comma-separated, e.g. price=Sale Price",
        listing=True,
    )
    auth_header: tuple[str, str] | None = setting(
        "AGENTLINK_DATA_AUTH_HEADER",
        None,
        _auth_header,
        "one header an HTTP source needs, like 'Authorization: Bearer <token>'",
        secret=True,
    )
    timeout_s: float = number(
        "AGENTLINK_DATA_TIMEOUT_S",
        10.0,
        "how long one request to an HTTP source may take",
        minimum=0.5,
        maximum=300,
    )
    label: str = text(
        "AGENTLINK_DATA_LABEL",
        "",
        "how the reports name the source; derived from it when empty",
        parse=squashed,
    )

    @property
    def spec(self) -> str:
        """The source as ``AGENTLINK_DATA`` spells it, for messages."""
        return {"sample": "sample", "csv": f"csv:{self.location}"}.get(self.kind, self.location)


@dataclass(frozen=True, slots=True)
class BrandSettings:
    """The agency whose reports these are (``AGENTLINK_BRAND_*`` or a TOML file).

    Each field is read by ``brand_from_env``: the variable, else the file's key of the
    field's name, else the default.
    """

    name: str = setting("AGENTLINK_BRAND_NAME", "AgentLink", None, "the agency's name")
    logo: Path | None = setting("AGENTLINK_BRAND_LOGO", None, None, "an .svg or .png file")
    primary: str = setting(
        "AGENTLINK_BRAND_PRIMARY", "#1f2d3d", None, "colour of the cover and headings (#rrggbb)"
    )
    accent: str = setting(
        "AGENTLINK_BRAND_ACCENT",
        "#b08d57",
        None,
        "colour of rules, highlights and the leader's bar (#rrggbb)",
    )
    contact: str = setting("AGENTLINK_BRAND_CONTACT", "", None, "one line: phone, e-mail, web site")


_BRAND_KEYS = tuple(spec.name for spec in fields(BrandSettings))
SALES_CSV = Variable(
    "AGENTLINK_SALES_CSV", "the older spelling of AGENTLINK_DATA=csv:path: a sales CSV's path"
)
"""Read by ``data_from_env`` besides the fields of ``DataSettings``."""
BRAND_FILE = Variable(
    "AGENTLINK_BRAND_FILE",
    "a TOML file with the keys name, logo, primary, accent, contact (a logo beside the file); "
    "each AGENTLINK_BRAND_* variable overrides its key",
)
"""Read by ``brand_from_env`` besides the fields of ``BrandSettings``."""


def data_from_env(env: Mapping[str, str]) -> DataSettings:
    """``AGENTLINK_DATA`` (or its alias ``AGENTLINK_SALES_CSV``) and companions."""
    raw = env.get(variable(DataSettings, "location").name, "").strip()
    alias = env.get(SALES_CSV.name, "").strip()
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
    return read(DataSettings, env, kind=kind, location=location)


def brand_from_env(env: Mapping[str, str]) -> BrandSettings:
    """The brand of ``AGENTLINK_BRAND_FILE`` (TOML), each ``AGENTLINK_BRAND_*`` overriding it."""
    values: dict[str, str] = {}
    base = Path.cwd()
    file = env.get(BRAND_FILE.name, "").strip()
    if file:
        values, base = _brand_file(Path(file))
    for key in _BRAND_KEYS:
        given = env.get(variable(BrandSettings, key).name, "").strip()
        if given:
            values[key] = given
            if key == "logo":
                base = Path.cwd()
    line = {key: " ".join(values.get(key, "").split()) for key in ("name", "contact")}
    return BrandSettings(
        name=line["name"] or default(BrandSettings, "name"),
        logo=_logo(base / values["logo"]) if values.get("logo") else None,
        primary=_colour("primary", values.get("primary", default(BrandSettings, "primary"))),
        accent=_colour("accent", values.get("accent", default(BrandSettings, "accent"))),
        contact=line["contact"] or default(BrandSettings, "contact"),
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
