"""``alliance change INSTRUMENT FILE``: reliable and clinically significant change.

FILE is a CSV with ``pre`` and ``post`` columns (plus an optional ``id``). INSTRUMENT may be
``custom`` for a scale outside the library; the norms and the direction then come from the
options. With ``--json`` the output is a JSON array, one object per row, with ``id``, ``rci``,
``reliable``, ``threshold`` (raw points for reliable change), ``cutoff`` (the value used),
``category`` (``recovered``, ``improved``, ``unchanged`` or ``deteriorated``; null when a score
is missing) and ``method`` — a contract that scripts rely on.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import click
import numpy as np
import pandas as pd

from alliance.change import METHODS, MissingParameter
from alliance.cli._common import fail, print_json, print_table, read_csv
from alliance.errors import AllianceError

# keyword of alliance.change.reliable_change -> command-line option
_OPTION = {
    "reliability": "--reliability",
    "sd": "--sd",
    "sd_post": "--sd-post",
    "mean_pre": "--mean-pre",
    "mean_post": "--mean-post",
    "r_prepost": "--r-prepost",
    "clinical_mean": "--clinical-mean",
    "clinical_sd": "--clinical-sd",
    "functional_mean": "--functional-mean",
    "functional_sd": "--functional-sd",
    "direction": "--direction",
    "threshold": "--threshold",
}


def _cutoff(value: str | None) -> str | float | None:
    if value is None or value in ("a", "b", "c"):
        return value
    try:
        return float(value)
    except ValueError:
        fail(f"--cutoff must be a, b, c or a number, not {value!r}")


def _scores(frame: pd.DataFrame, column: str, path: str) -> np.ndarray[Any, np.dtype[Any]]:
    raw = frame[column]
    numbers = pd.to_numeric(raw.str.strip(), errors="coerce")
    bad = raw.notna() & raw.str.strip().ne("") & numbers.isna()
    if bad.any():
        where = [f"row {i + 1} ({raw.iloc[i]!r})" for i in np.flatnonzero(bad.to_numpy())[:5]]
        more = f" and {int(bad.sum()) - 5} more" if bad.sum() > 5 else ""
        fail(f"{path}: {column} must be a number (or empty when missing): {', '.join(where)}{more}")
    out: np.ndarray[Any, np.dtype[Any]] = numbers.to_numpy(dtype=float, na_value=np.nan)
    return out


@click.command()
@click.argument("instrument")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (a stable contract).")
@click.option(
    "--method",
    type=click.Choice(METHODS),
    help="Default: jacobson_truax when a "
    "reliability and an SD are known, else the instrument's published threshold.",
)
@click.option("--reliability", type=float, help="Reliability of the measure (0 < r < 1).")
@click.option("--sd", type=float, help="SD of pre-treatment scores (for the standard error).")
@click.option("--sd-post", type=float, help="SD of post-treatment scores (maassen, HA).")
@click.option("--mean-pre", type=float, help="Mean of pre scores (GLN, HA; default: the data).")
@click.option("--mean-post", type=float, help="Mean of post scores (HA; default: the data).")
@click.option("--r-prepost", type=float, help="Pre–post correlation (HA; default: the data).")
@click.option("--clinical-mean", type=float, help="Mean of the clinical population.")
@click.option("--clinical-sd", type=float, help="SD of the clinical population.")
@click.option("--functional-mean", type=float, help="Mean of the functional population.")
@click.option("--functional-sd", type=float, help="SD of the functional population.")
@click.option("--cutoff", help="a, b, c or a number (default: the instrument's cutoff, else c).")
@click.option("--direction", type=click.Choice(["higher_is_worse", "higher_is_better"]))
@click.option("--threshold", type=float, help="A published reliable-change threshold in points.")
def change(
    instrument: str,
    file: str,
    as_json: bool,
    method: str | None,
    reliability: float | None,
    sd: float | None,
    sd_post: float | None,
    mean_pre: float | None,
    mean_post: float | None,
    r_prepost: float | None,
    clinical_mean: float | None,
    clinical_sd: float | None,
    functional_mean: float | None,
    functional_sd: float | None,
    cutoff: str | None,
    direction: str | None,
    threshold: float | None,
) -> None:
    """Reliable change and clinical significance for the pre/post pairs in FILE (CSV)."""
    from alliance.change import reliable_change
    from alliance.instruments import get

    try:
        inst = None if instrument == "custom" else get(instrument)
    except AllianceError as exc:
        fail(f"{exc} (or use 'custom' with the norms as options)")
    frame = read_csv(file, required=("pre", "post"))
    pre = _scores(frame, "pre", file)
    post = _scores(frame, "post", file)
    ids = list(frame["id"]) if "id" in frame.columns else list(range(1, len(frame) + 1))
    try:
        result = reliable_change(
            inst,
            pre,
            post,
            method=method,
            reliability=reliability,
            sd=sd,
            sd_post=sd_post,
            mean_pre=mean_pre,
            mean_post=mean_post,
            r_prepost=r_prepost,
            clinical_mean=clinical_mean,
            clinical_sd=clinical_sd,
            functional_mean=functional_mean,
            functional_sd=functional_sd,
            cutoff=_cutoff(cutoff),
            direction=direction,
            threshold=threshold,
            ids=ids,
        )
    except MissingParameter as exc:
        options = ", ".join(_OPTION.get(n, n) for n in exc.names)
        fail(f"{exc}. Add {options}.")
    except AllianceError as exc:
        fail(str(exc))
    columns = [
        "id",
        "pre",
        "post",
        "delta",
        "rci",
        "reliable",
        "improved",
        "deteriorated",
        "threshold",
        "cutoff",
        "clinical_pre",
        "clinical_post",
        "category",
        "method",
    ]
    if "cs_indiv" in result.columns:
        columns.append("cs_indiv")
    rows = result[columns].astype(object).where(result[columns].notna(), None)
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in rows.to_dict(orient="records")
    ]
    if as_json:
        print_json(records)
        return
    params = result.attrs["parameters"]
    counts = Counter(r["category"] for r in records if r["category"])
    summary = ", ".join(
        f"{counts[c]} {c}"
        for c in ("recovered", "improved", "unchanged", "deteriorated")
        if counts[c]
    )
    cut = params["cutoff"]
    title = (
        f"{params['method']}: reliable change ≥ {records[0]['threshold']:.3g} points"
        if records and params["method"] != "gulliksen_lord_novick"
        else params["method"]
    )
    if cut is not None:
        title += f", cutoff {cut:.3g} ({params['cutoff_kind']})"
    print_table(
        records,
        ["id", "pre", "post", "delta", "rci", "reliable", "category"],
        title=title + (f"\n{summary}" if summary else ""),
    )
