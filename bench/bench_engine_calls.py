"""Benchmark: the engine calls a check-in makes for one client, per call.

On every check-in submission the web app (``alliance_web.care.insight.refresh``) recomputes one
client's snapshot: recovery signals of the course, ruptures, the two perspectives, dropout
warning, stage, support checklist, the reliable-change threshold and the expected-recovery
band. This times each of those calls on one realistic client from a simulated practice (inputs
built as ``refresh`` builds them), as the median over many calls, next to two baselines measured
in the same run:

* **general path**: the same result through the batch/DataFrame API (``signals_frame`` on a
  one-client frame; ``detect_ruptures`` with its single-client shortcut switched off; the curve
  grown one column at a time, as it was built before; the threshold worked out afresh instead
  of looked up). Results are checked identical before anything is timed;
* **floor**: ``numpy.mean`` of the client's scores — the least any call on the course costs.

Run from the repository root::

    python bench/bench_engine_calls.py                    # a client with 10 alliance ratings
    python bench/bench_engine_calls.py --sessions 20 --calls 5000

Prints a table and writes the figures as JSON into ``bench/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
from scipy import stats

import alliance as al
from alliance.change import _threshold
from alliance.relationship import ruptures as ruptures_module

RESULTS = Path(__file__).with_name("results")


# -- inputs, built as alliance_web.care.insight.refresh builds them -----------------------------
def client_inputs(sessions: int, seed: int) -> dict[str, Any]:
    """One simulated client with ``sessions`` alliance ratings, and the practice's ETR model."""
    practice = al.simulate_practice(
        al.SimulationConfig(n_therapists=4, n_clients=200, max_sessions=24, seed=seed)
    )
    rated = practice.alliance.groupby("client").size()
    candidates = rated[rated == sessions].index
    if candidates.empty:
        raise SystemExit(f"no simulated client has exactly {sessions} alliance ratings")
    client = int(candidates[0])
    scores = practice.scores
    phq9 = scores[(scores["client"] == client) & (scores["instrument"] == "phq9")]
    calib = scores.loc[scores["instrument"] == "phq9", ["client", "session", "score"]]
    model = al.fit_etr(calib, instrument="phq9")
    alliance = practice.alliance[practice.alliance["client"] == client].sort_values("session")
    items = practice.items[
        (practice.items["client"] == client) & (practice.items["instrument"] == "wai_sr")
    ]
    answers = items.pivot_table(
        index="session", columns="item", values="value", observed=True
    ).reindex(alliance["session"])
    inst = al.instrument("wai_sr")
    rows = []
    for i, rec in enumerate(alliance.itertuples(index=False)):
        row: dict[str, Any] = {"client": "c", "session": rec.session, "alliance": rec.alliance}
        for sub in ("bond", "task", "goal"):
            row[f"alliance_{sub}"] = getattr(rec, f"alliance_{sub}")
        for item in inst.scored_items:
            value = answers[item.id].iloc[i] if item.id in answers.columns else np.nan
            row[item.id] = None if pd.isna(value) else float(value)
        rows.append(row)
    statuses = practice.sessions.loc[practice.sessions["client"] == client, "status"]
    return {
        "client": client,
        "sessions": phq9["session"].astype(int).tolist(),
        "scores": phq9["score"].astype(float).tolist(),
        "flags": [()] * len(phq9),
        "model": model,
        "frame": pd.DataFrame(rows),
        "items": [it.id for it in inst.scored_items],
        "alliance": alliance["alliance"].tolist(),
        "therapist": alliance["therapist_alliance"].tolist(),
        "alliance_sessions": alliance["session"].astype(int).tolist(),
        "statuses": [str(s) for s in statuses],
    }


# -- the general paths --------------------------------------------------------------------------
def signals_general(x: dict[str, Any], model: al.ETRModel | None) -> list[tuple[Any, ...]]:
    frame = pd.DataFrame({"client": "c", "session": x["sessions"], "score": x["scores"]})
    out = al.signals_frame(frame, "phq9", model=model)
    return list(out[["session", "signal", "reason"]].itertuples(index=False, name=None))


def signals_fast(x: dict[str, Any], model: al.ETRModel | None) -> list[tuple[Any, ...]]:
    out = al.course_signals(x["sessions"], x["scores"], "phq9", model=model, flags=x["flags"])
    return [(r.session, r.signal, r.reason) for r in out]


def curve_general(model: al.ETRModel, intake: float, sessions: range) -> pd.DataFrame:
    """The curve as it was built before: the frame grown one percentile column at a time."""
    s = np.asarray(list(sessions), dtype=float)
    mean, var = model._evaluate(s, intake)
    out = pd.DataFrame({"session": s.astype(int), "expected": mean, "sd": np.sqrt(var)})
    for p, z in zip((10.0, 90.0), stats.norm.ppf(np.array([0.1, 0.9])), strict=True):
        out[f"p{p:g}"] = mean + z * np.sqrt(var)
    return out


def no_rupture_shortcut() -> AbstractContextManager[Any]:
    """Switch off detect_ruptures' single-client shortcut, where there is one."""
    if hasattr(ruptures_module, "_one_client"):
        return mock.patch.object(ruptures_module, "_one_client", return_value=None)
    return nullcontext()


