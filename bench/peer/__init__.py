"""The design AgentLink replaces, rebuilt for side-by-side measurement: FastAPI + RQ.

``app`` is the old API (one uvicorn process; ``HSET job:<id> status processing`` then
``queue.enqueue(render_job, …)``), ``jobs`` the RQ job functions, ``worker`` an RQ worker
that imports the report code before it forks. FastAPI and RQ are installed only in the
bench virtualenv (``.venv-bench``, made by ``make bench``), never in AgentLink's own.
"""
