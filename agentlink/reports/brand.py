"""The agency's brand as the templates use it: name, logo, colours, contact line.

``BrandSettings`` (from the environment) says what the agency chose; ``Brand`` adds what
the layout derives from it: the logo as a ``data:`` URI (renders fetch nothing from disk
or network), a text colour that stays readable on the primary colour whatever the agency
picked, and pale tints of both colours for table stripes and the highlighted row.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

from agentlink.report_settings import BrandSettings

_WHITE = "#ffffff"
_INK = "#1b2430"


@dataclass(frozen=True, slots=True)
class Brand:
    """What the templates and charts need to know about the brand."""

    name: str
    logo_uri: str | None
    contact: str
    primary: str
    accent: str
    on_primary: str  # text on a primary background
    primary_tint: str  # 7% primary on white
    accent_tint: str  # 16% accent on white
    accent_ink: str  # the accent, darkened when it is too light to read on white


@functools.cache
def brand_of(settings: BrandSettings) -> Brand:
    """The ``Brand`` of ``settings`` (the logo is read once per process)."""
    logo_uri = None
    if settings.logo is not None:
        mime = "image/svg+xml" if settings.logo.suffix.lower() == ".svg" else "image/png"
        encoded = base64.b64encode(settings.logo.read_bytes()).decode("ascii")
        logo_uri = f"data:{mime};base64,{encoded}"
    return Brand(
        name=settings.name,
        logo_uri=logo_uri,
        contact=settings.contact,
        primary=settings.primary,
        accent=settings.accent,
        on_primary=_WHITE if _luminance(settings.primary) < 0.4 else _INK,
        primary_tint=_mix(settings.primary, _WHITE, 0.07),
        accent_tint=_mix(settings.accent, _WHITE, 0.16),
        accent_ink=settings.accent
        if _luminance(settings.accent) < 0.45
        else _mix(settings.accent, _INK, 0.55),
    )


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _luminance(colour: str) -> float:
    """WCAG relative luminance, 0 (black) to 1 (white)."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _mix(colour: str, other: str, amount: float) -> str:
    """``amount`` of ``colour`` over ``other``."""
    mixed = (
        round(a * amount + b * (1 - amount)) for a, b in zip(_rgb(colour), _rgb(other), strict=True)
    )
    return "#" + "".join(f"{v:02x}" for v in mixed)
