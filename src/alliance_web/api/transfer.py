"""CSV in and out through the API: ``POST /api/v1/imports/scores/`` (historical scores, with a
dry run that only reports) and ``GET /api/v1/exports/research.csv`` / ``practice.csv``."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

import alliance as al
from alliance_web.api.auth import BearerTokenAuthentication, VerifiedSessionAuthentication
from alliance_web.api.errors import ApiError, handle
from alliance_web.api.errors import body as errors_body
from alliance_web.api.fhir.outcome import SafeJSONParser
from alliance_web.api.idempotency import idempotent
from alliance_web.api.schema import AllianceAutoSchema
from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.ratelimit import ExportLimitExceeded
from alliance_web.audit.trail import Actor, record
from alliance_web.care import exports, imports
from alliance_web.care.access import scope_for


class MappingSerializer(serializers.Serializer):
    client = serializers.CharField(default="client", max_length=100)
    date = serializers.CharField(default="date", max_length=100)
    instrument = serializers.CharField(
        required=False, allow_null=True, default="instrument", max_length=100
    )
    session = serializers.CharField(required=False, allow_null=True, default=None, max_length=100)
    total = serializers.CharField(required=False, allow_null=True, default="total", max_length=100)
    items = serializers.DictField(
        child=serializers.CharField(max_length=100), required=False, default=dict
    )
    instrument_names = serializers.DictField(
        child=serializers.CharField(max_length=40), required=False, default=dict
    )
    fixed_instrument = serializers.CharField(
        required=False, allow_null=True, default=None, max_length=40
    )


class ScoreImportSerializer(serializers.Serializer):
    csv = serializers.CharField(max_length=imports.MAX_BYTES, trim_whitespace=False)
    mapping = MappingSerializer(required=False)
    dry_run = serializers.BooleanField(
        default=True, help_text="Only validate and report (the default); false stores the rows."
    )


class ProblemSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    column = serializers.CharField()
    message = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    ready = serializers.IntegerField()
    already_present = serializers.IntegerField()
    clients = serializers.IntegerField()
    by_instrument = serializers.DictField(child=serializers.IntegerField())
    errors = ProblemSerializer(many=True)
    n_errors = serializers.IntegerField()
    warnings = ProblemSerializer(many=True)
    applied = serializers.BooleanField()


class _Base(APIView):
    authentication_classes = [BearerTokenAuthentication, VerifiedSessionAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [SafeJSONParser]
    schema = AllianceAutoSchema()

    def get_exception_handler(self) -> Any:
        return handle

    def deny(self, entity: str, why: str) -> ApiError:
        record(
            Actor.of(self.request.user),
            Action.EXECUTE,
            entity,
            outcome=Outcome.DENY,
            detail={"reason": "not_permitted"},
        )
        return ApiError(403, "forbidden", why)


class ScoreImport(_Base):
    """Import historical scores from another system (CSV; validated before anything is stored)."""

    @extend_schema(
        summary="Import historical scores (CSV; dry run by default)",
        request=ScoreImportSerializer,
        responses={
            200: OpenApiResponse(ImportReportSerializer, description="Dry run: the report."),
            201: OpenApiResponse(ImportReportSerializer, description="Stored, all rows."),
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        scope = scope_for(request.user)
        if scope.kind != "therapist":
            raise self.deny("score_import", "Scores are imported by the clients' therapists.")
        form = ScoreImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        mapping = imports.ColumnMapping(**(data.get("mapping") or {}))
        report = imports.import_scores(
            data["csv"], mapping, request.user, scope, dry_run=data["dry_run"]
        )
        if not report.ok:
            # The error shape every endpoint uses, with the whole report attached.
            out = errors_body(
                400,
                "invalid_file",
                f"{len(report.errors)} problem(s) in the file; nothing was imported. The "
                "report lists each by line and column.",
            )
            out["report"] = report.as_dict()
            return Response(out, status=400)
        return Response(report.as_dict(), status=201 if report.applied else 200)


def _too_many(exc: ExportLimitExceeded) -> ApiError:
    """429 with ``Retry-After`` (the refusal is already in the audit trail)."""
    return ApiError(
        429, "too_many_exports", exc.message, headers={"Retry-After": str(exc.retry_after)}
    )


def _csv_response(text: str, name: str) -> HttpResponse:
    response = HttpResponse(text.encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class ResearchExport(_Base):
    """De-identified research data of consenting clients (clinical supervisors)."""

    export_limited = True

    @extend_schema(
        summary="Research export (de-identified CSV)",
        parameters=[
            OpenApiParameter(
                "instrument", OpenApiTypes.STR, enum=sorted(al.instruments()), required=False
            )
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request) -> HttpResponse:
        instrument = request.query_params.get("instrument") or None
        if instrument is not None and instrument not in al.instruments():
            raise ApiError(400, "invalid", "Unknown instrument.", {"instrument": ["unknown"]})
        try:
            text = exports.research_csv(
                request.user, scope_for(request.user), instrument=instrument
            )
        except exports.ExportRefused as exc:
            raise self.deny("research_export", str(exc)) from None
        except ExportLimitExceeded as exc:
            raise _too_many(exc) from None
        return _csv_response(text, "alliance-research.csv")


class PracticeExport(_Base):
    """The practice's identified record of clients, episodes and scores (practice admins)."""

    export_limited = True

    @extend_schema(
        summary="Practice export (identified CSV, admins)",
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request) -> HttpResponse:
        try:
            text = exports.practice_csv(request.user)
        except exports.ExportRefused as exc:
            raise self.deny("practice_export", str(exc)) from None
        except ExportLimitExceeded as exc:
            raise _too_many(exc) from None
        return _csv_response(text, "alliance-practice.csv")
