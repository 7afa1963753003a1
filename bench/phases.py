"""The phases of ``bench.frontdoor``: each measures both sides and adds its rows to the table.

What every figure means and how it is taken: bench/README.md.
"""

from __future__ import annotations

import argparse
import math

import redis

from agentlink.jobs import AuState, Kind, ReportSpec
from bench import dispatch, load, renders, services
from bench.harness import median, mib, quantile
from bench.scoreboard import Scoreboard, at_least, at_most, ms, per_s, ratio, statuses

RECLAIM_SPEC = ReportSpec(kind=Kind.AGENTS, suburb="Manly", state=AuState.NSW)


def phase_wrk(setup: services.Setup, board: Scoreboard, args: argparse.Namespace) -> str:
    """wrk against ours and both peer variants; returns the better peer variant's name."""
    print("  wrk: AgentLink …", flush=True)
    setup.flush()
    api = services.start_api(setup)
    wrk = {"connections": args.connections, "duration_s": args.wrk_s}
    ours = load.run_wrk(api.base_url, services.API_KEY, setup.work, **wrk)
    ours_rss = services.tree_rss_kib(api.process.pid)
    services.stop(api.process)
    peers = {}
    for handlers in ("sync", "async"):
        setup.flush()
        print(f"  wrk: FastAPI + RQ, {handlers} handlers …", flush=True)
        peer_api = services.start_peer_api(setup, handlers)
        peers[handlers] = (
            load.run_wrk(peer_api.base_url, services.API_KEY, setup.work, **wrk),
            services.tree_rss_kib(peer_api.process.pid),
        )
        services.stop(peer_api.process)
    setup.flush()
    best = max(peers, key=lambda h: peers[h][0].rate(200))
    peer, peer_rss = peers[best]
    title = f"wrk -t2 -c{args.connections} -d{args.wrk_s}s POST"
    board.section(f"{title} (peer: its better variant, {best} handlers)")
    accept = ratio(ours.rate(202), peer.rate(200))
    board.add(
        "accepted per second (ours 202, peer 200)",
        per_s(ours.rate(202)),
        per_s(peer.rate(200)),
        ratio=accept,
        target="≥ 3x peer",
        ok=at_least(accept, 3.0),
    )
    for other in ("sync", "async"):
        if other != best:
            board.add(f"  peer, {other} handlers", "", per_s(peers[other][0].rate(200)))
    board.add(
        "latency p50", ms(ours.p50_ms), ms(peer.p50_ms), ratio=ratio(ours.p50_ms, peer.p50_ms)
    )
    board.add(
        "latency p99",
        ms(ours.p99_ms),
        ms(peer.p99_ms),
        ratio=ratio(ours.p99_ms, peer.p99_ms),
        target="≤ 50 ms",
        ok=at_most(ours.p99_ms, 50),
    )
    board.add("other answers", statuses(ours.other(202)), statuses(peer.other(200)))
    board.add("socket errors", statuses(ours.socket_errors), statuses(peer.socket_errors))
    board.add(
        "API RSS after the load",
        mib(ours_rss),
        mib(peer_rss),
        ratio=ratio(ours_rss, peer_rss),
    )
    return best


def phase_burst(setup: services.Setup, board: Scoreboard, sizes: list[int], handlers: str) -> None:
    """n simultaneous POSTs, one connection each, to each side."""
    client = redis.Redis.from_url(setup.redis_url)
    for n in sizes:
        results = {}
        for side in ("ours", "peer"):
            setup.flush()
            print(f"  burst of {n}: {side} …", flush=True)
            if side == "ours":
                api = services.start_api(setup)
                length = lambda: int(client.xlen("agentlink:reports"))  # noqa: E731
            else:
                api = services.start_peer_api(setup, handlers)
                length = lambda: int(client.llen(f"rq:queue:{services.PEER_QUEUE}"))  # noqa: E731
            results[side] = load.burst(api.port, n, services.API_KEY, length)
            services.stop(api.process)
        ours, peer = results["ours"], results["peer"]
        ok_ours, ok_peer = ours.statuses.get(202, 0), peer.statuses.get(200, 0)
        board.section(f"burst of {n:,} simultaneous POSTs, one connection each")
        board.add(
            "accepted",
            f"{ok_ours:,}",
            f"{ok_peer:,}",
            ratio=ratio(ok_ours, ok_peer),
            target=f"all {n:,}",
            ok=ok_ours == n,
        )
        board.add("refused", _refusals(ours), _refusals(peer))
        board.add(
            "first request → all accepted are queued",
            _s(ours.queued_s),
            _s(peer.queued_s),
            ratio=ratio(ours.queued_s, peer.queued_s),
        )
        board.add(
            "new queue entries = accepted",
            f"{ours.queued:,} ({'yes' if ours.queued == ok_ours else 'NO'})",
            f"{peer.queued:,} ({'yes' if peer.queued == ok_peer else 'NO'})",
            ok=ours.queued == ok_ours,
        )
        for side, result in results.items():
            for reason, count in result.reasons.most_common(4):
                board.notes.append(f"burst {n:,}, {side}: {count} x {reason}")


