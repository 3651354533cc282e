"""``alliance calibrate FILE``: fit the expected-recovery model and check the signals.

FILE is a CSV with ``client``, ``session`` (1 = intake) and ``score`` columns; other columns are
ignored, except ``instrument``: when it holds several instruments, ``--instrument`` chooses one.
The model is fitted with a progress display, then (unless ``--no-validate``) the clients are
split into ``--folds`` folds and the signals at sessions 2–5 of each fold, from a model fitted to
the other folds, are compared with the outcome at each client's last session (no reliable
improvement, or deterioration, counts as poor): sensitivity, specificity, positive predictive
value and the share of clients flagged, for the empirical and the rational method.

``--json`` prints one object with ``model`` (``method``, ``fixed_effects`` with the keys
``(Intercept)``, ``log_session``, ``intake``, ``log_session:intake``, ``re_cov`` as a 2×2 list
for [intercept, log_session], ``residual_var``, ``reml_criterion``, ``n_obs``, ``n_clients``,
plus the rest of the stored model) and ``validation`` (null with ``--no-validate``) — a contract
that scripts rely on. ``--out model.json`` writes the model the web app loads.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import click
import pandas as pd
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from alliance.cli._common import err_console, fail, print_json, print_table, read_csv, to_jsonable
from alliance.errors import AllianceError
from alliance.recovery import METHODS


def _select_instrument(frame: pd.DataFrame, instrument: str | None, path: str) -> str | None:
    """Resolve the instrument from the option and the optional ``instrument`` column."""
    if "instrument" not in frame.columns:
        return instrument
    present = sorted(v for v in frame["instrument"].dropna().unique() if str(v).strip())
    if instrument is None:
        if len(present) > 1:
            fail(
                f"{path}: the instrument column holds {len(present)} instruments "
                f"({', '.join(present)}); choose one with --instrument."
            )
        return present[0] if present else None
    if instrument not in present:
        fail(
            f"{path}: no rows for instrument {instrument!r}; the file has "
            f"{', '.join(present) or 'none'}."
        )
    return instrument


def _model_table(model: dict[str, Any]) -> None:
    rows: list[dict[str, Any]] = []
    fe = model.get("fixed_effects")
    if isinstance(fe, dict):
        se = [math.sqrt(max(model["fixed_effects_cov"][i][i], 0.0)) for i in range(len(fe))]
        rows = [
            {"term": k, "estimate": v, "std. error": s}
            for (k, v), s in zip(fe.items(), se, strict=True)
        ]
        re = model["re_cov"]
        sd0, sd1 = math.sqrt(re[0][0]), math.sqrt(re[1][1])
        corr = re[0][1] / (sd0 * sd1) if sd0 > 0 and sd1 > 0 else float("nan")
        title = (
            f"{model['method']}: {model['n_obs']} follow-up scores from {model['n_clients']} "
            f"clients\nclient SD: intercept {sd0:.3g}, log-session slope {sd1:.3g}, "
            f"correlation {corr:.2f}; residual SD {math.sqrt(model['residual_var']):.3g}; "
            f"REML criterion {model['reml_criterion']:.2f}"
        )
        print_table(rows, ["term", "estimate", "std. error"], title=title)
        return
    curves = model.get("curves", [])
    print_table(
        [
            {
                "curve": i + 1,
                "intercept": c["coef"][0],
                "log_session": c["coef"][1],
                "clients": c["n_clients"],
                "singular": c["singular"],
            }
            for i, c in enumerate(curves)
        ],
        ["curve", "intercept", "log_session", "clients", "singular"],
        title=f"{model['method']}: {model['n_obs']} follow-up scores from "
        f"{model['n_clients']} clients, {len(curves)} growth curves",
    )


_TARGETS = {
    "poor_outcome": "poor outcome",
    "truth:poor_outcome": "true poor",
    "truth:truly_off_track": "true off track",
}


def _validation_table(report: dict[str, Any]) -> None:
    rows = [
        {
            "method": r["method"].split("_")[0],
            "flagged on": "off track" if r["flag_on"] == ["off_track"] else "+ at risk",
            "predicts": _TARGETS.get(r["target"], r["target"].replace("truth:", "true ")),
            "sens.": r["sensitivity"],
            "spec.": r["specificity"],
            "PPV": r["ppv"],
            "flagged": r["flagged_share"],
        }
        for r in report["rates"]
    ]
    lo, hi = report["window"]
    print_table(
        rows,
        ["method", "flagged on", "predicts", "sens.", "spec.", "PPV", "flagged"],
        title=(
            f"Signals at sessions {lo}–{hi} vs outcome, {report['folds']}-fold cross-validated by "
            f"client: {report['n_evaluated']} clients followed past session {hi}, "
            f"{report['n_poor_outcome']} with a poor outcome ({report['outcome']})"
        ),
    )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--instrument", help="Instrument id (needed when the file holds several).")
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="loglinear_intake",
    show_default=True,
    help="Expected-recovery method.",
)
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fold split.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the model (JSON) here.")
@click.option("--no-validate", is_flag=True, help="Fit only; skip the cross-validation.")
@click.option(
    "--truth",
    type=click.Path(dir_okay=False),
    help="CSV with client and true/false columns (e.g. clients.csv of `alliance simulate`): "
    "also report hit rates against them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (a stable contract).")
def calibrate(
    file: str,
    instrument: str | None,
    method: str,
    folds: int,
    seed: int,
    out: str | None,
    no_validate: bool,
    truth: str | None,
    as_json: bool,
) -> None:
    """Fit the expected-recovery model to FILE (CSV: client, session, score) and validate it."""
    from alliance.instruments import get
    from alliance.recovery import fit_etr
    from alliance.signals import validate_signals

    frame = read_csv(file, required=("client", "session", "score"))
    frame.index = frame.index + 1  # messages name data rows from 1
    inst_id = _select_instrument(frame, instrument, file)
    if "instrument" in frame.columns and inst_id is not None:
        frame = frame[frame["instrument"] == inst_id]
    try:
        inst = get(inst_id) if inst_id is not None else None
    except AllianceError as exc:
        fail(f"{exc}. `alliance instruments` lists the known ids.")
    truth_frame = None
    if truth is not None:
        truth_frame = read_csv(truth, required=("client",))
        bools = {"true": True, "false": False, "1": True, "0": False}
        keep = ["client"]
        known = [c for c in ("poor_outcome", "truly_off_track") if c in truth_frame.columns]
        for col in known or truth_frame.columns.drop("client"):
            values = truth_frame[col].str.strip().str.lower()
            if values.dropna().isin(list(bools)).all() and values.notna().any():
                truth_frame[col] = values.map(bools)
                keep.append(col)
        truth_frame = truth_frame[keep]
    if not no_validate and inst is None:
        fail(
            "validation compares outcomes by reliable change, which needs the instrument: add "
            "--instrument ID (or an instrument column), or use --no-validate."
        )
    # Client ids are read as text; keep them so in the truth file too.
    started = time.perf_counter()
    report = None
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"fitting {method}", total=None)
            model = fit_etr(frame, method, instrument=inst)
            bar.update(task, total=1, completed=1)
            if not no_validate:
                vtask = bar.add_task("cross-validating", total=folds + 2)

                def report_progress(done: int, total: int, what: str) -> None:
                    bar.update(vtask, completed=done, total=total, description=what)

                report = validate_signals(
                    frame,
                    inst,
                    etr_method=method,
                    folds=folds,
                    seed=seed,
                    truth=truth_frame,
                    progress=report_progress,
                )
    except AllianceError as exc:
        fail(f"{file}: {exc}")
    elapsed = time.perf_counter() - started
    model_dict = model.to_dict()
    if out is not None:
        try:
            Path(out).write_text(
                json.dumps(to_jsonable(model_dict), indent=2, allow_nan=False) + "\n"
            )
        except OSError as exc:
            fail(f"cannot write {out}: {exc}")
    result = {"model": model_dict, "validation": report.to_dict() if report else None}
    if as_json:
        print_json(result)
        return
    _model_table(model_dict)
    if report is not None:
        _validation_table(result["validation"])  # type: ignore[arg-type]
    err_console.print(
        f"done in {elapsed:.1f} s" + (f"; model written to {out}" if out else ""), style="dim"
    )
