"""Sales from an HTTP JSON endpoint: one GET per report, validated with msgspec.

``AGENTLINK_DATA=https://crm.example/api/sales?suburb={suburb}&state={state}`` asks the
endpoint for one suburb's sales (``{start}`` and ``{end}``, ISO dates or empty, narrow the
request when the template has them). The answer is a JSON array of sale records or an
object ``{"sales": [...]}``; a record has the CSV's columns as fields (extra fields are
ignored). What goes wrong is classified for the consumer: a timeout, a network error, a
5xx or a 429 may pass, so the job is retried (``DataSourceUnavailableError``); any other
4xx, or an answer that is not valid, will not, so the job fails at once with a message
that says why (``DataSourceRejectedError``). Messages name the host and path, never the
query string or the auth header, which may carry secrets. Redirects are followed only
within the endpoint's origin (scheme, host and port), so the auth header and the query
reach no other server; a redirect elsewhere fails the job.
"""

from __future__ import annotations

import string
import threading
import urllib.parse
from collections.abc import Sequence
from datetime import date
from typing import Annotated

import httpx
import msgspec

from agentlink.errors import DataSourceRejectedError, DataSourceUnavailableError
from agentlink.jobs import AuState
from agentlink.reports.sales import PropertyType, Sale, sold_on

_Text = Annotated[str, msgspec.Meta(min_length=1)]
_SNIPPET_CHARS = 200
MAX_REDIRECTS = 5


class SaleRecord(msgspec.Struct, frozen=True):
    """One sale as the endpoint sends it (the CSV's columns, ``price`` in whole dollars)."""

    sold_date: date
    address: _Text
    suburb: _Text
    state: AuState
    postcode: Annotated[str, msgspec.Meta(pattern=r"^\d{4}$")]
    price: Annotated[int, msgspec.Meta(gt=0)]
    property_type: PropertyType
    days_on_market: Annotated[int, msgspec.Meta(ge=0)]
    agent: _Text
    agency: _Text
    bedrooms: Annotated[int, msgspec.Meta(ge=0)] = 0


class SalesPage(msgspec.Struct, frozen=True):
    """The object form of an answer: ``{"sales": [...]}``."""

    sales: list[SaleRecord]


_decoder = msgspec.json.Decoder(list[SaleRecord] | SalesPage)


class HttpSalesSource:
    """A ``SalesSource`` over an HTTP JSON endpoint (see the module docstring)."""

    def __init__(
        self,
        url_template: str,
        *,
        timeout_s: float,
        auth_header: tuple[str, str] | None = None,
        label: str = "",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._template = url_template
        self._auth_header = auth_header
        self._timeout_s = timeout_s
        self._label = label
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        parts = urllib.parse.urlsplit(url_template.split("{", 1)[0])
        self._where = f"{parts.hostname or '?'}{parts.path}"

    def __repr__(self) -> str:
        return f"HttpSalesSource({self._where!r})"

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # A render process gets the settings and opens its own connection pool.
        return (_rebuild, (self._template, self._auth_header, self._timeout_s, self._label))

    @property
    def description(self) -> str:
        """How the methodology names this data: the label, or the endpoint's host."""
        return self._label or f"sales records from {self._where.split('/', 1)[0]}"

    def sales(
        self, suburb: str, state: AuState, start: date | None = None, end: date | None = None
    ) -> Sequence[Sale]:
        """GET the suburb's sales; filtered to the suburb and dates asked for, oldest first."""
        wanted = " ".join(suburb.split())
        place = f"{wanted}, {AuState(state).value}"
        url = self._url(wanted, AuState(state), start, end)
        try:
            response = self._get(url)
        except httpx.TimeoutException as exc:
            raise DataSourceUnavailableError(
                f"the sales endpoint {self._where} did not answer within {self._timeout_s:g} s "
                f"(AGENTLINK_DATA_TIMEOUT_S) for {place}"
            ) from exc
        except httpx.HTTPError as exc:
            raise DataSourceUnavailableError(
                f"cannot reach the sales endpoint {self._where}: {type(exc).__name__}: {exc}"
            ) from exc
        status = response.status_code
        if status >= 500 or status == 429:
            raise DataSourceUnavailableError(
                f"the sales endpoint {self._where} answered {status} {response.reason_phrase} "
                f"for {place}"
            )
        if status != 200:
            hint = " (check AGENTLINK_DATA_AUTH_HEADER)" if status in (401, 403) else ""
            raise DataSourceRejectedError(
                f"the sales endpoint {self._where} answered {status} {response.reason_phrase} "
                f"for {place}{hint}: {_snippet(response.text)}"
            )
        try:
            answer = _decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise DataSourceRejectedError(
                f"the sales endpoint {self._where} sent invalid sales data for {place}: {exc}"
            ) from exc
        records = answer.sales if isinstance(answer, SalesPage) else answer
        key = wanted.casefold()
        chosen = [
            _sale(record)
            for record in records
            if record.state == state
            and " ".join(record.suburb.split()).casefold() == key
            and (start is None or record.sold_date >= start)
            and (end is None or record.sold_date <= end)
        ]
        return sorted(chosen, key=sold_on)

    def _url(self, suburb: str, state: AuState, start: date | None, end: date | None) -> str:
        values = {
            "suburb": suburb,
            "state": state.value,
            "start": start.isoformat() if start else "",
            "end": end.isoformat() if end else "",
        }
        quoted = {name: urllib.parse.quote(value, safe="") for name, value in values.items()}
        return string.Formatter().vformat(self._template, (), quoted)

    def _get(self, url: str) -> httpx.Response:
        """GET ``url``, following redirects within its origin only: httpx keeps every header
        but ``Authorization`` on a redirect to another host, and the auth header may be any."""
        client = self._http()
        response = client.get(url)
        origin = _origin(response.request.url)
        redirects = 0
        while (target := response.next_request) is not None:
            if _origin(target.url) != origin:
                raise DataSourceRejectedError(
                    f"the sales endpoint {self._where} redirected to {_origin_text(target.url)}, "
                    "another origin; redirects are followed within the endpoint's origin only, "
                    "so that the auth header goes nowhere else: set AGENTLINK_DATA to the new "
                    "address"
                )
            redirects += 1
            if redirects > MAX_REDIRECTS:
                raise DataSourceRejectedError(
                    f"the sales endpoint {self._where} redirected more than {MAX_REDIRECTS} times"
                )
            response = client.send(target)
        return response

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = dict([self._auth_header]) if self._auth_header else {}
                self._client = httpx.Client(
                    headers={"Accept": "application/json", **headers},
                    timeout=self._timeout_s,
                    follow_redirects=False,  # _get follows those within the origin
                    transport=self._transport,
                )
            return self._client

    def close(self) -> None:
        """Close the connection pool (a later query opens a new one)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _rebuild(
    url_template: str, auth_header: tuple[str, str] | None, timeout_s: float, label: str
) -> HttpSalesSource:
    return HttpSalesSource(url_template, auth_header=auth_header, timeout_s=timeout_s, label=label)


_NAMES = ("address", "suburb", "agent", "agency")
"""Fields whose runs of white space become one space."""


def _sale(record: SaleRecord) -> Sale:
    fields = msgspec.structs.asdict(record)
    fields.update({name: " ".join(fields[name].split()) for name in _NAMES})
    return Sale(**fields)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)


def _origin_text(url: httpx.URL) -> str:
    # Scheme, host and port only: the path and query may carry secrets.
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[: _SNIPPET_CHARS - 1] + "…"
