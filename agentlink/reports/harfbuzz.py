"""Whether WeasyPrint can subset fonts with HarfBuzz, the fast way.

WeasyPrint embeds only the glyphs a PDF uses. With ``libharfbuzz-subset0`` (Debian's
package; HarfBuzz ≥ 4.1) it subsets with HarfBuzz; without it, it falls back to fontTools,
and a report takes about twice as long to render. Nothing fails, so the workers and the demo
say so once at start instead of leaving an operator to wonder why renders are slow.
"""

from __future__ import annotations

import ctypes.util
from collections.abc import Callable

HARFBUZZ_SUBSET_HINT = (
    "libharfbuzz-subset0 is not installed: WeasyPrint subsets fonts with fontTools instead, "
    "and reports render about twice as slowly (Debian/Ubuntu: apt-get install "
    "libharfbuzz-subset0)"
)


def harfbuzz_subset_available(find: Callable[[str], str | None] = ctypes.util.find_library) -> bool:
    """True if the HarfBuzz subsetting library can be found (without loading it)."""
    return find("harfbuzz-subset") is not None
