"""What the REST API reads and writes. Rows are addressed by their random ``public_id`` (``id``);
staff by username. Output serializers are read-only; input serializers only validate shapes —
the services in :mod:`alliance_web.care.services` decide and audit.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

import alliance as al
from alliance_web.care.models import (
    ActionKind,
    CheckInKind,
    Concern,
    ConsentScope,
    EndReason,
    Modality,
    SessionStatus,
)

MAX_SESSIONS = 104


def _username(user: Any) -> str | None:
    return None if user is None else user.get_username()


class ClientSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    preferred_name = serializers.CharField(read_only=True)
    date_of_birth = serializers.DateField(read_only=True, allow_null=True)
    email = serializers.CharField(read_only=True)
    phone = serializers.CharField(read_only=True)
    therapist = serializers.SerializerMethodField()
    progress_view_enabled = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    last_contact_at = serializers.DateTimeField(read_only=True)

    def get_therapist(self, obj: Any) -> str:
        return obj.therapist.get_username()


class ClientCreateSerializer(serializers.Serializer):
    preferred_name = serializers.CharField(max_length=120, trim_whitespace=True)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    phone = serializers.RegexField(
        r"^\+?[0-9 ()\-]{4,30}$", required=False, allow_blank=True, default="", max_length=32
    )
    date_of_birth = serializers.DateField(required=False, allow_null=True, default=None)
    therapist = serializers.CharField(
        required=False,
        max_length=150,
        help_text="Username of the primary therapist (default: you). Supervisors may name "
        "another therapist of the practice.",
    )
    consents = serializers.ListField(
        child=serializers.ChoiceField(choices=ConsentScope.values),
        required=False,
        max_length=len(ConsentScope.values),
        help_text="Consent scopes given now (default: care and supervision).",
    )


class EpisodeSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    client = serializers.UUIDField(source="client.public_id", read_only=True)
    therapist = serializers.SerializerMethodField()
    concerns = serializers.ListField(child=serializers.CharField(), read_only=True)
    measure_plan = serializers.ListField(child=serializers.CharField(), read_only=True)
    alliance_instrument = serializers.CharField(read_only=True)
    therapist_alliance_instrument = serializers.CharField(read_only=True)
    session_interval_days = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True)
    opened_at = serializers.DateTimeField(read_only=True)
    closed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    end_reason = serializers.CharField(read_only=True)
    outcome = serializers.JSONField(read_only=True, allow_null=True)

    def get_therapist(self, obj: Any) -> str:
        return obj.therapist.get_username()


def _instrument_ids() -> list[str]:
    return sorted(al.instruments())


class EpisodeCreateSerializer(serializers.Serializer):
    client = serializers.UUIDField()
    concerns = serializers.ListField(
        child=serializers.ChoiceField(choices=Concern.values), min_length=1, max_length=8
    )
    measure_plan = serializers.ListField(
        child=serializers.CharField(max_length=40),
        required=False,
        max_length=6,
        help_text="Instrument ids asked before each session (default: by concern).",
    )
    goals = serializers.ListField(
        child=serializers.CharField(max_length=300), required=False, max_length=3
    )
    first_session_at = serializers.DateTimeField(required=False)
    sessions = serializers.IntegerField(min_value=1, max_value=MAX_SESSIONS, default=12)
    interval_days = serializers.IntegerField(min_value=1, max_value=90, default=7)

    def validate_measure_plan(self, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(_instrument_ids()))
        if unknown:
            raise serializers.ValidationError(f"Unknown instrument(s): {', '.join(unknown)}.")
        return value


class EpisodeCloseSerializer(serializers.Serializer):
    end_reason = serializers.ChoiceField(choices=EndReason.values)


class SessionSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    episode = serializers.UUIDField(source="episode.public_id", read_only=True)
    number = serializers.IntegerField(read_only=True)
    scheduled_at = serializers.DateTimeField(read_only=True)
    modality = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    invited_at = serializers.DateTimeField(read_only=True, allow_null=True)


class AttendanceSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SessionStatus.values)


class CheckInSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    episode = serializers.UUIDField(source="episode.public_id", read_only=True)
    session = serializers.SerializerMethodField()
    kind = serializers.CharField(read_only=True)
    instruments = serializers.ListField(child=serializers.CharField(), read_only=True)
    includes_goals = serializers.BooleanField(read_only=True)
    includes_note = serializers.BooleanField(read_only=True)
    status = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    opens_at = serializers.DateTimeField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)
    completed_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_session(self, obj: Any) -> str | None:
        return None if obj.session is None else str(obj.session.public_id)


class CheckInIssuedSerializer(CheckInSerializer):
    link = serializers.CharField(
        read_only=True, help_text="The client's single-use link (only in this response)."
    )


class CheckInCreateSerializer(serializers.Serializer):
    episode = serializers.UUIDField()
    kind = serializers.ChoiceField(
        choices=[CheckInKind.PRE_SESSION, CheckInKind.POST_SESSION], default=CheckInKind.PRE_SESSION
    )
    session = serializers.UUIDField(required=False, allow_null=True, default=None)
    hours_valid = serializers.IntegerField(required=False, min_value=1, max_value=24 * 14)


class SubmissionSerializer(serializers.Serializer):
    answers = serializers.DictField(
        child=serializers.DictField(
            child=serializers.FloatField(allow_null=True, min_value=-1e6, max_value=1e6)
        ),
        help_text="Answers per instrument id: {item id: value}.",
    )
    goal_ratings = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=10),
        required=False,
        default=dict,
        help_text="Goal id → rating 0–10.",
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class ScoreSerializer(serializers.Serializer):
    id = serializers.SerializerMethodField(help_text="check-in id + '.' + instrument id")
    episode = serializers.UUIDField(source="episode.public_id", read_only=True)
    client = serializers.UUIDField(source="episode.client.public_id", read_only=True)
    checkin = serializers.UUIDField(source="response.checkin.public_id", read_only=True)
    instrument = serializers.CharField(read_only=True)
    rater = serializers.CharField(read_only=True)
    session_number = serializers.IntegerField(read_only=True, allow_null=True)
    administered_at = serializers.DateTimeField(read_only=True)
    total = serializers.FloatField(read_only=True, allow_null=True)
    subscales = serializers.DictField(child=serializers.FloatField(allow_null=True), read_only=True)
    severity = serializers.CharField(read_only=True)
    flags = serializers.ListField(child=serializers.CharField(), read_only=True)
    prorated = serializers.BooleanField(read_only=True)
    error = serializers.CharField(read_only=True)
    signal = serializers.CharField(read_only=True)
    method = serializers.CharField(read_only=True)
    engine_version = serializers.CharField(read_only=True)

    def get_id(self, obj: Any) -> str:
        return f"{obj.response.checkin.public_id.hex}.{obj.instrument}"


class SubmitResultSerializer(serializers.Serializer):
    checkin = CheckInSerializer(read_only=True)
    scores = ScoreSerializer(many=True, read_only=True)
    alerts = serializers.ListField(child=serializers.UUIDField(), read_only=True)
    duplicate = serializers.BooleanField(
        read_only=True, help_text="True when the check-in was already submitted (nothing stored)."
    )


class AlertActionSerializer(serializers.Serializer):
    kind = serializers.CharField(read_only=True)
    note = serializers.CharField(read_only=True)
    by = serializers.SerializerMethodField()
    at = serializers.DateTimeField(read_only=True)

    def get_by(self, obj: Any) -> str:
        return obj.by.get_username()


class AlertSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    episode = serializers.UUIDField(source="episode.public_id", read_only=True)
    client = serializers.UUIDField(source="episode.client.public_id", read_only=True)
    kind = serializers.CharField(read_only=True)
    priority = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True)
    session_number = serializers.IntegerField(read_only=True, allow_null=True)
    detail = serializers.JSONField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    acknowledged_at = serializers.DateTimeField(read_only=True, allow_null=True)
    acknowledged_by = serializers.SerializerMethodField()
    actions = AlertActionSerializer(many=True, read_only=True)

    def get_acknowledged_by(self, obj: Any) -> str | None:
        return _username(obj.acknowledged_by)


class AlertActionCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ActionKind.values)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class GoalRatingSerializer(serializers.Serializer):
    value = serializers.IntegerField(read_only=True)
    rated_at = serializers.DateTimeField(read_only=True)


class GoalSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    episode = serializers.UUIDField(source="episode.public_id", read_only=True)
    position = serializers.IntegerField(read_only=True)
    text = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    closed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    ratings = GoalRatingSerializer(many=True, read_only=True)


class GoalWriteSerializer(serializers.Serializer):
    episode = serializers.UUIDField()
    position = serializers.IntegerField(min_value=1, max_value=3)
    text = serializers.CharField(max_length=300)


class ErrorSerializer(serializers.Serializer):
    status = serializers.IntegerField()
    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


__all__ = [
    "AlertActionCreateSerializer",
    "AlertSerializer",
    "AttendanceSerializer",
    "CheckInCreateSerializer",
    "CheckInIssuedSerializer",
    "CheckInSerializer",
    "ClientCreateSerializer",
    "ClientSerializer",
    "EpisodeCloseSerializer",
    "EpisodeCreateSerializer",
    "EpisodeSerializer",
    "ErrorSerializer",
    "GoalSerializer",
    "GoalWriteSerializer",
    "Modality",
    "ScoreSerializer",
    "SessionSerializer",
    "SubmissionSerializer",
    "SubmitResultSerializer",
]