def _refusals(result: load.BurstResult) -> str:
    refused = {s: c for s, c in result.statuses.items() if not 200 <= s < 300}
    refused.update({f"no answer ({k})": c for k, c in result.failures.items()})  # type: ignore[dict-item]
    return statuses(refused)  # type: ignore[arg-type]


def _s(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.2f} s"


def phase_noop(setup: services.Setup, board: Scoreboard, args: argparse.Namespace) -> None:
    """No-op drain and paced dispatch latency: one consumer vs one RQ worker."""
    print(f"  no-op: {args.noop_jobs} jobs, one AgentLink consumer …", flush=True)
    ours = dispatch.noop_ours(setup, args.noop_jobs, 20, args.paced_s)
    print(f"  no-op: {args.noop_rq_jobs} jobs, rq worker --burst …", flush=True)
    fork = dispatch.noop_peer(setup, args.noop_rq_jobs, 20, args.paced_s, simple=False)
    print(f"  no-op: {args.noop_jobs} jobs, rq worker --burst (SimpleWorker) …", flush=True)
    simple = dispatch.noop_peer(setup, args.noop_jobs, 20, args.paced_s, simple=True)
    board.section("no-op jobs: one consumer (leases on) vs one RQ worker")
    r = ratio(ours.per_s, fork.per_s)
    board.add(
        "drained per second, vs rq worker",
        per_s(ours.per_s),
        per_s(fork.per_s),
        ratio=r,
        target="≥ 50x rq worker",
        ok=at_least(r, 50),
    )
    board.add(
        "drained per second, vs SimpleWorker",
        per_s(ours.per_s),
        per_s(simple.per_s),
        ratio=ratio(ours.per_s, simple.per_s),
    )
    o50, o99 = dispatch.summary_ms(ours.latency_ms)
    for label, peer in (("rq worker", fork), ("SimpleWorker", simple)):
        p50, p99 = dispatch.summary_ms(peer.latency_ms)
        board.add(f"dispatch p50 at 20/s, vs {label}", ms(o50), ms(p50), ratio=ratio(o50, p50))
        board.add(
            f"dispatch p99 at 20/s, vs {label}",
            ms(o99),
            ms(p99),
            ratio=ratio(o99, p99),
            target="≤ 2 ms",
            ok=at_most(o99, 2),
        )


def phase_reclaim(setup: services.Setup, board: Scoreboard, trials: int) -> None:
    """kill -9 of a consumer mid-job, ``trials`` times."""
    print(f"  reclaim: {trials} x kill -9 of a consumer mid-job (default lease) …", flush=True)
    result = dispatch.reclaim(setup, trials, RECLAIM_SPEC)
    board.section(f"kill -9 of a consumer mid-job, another alive (default lease), {trials} times")
    restarted = result.restarted_s
    board.add(
        "kill → job restarted elsewhere, median / max",
        f"{median(restarted):.1f} / {max(restarted, default=math.nan):.1f} s",
        "-",
        target="≤ 15 s",
        ok=at_most(max(restarted, default=math.nan), 15),
    )
    done = result.completed_s
    board.add(
        "kill → job completed, median / max",
        f"{median(done):.1f} / {max(done, default=math.nan):.1f} s",
    )
    if result.skipped:
        board.notes.append(f"reclaim: {result.skipped} trial(s) finished before the kill; rerun")


