"""Benchmark: score and classify 1,000,000 PHQ-9 responses.

Three ways of doing the same work on the same data, timed in one run:

* ``alliance.score``: the vectorised scorer (validation, proration of up to two missing items
  with rounding, severity band, clinical cutoff, the item-9 safety flag, error messages);
* a straightforward per-row Python loop doing the same thing with the instrument definition
  (timed on a subsample and scaled per row; its results are checked against the vectorised
  ones);
* ``numpy.sum(matrix, axis=1)`` of the same matrix: the floor (no validation, no missing values,
  nothing but the sum).

Run from the repository root::

    python bench/bench_scoring.py            # 1,000,000 rows, loop on 20,000
    python bench/bench_scoring.py --n 100000 --loop-n 5000 --repeats 3

It prints a table and writes the figures as JSON into ``bench/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import alliance as al
from alliance.instruments import Instrument

RESULTS = Path(__file__).with_name("results")


# -- the data ---------------------------------------------------------------------------------
def make_responses(n: int, missing: float, seed: int) -> np.ndarray:
    """n x 9 PHQ-9 answers (0-3, skewed towards low values) with a fraction missing (NaN)."""
    rng = np.random.default_rng(seed)
    matrix = rng.choice(4, size=(n, 9), p=[0.35, 0.30, 0.20, 0.15]).astype(float)
    matrix[rng.random((n, 9)) < missing] = np.nan
    return matrix


# -- the straightforward loop -------------------------------------------------------------------
def score_row(inst: Instrument, answers: Mapping[str, float | None]) -> dict[str, Any]:
    """Score one response the obvious way, one item at a time, from the instrument definition."""
    errors: list[str] = []
    values: list[float] = []
    missing: list[str] = []
    for item in inst.scored_items:
        v = answers.get(item.id)
        if v is None or math.isnan(v):
            missing.append(item.id)
            continue
        if v not in item.values:
            options = ", ".join(f"{o:g}" for o in item.values)
            errors.append(f"{item.id}: {v:g} is not an answer option ({options})")
            continue
        if item.reverse:
            lo, hi = item.value_range
            v = lo + hi - v
        values.append(v)
    flags = []
    for rule in inst.critical:
        v = answers.get(rule.item)
        if v is not None and rule.hits(v) and rule.flag not in flags:
            flags.append(rule.flag)
    rule_ = inst.scoring.proration
    if len(missing) > rule_.max_missing:
        errors.append(
            f"{len(missing)} items missing ({', '.join(missing)}); "
            f"{inst.short_name} allows at most {rule_.max_missing}"
        )
    total = None
    prorated = False
    if not errors:
        total = float(sum(values))
        if missing:
            total = total * len(inst.scored_items) / len(values)
            if rule_.round_total:
                total = float(math.floor(total + 0.5))
            prorated = True
    return {
        "total": total,
        "severity": inst.band_for(total) if total is not None else None,
        "clinical": inst.is_clinical(total) if total is not None else None,
        "flags": tuple(flags),
        "prorated": prorated,
        "n_missing": len(missing),
        "error": "; ".join(errors) or None,
    }


def loop(inst: Instrument, rows: list[dict[str, float | None]]) -> list[dict[str, Any]]:
    return [score_row(inst, r) for r in rows]


# -- timing -----------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` runs after one warm-up run, and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def check_same(vectorised: Any, looped: list[dict[str, Any]]) -> int:
    """Compare the loop's results with the vectorised ones; return the number of rows checked."""
    for i, expected in enumerate(looped):
        row = vectorised.iloc[i]
        total = None if math.isnan(row["total"]) else float(row["total"])
        got = {
            "total": total,
            "severity": row["severity"],
            "clinical": None if total is None else bool(row["clinical"]),
            "flags": tuple(row["flags"]),
            "prorated": bool(row["prorated"]),
            "n_missing": int(row["n_missing"]),
            "error": row["error"],
        }
        if got != expected:
            raise SystemExit(f"row {i}: vectorised {got} != loop {expected}")
    return len(looped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="responses (default 1e6)")
    parser.add_argument("--loop-n", type=int, default=20_000, help="rows for the Python loop")
    parser.add_argument("--missing", type=float, default=0.03, help="share of missing answers")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default bench/results)")
    args = parser.parse_args(argv)

    inst = al.instrument("phq9")
    matrix = make_responses(args.n, args.missing, args.seed)
    ids = [it.id for it in inst.scored_items]
    sub = matrix[: args.loop_n]
    rows = [
        {k: (None if math.isnan(v) else v) for k, v in zip(ids, r, strict=True)}
        for r in sub.tolist()
    ]

    t_vec, scored = timed(lambda: al.score(inst, matrix), args.repeats)
    t_floor, _ = timed(lambda: np.sum(matrix, axis=1), args.repeats)
    t_loop_sub, looped = timed(lambda: loop(inst, rows), max(1, min(args.repeats, 3)))
    checked = check_same(scored, looped)
    t_loop = t_loop_sub / len(rows) * args.n

    summary = {
        "benchmark": "scoring",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/bench_scoring.py", *(argv or sys.argv[1:])]),
        "n": args.n,
        "missing_share": args.missing,
        "loop_rows_timed": len(rows),
        "rows_checked_against_loop": checked,
        "prorated": int(scored["prorated"].sum()),
        "unscorable": int(scored["error"].notna().sum()),
        "safety_flags": int(sum("safety" in f for f in scored["flags"])),
        "seconds": {
            "alliance.score": t_vec,
            "python_loop_scaled": t_loop,
            "numpy_sum_floor": t_floor,
        },
        "per_row_microseconds": {
            "alliance.score": t_vec / args.n * 1e6,
            "python_loop": t_loop_sub / len(rows) * 1e6,
            "numpy_sum_floor": t_floor / args.n * 1e6,
        },
        "speedup_vs_loop": t_loop / t_vec,
        "times_the_floor": t_vec / t_floor,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "alliance": al.__version__,
        },
    }

    table = Table(title=f"Scoring {args.n:,} PHQ-9 responses ({args.missing:.0%} answers missing)")
    for col in ("method", "time (s)", "µs / row", "relative"):
        table.add_column(col, justify="right" if col != "method" else "left")
    table.add_row(
        "numpy.sum(matrix, axis=1)  (floor)",
        f"{t_floor:.3f}",
        f"{t_floor / args.n * 1e6:.3f}",
        "1.0×",
    )
    table.add_row(
        "alliance.score  (vectorised)",
        f"{t_vec:.3f}",
        f"{t_vec / args.n * 1e6:.3f}",
        f"{t_vec / t_floor:.1f}× the floor",
    )
    table.add_row(
        f"per-row Python loop  (scaled from {len(rows):,})",
        f"{t_loop:.2f}",
        f"{t_loop_sub / len(rows) * 1e6:.2f}",
        f"{t_loop / t_vec:.0f}× slower",
    )
    console = Console()
    console.print(table)
    console.print(
        f"speed-up over the loop: {t_loop / t_vec:.0f}× (target ≥ 50×); "
        f"{checked:,} rows checked identical to the loop; "
        f"{summary['prorated']:,} prorated, {summary['unscorable']:,} unscorable, "
        f"{summary['safety_flags']:,} safety flags"
    )

    out = args.out or RESULTS / f"scoring-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
