"""Observability: metrics, request ids, the stream state read at scrape time, the scaling
arithmetic, and the one logging set-up (with its secret scrubber)."""
