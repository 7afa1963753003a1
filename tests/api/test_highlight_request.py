"""The optional ``highlight`` request field: validated at the edge, carried in the spec."""

from __future__ import annotations

import json

import msgspec
import pytest

from agentlink.api.errors import ApiError
from agentlink.api.routes.body import parse_request
from agentlink.jobs import Kind


def parse(body: dict[str, object] | str, content_type: str = "application/json") -> object:
    raw = body if isinstance(body, str) else json.dumps(body)
    spec, _ = parse_request(Kind.AGENTS, raw.encode(), content_type)
    return spec.highlight


class TestHighlightField:
    """Copied into the spec with spaces tidied; absent stays absent."""

    def test_copied_with_spaces_collapsed(self) -> None:
        """ "  Marco   Chen " becomes "Marco Chen"."""
        assert (
            parse({"suburb": "Manly", "state": "NSW", "highlight": "  Marco   Chen "})
            == "Marco Chen"
        )

    def test_form_bodies_too(self) -> None:
        """Make's form-encoded requests carry it the same way."""
        assert (
            parse(
                "suburb=Manly&state=NSW&highlight=Coastline+Property",
                "application/x-www-form-urlencoded",
            )
            == "Coastline Property"
        )

    def test_absent_or_blank_is_unset(self) -> None:
        """No highlight, or only spaces, is no highlight."""
        assert parse({"suburb": "Manly", "state": "NSW"}) is msgspec.UNSET
        assert parse({"suburb": "Manly", "state": "NSW", "highlight": "   "}) is msgspec.UNSET

    @pytest.mark.parametrize("value", ["", "x" * 121, 7])
    def test_invalid_values_are_422(self, value: object) -> None:
        """Empty, longer than 120 characters, or not text."""
        with pytest.raises(ApiError) as caught:
            parse({"suburb": "Manly", "state": "NSW", "highlight": value})
        assert caught.value.status_code == 422
        assert "highlight" in str(caught.value.errors)
