"""Pages that are not about any one client: health, the instrument library and its previews."""

from __future__ import annotations

from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

import alliance as al
from alliance import __version__


def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 otherwise (for load balancers and the run command)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any database failure means "not healthy"
        return JsonResponse(
            {"status": "error", "database": "unavailable", "detail": type(exc).__name__}, status=503
        )
    return JsonResponse({"status": "ok", "database": connection.vendor, "version": __version__})


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("workspace:home") if _has_workspace() else redirect("instrument_list")
    return render(request, "home.html")


def _has_workspace() -> bool:
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("workspace:home")
    except NoReverseMatch:
        return False
    return True


def instrument_list(request: HttpRequest) -> HttpResponse:
    library = al.instruments()
    groups: dict[str, list[al.Instrument]] = {}
    for inst in library.values():
        groups.setdefault(inst.kind, []).append(inst)
    order = ["outcome", "goals", "alliance", "session"]
    return render(
        request,
        "instruments/list.html",
        {
            "groups": [(kind, groups[kind]) for kind in order if kind in groups],
            "count": len(library),
        },
    )


def instrument_preview(request: HttpRequest, instrument_id: str) -> HttpResponse:
    try:
        inst = al.instrument(instrument_id)
    except al.UnknownInstrument:
        raise Http404("No such instrument") from None
    return render(request, "instruments/preview.html", {"inst": inst})