# -- timing -------------------------------------------------------------------------------------
def per_call(fn: Callable[[], Any], calls: int) -> float:
    """Median seconds per call over ``calls`` calls, after a few warm-up calls."""
    for _ in range(min(20, calls)):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10, help="alliance ratings of the client")
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per function")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default bench/results)")
    args = parser.parse_args(argv)

    x = client_inputs(args.sessions, args.seed)
    model = x["model"]
    wai, phq = al.instrument("wai_sr"), al.instrument("phq9")
    scale = (12.0, 60.0)
    last = max(x["sessions"])
    band = range(1, max(last + 2, 8) + 1)
    intake = x["scores"][x["sessions"].index(1)]
    y = np.asarray(x["scores"])

    def ruptures() -> Any:
        return al.detect_ruptures(x["frame"], "ceiling_aware", instrument=wai, items=x["items"])

    def ruptures_general() -> Any:
        with no_rupture_shortcut():
            return ruptures()

    warning = al.dropout_warning(
        x["alliance"], rng=scale, statuses=x["statuses"], outcome=x["scores"], reliable_change=6.0
    )
    calls: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]] = [
        (
            "course_signals (rational)",
            lambda: signals_fast(x, None),
            lambda: signals_general(x, None),
        ),
        (
            "course_signals (empirical, loglinear_intake)",
            lambda: signals_fast(x, model),
            lambda: signals_general(x, model),
        ),
        ("detect_ruptures (ceiling_aware, 12 items)", ruptures, ruptures_general),
        (
            "perspective_gap",
            lambda: al.perspective_gap(
                x["alliance"],
                x["therapist"],
                client_rng=scale,
                therapist_rng=scale,
                sessions=x["alliance_sessions"],
            ),
            None,
        ),
        (
            "dropout_warning",
            lambda: al.dropout_warning(
                x["alliance"],
                rng=scale,
                statuses=x["statuses"],
                missed_checkins=0,
                outcome=x["scores"],
                outcome_direction="higher_is_worse",
                reliable_change=6.0,
                concern_threshold=None,
            ),
            None,
        ),
        (
            "suggest_stage",
            lambda: al.suggest_stage(
                len(x["sessions"]), bond=0.7, task=0.6, goal=0.65, goals_agreed=True, progress=0.4
            ),
            None,
        ),
        (
            "support_checklist",
            lambda: al.support_checklist(
                signal="off_track",
                rupture=True,
                dropout=warning,
                alliance=0.5,
                bond=0.55,
                task=0.6,
                goal=0.7,
                missed=warning.missed,
                goal_progress=0.3,
                sessions=len(x["sessions"]),
            ),
            None,
        ),
        (
            "reliable_change_threshold",
            lambda: al.reliable_change_threshold(phq),
            lambda: _threshold(phq, None, None, None, None, None),
        ),
        (
            "ETRModel.curve (10th/90th band)",
            lambda: model.curve(intake, sessions=band, percentiles=(10, 90)),
            lambda: curve_general(model, intake, band),
        ),
    ]

    # The fast paths must give what the general paths give before their speed means anything.
    for name, fast, general in calls:
        if general is None:
            continue
        a, b = fast(), general()
        same = a.equals(b) if isinstance(a, pd.DataFrame) else a == b
        if not same:
            raise SystemExit(f"{name}: the fast path differs from the general path")

    t_floor = per_call(lambda: np.mean(y), args.calls)
    rows = []
    for name, fast, general in calls:
        t_fast = per_call(fast, args.calls)
        t_general = per_call(general, max(50, args.calls // 10)) if general is not None else None
        rows.append((name, t_fast, t_general))
    total = sum(t for name, t, _ in rows if "rational" not in name)  # one refresh, with a model

    print(
        f"\nPer-client engine calls: one simulated client, {len(x['sessions'])} PHQ-9 scores, "
        f"{args.sessions} WAI-SR ratings (median of {args.calls:,} calls; µs per call)\n"
    )
    print("| call | fast path | general path | general / fast | × the floor |")
    print("|---|---:|---:|---:|---:|")
    print(f"| `numpy.mean` of the course (floor) | {t_floor * 1e6:.1f} | | | 1 |")
    for name, t_fast, t_general in rows:
        gen = f"{t_general * 1e6:,.0f}" if t_general is not None else "—"
        ratio = f"{t_general / t_fast:.0f}×" if t_general is not None else "—"
        floor = t_fast / t_floor
        floor_text = f"{floor:.1f}" if floor < 10 else f"{floor:,.0f}"
        print(f"| {name} | {t_fast * 1e6:,.1f} | {gen} | {ratio} | {floor_text} |")
    print(f"| **all of one check-in's calls** (with a model) | **{total * 1e6:,.0f}** | | | |")

    summary = {
        "benchmark": "engine_calls",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/bench_engine_calls.py", *(argv or sys.argv[1:])]),
        "client": x["client"],
        "outcome_scores": len(x["sessions"]),
        "alliance_ratings": args.sessions,
        "calls": args.calls,
        "floor_microseconds": t_floor * 1e6,
        "microseconds": {
            name: {"fast": t_fast * 1e6, "general": None if t_g is None else t_g * 1e6}
            for name, t_fast, t_g in rows
        },
        "one_checkin_microseconds": total * 1e6,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "alliance": al.__version__,
        },
    }
    out = args.out or RESULTS / f"engine-calls-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
