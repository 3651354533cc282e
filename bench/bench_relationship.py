"""Accuracy of the relationship methods on simulated practices with known truth.

Not a speed benchmark: it measures how well rupture detection, the dropout model and the
within/between analysis recover what the simulator put in, over several seeds, and prints the
tables quoted in docs/algorithms/ruptures.md, dropout.md and within_between.md.

    python bench/bench_relationship.py [--seeds 5] [--clients 400] [--out FILE]
                                       [--only ruptures|dropout|within]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from alliance.relationship.evaluation import dropout_holdout, rupture_scores, within_effect
from alliance.relationship.ruptures import RuptureConfig
from alliance.simulate import SimulationConfig, simulate_practice

#: relative_2sd variants reported beside the default (docs/algorithms/ruptures.md).
VARIANTS: dict[str, tuple[RuptureConfig, bool]] = {
    "client SD unpooled (intra_prior_df=0)": (RuptureConfig(intra_prior_df=0.0), True),
    "caseload SD only (intra_prior_df=inf)": (RuptureConfig(intra_prior_df=math.inf), True),
    "total only (subscales=None)": (RuptureConfig(), False),
}


def _spread(vals: list[float]) -> str:
    if not vals:
        return "—"
    return f"{statistics.fmean(vals):.2f} ({min(vals):.2f}–{max(vals):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="simulated practices per scenario")
    ap.add_argument("--clients", type=int, default=400, help="clients per rupture practice")
    ap.add_argument("--out", type=Path, help="JSON file (default bench/results/...)")
    ap.add_argument(
        "--only", choices=("ruptures", "dropout", "within"), help="run one section only"
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    out: dict[str, object] = {"seeds": args.seeds, "clients": args.clients}
    if args.only in (None, "ruptures"):
        _ruptures(args.seeds, args.clients, out)
    if args.only in (None, "dropout"):
        _dropout(args.seeds, out)
    if args.only in (None, "within"):
        _within(args.seeds, out)
    out["seconds"] = time.perf_counter() - t0

    path = args.out or Path("bench/results") / (
        f"relationship-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"\nwrote {path} ({out['seconds']:.0f} s)")


def _ruptures(seeds: int, clients: int, out: dict[str, object]) -> None:
    for label, mean in (("typical", None), ("high_alliance", 56.0)):
        rows: dict[str, list[dict[str, float | int | None]]] = {}
        variants: dict[str, list[dict[str, float | int | None]]] = {}
        truth_rows = []
        for seed in range(1, seeds + 1):
            cfg = SimulationConfig(n_clients=clients, seed=seed)
            if mean is not None:
                cfg = SimulationConfig(n_clients=clients, seed=seed, alliance_mean=mean)
            practice = simulate_practice(cfg)
            for s in rupture_scores(practice):
                rows.setdefault(s.method, []).append(s.to_dict())
            obs = practice.ruptures[practice.ruptures["observed"]]
            gen = obs["dip_sd"] >= 2
            truth_rows.append(
                {
                    "observed": len(obs),
                    "clear": int(obs["clear"].sum()),
                    "clear_generating": int(gen.sum()),
                    # a rule that knew each client's usual level and SD exactly would find
                    # at 2 SD the generating-clear ruptures that are also clear in the ratings
                    "bound_generating": float((gen & obs["clear"]).sum() / max(gen.sum(), 1)),
                }
            )
            if mean is None:
                for name, (vcfg, subs) in VARIANTS.items():
                    (v,) = rupture_scores(
                        practice, ("relative_2sd",), config=vcfg, subscales="auto" if subs else None
                    )
                    variants.setdefault(name, []).append(v.to_dict())
        table = {}
        print(f"\nRuptures, {label} practices ({seeds} seeds x {clients} clients)")
        print(
            "| method | detected | recall (clear) | recall (all) | precision | precision "
            "(timely only) | recall (clear by generating depth) | repair status agrees | clear "
            "caught, missed by absolute | recall (ceiling clients) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for method, rs in [*rows.items(), *variants.items()]:

            def vals(key: str, rs: list[dict[str, float | int | None]] = rs) -> list[float]:
                return [float(r[key]) for r in rs if r[key] is not None]  # type: ignore[arg-type]

            table[method] = {
                k: (statistics.fmean(vals(k)) if vals(k) else None) for k in rs[0] if k != "method"
            }
            print(
                f"| {method} | {statistics.fmean(vals('detected')):.0f} | "
                f"{_spread(vals('recall_clear'))} | {_spread(vals('recall_all'))} | "
                f"{_spread(vals('precision'))} | {_spread(vals('precision_timely'))} | "
                f"{_spread(vals('recall_clear_generating'))} | "
                f"{_spread(vals('repair_agreement'))} | "
                f"{statistics.fmean(vals('caught_missed_by_absolute')):.0f} | "
                f"{_spread(vals('recall_ceiling'))} |"
            )
        truth = {k: statistics.fmean(float(t[k]) for t in truth_rows) for k in truth_rows[0]}
        ceiling = statistics.fmean(float(r["true_ceiling"] or 0) for r in rows["relative_2sd"])
        print(
            f"(true ruptures per practice, mean: {truth['observed']:.0f} observed, "
            f"{truth['clear']:.0f} clear in the ratings, {truth['clear_generating']:.0f} clear by "
            f"generating depth, {ceiling:.0f} in ceiling clients; a 2 SD rule that knew every "
            "client's usual level and SD would find "
            f"{_spread([float(t['bound_generating']) for t in truth_rows])} of the "
            "generating-clear ones)"
        )
        out[f"ruptures_{label}"] = {
            "mean": table,
            "runs": rows,
            "variants": variants,
            "truth": truth_rows,
        }


def _dropout(seeds: int, out: dict[str, object]) -> None:
    print("\nDropout model: trained on 2,000 simulated clients, tested on 1,000 others")
    print(
        "| train seed | test seed | cross-validated AUC | hold-out AUC | rule AUC | "
        "calibration slope | test episodes (dropouts) |"
    )
    print("|---|---|---|---|---|---|---|")
    drop = []
    for k in range(seeds):
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


def _within(seeds: int, out: dict[str, object]) -> None:
    print("\nWithin-client effect of alliance on next-session PHQ-9 (3,000 clients per practice)")
    print("| seed | true (points per alliance point) | estimate | SE | between |")
    print("|---|---|---|---|---|")
    within = []
    for k in range(seeds):
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


if __name__ == "__main__":
    main()
