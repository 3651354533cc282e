"""The result of a simulation: a frozen bundle of tables, and how it is written to disk."""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from alliance.errors import InvalidParameter

__all__ = ["TABLES", "SimulatedPractice", "WrittenFiles", "parquet_available"]

#: The tables of a practice, in the order they are written.
TABLES: tuple[str, ...] = (
    "therapists",
    "clients",
    "sessions",
    "scores",
    "items",
    "alliance",
    "ruptures",
)

_FORMATS = ("csv", "parquet")


def parquet_available() -> bool:
    """Whether Parquet files can be written (``pyarrow`` is importable)."""
    return importlib.util.find_spec("pyarrow") is not None


@dataclass(frozen=True)
class WrittenFiles:
    """What :meth:`SimulatedPractice.write` wrote, and what it had to skip (with the reason)."""

    paths: tuple[Path, ...]
    skipped: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        """Size of everything written."""
        return sum(p.stat().st_size for p in self.paths if p.exists())


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class SimulatedPractice:
    """A simulated practice: seven tables and the parameters that generated them.

    Attributes
    ----------
    therapists
        ``therapist``, ``therapist_effect`` (shift of the therapist's clients' expected primary
        score in points; negative = better outcomes).
    clients
        ``client``, ``therapist``, ``concern``, ``intake`` (primary score at session 1),
        ``trajectory``, ``planned_sessions``, ``last_session`` (last attended), ``dropped_out``,
        ``dropout_session`` (the missed appointment after which the client never returned;
        NaN for completers), ``poor_outcome`` (no reliable improvement — or reliable
        deterioration — at the last attended session, by the primary's reliable-change points),
        ``truly_off_track`` (the noise-free course would not reach reliable improvement by the
        planned end), ``early_alliance`` (mean client alliance over the attended sessions 1–3).
    sessions
        One row per appointment: ``client``, ``therapist``, ``session`` (1, 2, …), ``week``
        (0 = intake week), ``status`` (``attended``, ``no_show``, ``cancelled``).
    scores
        Attended sessions only, long: ``client``, ``therapist``, ``session``, ``instrument``,
        ``score`` (rounded, clipped to the range), ``latent`` (unrounded, unclipped; for the
        primary instrument exactly the ``loglinear_intake`` course).
    items
        Item answers, long: ``client``, ``session``, ``instrument``, ``item``, ``value``; the
        values of each administration sum to its score.
    alliance
        Attended sessions: ``client``, ``therapist``, ``session``, ``alliance`` (client form
        total), ``therapist_alliance`` (therapist form total), ``alliance_bond``,
        ``alliance_task``, ``alliance_goal`` (client subscale sums; NaN without items).
    ruptures
        Ground truth, one row per rupture during the episode: ``client``, ``start_session``,
        ``low_session``, ``repair_session`` (NaN if not repaired within the episode),
        ``depth_sd`` (how far the rating at the rupture's lowest attended session lies below
        the client's usual level, in observed within-client SDs; NaN if unobserved),
        ``clear`` (``depth_sd`` ≥ 2), ``subscale`` (the strained alliance subscale),
        ``observed`` (an attended session falls in the dip), ``dip_sd`` (the generating depth
        of the dip, in SDs of the latent alliance state; ``rupture_depth``).
    params
        The generating parameters and the calibrated quantities (read-only mapping; see
        ``docs/algorithms/simulation.md`` for the keys).
    """

    therapists: pd.DataFrame
    clients: pd.DataFrame
    sessions: pd.DataFrame
    scores: pd.DataFrame
    items: pd.DataFrame
    alliance: pd.DataFrame
    ruptures: pd.DataFrame
    params: Mapping[str, Any]

    @property
    def n_observations(self) -> int:
        """Attended sessions (rows of the primary instrument in ``scores``)."""
        return int((self.sessions["status"] == "attended").sum())

    def tables(self) -> dict[str, pd.DataFrame]:
        """The seven tables by name."""
        return {name: getattr(self, name) for name in TABLES}

    def write(
        self,
        folder: str | Path,
        formats: Iterable[str] = ("csv", "parquet"),
        *,
        progress: Callable[[str], None] | None = None,
    ) -> WrittenFiles:
        """Write every table (``<table>.csv`` / ``.parquet``) and ``params.json`` to ``folder``.

        Parquet needs ``pyarrow`` (``pip install 'alliance[parquet]'``); without it the Parquet
        files are skipped and ``skipped`` says so. CSV is written by pyarrow when available (much
        faster on large tables; booleans as ``true``/``false``), otherwise by pandas.

        Raises
        ------
        InvalidParameter
            For an unknown format, no format at all, or a folder path that is a file.
        """
        wanted = tuple(dict.fromkeys(str(f).lower() for f in formats))
        unknown = [f for f in wanted if f not in _FORMATS]
        if unknown or not wanted:
            raise InvalidParameter(
                f"unknown format(s) {unknown or wanted}; choose from {', '.join(_FORMATS)}"
            )
        out = Path(folder)
        if out.exists() and not out.is_dir():
            raise InvalidParameter(f"{out} exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
        has_arrow = parquet_available()
        skipped: list[str] = []
        if "parquet" in wanted and not has_arrow:
            skipped.append("parquet: pyarrow is not installed (pip install 'alliance[parquet]')")
        paths: list[Path] = []
        for name in TABLES:
            frame = getattr(self, name)
            if progress is not None:
                progress(name)
            if "csv" in wanted:
                paths.append(_write_csv(frame, out / f"{name}.csv", has_arrow))
            if "parquet" in wanted and has_arrow:
                path = out / f"{name}.parquet"
                frame.to_parquet(path, index=False)
                paths.append(path)
        params_path = out / "params.json"
        params_path.write_text(
            json.dumps(_jsonable(self.params), indent=2, ensure_ascii=False, allow_nan=False)
            + "\n",
            encoding="utf-8",
        )
        paths.append(params_path)
        return WrittenFiles(tuple(paths), tuple(skipped))


def _write_csv(frame: pd.DataFrame, path: Path, has_arrow: bool) -> Path:
    if has_arrow:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        table = pa.Table.from_pandas(frame, preserve_index=False)
        # Categories are written as their labels, as pandas does.
        columns = [
            col.dictionary_decode() if pa.types.is_dictionary(col.type) else col
            for col in (table.column(i).combine_chunks() for i in range(table.num_columns))
        ]
        table = pa.table(columns, names=table.column_names)
        pacsv.write_csv(table, path)
    else:
        frame.to_csv(path, index=False)
    return path
