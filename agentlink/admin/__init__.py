"""Operator tools behind the ``agentlink`` command: the queue at a glance, the demo, a
private redis-server for the demo and the tests."""
