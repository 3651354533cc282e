"""Benchmark: check-in submissions per second, against a bare Django endpoint that writes one row.

Both run in the same real servers on loopback (waitress, ``--server-threads`` threads per process,
``--processes`` processes on their own ports, requests spread round-robin by the client — what
a proxy in front of several app servers does; the project's whole middleware stack) and are driven
in the same run by client threads over keep-alive HTTP:

* **check-in**: ``POST /api/v1/checkins/<id>/submit/`` with a bearer token and PHQ-9 + GAD-7
  answers (17 items): token check, scope, validation and scoring by the engine, the recovery
  signal of the new scores, rows stored, safety and off-track alerts (about 1 in 20 answers endorse
  PHQ-9 item 9), audit, the snapshot marked stale — one transaction; after commit the episode's
  snapshot refresh is queued (``care.tasks.refresh_episode``). Each request answers a different
  pending check-in;
* **bare**: ``POST /bench/bare/`` parses the same JSON body and inserts one row, in a transaction.

With ``--worker`` the background worker (``alliance_worker``) runs during the whole benchmark and
refreshes the snapshots as check-ins arrive, competing for the same cores; after each check-in
run the benchmark waits until no snapshot is older than its episode's latest score and reports
how long that took (``drain``). Without it the snapshots stay stale (pages refresh them when shown).

Run from the repository root::

    python bench/bench_checkin.py                              # SQLite file in a temp folder
    python bench/bench_checkin.py --processes 1 2 --threads 1 4 --worker
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python bench/bench_checkin.py

With ``DATABASE_URL`` the benchmark's tables are migrated and its rows written into that database.
Prints a table and writes the figures as JSON into ``bench/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import queue
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

RESULTS = Path(__file__).with_name("results")
ROOT = Path(__file__).resolve().parents[1]


def setup_django(data_dir: str) -> None:
    os.environ.setdefault("ALLIANCE_DATA_DIR", data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alliance_web.settings")
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()


def install_bare_view() -> None:
    """Mount ``/bench/bare/``: parse the JSON body, insert one row, answer 201."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.http import JsonResponse
    from django.urls import include, path
    from django.utils import timezone
    from django.views.decorators.csrf import csrf_exempt

    @csrf_exempt
    def bare(request: Any) -> JsonResponse:
        body = json.loads(request.body)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bench_row (created_at, payload) VALUES (%s, %s)",
                [timezone.now(), json.dumps(body)],
            )
        return JsonResponse({"ok": True}, status=201)

    module = types.ModuleType("bench_checkin_urls")
    module.urlpatterns = [path("bench/bare/", bare), path("", include(settings.ROOT_URLCONF))]  # type: ignore[attr-defined]
    sys.modules["bench_checkin_urls"] = module
    settings.ROOT_URLCONF = "bench_checkin_urls"


def create_bare_table() -> None:
    from django.db import connection

    serial = "BIGSERIAL" if connection.vendor == "postgresql" else "INTEGER"
    auto = "" if connection.vendor == "postgresql" else " AUTOINCREMENT"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS bench_row (id {serial} PRIMARY KEY{auto}, "
            "created_at TIMESTAMP, payload TEXT)"
        )


def serve(port: int, threads: int, data_dir: str) -> None:
    setup_django(data_dir)
    install_bare_view()
    import logging

    from waitress import serve as waitress_serve

    logging.getLogger("waitress").setLevel(logging.ERROR)  # "queue depth" notes under load

    from alliance_web.wsgi import application

    waitress_serve(
        application,
        host="127.0.0.1",
        port=port,
        threads=threads,
        _quiet=True,
        connection_limit=256,
        channel_timeout=60,
    )


def wsgi_app() -> Any:
    """The benchmark's WSGI application for gunicorn (``bench_checkin:wsgi_app()``)."""
    setup_django(os.environ["ALLIANCE_DATA_DIR"])
    install_bare_view()
    from alliance_web.wsgi import application

    return application


