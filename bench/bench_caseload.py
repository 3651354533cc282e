"""Benchmark: the caseload page of a therapist with 200 open episodes.

Server time of ``GET /w/`` — the whole Django stack in-process: sessions, sign-in and two-factor
checks, the scoped queries, 200 sparkline pairs, the template, and the 200 audit rows the page
writes (one per client shown) — against a bare Django view rendering a 200-row table from memory
through the same middleware, timed in the same run. Also counts the queries of both pages for
20 and for 200 clients (the caseload's must not grow).

Run from the repository root::

    python bench/bench_caseload.py                    # 200 clients, 50 requests each
    python bench/bench_caseload.py --clients 500 --requests 20
    DATABASE_URL=postgres://localhost/test python bench/bench_caseload.py

It uses a fresh SQLite database in a temporary folder (or the ``DATABASE_URL`` you give: its
tables are created and the benchmark's rows written there). Prints a table and writes the figures
as JSON into ``bench/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")
ROOT = Path(__file__).resolve().parents[1]

BARE_TEMPLATE = """<!doctype html><html><head><title>Bare</title></head><body><table>
<thead><tr><th>Client</th><th>Stage</th><th>Last check-in</th><th>Signal</th><th>Flags</th></tr></thead>
<tbody>{% for r in rows %}<tr><th><a href="/w/clients/{{ r.id }}/">{{ r.name }}</a></th><td>{{ r.stage }}</td>
<td>{{ r.last|date:"j M Y" }}</td><td>{{ r.signal }}</td><td>{% for f in r.flags %}<span>{{ f }}</span>{% endfor %}</td></tr>
{% endfor %}</tbody></table></body></html>"""


def setup_django(data_dir: str) -> None:
    os.environ.setdefault("ALLIANCE_DATA_DIR", data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alliance_web.settings")
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()
    # As a test run does: keep one connection for the whole run (as a server with persistent
    # connections would), so that both pages are timed without reconnecting and queries are counted.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)


def install_bare_view(rows: int) -> None:
    """Mount ``/bench/bare/`` next to the project's URLs: a view rendering a table from memory."""
    from django.conf import settings
    from django.http import HttpResponse
    from django.template import engines
    from django.urls import include, path
    from django.utils import timezone

    template = engines["django"].from_string(BARE_TEMPLATE)
    now = timezone.now()
    data = [
        {
            "id": i,
            "name": f"Client {i}",
            "stage": "Stage 2 · Shared goals — suggested",
            "last": now,
            "signal": "On track",
            "flags": ["Rupture", "Perspective gap"],
        }
        for i in range(rows)
    ]

    def bare(request: Any) -> HttpResponse:
        return HttpResponse(template.render({"rows": data}, request))

    module = types.ModuleType("bench_caseload_urls")
    module.urlpatterns = [path("bench/bare/", bare), path("", include(settings.ROOT_URLCONF))]  # type: ignore[attr-defined]
    sys.modules["bench_caseload_urls"] = module
    settings.ROOT_URLCONF = "bench_caseload_urls"
    from django.urls import clear_url_caches

    clear_url_caches()


def build_practice(clients: int) -> tuple[Any, Any]:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from alliance_web.accounts.models import Role, User
    from alliance_web.care.models import Practice
    from alliance_web.workspace import sample

    practice = Practice.objects.create(name="Bench Practice", slug=f"bench-{time.time_ns()}")
    therapist = User.objects.create_user(
        username=f"bench_therapist_{practice.pk}",
        password="x" * 16,
        practice=practice,
        role=Role.THERAPIST,
        display_name="Bench Therapist",
    )
    TOTPDevice.objects.create(user=therapist, name="authenticator", confirmed=True)
    sample.add_caseload(therapist, clients, seed=7)
    return practice, therapist


def signed_in_client(user: Any) -> Any:
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user, confirmed=True).persistent_id
    session.save()
    return client


def time_get(client: Any, url: str, requests: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm-up (template compilation, caches)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    queries = len(ctx.captured_queries)  # now: the next request resets the query log
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
    times.sort()
    return {
        "median_ms": statistics.median(times) * 1000,
        "p90_ms": times[int(0.9 * (len(times) - 1))] * 1000,
        "min_ms": times[0] * 1000,
        "queries": queries,
        "bytes": len(response.content),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument(
        "--small", type=int, default=20, help="the smaller caseload for the query count"
    )
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS / "caseload.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="alliance-bench-") as data_dir:
        setup_django(data_dir)
        from django.core.management import call_command
        from rich.console import Console
        from rich.table import Table

        call_command("migrate", verbosity=0, interactive=False)
        install_bare_view(args.clients)
        from django.conf import settings

        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        console = Console(stderr=True)
        with console.status(f"Building a caseload of {args.small} and one of {args.clients} …"):
            _, small_therapist = build_practice(args.small)
            _, therapist = build_practice(args.clients)
        small = time_get(signed_in_client(small_therapist), "/w/", max(5, args.requests // 5))
        caseload = time_get(signed_in_client(therapist), "/w/", args.requests)
        bare = time_get(signed_in_client(therapist), "/bench/bare/", args.requests)
        import django

        from alliance import __version__

        result = {
            "benchmark": "caseload",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "python": platform.python_version(),
                "django": django.get_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            },
            "alliance": __version__,
            "clients": args.clients,
            "requests": args.requests,
            "caseload": caseload,
            "caseload_small": {**small, "clients": args.small},
            "bare": bare,
            "ratio_median": caseload["median_ms"] / bare["median_ms"],
        }
        table = Table(
            title=f"GET /w/ with {args.clients} open episodes ({args.requests} requests, in-process)"
        )
        for col in ("page", "median ms", "p90 ms", "min ms", "queries", "kB"):
            table.add_column(col, justify="right" if col != "page" else "left")
        rows = [
            (f"caseload, {args.small} clients", small),
            (f"caseload, {args.clients} clients", caseload),
            ("bare 200-row table", bare),
        ]
        for name, r in rows:
            table.add_row(
                name,
                f"{r['median_ms']:.1f}",
                f"{r['p90_ms']:.1f}",
                f"{r['min_ms']:.1f}",
                str(r["queries"]),
                f"{r['bytes'] / 1024:.0f}",
            )
        Console().print(table)
        Console().print(
            f"caseload / bare (median): {result['ratio_median']:.1f}×; "
            f"queries {small['queries']} for {args.small} clients, {caseload['queries']} for {args.clients}"
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
