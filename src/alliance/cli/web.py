"""``alliance serve``, ``alliance demo`` and ``alliance manage``: the web app from the command line.

These are the only commands that import Django, and only when they run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from alliance.cli._common import fail


def _setup_django(data_dir: Path | None = None, *, insecure_demo_login: bool = False) -> None:
    if data_dir is not None:
        os.environ["ALLIANCE_DATA_DIR"] = str(data_dir.resolve())
    if insecure_demo_login:
        os.environ["ALLIANCE_DEMO_INSECURE_LOGIN"] = "True"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alliance_web.settings")
    try:
        import django
    except ImportError:
        fail(
            "The web app needs its extra dependencies: pip install 'alliance[web]' (./scripts/run does this)."
        )
    django.setup()


def _migrate() -> None:
    from django.core.management import call_command

    click.echo("==> Preparing the database", err=True)
    call_command("migrate", interactive=False, verbosity=0)


def _start_worker() -> subprocess.Popen[bytes]:
    """The background worker (Django tasks, database queue) as a child process."""
    click.echo("==> Starting the background worker", err=True)
    return subprocess.Popen(
        [sys.executable, "-m", "alliance_web", "alliance_worker"],
        env=os.environ.copy(),
    )


def _serve(host: str, port: int, worker: bool) -> None:
    from waitress import serve as waitress_serve

    from alliance_web.wsgi import application

    child = _start_worker() if worker else None

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    click.echo(f"==> Alliance is running on http://{host}:{port}/  (Ctrl+C to stop)", err=True)
    try:
        waitress_serve(application, host=host, port=port, threads=8, ident="Alliance", _quiet=True)
    except KeyboardInterrupt:
        pass
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder (default: the project's data/).",
)
@click.option(
    "--no-worker", is_flag=True, help="Do not start the background worker (run it elsewhere)."
)
def serve(host: str, port: int, data_dir: Path | None, no_worker: bool) -> None:
    """Migrate the database and serve the web app (with the background worker)."""
    _setup_django(data_dir)
    _migrate()
    _serve(host, port, worker=not no_worker)


@click.command()
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--password", required=True, help="Password for the demo staff accounts.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder (default: the project's data/).",
)
@click.option(
    "--demo-insecure-login",
    is_flag=True,
    help="Let demo accounts skip two-factor sign-in (demo only).",
)
@click.option(
    "--seed", default=2026, show_default=True, help="Simulator seed for the demo practice."
)
@click.option("--reset", is_flag=True, help="Delete the demo database and seed it again.")
@click.option("--no-serve", is_flag=True, help="Prepare the demo data and exit.")
@click.option("--no-worker", is_flag=True, help="Do not start the background worker.")
def demo(
    port: int,
    password: str,
    data_dir: Path | None,
    demo_insecure_login: bool,
    seed: int,
    reset: bool,
    no_serve: bool,
    no_worker: bool,
) -> None:
    """Seed a demo practice from the simulator and serve it on 127.0.0.1:PORT.

    Staff accounts therapist1, therapist2, therapist3, supervisor and admin sign in at
    /accounts/login/ with PASSWORD. Prints a check-in link for a demo client.
    """
    if len(password) < 8:
        fail("Choose a demo password of at least 8 characters.")
    if reset:
        folder = (data_dir or _default_data_dir()).resolve()
        for name in ("alliance.sqlite3", "alliance.sqlite3-wal", "alliance.sqlite3-shm"):
            (folder / name).unlink(missing_ok=True)
    _setup_django(data_dir, insecure_demo_login=demo_insecure_login)
    _migrate()
    from alliance_web.care import demo as demo_data

    started = time.monotonic()
    info = demo_data.ensure_demo(
        password=password, seed=seed, progress=lambda msg: click.echo(f"    {msg}", err=True)
    )
    click.echo(
        f"==> Demo practice ready in {time.monotonic() - started:.1f} s: {info.summary}", err=True
    )
    base = f"http://127.0.0.1:{port}"
    click.echo(
        f"Sign in at {base}/accounts/login/ as therapist1, therapist2, therapist3, supervisor or admin."
    )
    if not demo_insecure_login:
        click.echo(
            "Two-factor sign-in is on: the first sign-in shows a QR code for an authenticator app."
        )
    click.echo(f"Check-in link for demo client {info.checkin_client}: {base}{info.checkin_path}")
    if not no_serve:
        _serve("127.0.0.1", port, worker=not no_worker)


def _default_data_dir() -> Path:
    checkout = Path(__file__).resolve().parents[3]
    return checkout / "data" if (checkout / "pyproject.toml").exists() else Path.cwd() / "data"


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def manage(args: tuple[str, ...]) -> None:
    """Run a Django management command (e.g. ``alliance manage verify_audit``)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alliance_web.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["alliance manage", *args])
