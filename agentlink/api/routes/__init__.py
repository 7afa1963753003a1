"""The HTTP routes, one module per concern: submitting a report (``submit``, with the body
it reads in ``body``), reading a job (``jobs``), and the operators' ``service`` routes."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

from agentlink.api.routes.jobs import job_cancel, job_pdf, job_status
from agentlink.api.routes.service import health, metrics_endpoint
from agentlink.api.routes.submit import generate_agency_report, generate_agents_report

HANDLERS: list[HTTPRouteHandler] = [
    generate_agents_report,
    generate_agency_report,
    job_status,
    job_pdf,
    job_cancel,
    health,
    metrics_endpoint,
]
"""Every route of the API, in the order the schema lists them."""
