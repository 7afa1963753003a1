"""Render sample reports and a PNG of every page, to look at them: ``make samples``.

Both reports for three suburbs of the configured data (``AGENTLINK_DATA``; the bundled
sample by default): a large market with a highlighted agent and agency, a mid-sized one,
and a thin one with a single sale; plus the first Manly report again under a demo brand,
to show what ``AGENTLINK_BRAND_*`` changes. The brand of the others is the configured
one. Page images need ``pdftoppm`` (Debian's poppler-utils).

    python -m agentlink.reports.samples [--out samples] [--dpi 80]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agentlink.jobs import AuState, Kind, ReportSpec
from agentlink.report_settings import BrandSettings
from agentlink.reports.render import make_report
from agentlink.reports.sources import open_source
from agentlink.settings import Settings

DEMO_LOGO = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 360 80">
<rect x="0" y="8" width="64" height="64" rx="6" fill="#d9a441"/>
<path d="M14 52 L32 24 L50 52 Z" fill="#0f3b3a"/>
<text x="80" y="48" font-family="Inter, sans-serif" font-size="30" font-weight="600"
 fill="#ffffff">Harbour &amp; Co</text>
<text x="81" y="68" font-family="Inter, sans-serif" font-size="12" letter-spacing="3"
 fill="#d9a441">PROPERTY</text></svg>"""


@dataclass(frozen=True, slots=True)
class Sample:
    """One report to render."""

    name: str
    spec: ReportSpec
    branded: bool = False


def samples() -> list[Sample]:
    """The reports ``make samples`` renders."""
    agents, agency, nsw, wa = Kind.AGENTS, Kind.AGENCY, AuState.NSW, AuState.WA
    return [
        Sample("manly-agents", _spec(agents, "Manly", nsw, "Marco Chen")),
        Sample("manly-agency", _spec(agency, "Manly", nsw, "Coastline Property")),
        Sample("fremantle-agents", _spec(agents, "Fremantle", wa)),
        Sample("fremantle-agency", _spec(agency, "Fremantle", wa)),
        Sample("coral-bay-agents", _spec(agents, "Coral Bay", wa)),
        Sample("coral-bay-agency", _spec(agency, "Coral Bay", wa)),
        Sample("manly-agents-branded", _spec(agents, "Manly", nsw, "Marco Chen"), branded=True),
    ]


def _spec(kind: Kind, suburb: str, state: AuState, highlight: str = "") -> ReportSpec:
    if highlight:
        return ReportSpec(kind=kind, suburb=suburb, state=state, highlight=highlight)
    return ReportSpec(kind=kind, suburb=suburb, state=state)


def demo_brand(folder: Path) -> BrandSettings:
    """A fictional agency's brand, with its logo written to ``folder``."""
    logo = folder / "demo-logo.svg"
    logo.write_text(DEMO_LOGO, "utf-8")
    return BrandSettings(
        name="Harbour & Co Property",
        logo=logo,
        primary="#0f3b3a",
        accent="#d9a441",
        contact="02 9977 0000 · hello@harbourco.example · harbourco.example",
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("samples"), help="folder (samples)")
    parser.add_argument("--dpi", type=int, default=80, help="resolution of the page images")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    source = open_source(settings.data)
    pdftoppm = shutil.which("pdftoppm")
    generated_at = datetime.now(UTC)
    for sample in samples():
        brand = demo_brand(out) if sample.branded else settings.brand
        started = time.perf_counter()
        report = make_report(
            sample.spec,
            job_id=f"sample-{sample.name}",
            source=source,
            generated_at=generated_at,
            brand=brand,
        )
        took_s = time.perf_counter() - started
        pdf = out / f"{sample.name}.pdf"
        pdf.write_bytes(report.pdf)
        if pdftoppm:
            subprocess.run(
                [pdftoppm, "-png", "-r", str(args.dpi), str(pdf), str(out / sample.name)],
                check=True,
            )
        print(  # noqa: T201 - a command reports to its user
            f"{pdf}: {report.pages} pages, {len(report.pdf):,} bytes, {took_s:.2f} s"
        )
    if not pdftoppm:
        print("pdftoppm not found (apt-get install poppler-utils): no page images")  # noqa: T201


if __name__ == "__main__":
    main()
