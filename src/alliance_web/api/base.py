"""What every REST endpoint shares: authentication, the person's scope, allow-listed filters and
ordering, pagination, audited reads and JSON errors.

Filtering and ordering never pass request data to the ORM as field names (SECURITY.md REQ-IJ1):
each view declares :class:`Filter` objects and an ``orderings`` map, and a request can only
choose among those keys; anything else is a 400.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import permissions, viewsets
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from alliance_web.api.auth import BearerTokenAuthentication, VerifiedSessionAuthentication
from alliance_web.api.errors import ApiError, handle
from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record, record_many
from alliance_web.care.access import Scope, get_or_404, scope_for

MAX_PAGE = 200


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = MAX_PAGE


@dataclass(frozen=True)
class Filter:
    """One allowed query parameter: ``?param=value`` becomes ``.filter(lookup=value)``.

    ``kind`` says how the value is parsed: ``uuid``, ``choice`` (one of ``choices``), ``text``,
    ``date`` (``from``/``to`` style bounds take ``lookup="field__date__gte"``) or ``int``.
    """

    param: str
    lookup: str
    kind: str = "text"
    choices: tuple[str, ...] = ()
    description: str = ""

    def parse(self, raw: str) -> Any:
        if self.kind == "uuid":
            try:
                return uuid.UUID(raw)
            except ValueError:
                raise self._bad("a UUID") from None
        if self.kind == "choice":
            if raw not in self.choices:
                raise self._bad("one of " + ", ".join(self.choices))
            return raw
        if self.kind == "date":
            try:
                value = parse_date(raw)
            except ValueError:
                value = None
            if value is None:
                raise self._bad("a date (YYYY-MM-DD)")
            return value
        if self.kind == "int":
            if not raw.isdigit() or len(raw) > 6:
                raise self._bad("a whole number")
            return int(raw)
        if len(raw) > 120 or "\x00" in raw:
            raise self._bad("at most 120 characters of text")
        return raw

    def _bad(self, what: str) -> ApiError:
        return ApiError(400, "invalid", f"?{self.param}= must be {what}.", {self.param: [what]})


def parse_when(raw: str) -> dt.datetime | None:
    """An ISO date or date-time as an aware datetime (a date means its start, server time zone)."""
    try:
        value = parse_datetime(raw)
    except ValueError:
        return None
    if value is None:
        try:
            day = parse_date(raw)
        except ValueError:
            return None
        if day is None:
            return None
        value = dt.datetime.combine(day, dt.time.min)
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


class ScopedViewSet(viewsets.GenericViewSet):
    """Base of the REST viewsets: scoped queries, allow-listed filters, audited reads."""

    authentication_classes = [BearerTokenAuthentication, VerifiedSessionAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = Pagination
    lookup_field = "public_id"
    lookup_url_kwarg = "public_id"
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    #: Audit entity name of the resource ("client", "alert", …).
    entity = ""
    filters: Sequence[Filter] = ()
    #: Ordering keys a request may choose (``?ordering=key`` or ``-key``) → model fields.
    orderings: dict[str, tuple[str, ...]] = {}
    default_ordering = ""

    def get_exception_handler(self) -> Callable[..., Any]:
        return handle

    # -- scope -----------------------------------------------------------------------------
    @property
    def scope(self) -> Scope:
        if not hasattr(self, "_scope"):
            self._scope = scope_for(self.request.user)
        return self._scope

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not hasattr(self, (request.method or "").lower()):
            return  # answered 405 by the handler lookup, before any data is touched
        if self.entity and not self.scope.sees_clinical:
            record(
                Actor.of(request.user),
                Action.READ if request.method in ("GET", "HEAD") else Action.UPDATE,
                self.entity,
                kwargs.get(self.lookup_url_kwarg, ""),
                outcome=Outcome.DENY,
                detail={"reason": "role_sees_no_clinical_content"},
            )
            raise ApiError(
                403,
                "forbidden",
                "Your role does not see clinical content (practice admins configure the practice; "
                "ask for a clinician account to use this endpoint).",
            )

    def scoped(self) -> QuerySet[Any]:
        """The rows of this resource the person may see (from :mod:`alliance_web.care.access`)."""
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Any]:
        return self.scoped()

    def get_object(self) -> Any:
        raw = self.kwargs[self.lookup_url_kwarg]
        try:
            public_id = uuid.UUID(str(raw))
        except ValueError:
            raise ApiError(404, "not_found", "Not found (or not yours to see).") from None
        return get_or_404(self.scope, self.get_queryset(), entity=self.entity, public_id=public_id)

    # -- filters and ordering -----------------------------------------------------------------
    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        params = self.request.query_params
        for f in self.filters:
            raw = params.get(f.param)
            if not f.lookup or raw is None or raw == "":
                continue
            queryset = queryset.filter(**{f.lookup: f.parse(raw)})
        queryset = self.filter_extra(queryset, params)
        wanted = params.get("ordering") or self.default_ordering
        key = wanted.removeprefix("-")
        if key not in self.orderings:
            allowed = ", ".join(sorted(self.orderings))
            raise ApiError(
                400,
                "invalid",
                f"?ordering= must be one of {allowed} (prefix - for descending).",
                {"ordering": [f"one of {allowed}, optionally prefixed with -"]},
            )
        fields = self.orderings[key]
        if wanted.startswith("-"):
            fields = tuple(f[1:] if f.startswith("-") else "-" + f for f in fields)
        return queryset.order_by(*fields)

    def filter_extra(self, queryset: QuerySet[Any], params: Any) -> QuerySet[Any]:
        """Filters that need more than one lookup (date ranges); override when needed."""
        return queryset

    @classmethod
    def ordering_choices(cls) -> list[str]:
        return sorted([*cls.orderings, *("-" + k for k in cls.orderings)])

    # -- audited reads ------------------------------------------------------------------------
    def patient_of(self, obj: Model) -> Any:
        """The client's public id for an object of this resource."""
        raise NotImplementedError

    def audit_list(self, objects: Iterable[Model]) -> None:
        """One audit row per client shown in a list response."""
        seen: dict[str, None] = {}
        for obj in objects:
            seen.setdefault(str(self.patient_of(obj)), None)
        record_many(
            Actor.of(self.request.user),
            Action.READ,
            self.entity,
            [("", patient) for patient in seen],
            purpose="api_list",
        )

    def audit_read(self, obj: Any) -> None:
        record(
            Actor.of(self.request.user),
            Action.READ,
            self.entity,
            obj.public_id,
            self.patient_of(obj),
            purpose="api_read",
        )

    def forbid(self, entity_id: Any, patient_id: Any, why: str) -> ApiError:
        """403 with an audit 'deny': the person may see this row but not change it."""
        record(
            Actor.of(self.request.user),
            Action.UPDATE,
            self.entity,
            entity_id,
            patient_id,
            outcome=Outcome.DENY,
            detail={"reason": "not_permitted"},
        )
        return ApiError(403, "forbidden", why)

    def list_response(self, serializer_class: Any) -> Any:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = list(page if page is not None else queryset)
        self.audit_list(rows)
        data = serializer_class(rows, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)