def phase_render(
    setup: services.Setup, board: Scoreboard, args: argparse.Namespace, handlers: str
) -> None:
    """API latency under render load, reports per minute, memory after many reports."""
    from bench.render import bare_render_s, job_mix

    mix = job_mix(40)
    print("  render: warm bare render time of the job mix, in this process …", flush=True)
    bare = bare_render_s(mix, warmup=2)
    limit = 2 * 60 / (sum(bare) / len(bare))
    marks = sorted({100, args.reports})
    print(f"  render: 2 AgentLink consumers, {args.reports} reports each …", flush=True)
    ours = renders.ours(setup, mix, args.reports, args.load_s, marks)
    print("  render: 2 RQ workers …", flush=True)
    peer = renders.peer(setup, mix, args.peer_jobs, args.load_s, args.peer_after_s, handlers)
    board.section(
        f"API while 2 workers render flat out: 20 POST/s + 20 GET/s for {args.load_s:g} s"
    )
    for label, ours_ms, peer_ms in (
        ("POST", ours.paced.post_ms, peer.paced.post_ms),
        ("GET status", ours.paced.get_ms, peer.paced.get_ms),
    ):
        o99, p99 = quantile(ours_ms, 0.99), quantile(peer_ms, 0.99)
        board.add(
            f"{label} p50 / p99 / max",
            f"{ms(median(ours_ms))} / {ms(o99)} / {ms(max(ours_ms, default=math.nan))}",
            f"{ms(median(peer_ms))} / {ms(p99)} / {ms(max(peer_ms, default=math.nan))}",
            ratio=ratio(o99, p99),
            target="p99 ≤ 100 ms",
            ok=at_most(o99, 100),
        )
    board.add("errors", statuses(ours.paced.errors), statuses(peer.paced.errors))
    board.add(
        "API CPU / its wait for a CPU, during the load",
        f"{ours.api_cpu_s:.1f} s / {ours.api_wait_s:.1f} s",
        f"{peer.api_cpu_s:.1f} s / {peer.api_wait_s:.1f} s",
    )
    board.add(
        "the client's wait for a CPU",
        f"{ours.client_wait_s:.1f} s",
        f"{peer.client_wait_s:.1f} s",
    )  # type: ignore[arg-type]
    board.section("reports per minute, real render, 2 workers, same job mix")
    r = ratio(ours.per_min, peer.per_min)
    board.add(
        "reports per minute",
        f"{ours.per_min:.0f}",
        f"{peer.per_min:.0f}",
        ratio=r,
        target="≥ 1.6x peer",
        ok=at_least(r, 1.6),
    )
    share = ours.per_min / limit
    board.add(
        "share of the render-bound limit",
        f"{share:.0%} of {limit:.0f}/min",
        f"{peer.per_min / limit:.0%}",
        target="≥ 95 %",
        ok=at_least(share, 0.95),
    )
    board.notes.append(
        f"render-bound limit = 2 x 60 ÷ {sum(bare) / len(bare):.3f} s (mean warm render of the "
        f"{len(mix)}-report mix, in the bench process); windows: ours {ours.window_reports} "
        f"reports in {ours.window_s:.0f} s, peer {peer.window_reports} in {peer.window_s:.0f} s"
    )
    board.section(f"memory of a worker (consumer + render child + helpers), {args.reports} reports")
    pairs = [
        (slot, series[100], series[args.reports])
        for slot, series in sorted(ours.memory.items())
        if series.get(100) and series.get(args.reports)
    ]
    if not pairs:
        board.notes.append("memory: no consumer reached the report counts to compare")
        return
    # The worse consumer for each figure: the largest RSS, the largest growth.
    last = max((at_end for _, _, at_end in pairs), key=lambda sample: sample.total_kib)
    growth = max(at_end.total_kib / at_100.total_kib - 1 for _, at_100, at_end in pairs)
    board.add(
        f"RSS at report {args.reports} (peak of its last 100)",
        mib(last.total_kib),
        target="≤ 180 MiB",
        ok=at_most(last.total_kib / 1024, 180),
    )
    board.add(
        f"growth, report 100 → {args.reports}",
        f"{growth:+.1%}",
        target="≤ 10 %",
        ok=at_most(growth, 0.10),
    )
    for slot, at_100, at_end in pairs:
        board.add(
            f"  consumer {slot}: itself / with children, report 100 → {args.reports}",
            f"{mib(at_100.consumer_kib)} → {mib(at_end.consumer_kib)} / "
            f"{mib(at_100.total_kib)} → {mib(at_end.total_kib)}",
        )