def build(clients: int, submissions: int) -> tuple[int, str, list[str]]:
    """A practice with ``clients`` open episodes and ``submissions`` pending check-ins."""
    from django.conf import settings
    from django.utils import timezone

    from alliance_web.accounts.models import Role, User
    from alliance_web.api.models import ApiToken
    from alliance_web.care import services
    from alliance_web.care.models import Practice

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    practice = Practice.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    therapist = User.objects.create_user(
        username=f"bench_{practice.pk}", password="x" * 16, practice=practice, role=Role.THERAPIST
    )
    _, token = ApiToken.issue(therapist, "bench")
    start = timezone.now() - timedelta(days=1)
    episodes = []
    for i in range(clients):
        client = services.create_client(
            therapist, preferred_name=f"Client {i}", therapist=therapist
        )
        episodes.append(
            services.open_episode(
                therapist,
                client,
                concerns=["depression"],
                measure_plan=["phq9", "gad7"],
                first_session_at=start,
                sessions=max(1, submissions // clients + 1),
                interval_days=1,
            )
        )
    ids = []
    for n in range(submissions):
        episode = episodes[n % clients]
        checkin, _ = services.issue_checkin(episode, hours_valid=48)
        ids.append(str(checkin.public_id))
    return practice.pk, token, ids


def answers(rng: random.Random) -> dict[str, Any]:
    phq = {f"phq9_{i}": rng.choice([0, 1, 1, 2, 2, 3]) for i in range(1, 9)}
    phq["phq9_9"] = 1 if rng.random() < 0.05 else 0
    phq["phq9_difficulty"] = rng.choice([0, 1, 2, 3])
    gad = {f"gad7_{i}": rng.choice([0, 1, 2, 3]) for i in range(1, 8)}
    return {"answers": {"phq9": phq, "gad7": gad}}


def drive(
    ports: list[int], jobs: list[tuple[str, bytes, dict[str, str]]], threads: int, expect: int
) -> dict[str, Any]:
    """Send ``jobs`` from ``threads`` client threads, each keeping one keep-alive connection per
    server process and taking the processes in turn (round-robin, as a proxy would)."""
    work: queue.Queue[tuple[str, bytes, dict[str, str]]] = queue.Queue()
    for job in jobs:
        work.put(job)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for port in ports]
        turn = offset
        while True:
            try:
                path, body, headers = work.get_nowait()
            except queue.Empty:
                break
            conn = conns[turn % len(conns)]
            turn += 1
            t0 = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                if response.status != expect:
                    errors.append(f"{response.status} {path}")
        for conn in conns:
            conn.close()

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "threads": threads,
        "seconds": wall,
        "rps": len(latencies) / wall,
        "median_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        "errors": len(errors),
        "first_errors": errors[:5],
    }


def stale_snapshots(practice_id: int) -> int:
    from alliance_web.care import insight

    return insight.stale_episodes().filter(practice_id=practice_id).count()


def wait_fresh(practice_id: int, timeout: float) -> dict[str, Any]:
    """Seconds until no snapshot is older than its episode's latest score (the worker's backlog)."""
    start = time.perf_counter()
    left = stale_snapshots(practice_id)
    while left and time.perf_counter() - start < timeout:
        time.sleep(0.2)
        left = stale_snapshots(practice_id)
    return {"seconds": time.perf_counter() - start, "stale_left": left}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not come up")


def fresh_database(url: str) -> tuple[str, Any]:
    """A new, empty PostgreSQL database next to the one ``url`` names (so that earlier runs' rows
    and queued tasks do not weigh on this one); returns its URL and a function that drops it."""
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_bench_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path=f"/{name}")), drop


