"""``make image-check``'s last step, run by the image's virtualenv (``python -I``, outside
the repository): every module of ``agentlink`` and ``consumers`` imports from the
virtualenv, and one report renders to a PDF with the installed package data."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import weasyprint

import agentlink
import consumers
from agentlink.jobs import AuState, Kind, ReportSpec
from agentlink.reports.render import make_report
from agentlink.reports.sources import sample_source


def main() -> int:
    """Import everything, render one report; exit non-zero naming what failed."""
    venv = Path(sys.prefix).resolve()
    for package in (agentlink, consumers):
        where = Path(str(package.__file__)).resolve()
        if venv not in where.parents:
            sys.exit(f"{package.__name__} was imported from {where}, not from the venv {venv}")
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module.name.rpartition(".")[2] != "__main__":
                importlib.import_module(module.name)
    report = make_report(
        ReportSpec(kind=Kind.AGENTS, suburb="Manly", state=AuState.NSW),
        job_id="image-check",
        source=sample_source(),
        generated_at=datetime.now(UTC),
    )
    if not report.pdf.startswith(b"%PDF-") or report.pages < 1:
        sys.exit("the report did not render to a PDF")
    sys.stdout.write(
        f"rendered {report.title!r}: {report.pages} pages, {len(report.pdf)} bytes "
        f"(WeasyPrint {weasyprint.__version__})\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
