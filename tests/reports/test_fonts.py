"""Workers and the demo say once, at start, when renders will be slow for want of
libharfbuzz-subset0 (WeasyPrint then subsets fonts with fontTools)."""

from __future__ import annotations

from structlog.testing import capture_logs

from agentlink.reports.harfbuzz import harfbuzz_subset_available
from consumers.__main__ import warn_if_fonts_are_slow


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
