"""The typeface: read from wherever the package is installed; and workers and the demo say
once, at start, when renders will be slow for want of libharfbuzz-subset0 (WeasyPrint then
subsets fonts with fontTools)."""

from __future__ import annotations

import io
import shutil
from importlib import resources
from pathlib import Path

import pypdf
import pytest
from structlog.testing import capture_logs
from weasyprint import HTML

from agentlink.reports import render
from agentlink.reports.harfbuzz import harfbuzz_subset_available
from consumers.__main__ import warn_if_fonts_are_slow


class TestFontFiles:
    """The stylesheet's fonts are fetched from the package's own fonts folder, nothing else."""

    def test_package_in_a_folder_with_a_space_and_an_accent(self, tmp_path: Path) -> None:
        """Its file:// URLs are percent-encoded ("site%20packages%20%C3%A9"): Inter is still
        embedded, and other files beside it are still refused."""
        package = tmp_path / "site packages é" / "reports"
        shipped = Path(str(resources.files("agentlink.reports")))
        for folder in ("fonts", "templates"):
            shutil.copytree(shipped / folder, package / folder)
        stylesheet, fonts, fetcher = render.layout_tools(package)
        pdf = HTML(
            string='<p style="font-family: Inter; font-weight: 600">Manly</p>', url_fetcher=fetcher
        ).write_pdf(stylesheets=[stylesheet], font_config=fonts)
        page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
        embedded = {
            str(font.get_object()["/BaseFont"]).split("+", 1)[1]
            for font in page["/Resources"]["/Font"].values()
        }
        assert "Inter-Semi-Bold" in embedded
        assert embedded <= {"Inter", "Inter-Medium", "Inter-Semi-Bold"}  # no system fallback
        with pytest.raises(ValueError, match="reports may not read"):
            fetcher.fetch((package / "templates" / "report.css").as_uri())


class TestHarfBuzzSubset:
    def test_detection_looks_the_library_up_by_name(self) -> None:
        """find_library("harfbuzz-subset"): found or not, nothing is loaded."""
        asked: list[str] = []

        def missing(name: str) -> str | None:
            asked.append(name)
            return None

        assert harfbuzz_subset_available(missing) is False
        assert asked == ["harfbuzz-subset"]
        assert harfbuzz_subset_available(lambda _: "libharfbuzz-subset.so.0") is True

    def test_a_worker_without_it_warns_with_the_fix(self) -> None:
        """Missing: one worker.fonts_slow warning naming the package to install."""
        with capture_logs() as logs:
            assert warn_if_fonts_are_slow(lambda: False) is True
        [event] = logs
        assert event["event"] == "worker.fonts_slow"
        assert event["log_level"] == "warning"
        assert "apt-get install libharfbuzz-subset0" in event["hint"]
        assert "twice as slowly" in event["hint"]

    def test_a_worker_with_it_says_nothing(self) -> None:
        """Present: no line at all."""
        with capture_logs() as logs:
            assert warn_if_fonts_are_slow(lambda: True) is False
        assert logs == []