def start_servers(
    kind: str, n: int, threads: int, data_dir: str, env: dict[str, str]
) -> list[tuple[int, subprocess.Popen[bytes]]]:
    """``n`` waitress processes on their own ports, or one gunicorn with ``n`` sync workers."""
    servers = []
    if kind == "gunicorn":
        port = free_port()
        command = [sys.executable, "-m", "gunicorn", "--chdir", str(Path(__file__).parent)]
        command += ["-w", str(n), "-k", "sync", "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
        servers.append((port, subprocess.Popen([*command, "bench_checkin:wsgi_app()"], env=env)))
    else:
        for _ in range(n):
            port = free_port()
            command = [sys.executable, __file__, "serve", "--port", str(port)]
            command += ["--threads", str(threads), "--data", data_dir]
            servers.append((port, subprocess.Popen(command, env=env, cwd=ROOT)))
    for port, _ in servers:
        wait_for(port)
    return servers


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    serve_p = sub.add_parser("serve", help=argparse.SUPPRESS)
    serve_p.add_argument("--port", type=int, required=True)
    serve_p.add_argument("--threads", type=int, required=True)
    serve_p.add_argument("--data", required=True)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--submissions", type=int, default=600, help="per row of the table")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4], help="client threads")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="server processes")
    parser.add_argument(
        "--server",
        choices=["waitress", "gunicorn"],
        default="waitress",
        help="waitress processes on their own ports (round-robin), or gunicorn sync workers",
    )
    parser.add_argument(
        "--server-threads",
        type=int,
        default=1,
        help="threads per waitress process (1: one request at a time, no GIL hand-offs)",
    )
    parser.add_argument(
        "--worker", action="store_true", help="run the background worker during the benchmark"
    )
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument(
        "--keep-db",
        action="store_true",
        help="write into the DATABASE_URL database itself instead of a fresh one next to it",
    )
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--out", type=Path, default=RESULTS / "checkin.json")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        serve(args.port, args.threads, args.data)
        return 0

    from rich.console import Console

    console = Console(stderr=True)
    drop_database = None
    if os.environ.get("DATABASE_URL") and not args.keep_db:
        os.environ["DATABASE_URL"], drop_database = fresh_database(os.environ["DATABASE_URL"])
    try:
        return run(args, console)
    finally:
        if drop_database is not None:
            drop_database()


def run(args: argparse.Namespace, console: Any) -> int:
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory(prefix="alliance-bench-") as data_dir:
        setup_django(data_dir)
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        create_bare_table()
        total = (args.submissions + 20) * len(args.threads) * len(args.processes)
        with console.status(f"Issuing {total} check-ins for {args.clients} clients …"):
            practice_id, token, ids = build(args.clients, total)
        env = {**os.environ, "ALLIANCE_DATA_DIR": data_dir, "ALLIANCE_LOG_LEVEL": "WARNING"}
        worker = None
        if args.worker:
            command = [sys.executable, "-m", "alliance_web", "alliance_worker"]
            command += ["--interval", "5", "--poll", "0.1", "--nightly-at", "off"]
            worker = subprocess.Popen(command, env=env, cwd=ROOT)
        rng = random.Random(args.seed)
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        plain = {"Content-Type": "application/json"}
        pending = list(ids)

        def checkin_jobs(n: int) -> list[tuple[str, bytes, dict[str, str]]]:
            taken = [pending.pop() for _ in range(n)]
            return [
                (f"/api/v1/checkins/{cid}/submit/", json.dumps(answers(rng)).encode(), auth)
                for cid in taken
            ]

        def bare_jobs(n: int) -> list[tuple[str, bytes, dict[str, str]]]:
            return [("/bench/bare/", json.dumps(answers(rng)).encode(), plain) for _ in range(n)]

        runs = []
        try:
            for processes in args.processes:
                servers = start_servers(args.server, processes, args.server_threads, data_dir, env)
                ports = [port for port, _ in servers]
                try:
                    for threads in args.threads:
                        drive(ports, checkin_jobs(20), 2, 201)  # warm-up
                        drive(ports, bare_jobs(20), 2, 201)
                        if worker is not None:
                            wait_fresh(practice_id, args.drain_timeout)
                        checkin = drive(ports, checkin_jobs(args.submissions), threads, 201)
                        drain = (
                            wait_fresh(practice_id, args.drain_timeout)
                            if worker is not None
                            else None
                        )
                        stale = stale_snapshots(practice_id)
                        bare = drive(ports, bare_jobs(args.submissions), threads, 201)
                        runs.append(
                            {
                                "processes": processes,
                                "threads": threads,
                                "checkin": checkin,
                                "bare": bare,
                                "drain": drain,
                                "stale_after": stale,
                            }
                        )
                finally:
                    stop([process for _, process in servers])
        finally:
            if worker is not None:
                stop([worker])

        import django

        from alliance import __version__

        result = {
            "benchmark": "checkin",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "python": platform.python_version(),
                "django": django.get_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "load": os.getloadavg(),
                "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
                "server": (
                    "gunicorn sync workers"
                    if args.server == "gunicorn"
                    else f"waitress, {args.server_threads} threads per process"
                )
                + ", loopback",
                "worker": bool(args.worker),
            },
            "alliance": __version__,
            "clients": args.clients,
            "runs": runs,
        }
        table = Table(
            title=f"POST per second on loopback ({result['machine']['database']}, "
            f"{args.submissions} requests per row"
            + (", worker running)" if args.worker else ", no worker)")
        )
        columns = ["processes", "client threads", "endpoint", "req/s", "median ms", "p95 ms"]
        columns += ["errors", "snapshots fresh after"]
        for col in columns:
            table.add_column(col, justify="right")
        for run in runs:
            for name in ("checkin", "bare"):
                r = run[name]
                fresh = ""
                if name == "checkin":
                    drain = run["drain"]
                    fresh = (
                        f"{drain['seconds']:.1f} s"
                        + (f" ({drain['stale_left']} left)" if drain["stale_left"] else "")
                        if drain
                        else f"({run['stale_after']} stale)"
                    )
                table.add_row(
                    str(run["processes"]),
                    str(run["threads"]),
                    "check-in submit" if name == "checkin" else "bare one-row insert",
                    f"{r['rps']:.0f}",
                    f"{r['median_ms']:.1f}",
                    f"{r['p95_ms']:.1f}",
                    str(r["errors"]),
                    fresh,
                )
        Console(width=140).print(table)
        for run in runs:
            ratio = run["bare"]["rps"] / run["checkin"]["rps"]
            Console().print(
                f"{run['processes']} process(es), {run['threads']} thread(s): "
                f"bare / check-in = {ratio:.1f}×"
            )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
        bad = [r for run in runs for r in (run["checkin"], run["bare"]) if r["errors"]]
        if bad:
            console.print(f"[red]errors: {bad[0]['first_errors']}[/red]")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
