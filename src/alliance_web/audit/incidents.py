"""The privacy breach / incident register for practice admins (SECURITY.md REQ-BR1).

``/privacy/incidents/``: the practice's incidents with where notifying the people affected stands
(PHIPA s. 12(2) "at the first reasonable opportunity"; HIPAA's 60 days, 45 CFR §164.404(b)),
a form to record one and to update it, and the yearly CSV the IPC's annual statistics need
(O. Reg. 329/04 s. 6.4: stolen, lost, used without authority, disclosed without authority, for the
previous calendar year), with counts per s. 6.3 category as well.

Only practice admins of the practice open these pages; anyone else gets 403 with an audit *deny*
row, and an incident of another practice (or none) is a 404, also audited. Reads, creations,
edits (the names of the fields changed, never the description) and exports are in the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from alliance_web import csvsafe
from alliance_web.audit.models import (
    Action,
    Incident,
    IncidentCategory,
    IncidentKind,
    NoticeStatus,
    Outcome,
)
from alliance_web.audit.trail import Actor, record
from alliance_web.audit.views import _deny, _is_admin, staff_view

LIST_LIMIT = 500
# PHIPA's notification duties began with the Act (November 1, 2004).
FIRST_YEAR = 2004

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class IncidentForm(forms.ModelForm):
    """Every field a practice admin records; the practice and the reporter come from the view."""

    class Meta:
        model = Incident
        fields = [
            "discovered_on",
            "occurred_on",
            "category",
            "kind",
            "description",
            "individuals_affected",
            "individuals_notified_on",
            "regulator",
            "regulator_notified_on",
            "status",
            "closed_on",
        ]
        labels = {
            "discovered_on": "Discovered on",
            "occurred_on": "Happened on",
            "category": "Notifiable to the IPC because",
            "kind": "What happened (IPC statistics)",
            "individuals_affected": "Number of individuals affected",
            "individuals_notified_on": "Individuals notified on",
            "regulator": "Regulator notified",
            "regulator_notified_on": "Regulator notified on",
            "closed_on": "Closed on",
        }
        widgets = {
            "discovered_on": DATE,
            "occurred_on": DATE,
            "individuals_notified_on": DATE,
            "regulator_notified_on": DATE,
            "closed_on": DATE,
            "description": forms.Textarea(attrs={"rows": 6}),
        }
        error_messages = {
            "discovered_on": {
                "required": "Give the date the practice learned of the incident.",
                "invalid": "Enter a date as YYYY-MM-DD.",
            },
            "description": {"required": "Describe what happened."},
            "category": {"required": "Choose a category (or 'Other / not notifiable')."},
            "kind": {"required": "Choose what happened."},
            "individuals_affected": {
                "required": "Give the number of individuals affected (0 if none).",
                "min_value": "The number of individuals cannot be negative.",
                "invalid": "Enter a whole number.",
            },
        }


class ExportForm(forms.Form):
    """The calendar year to count (the current year gives the counts so far)."""

    def __init__(self, *args: Any, max_year: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["year"] = forms.IntegerField(
            min_value=FIRST_YEAR,
            max_value=max_year,
            error_messages={
                "required": "Choose a year.",
                "invalid": "Enter a year such as 2025.",
                "min_value": f"The register starts in {FIRST_YEAR} (PHIPA came into force then).",
                "max_value": "That year has not begun yet.",
            },
        )


def _today(request: HttpRequest) -> date:
    return Incident(practice=request.user.practice).today()


def _refuse(request: HttpRequest, entity: str = "incident", entity_id: Any = "") -> HttpResponse:
    return _deny(request, entity, entity_id)


def _incident(request: HttpRequest, incident_id: int) -> Incident:
    """The practice's incident, or an audited 404 (another practice's looks like none at all)."""
    incident = (
        Incident.objects.filter(pk=incident_id, practice_id=request.user.practice_id)
        .select_related("practice", "reported_by")
        .first()
    )
    if incident is None:
        record(
            Actor.of(request.user),
            Action.UPDATE if request.method == "POST" else Action.READ,
            "incident",
            str(incident_id),
            outcome=Outcome.DENY,
            detail={"reason": "out_of_scope_or_missing"},
        )
        raise Http404("Not found")
    return incident


def _list_page(
    request: HttpRequest, export_form: ExportForm | None = None, status: int = 200
) -> HttpResponse:
    today = _today(request)
    rows = list(
        Incident.objects.filter(practice_id=request.user.practice_id)
        .select_related("practice", "reported_by")
        .defer("description")[:LIST_LIMIT]
    )
    items: list[tuple[Incident, NoticeStatus]] = [(i, i.deadline(today)) for i in rows]
    record(
        Actor.of(request.user),
        Action.READ,
        "incident",
        "",
        detail={"listed": len(rows), "overdue": sum(n.hipaa_overdue for _, n in items)},
    )
    if export_form is None:
        export_form = ExportForm(initial={"year": today.year - 1}, max_year=today.year)
    return render(
        request,
        "privacy/incidents.html",
        {
            "items": items,
            "export_form": export_form,
            "limited": len(rows) >= LIST_LIMIT,
        },
        status=status,
    )


@staff_view
def incidents(request: HttpRequest) -> HttpResponse:
    """The register, newest discovery first, with the notification guidance per incident."""
    if not _is_admin(request.user):
        return _refuse(request)
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET"})
    return _list_page(request)


def _form_page(
    request: HttpRequest, form: IncidentForm, incident: Incident | None, status: int = 200
) -> HttpResponse:
    notice = incident.deadline() if incident is not None and incident.pk else None
    return render(
        request,
        "privacy/incident_form.html",
        {"form": form, "incident": incident, "notice": notice},
        status=status,
    )


def _invalid(request: HttpRequest, form: IncidentForm, incident: Incident | None) -> HttpResponse:
    record(
        Actor.of(request.user),
        Action.UPDATE if incident is not None else Action.CREATE,
        "incident",
        incident.pk if incident is not None else "",
        outcome=Outcome.INVALID,
        detail={"fields": sorted(form.errors)},
    )
    return _form_page(request, form, incident, status=400)


@staff_view
def incident_new(request: HttpRequest) -> HttpResponse:
    """Record an incident; it is stored, with its audit row, only when every field is valid."""
    if not _is_admin(request.user):
        return _refuse(request)
    blank = Incident(practice=request.user.practice, reported_by=request.user)
    if request.method != "POST":
        return _form_page(request, IncidentForm(instance=blank), None)
    form = IncidentForm(request.POST, instance=blank)
    if not form.is_valid():
        return _invalid(request, form, None)
    with transaction.atomic():
        incident = form.save()
        record(
            Actor.of(request.user),
            Action.CREATE,
            "incident",
            incident.pk,
            detail={"category": incident.category, "kind": incident.kind},
        )
    messages.success(request, "Incident recorded.")
    return redirect("privacy:incidents")


@staff_view
def incident_edit(request: HttpRequest, incident_id: int) -> HttpResponse:
    """Update an incident; the audit row names the fields changed, never their values."""
    if not _is_admin(request.user):
        return _refuse(request, entity_id=incident_id)
    incident = _incident(request, incident_id)
    if request.method != "POST":
        record(Actor.of(request.user), Action.READ, "incident", incident.pk)
        return _form_page(request, IncidentForm(instance=incident), incident)
    form = IncidentForm(request.POST, instance=incident)
    if not form.is_valid():
        return _invalid(request, form, incident)
    changed = sorted(form.changed_data)
    if changed:
        with transaction.atomic():
            form.save()
            record(
                Actor.of(request.user),
                Action.UPDATE,
                "incident",
                incident.pk,
                detail={"fields": changed},
            )
        messages.success(request, "Incident updated.")
    else:
        messages.info(request, "Nothing changed.")
    return redirect("privacy:incidents")


EXPORT_HEADER = [
    "practice",
    "year",
    "category_code",
    "category",
    *[f"kind_{k}" for k in IncidentKind.values],
    "incidents",
    "individuals_affected",
]


def yearly_counts(practice_id: int, year: int) -> list[dict[str, Any]]:
    """Counts per s. 6.3 category and per kind for incidents discovered in ``year``.

    One entry per category (zeros included, so the table always has the same shape) and a final
    ``all`` entry; the ``all`` row's kind counts are the four numbers of the IPC's annual report.
    """
    table: dict[str, dict[str, Any]] = {
        code: {
            "code": code,
            "label": label,
            "kinds": dict.fromkeys(IncidentKind.values, 0),
            "n": 0,
            "people": 0,
        }
        for code, label in [*IncidentCategory.choices, ("all", "All incidents")]
    }
    rows = Incident.objects.filter(practice_id=practice_id, discovered_on__year=year).values_list(
        "category", "kind", "individuals_affected"
    )
    for category, kind, people in rows:
        for key in (category, "all"):
            entry = table[key]
            entry["kinds"][kind] += 1
            entry["n"] += 1
            entry["people"] += people
    return list(table.values())


def _export_rows(practice: str, year: int, counts: list[dict[str, Any]]) -> Iterator[list[Any]]:
    for entry in counts:
        yield [
            practice,
            year,
            entry["code"],
            entry["label"],
            *[entry["kinds"][k] for k in IncidentKind.values],
            entry["n"],
            entry["people"],
        ]


@staff_view
def incident_export(request: HttpRequest) -> HttpResponse:
    """``?year=YYYY``: the yearly counts as formula-safe CSV (the previous year by default)."""
    if not _is_admin(request.user):
        return _refuse(request, "incident_export")
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET"})
    this_year = _today(request).year
    form = ExportForm(request.GET or {"year": this_year - 1}, max_year=this_year)
    if not form.is_valid():
        record(
            Actor.of(request.user),
            Action.EXECUTE,
            "incident_export",
            "",
            outcome=Outcome.INVALID,
            detail={"fields": sorted(form.errors)},
        )
        return _list_page(request, form, status=400)
    year = form.cleaned_data["year"]
    counts = yearly_counts(request.user.practice_id, year)
    record(
        Actor.of(request.user),
        Action.EXECUTE,
        "incident_export",
        "",
        purpose="ipc_annual_report",
        detail={"year": year, "incidents": counts[-1]["n"]},
    )
    return csvsafe.response(
        f"incidents-{year}.csv",
        EXPORT_HEADER,
        _export_rows(str(request.user.practice), year, counts),
    )


__all__ = ["incident_edit", "incident_export", "incident_new", "incidents", "yearly_counts"]
