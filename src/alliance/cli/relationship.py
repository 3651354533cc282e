"""``alliance ruptures`` and ``alliance dropout``: the relationship from a CSV file.

See docs/algorithms/ruptures.md and docs/algorithms/dropout.md for the rules and the file
formats.
"""

from __future__ import annotations

from typing import Any

import click
import pandas as pd

from alliance.cli._common import err_console, fail, print_json, print_table, read_csv
from alliance.errors import AllianceError, InsufficientData


def _range(instrument: str, rng: tuple[float, float] | None) -> tuple[str | None, Any]:
    from alliance.relationship import scale_range

    try:
        if rng is not None:
            return None, scale_range(rng=rng)
        return instrument, scale_range(instrument)
    except AllianceError as exc:
        fail(f"{exc} (give --range LOW HIGH for an instrument outside the library)")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--method",
    "methods",
    multiple=True,
    type=click.Choice(["absolute", "relative_1sd", "relative_2sd", "ceiling_aware", "all"]),
    default=("all",),
    show_default=True,
    help="Rupture rule(s); repeat the option for several.",
)
@click.option("--instrument", default="wai_sr", show_default=True, help="Alliance instrument.")
@click.option("--range", "rng", nargs=2, type=float, help="LOW HIGH of the scale (overrides).")
@click.option(
    "--perspective",
    type=click.Choice(["client", "therapist"]),
    default="client",
    show_default=True,
    help="Whose ratings to search (therapist needs a therapist_alliance column).",
)
@click.option("--reference-sd", type=float, help="Inter-individual SD in raw points.")
@click.option(
    "--reference-kind",
    type=click.Choice(["within", "total"]),
    default="within",
    show_default=True,
    help="How the inter-individual SD is computed from FILE when not given.",
)
@click.option("--repair-window", type=int, default=6, show_default=True, help="Sessions.")
@click.option("--concern-threshold", type=float, help="Absolute rule: total at or below.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of episodes.")
def ruptures(
    file: str,
    methods: tuple[str, ...],
    instrument: str,
    rng: tuple[float, float] | None,
    perspective: str,
    reference_sd: float | None,
    reference_kind: str,
    repair_window: int,
    concern_threshold: float | None,
    as_json: bool,
) -> None:
    """Find alliance ruptures and repairs in FILE.

    FILE is a CSV with the columns client, session and alliance (the client's alliance total
    per session), and optionally therapist_alliance. Prints one episode per line, or with
    --json a JSON array of episodes, each with client, method, start_session (the first
    session at the low level), low_session, repair_session (null if unrepaired) and status.
    """
    from alliance.relationship import RUPTURE_METHODS, RuptureConfig, detect_ruptures

    frame = read_csv(file, required=("client", "session", "alliance"))
    column = "alliance"
    if perspective == "therapist":
        if "therapist_alliance" not in frame.columns:
            fail(f"{file}: --perspective therapist needs a therapist_alliance column")
        column = "therapist_alliance"
    inst, scale = _range(instrument, (rng[0], rng[1]) if rng else None)
    chosen = list(RUPTURE_METHODS) if "all" in methods else list(dict.fromkeys(methods))
    try:
        cfg = RuptureConfig(repair_window=repair_window, concern_threshold=concern_threshold)
        episodes: list[dict[str, Any]] = []
        for method in chosen:
            res = detect_ruptures(
                frame,
                method=method,
                instrument=inst,
                rng=(scale.low, scale.high),
                config=cfg,
                reference=reference_sd,
                reference_kind="total" if reference_kind == "total" else "within",
                alliance=column,
            )
            for note in res.notes:
                err_console.print(f"[dim]{method}: {note}[/dim]")
            for ep in res.episodes:
                d = ep.to_dict()
                d["perspective"] = perspective
                d["reference_sd"] = res.reference_sd
                episodes.append(d)
    except AllianceError as exc:
        fail(f"{file}: {exc}")
    if as_json:
        print_json(episodes)
        return
    print_table(
        episodes,
        [
            "client",
            "method",
            "start_session",
            "low_session",
            "low_value",
            "repair_session",
            "status",
            "depth_sd",
        ],
        title=f"Alliance ruptures ({len(episodes)})",
    )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--instrument", default="wai_sr", show_default=True, help="Alliance instrument.")
