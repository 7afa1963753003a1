"""Every Redis key name AgentLink uses, in one place.

Key layout (prefix ``agentlink`` by default, configurable so environments can share a
server)::

    agentlink:reports           stream of report requests, consumer group "renderers"
    agentlink:reports:dead      dead letters: original fields + error history
    agentlink:reports:index     hash entry id -> job id for entries not yet acked
    agentlink:job:<job_id>      hash: the job's status record
    agentlink:consumers         sorted set: consumer name -> last heartbeat (unix s)
    agentlink:consumer:<name>   hash: heartbeat owner token and current job
    agentlink:idem:<scope>:<kind>:<key sha256>  hash: job_id, body_sha256 (expires)
    agentlink:rate:<scope>      GCRA state of one API key's rate limit (expires)
    agentlink:stats:service     hash: EWMA of completed jobs' service time
    agentlink:stats:work        hash: busy seconds and finished jobs (scaling gauges)
    agentlink:stats:samples     sorted set: counter samples over the scaling window
    agentlink:callbacks         stream of callbacks to deliver, consumer group "notifiers"
    agentlink:callbacks:delayed sorted set: callbacks waiting for their retry (score: due ms)
    agentlink:callbacks:dead    callbacks given up on: fields + last error
    agentlink:notifiers         sorted set: notifier name -> last heartbeat (unix s)
    agentlink:notifier:<name>   hash: a notifier's heartbeat owner token
    agentlink:jobs              sorted set: every job id -> created ms (the dashboard's indexes,
    agentlink:jobs:status:<s>   sorted set: job ids of status s -> created ms  kept by the
    agentlink:jobs:ids          sorted set (lexical): job ids, for prefix search  scripts
    agentlink:jobs:suburb:<ST|suburb>  sorted set: job ids of one suburb -> created ms
    agentlink:jobs:where        hash: job id -> "<ST>|<suburb>", to prune the above
    agentlink:jobs:suburbs      sorted set (lexical): "<suburb>|<ST>" of every suburb with a job
    agentlink:stats:history:<hour>  hash: "<minute>:<event>" -> count (26 h): accepted,
                                completed, failed, dead, cancelled
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "renderers"
CALLBACK_GROUP = "notifiers"


@dataclass(frozen=True, slots=True)
class Keys:
    """Every Redis key name AgentLink uses, under one prefix."""

    prefix: str = "agentlink"
    group: str = GROUP

    @property
    def stream(self) -> str:
        """The stream of report requests."""
        return f"{self.prefix}:reports"

    @property
    def dead(self) -> str:
        """The dead-letter stream."""
        return f"{self.prefix}:reports:dead"

    @property
    def index(self) -> str:
        """Hash of entry id -> job id, for entries not acked yet."""
        return f"{self.prefix}:reports:index"

    @property
    def consumers(self) -> str:
        """Sorted set of consumer name -> last heartbeat."""
        return f"{self.prefix}:consumers"

    @property
    def trim_lock(self) -> str:
        """Held by the one consumer that trims the stream this round."""
        return f"{self.prefix}:reports:trim-lock"

    @property
    def work_stats(self) -> str:
        """Hash of cumulative busy seconds (``busy_s``) and finished jobs (``done``)."""
        return f"{self.prefix}:stats:work"

    @property
    def stat_samples(self) -> str:
        """Sorted set of counter samples scored by their unix time (scaling gauges)."""
        return f"{self.prefix}:stats:samples"

    def job(self, job_id: str) -> str:
        """The job's status hash."""
        return f"{self.prefix}:job:{job_id}"

    def consumer(self, name: str) -> str:
        """A consumer's heartbeat hash (owner token, current job)."""
        return f"{self.prefix}:consumer:{name}"

    def idempotency(self, scope: str, kind: str, key_sha256: str) -> str:
        """The record of one idempotency key: per caller (API key) and per report kind."""
        return f"{self.prefix}:idem:{scope}:{kind}:{key_sha256}"

    def rate(self, scope: str) -> str:
        """The rate-limit state of one caller."""
        return f"{self.prefix}:rate:{scope}"

    def signed_out(self, nonce: str) -> str:
        """Set when a dashboard session signs out, until its cookie would have expired."""
        return f"{self.prefix}:signed-out:{nonce}"

    @property
    def jobs(self) -> str:
        """Sorted set of every job id by creation time (ms)."""
        return f"{self.prefix}:jobs"

    def jobs_with_status(self, status: str) -> str:
        """Sorted set of the job ids with ``status``, by creation time (ms)."""
        return f"{self.prefix}:jobs:status:{status}"

    @property
    def job_ids(self) -> str:
        """Lexical sorted set of job ids (prefix search)."""
        return f"{self.prefix}:jobs:ids"

    def jobs_of_suburb(self, state: str, suburb: str) -> str:
        """Sorted set of the job ids of one suburb, by creation time (ms)."""
        return f"{self.prefix}:jobs:suburb:{state.upper()}|{suburb.lower()}"

    @property
    def suburbs(self) -> str:
        """Lexical sorted set of ``<suburb>|<STATE>`` of every suburb with a job on record."""
        return f"{self.prefix}:jobs:suburbs"

    def history(self, hour: int) -> str:
        """Hash of one hour's counts: ``<minute>:<event>`` -> count."""
        return f"{self.prefix}:stats:history:{hour}"

    @property
    def indexes(self) -> dict[str, str]:
        """The index key names (or name prefixes) the scripts keep up to date
        (``lua/job_status.lua``, ``lua/index_job.lua``, ``lua/prune_jobs.lua``)."""
        return {
            "all": self.jobs,
            "by_status": self.jobs_with_status(""),
            "ids": self.job_ids,
            "where": f"{self.prefix}:jobs:where",
            "suburb": f"{self.prefix}:jobs:suburb:",
            "suburbs": self.suburbs,
            "history": self.history(0).removesuffix("0"),
        }

    @property
    def service_stats(self) -> str:
        """Hash with the moving average of completed jobs' service time."""
        return f"{self.prefix}:stats:service"

    @property
    def callbacks(self) -> CallbackKeys:
        """The key names of the callback stream, shaped like these so the same queue
        code (reads, leases, reclaim, heartbeats) serves both streams."""
        return CallbackKeys(self.prefix)


@dataclass(frozen=True, slots=True)
class CallbackKeys(Keys):
    """The callback stream's keys: group ``notifiers``, heartbeats of its own."""

    group: str = CALLBACK_GROUP

    @property
    def stream(self) -> str:
        """The stream of callbacks to deliver."""
        return f"{self.prefix}:callbacks"

    @property
    def dead(self) -> str:
        """Callbacks given up on."""
        return f"{self.prefix}:callbacks:dead"

    @property
    def delayed(self) -> str:
        """Sorted set of callbacks waiting for a retry, scored by due time (ms)."""
        return f"{self.prefix}:callbacks:delayed"

    @property
    def index(self) -> str:
        """Unused by callbacks; named so nothing collides with the report index."""
        return f"{self.prefix}:callbacks:index"

    @property
    def consumers(self) -> str:
        """Sorted set of notifier name -> last heartbeat."""
        return f"{self.prefix}:notifiers"

    @property
    def trim_lock(self) -> str:
        """Unused: delivered callbacks are deleted at once."""
        return f"{self.prefix}:callbacks:trim-lock"

    def consumer(self, name: str) -> str:
        """A notifier's heartbeat hash."""
        return f"{self.prefix}:notifier:{name}"
