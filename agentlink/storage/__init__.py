"""Where finished PDFs go.

A ``Storage`` writes a report to a path that depends only on the job, so a redelivered job
overwrites its own file instead of creating a second one. ``LocalStorage`` (a folder) is
the default.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Protocol

from agentlink.jobs import JobResult, Kind
from agentlink.settings import Settings

_UNSAFE = re.compile(r"[^A-Za-z0-9]+")


def slug(text: str) -> str:
    """``"St Kilda East"`` -> ``"St-Kilda-East"``: safe in a file name, still readable."""
    return _UNSAFE.sub("-", text).strip("-") or "report"


def report_path(*, kind: Kind, suburb: str, state: str, day: date, job_id: str) -> str:
    """``NSW/Manly/agents-Manly-2026-11-26-3f2a1b4c.pdf``: the job's path below the root."""
    name = slug(suburb)
    return f"{state}/{name}/{kind.value}-{name}-{day.isoformat()}-{job_id[:8]}.pdf"


class Storage(Protocol):
    """Somewhere reports can be written to."""

    name: str

    def save(self, relative_path: str, pdf: bytes) -> JobResult:
        """Write ``pdf`` at ``relative_path`` (overwriting) and say where it went."""
        ...

    def check(self) -> None:
        """Verify the storage is usable; ``StorageConfigError`` if its configuration is not."""
        ...


def create_storage(settings: Settings) -> Storage:
    """The storage the settings select (one per process: the Dropbox one holds the client)."""
    if settings.storage == "local":
        from agentlink.storage.local import LocalStorage

        return LocalStorage(settings.output_dir)
    # Imported here: the SDK reads DROPBOX_API_HOST at import, and local runs need none of it.
    from agentlink.storage.dropbox import DropboxStorage

    return DropboxStorage(settings)
