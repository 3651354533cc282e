"""``alliance simulate``: write a simulated practice (CSV and/or Parquet) to a folder.

See docs/algorithms/simulation.md for the model, its sources and the files written.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from alliance.cli._common import err_console, fail
from alliance.errors import AllianceError

_STAGES = {
    "calibrating": "calibrating the effect sizes on a pilot practice",
    "drawing": "drawing clients, therapists and ruptures",
    "courses": "latent courses and observed scores",
    "dropout": "attendance and dropout",
    "items": "item answers",
    "tables": "assembling the tables",
    "done": "done",
}


def _size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover - loop always returns


@click.command()
@click.option("--clients", type=click.IntRange(min=1), help="Number of clients [default: 200].")
@click.option(
    "--therapists", type=click.IntRange(min=1), help="Number of therapists [default: 10]."
)
@click.option(
    "--sessions", type=click.IntRange(min=4), help="Appointments per client at most [default: 20]."
)
@click.option("--seed", type=click.IntRange(min=0), help="Random seed (default: fresh, printed).")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the tables and params.json to (created if needed).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "both"]),
    default="csv",
    show_default=True,
    help="File format (Parquet needs pyarrow).",
)
@click.option(
    "--observations",
    type=click.IntRange(min=1),
    help="Aim for about this many attended sessions (sets the number of clients).",
)
@click.option("--no-items", is_flag=True, help="Skip item-level answers (faster, smaller).")
def simulate(
    clients: int | None,
    therapists: int | None,
    sessions: int | None,
    seed: int | None,
    out: Path,
    fmt: str,
    observations: int | None,
    no_items: bool,
) -> None:
    """Simulate a practice and write it to --out.

    Writes therapists, clients, sessions, scores, items, alliance and ruptures (CSV and/or
    Parquet) and params.json (the generating parameters, for checking a fit against the
    truth). The same --seed gives the same practice.
    """
    from alliance.simulate import (
        SimulationConfig,
        clients_for_observations,
        parquet_available,
        simulate_practice,
    )

    if clients is not None and observations is not None:
        fail("give either --clients or --observations, not both")
    if out.exists() and not out.is_dir():
        fail(f"{out} exists and is not a folder")
    formats = ("csv", "parquet") if fmt == "both" else (fmt,)
    if formats == ("parquet",) and not parquet_available():
        fail("Parquet needs pyarrow: pip install 'alliance[parquet]' (or use --format csv)")

    started = time.perf_counter()
    try:
        cfg = SimulationConfig(seed=seed, item_level=not no_items)
        cfg = replace(
            cfg,
            n_therapists=therapists if therapists is not None else cfg.n_therapists,
            max_sessions=sessions if sessions is not None else cfg.max_sessions,
            n_clients=clients if clients is not None else max(cfg.n_clients, therapists or 0),
        )
        if observations is not None:
            n = clients_for_observations(observations, cfg)
            cfg = replace(cfg, n_clients=max(n, cfg.n_therapists))
        if cfg.n_therapists > cfg.n_clients:
            fail(
                f"--therapists ({cfg.n_therapists}) cannot exceed the number of clients ({cfg.n_clients})"
            )
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("simulating", total=1.0)

            def report(stage: str, fraction: float) -> None:
                bar.update(task, completed=fraction, description=_STAGES.get(stage, stage))

            practice = simulate_practice(cfg, progress=report)
            generated = time.perf_counter() - started
            write_task = bar.add_task("writing", total=7)

            def wrote(name: str) -> None:
                bar.update(write_task, advance=1, description=f"writing {name}")

            written = practice.write(out, formats, progress=wrote)
    except AllianceError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write to {out}: {exc}")
    total = time.perf_counter() - started

    c = practice.clients
    status = practice.sessions["status"].value_counts()
    n_obs = practice.n_observations
    summary = Table(title="Simulated practice", show_header=False, title_justify="left")
    summary.add_column("what")
    summary.add_column("value", justify="right")
    rows = [
        ("seed", str(practice.params["seed"])),
        ("therapists", f"{len(practice.therapists):,}"),
        ("clients", f"{len(c):,}"),
        ("attended sessions (observations)", f"{n_obs:,}"),
        (
            "no-shows / cancellations",
            f"{int(status.get('no_show', 0)):,} / {int(status.get('cancelled', 0)):,}",
        ),
        ("dropped out", f"{c['dropped_out'].mean():.1%}"),
        (
            "poor outcome / truly off track",
            f"{c['poor_outcome'].mean():.1%} / {c['truly_off_track'].mean():.1%}",
        ),
        (
            "ruptures (clear / repaired)",
            f"{len(practice.ruptures):,} ({int(practice.ruptures['clear'].sum()):,} / {int(practice.ruptures['repair_session'].notna().sum()):,})",
        ),
        ("item answers", f"{len(practice.items):,}"),
        ("generated in", f"{generated:.1f} s ({n_obs / max(generated, 1e-9):,.0f} observations/s)"),
        (
            "written",
            f"{len(written.paths)} files, {_size(written.total_bytes)} in {total - generated:.1f} s",
        ),
        ("folder", str(out)),
    ]
    for what, value in rows:
        summary.add_row(what, value)
    err_console.print(summary)
    for note in written.skipped:
        err_console.print(f"[yellow]skipped[/yellow] {note}")
