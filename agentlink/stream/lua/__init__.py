"""The Lua scripts AgentLink runs in Redis, kept as ``.lua`` files beside this module.

Each script opens with a header naming its KEYS and ARGV. Fragments that several scripts
share (the rate limit, the queue's backlog) live in files of their own and are pulled in
with a line ``--!include <file>.lua``; ``source()`` returns the script with its fragments
in place, which is what Redis receives. Options are passed as one JSON object (ARGV[1]),
so scripts read named fields (``opts.max_ahead``) instead of positional offsets.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

_INCLUDE = re.compile(r"^--!include (?P<name>[a-z_]+\.lua)$", re.MULTILINE)


@functools.cache
def source(name: str) -> str:
    """The text of script ``name`` (e.g. ``"submit.lua"``) with its includes expanded, each
    fragment once (a fragment another one includes already is not repeated)."""
    return _expand(name, set())


def _expand(name: str, included: set[str]) -> str:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")

    def include(match: re.Match[str]) -> str:
        fragment = match["name"]
        if fragment in included:
            return f"-- ({fragment}: included above)"
        included.add(fragment)
        return _expand(fragment, included).rstrip("\n")

    return _INCLUDE.sub(include, text)
