"""``agentlink data check`` and ``agentlink dropbox check``: what an operator runs before
switching a source or a storage on. Each reports its own problems, one line a step, and
exits 0 when reports can use what is configured, 1 naming what is wrong."""

from __future__ import annotations

from agentlink.errors import AgentLinkError, ConfigurationError
from agentlink.settings import Settings


def data_check(suburb: str | None, state: str | None) -> int:
    """``agentlink data check``: exit 0 if the source is usable, 1 naming the problem."""
    from agentlink.jobs import AuState
    from agentlink.reports.check import check_lines

    try:
        wanted = AuState(state.strip().upper()) if state else None
    except ValueError:
        print(f"agentlink data check: --state must be one of {', '.join(AuState)}")
        return 1
    try:
        settings = Settings.from_env()
        if (suburb is None) != (wanted is None):
            raise ConfigurationError("--suburb and --state go together")
        for line in check_lines(settings.data, suburb, wanted):
            print(line)
    except AgentLinkError as exc:
        print(f"agentlink data check: FAIL: {exc}")
        return 1
    print("ok: reports can use this data")
    return 0


def dropbox_check() -> int:
    """``agentlink dropbox check``: what an operator runs first; exit 0 ready, 1 not."""
    from agentlink.storage.dropbox import DropboxStorage
    from agentlink.storage.dropbox_settings import require_dropbox

    print("agentlink dropbox check")
    try:
        settings = Settings.from_env()
        require_dropbox(settings)
    except ConfigurationError as exc:
        print(f"  {'settings':<9} FAIL  {exc}")
        print("Dropbox is NOT ready: fix the setting named above and run this again.")
        return 1
    from agentlink.observe.logging import configure_logging

    configure_logging(settings.log_format, "warning", secrets=settings.secrets)  # only trouble
    auth = "refresh token" if settings.dropbox_refresh_token else "access token"
    print(f"  {'settings':<9} ok    {auth}, folder {settings.dropbox_folder or '/'}")
    if settings.storage != "dropbox":
        print(f"  {'':<9} note  AGENTLINK_STORAGE={settings.storage}: set it to dropbox to use it")
    ok = True
    try:
        for step in DropboxStorage(settings).checks():
            print(f"  {step.name:<9} {'ok  ' if step.ok else 'FAIL'}  {step.detail}")
            ok = ok and step.ok
    except AgentLinkError as exc:
        print(f"  {'account':<9} FAIL  {exc}")
        ok = False
    if ok:
        print(f"Dropbox is ready: reports go to {settings.dropbox_folder or '/'}.")
        return 0
    print("Dropbox is NOT ready: fix what is marked FAIL and run this again.")
    return 1
