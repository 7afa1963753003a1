"""Benchmarks and fault-injection runs for AgentLink (``make bench``, ``make chaos``).

Nothing here is imported by ``agentlink`` or ``consumers``: the benchmarks drive the real
processes (redis-server, ``agentlink api``, ``python -m consumers``) from the outside and
measure them. ``harness`` holds what both runs share; see ``bench/README.md``.
"""
