"""Benchmark: fitting the loglinear_intake ETR model — Alliance vs lme4 vs statsmodels.

One command (from the repository root, in the project's environment)::

    python bench/bench_fit.py                       # 10k, 100k and 1M observations
    python bench/bench_fit.py --sizes 10000 100000 --statsmodels-max 100000 --out fit.json

Data come from the practice simulator (:func:`alliance.simulate_practice`, seed 1, PHQ-9 only).
The model is the one of issue 3, fitted by REML on sessions >= 2 with intake = session-1 score::

    score ~ log(session) * intake + (1 + log(session) | client)

Timed, for each size:

* **alliance** — ``alliance.fit_etr`` on the in-memory DataFrame (checking the data, deriving
  the intake, the per-client sufficient statistics and the REML optimisation); and the same
  after reading the CSV file with pandas ("incl. loading").
* **lme4** (when ``Rscript`` is installed) — measured inside R around ``lmer()`` only, and
  separately including ``data.table::fread`` of the same CSV and deriving the intake
  (``bench/bench_fit_lme4.R``).
* **statsmodels** — ``MixedLM`` with the same formula, groups and ``re_formula``, REML, timed
  around ``from_formula`` + ``fit``; only up to ``--statsmodels-max`` observations (it grows
  much faster than linearly).

Reported: times, the ratios (other / alliance) and the largest relative difference in the
estimates (fixed effects, the two random-effect variances and the residual variance; the
intercept–slope covariance as a difference in correlation) between Alliance and each other
fit. Each timing is the best of ``--repeat`` runs for Alliance (default 3) and a single run for
the others. It prints a Markdown table and writes the figures as JSON into ``bench/results/``
(git-ignored).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import alliance as al
from alliance.simulate import clients_for_observations

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TERMS = ("(Intercept)", "log_session", "intake", "log_session:intake")
R_TERMS = ("(Intercept)", "log(session)", "intake", "log(session):intake")


def simulate(n_obs: int, seed: int = 1) -> pd.DataFrame:
    """About n_obs PHQ-9 administrations (client, session, score) from the practice simulator."""
    cfg = al.SimulationConfig(
        seed=seed, item_level=False, secondary_instruments=(), concern_instruments=()
    )
    n_clients = clients_for_observations(n_obs, cfg)
    cfg = replace(cfg, n_clients=n_clients, n_therapists=max(10, n_clients // 50))
    practice = al.simulate_practice(cfg)
    scores = practice.scores
    return scores.loc[scores["instrument"] == "phq9", ["client", "session", "score"]].reset_index(
        drop=True
    )


def estimates_alliance(model: Any) -> dict[str, Any]:
    return {
        "fixef": dict(zip(TERMS, model.coef, strict=True)),
        "re_cov": np.asarray(model.re_cov),
        "residual_var": model.residual_var,
        "criterion": model.reml_criterion,
    }


def estimates_lme4(out: dict[str, Any]) -> dict[str, Any]:
    return {
        "fixef": {t: out["fixef"][r] for t, r in zip(TERMS, R_TERMS, strict=True)},
        "re_cov": np.asarray(out["re_cov"]),
        "residual_var": out["residual_var"],
        "criterion": out["criterion"],
    }


def max_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest relative difference in fixed effects, variances, residual variance; corr absolute."""
    rel = [abs(a["fixef"][t] - b["fixef"][t]) / abs(b["fixef"][t]) for t in TERMS]
    va, vb = np.diag(a["re_cov"]), np.diag(b["re_cov"])
    rel += list(np.abs(va - vb) / np.abs(vb))
    rel.append(abs(a["residual_var"] - b["residual_var"]) / b["residual_var"])
    ca = a["re_cov"][0, 1] / math.sqrt(va[0] * va[1])
    cb = b["re_cov"][0, 1] / math.sqrt(vb[0] * vb[1])
    rel.append(abs(ca - cb))
    return float(max(rel))


def time_alliance(data: pd.DataFrame, csv: Path, repeat: int) -> tuple[float, float, Any]:
    best_fit = best_total = math.inf
    model = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        model = al.fit_etr(data)
        best_fit = min(best_fit, time.perf_counter() - t0)
        t0 = time.perf_counter()
        al.fit_etr(pd.read_csv(csv))
        best_total = min(best_total, time.perf_counter() - t0)
    return best_fit, best_total, model


