"""Operator tools behind the ``agentlink`` command (``agentlink.cli`` parses, these act):
serving the API, the queue at a glance, one job, the dead letters, the data and Dropbox
checks, the demo, and a private redis-server for the demo and the tests."""
