"""The operator dashboard: one page in the browser, served by the API process, to see what
the queue and the workers are doing and to act on it (cancel, re-run, replay).

Server-rendered (Jinja2) from the indexes the Lua scripts keep in Redis, so every page is a
handful of bounded round trips however many jobs there are; a small script refreshes the
parts of a page every few seconds. ``routes`` declares it (``dashboard_router``), ``session``
signs people in, ``reads`` and ``jobs_query`` read Redis, ``actions`` changes it,
``history`` draws the charts. Importing this package imports nothing else: the settings
table reads ``agentlink.dashboard.settings``.
"""