def time_lme4(csv: Path) -> dict[str, Any] | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lme4.json"
        done = subprocess.run(
            ["Rscript", str(HERE / "bench_fit_lme4.R"), str(csv), str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"  lme4 failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
            return None
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def time_statsmodels(data: pd.DataFrame) -> tuple[float, dict[str, Any]]:
    import statsmodels.formula.api as smf

    intake = data.loc[data["session"] == 1].set_index("client")["score"]
    rows = data[data["session"] >= 2].assign(intake=lambda f: f["client"].map(intake)).dropna()
    rows = rows.assign(log_session=np.log(rows["session"]))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smf.mixedlm(
            "score ~ log_session * intake", rows, groups=rows["client"], re_formula="~log_session"
        )
        fit = model.fit(reml=True)
    seconds = time.perf_counter() - t0
    names = ["Intercept", "log_session", "intake", "log_session:intake"]
    est = {
        "fixef": {t: float(fit.fe_params[n]) for t, n in zip(TERMS, names, strict=True)},
        "re_cov": np.asarray(fit.cov_re),
        "residual_var": float(fit.scale),
        "criterion": float(-2 * fit.llf),
    }
    return seconds, est


def run(sizes: list[int], statsmodels_max: int, repeat: int, use_r: bool) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            print(f"simulating ~{n:,} observations …", file=sys.stderr)
            data = simulate(n)
            csv = Path(tmp) / f"course_{n}.csv"
            data.to_csv(csv, index=False)
            print("  alliance …", file=sys.stderr)
            fit_s, total_s, model = time_alliance(data, csv, repeat)
            ours = estimates_alliance(model)
            row: dict[str, Any] = {
                "n_obs_total": len(data),
                "n_obs_fitted": model.n_obs,
                "n_clients": model.n_clients,
                "alliance_fit_s": fit_s,
                "alliance_total_s": total_s,
            }
            if use_r:
                print("  lme4 …", file=sys.stderr)
                r = time_lme4(csv)
                if r is not None:
                    row.update(
                        lme4_fit_s=r["fit_s"],
                        lme4_total_s=r["load_s"] + r["prepare_s"] + r["fit_s"],
                        lme4_ratio_fit=r["fit_s"] / fit_s,
                        lme4_ratio_total=(r["load_s"] + r["prepare_s"] + r["fit_s"]) / total_s,
                        lme4_max_rel_diff=max_difference(ours, estimates_lme4(r)),
                        lme4_criterion_diff=ours["criterion"] - r["criterion"],
                        lme4_version=r["lme4_version"],
                    )
            if n <= statsmodels_max:
                print("  statsmodels …", file=sys.stderr)
                sm_s, sm = time_statsmodels(data)
                row.update(
                    statsmodels_fit_s=sm_s,
                    statsmodels_ratio=sm_s / fit_s,
                    statsmodels_max_rel_diff=max_difference(ours, sm),
                )
            rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    def cell(row: dict[str, Any], key: str, fmt: str) -> str:
        v = row.get(key)
        return "—" if v is None else format(v, fmt)

    lines = [
        "| observations (fitted) | clients | alliance fit s | incl. loading s | lme4 `lmer` s "
        "| lme4 incl. loading s | lme4 / alliance (fit) | (incl. loading) | statsmodels s "
        "| statsmodels / alliance | max rel. diff vs lme4 | vs statsmodels |",
        "|" + "---|" * 12,
    ]
    for r in rows:
        lines.append(
            f"| {r['n_obs_total']:,} ({r['n_obs_fitted']:,}) | {r['n_clients']:,} "
            f"| {cell(r, 'alliance_fit_s', '.3f')} | {cell(r, 'alliance_total_s', '.3f')} "
            f"| {cell(r, 'lme4_fit_s', '.2f')} | {cell(r, 'lme4_total_s', '.2f')} "
            f"| {cell(r, 'lme4_ratio_fit', '.1f')}× | {cell(r, 'lme4_ratio_total', '.1f')}× "
            f"| {cell(r, 'statsmodels_fit_s', '.2f')} | {cell(r, 'statsmodels_ratio', '.0f')}× "
            f"| {cell(r, 'lme4_max_rel_diff', '.1e')} | {cell(r, 'statsmodels_max_rel_diff', '.1e')} |"
        )
    return "\n".join(lines).replace("| —× ", "| — ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--statsmodels-max",
        type=int,
        default=100_000,
        help="largest size statsmodels is run at (default 100000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="alliance runs per size (best of)")
    parser.add_argument("--no-r", action="store_true", help="skip lme4")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default bench/results)")
    args = parser.parse_args(argv)
    rows = run(args.sizes, args.statsmodels_max, args.repeat, not args.no_r)
    print(markdown(rows))
    print(
        f"\nPython {platform.python_version()}, NumPy {np.__version__}, alliance "
        f"{al.__version__}; {platform.processor() or platform.machine()}"
    )
    out = args.out or RESULTS / f"fit-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
