"""The one exception tree of AgentLink.

Core code raises and catches only these; adapters translate library exceptions at the
boundary (``raise StorageUnavailableError(...) from exc``), so nothing outside an adapter
ever catches ``redis.*`` or ``dropbox.*``. The consumer decides what to do with a job from
the branch an error sits on::

    AgentLinkError
    ├── ConfigurationError          settings are missing or inconsistent: refuse to start
    │   └── StorageConfigError      storage credentials/scopes rejected: pause, not the job's fault
    ├── ServiceUnavailableError     Redis cannot be reached (API → 503)
    │   └── ServiceBusyError        every Redis connection is in use past the wait (API → 503)
    ├── RedisCommandError           Redis refused a command (a script error): a bug, not an outage
    ├── JobNotFoundError            no such job (API → 404)
    ├── JobRecordError              a job hash in Redis lacks a field or holds a bad value
    └── JobError                    raised while making a report
        ├── PermanentJobError       retrying cannot help: the job fails now
        │   ├── InvalidJobError     the stream entry cannot be decoded / unknown version
        │   ├── NoSalesDataError    the suburb has no sales in the period
        │   ├── DataSourceRejectedError  the data source refused the request or sent bad data
        │   ├── HighlightNotFoundError   the requested highlight has no sales in the period
        │   ├── StorageRejectedError the storage refused the file for good (bad path, full)
        │   └── UnexpectedJobError  any exception outside this tree (a bug, data the code
        │                           cannot handle): retrying would only repeat it
        └── TransientJobError       may work next time: retried with backoff
            ├── DataSourceUnavailableError  timeout, network error, 5xx/429, unreadable file
            ├── StorageUnavailableError   5xx, 429, network, timeouts
            └── RenderFailedError         the render crashed or ran out of time

Only ``TransientJobError`` is retried. Anything else raised while making a report fails the
job at its first attempt: an exception no adapter translated is a bug or bad data, and
retrying it as if the network were down would hold a worker for minutes and end in the
dead letters anyway.
"""

from __future__ import annotations


class AgentLinkError(Exception):
    """Base of every error AgentLink raises on purpose."""


class ConfigurationError(AgentLinkError):
    """A setting is missing or inconsistent; the process refuses to start."""


class StorageConfigError(ConfigurationError):
    """The storage rejects our credentials or configuration (revoked token, missing scope).

    Not the job's fault: a consumer that meets it keeps the job (its lease renewed, its
    status ``retrying`` while it waits), takes no new job, re-checks the storage every
    AGENTLINK_STORAGE_RECHECK_S and stores the PDF once it works again
    (``consumers.storage_pause``).
    """


class ServiceUnavailableError(AgentLinkError):
    """A service AgentLink depends on (Redis) cannot be reached right now."""


class ServiceBusyError(ServiceUnavailableError):
    """Redis is reachable, but every connection of the bounded pool stayed in use for longer
    than the wait allows: the API is busy, not broken."""


class RedisCommandError(AgentLinkError):
    """Redis refused a command for a reason other than an outage (a script's error, a wrong
    type): a bug to fix, never retried as if Redis were down."""


class JobNotFoundError(AgentLinkError):
    """No job with this id exists (or its record expired)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class JobRecordError(AgentLinkError, ValueError):
    """A job hash in Redis lacks a field a record needs, or holds a value that does not
    parse (written by hand, or a hash recreated after its record expired).

    Also a ``ValueError``, like the decode errors of the other records that cross a
    boundary, so a caller that treats unreadable data alike keeps doing so.
    """


class JobError(AgentLinkError):
    """Raised while a consumer makes a report."""


class PermanentJobError(JobError):
    """Retrying cannot help: the job fails at once with this message."""


class InvalidJobError(PermanentJobError):
    """A stream entry that cannot be decoded, or carries an unknown schema version."""


class NoSalesDataError(PermanentJobError):
    """The suburb has no recorded sales in the requested period."""


class DataSourceRejectedError(PermanentJobError):
    """The sales data source refused the request (HTTP 4xx) or its data is invalid."""


class HighlightNotFoundError(PermanentJobError):
    """The request's ``highlight`` names no agent or agency with sales in the period."""


class StorageRejectedError(PermanentJobError):
    """The storage refused the file for good (bad path, no space left)."""


class UnexpectedJobError(PermanentJobError):
    """An exception outside this tree while making a report (``ValueError``, ``KeyError``…).

    Raised by the consumer (and the render process) in its place, with the original type
    and message, so the job fails at once instead of being retried like an outage.
    """

    @classmethod
    def wrap(cls, exc: BaseException) -> UnexpectedJobError:
        """The error that stands for ``exc``; its message names the original type."""
        return cls(f"unexpected {type(exc).__name__} while making the report (not retried): {exc}")


class TransientJobError(JobError):
    """May work on a later attempt: the job is retried with backoff."""


class DataSourceUnavailableError(TransientJobError):
    """The sales data source did not answer (timeout, connection error, 5xx)."""


class StorageUnavailableError(TransientJobError):
    """The storage is unavailable for now (5xx, 429, network error, timeout)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RenderFailedError(TransientJobError):
    """The render process crashed, was killed, or ran past its time limit."""
