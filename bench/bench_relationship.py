"""Accuracy of the relationship methods on simulated practices with known truth.

Not a speed benchmark: it measures how well rupture detection, the dropout model and the
within/between analysis recover what the simulator put in, over several seeds, and prints the
tables quoted in docs/algorithms/ruptures.md, dropout.md and within_between.md.

    python bench/bench_relationship.py [--seeds 5] [--clients 400] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from alliance.relationship.evaluation import dropout_holdout, rupture_scores, within_effect
from alliance.simulate import SimulationConfig, simulate_practice


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="simulated practices per scenario")
    ap.add_argument("--clients", type=int, default=400, help="clients per rupture practice")
    ap.add_argument("--out", type=Path, help="JSON file (default bench/results/...)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out: dict[str, object] = {"seeds": args.seeds, "clients": args.clients}

    for label, mean in (("typical", None), ("high_alliance", 56.0)):
        rows: dict[str, list[dict[str, float | int | None]]] = {}
        for seed in range(1, args.seeds + 1):
            cfg = SimulationConfig(n_clients=args.clients, seed=seed)
            if mean is not None:
                cfg = SimulationConfig(n_clients=args.clients, seed=seed, alliance_mean=mean)
            for s in rupture_scores(simulate_practice(cfg)):
                rows.setdefault(s.method, []).append(s.to_dict())
        table = {}
        print(f"\nRuptures, {label} practices ({args.seeds} seeds x {args.clients} clients)")
        print(
            "| method | detected | recall (clear) | recall (all) | precision | repair status "
            "agrees | clear caught, missed by absolute | recall (ceiling clients) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for method, rs in rows.items():

            def mean_of(key: str, rs: list[dict[str, float | int | None]] = rs) -> float | None:
                vals = [float(r[key]) for r in rs if r[key] is not None]  # type: ignore[arg-type]
                return statistics.fmean(vals) if vals else None

            def rng(key: str, rs: list[dict[str, float | int | None]] = rs) -> str:
                vals = [float(r[key]) for r in rs if r[key] is not None]  # type: ignore[arg-type]
                if not vals:
                    return "—"
                return f"{statistics.fmean(vals):.2f} ({min(vals):.2f}–{max(vals):.2f})"

            table[method] = {k: mean_of(k) for k in rs[0] if k != "method"}
            print(
                f"| {method} | {mean_of('detected'):.0f} | {rng('recall_clear')} | "
                f"{rng('recall_all')} | {rng('precision')} | {rng('repair_agreement')} | "
                f"{mean_of('caught_missed_by_absolute'):.0f} | {rng('recall_ceiling')} |"
            )
        truth = rows["relative_2sd"][0]
        print(
            f"(true ruptures per practice, seed 1: {truth['true_observed']} observed, "
            f"{truth['true_clear']} clear, {truth['true_ceiling']} in ceiling clients)"
        )
        out[f"ruptures_{label}"] = {"mean": table, "runs": rows}

    print("\nDropout model: trained on 2,000 simulated clients, tested on 1,000 others")
    print(
        "| train seed | test seed | cross-validated AUC | hold-out AUC | rule AUC | "
        "calibration slope | test episodes (dropouts) |"
    )
    print("|---|---|---|---|---|---|---|")
    drop = []
    for k in range(args.seeds):
        tr_seed, te_seed = 100 + 2 * k, 101 + 2 * k
        rep = dropout_holdout(
            simulate_practice(SimulationConfig(n_clients=2000, seed=tr_seed)),
            simulate_practice(SimulationConfig(n_clients=1000, seed=te_seed)),
        )
        drop.append(
            {
                "cv_auc": rep.model.cv_auc,
                "holdout_auc": rep.holdout_auc,
                "rule_auc": rep.rule_auc,
                "calibration_slope": rep.model.calibration_slope,
                "n": rep.holdout_n,
                "events": rep.holdout_events,
                "coefficients": rep.model.fit.coefficients,
            }
        )
        print(
            f"| {tr_seed} | {te_seed} | {rep.model.cv_auc:.3f} | {rep.holdout_auc:.3f} | "
            f"{rep.rule_auc:.3f} | {rep.model.calibration_slope:.2f} | {rep.holdout_n} "
            f"({rep.holdout_events}) |"
        )
    out["dropout"] = drop

    print("\nWithin-client effect of alliance on next-session PHQ-9 (3,000 clients per practice)")
    print("| seed | true (points per alliance point) | estimate | SE | between |")
    print("|---|---|---|---|---|")
    within = []
    for k in range(args.seeds):
        seed = 200 + k
        p = simulate_practice(SimulationConfig(n_clients=3000, seed=seed))
        true = float(p.params["within_effect"]["points_per_alliance_point"])
        est = within_effect(p)
        within.append(
            {
                "seed": seed,
                "true": true,
                "within": est.within,
                "se": est.within_se,
                "between": est.between,
            }
        )
        print(
            f"| {seed} | {true:.4f} | {est.within:.4f} | {est.within_se:.4f} | {est.between:.4f} |"
        )
    out["within"] = within
    out["seconds"] = time.perf_counter() - t0

    path = args.out or Path("bench/results") / (
        f"relationship-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"\nwrote {path} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