@click.option("--range", "rng", nargs=2, type=float, help="LOW HIGH of the alliance scale.")
@click.option("--window", type=int, default=3, show_default=True, help="Early sessions used.")
@click.option("--penalty", type=float, default=1.0, show_default=True, help="L2 penalty λ.")
@click.option("--folds", type=int, default=5, show_default=True, help="Cross-validation folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the folds.")
@click.option(
    "--min-events-per-feature",
    type=float,
    default=10.0,
    show_default=True,
    help="Dropouts (and completers) needed per feature (Peduzzi et al. 1996).",
)
@click.option(
    "--outcome-direction",
    type=click.Choice(["higher_is_worse", "higher_is_better"]),
    default="higher_is_worse",
    show_default=True,
)
@click.option("--reliable-change", type=float, help="Outcome reliable-change points (PHQ-9: 6).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def dropout(
    file: str,
    instrument: str,
    rng: tuple[float, float] | None,
    window: int,
    penalty: float,
    folds: int,
    seed: int,
    min_events_per_feature: float,
    outcome_direction: str,
    reliable_change: float | None,
    as_json: bool,
) -> None:
    """Train the dropout model on FILE's closed episodes and flag the open ones.

    FILE is a CSV with one row per scheduled session: client, session, alliance (may be empty
    when the session was missed), and optionally status (attended, no_show, cancelled), score
    (the outcome measure) and dropped_out (1 dropped out, 0 completed, empty while the episode
    is open; the same on every row of a client). With --json prints an object with the model
    (coefficients, cross-validated AUC, Brier score, calibration) or null and the reason, and
    the early-warning rule (plus the model's probability) for every open episode.
    """
    from alliance.relationship import (
        dropout_features,
        dropout_warning,
        fit_dropout_model,
    )

    frame = read_csv(file, required=("client", "session", "alliance"))
    inst, scale = _range(instrument, (rng[0], rng[1]) if rng else None)
    rng_t = (scale.low, scale.high)
    concern = None
    if inst is not None:
        from alliance.instruments import get

        cut = get(inst).concern_threshold
        concern = None if cut is None else float(cut.value)
    report: dict[str, Any] = {"model": None, "model_error": None}
    try:
        feats = dropout_features(
            frame, rng=rng_t, window=window, outcome_direction=outcome_direction
        )
        model = None
        try:
            with err_console.status("Fitting and cross-validating the dropout model"):
                model = fit_dropout_model(
                    feats,
                    penalty=penalty,
                    folds=folds,
                    seed=seed,
                    min_events_per_feature=min_events_per_feature,
                )
            report["model"] = model.to_dict()
        except InsufficientData as exc:
            report["model_error"] = str(exc)
            err_console.print(f"[yellow]No model:[/yellow] {exc}")
        warnings = []
        f = frame.copy()
        f["_s"] = pd.to_numeric(f["session"], errors="coerce")
        open_clients = feats.index[feats["dropped_out"].isna()]
        for cid, g in f.sort_values(["client", "_s"], kind="stable").groupby("client"):
            if cid not in open_clients:
                continue
            statuses = (
                g["status"].fillna("").replace("", "attended").tolist()
                if "status" in g.columns
                else []
            )
            outcome = (
                pd.to_numeric(g["score"], errors="coerce").tolist() if "score" in g.columns else []
            )
            w = dropout_warning(
                pd.to_numeric(g["alliance"], errors="coerce").tolist()[:window],
                rng=rng_t,
                statuses=statuses,
                outcome=outcome[:window],
                outcome_direction=outcome_direction,
                reliable_change=reliable_change,
                concern_threshold=concern,
                model=model,
            )
            d = w.to_dict()
            d["client"] = cid
            warnings.append(d)
    except AllianceError as exc:
        fail(f"{file}: {exc}")
    report["n_clients"] = len(feats)
    report["n_closed"] = int(feats["dropped_out"].notna().sum())
    report["warnings"] = warnings
    if as_json:
        print_json(report)
        return
    if model is not None:
        click.echo(
            f"Dropout model on {model.n} closed episodes ({model.n_events} dropouts): "
            f"cross-validated AUC {model.cv_auc:.3f}, Brier {model.brier:.3f}, calibration "
            f"slope {model.calibration_slope:.2f}"
        )
    print_table(
        warnings,
        ["client", "risk", "signs", "probability"],
        title=f"Open episodes ({len(warnings)})",
    )
