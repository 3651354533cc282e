"""REST API v1: clients, episodes, sessions, check-ins (administrations), scores, alerts, goals.

Each viewset reads through the person's scope (:mod:`alliance_web.care.access`), audits what it
shows (one row per client on a list page) and changes data only through the services, which audit
the change in the same transaction. A person who may read an episode but does not treat it (a
supervisor) gets 403 on writes, audited.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from alliance_web.accounts.models import Role, User
from alliance_web.api import serializers as s
from alliance_web.api.base import Filter, ScopedViewSet, parse_when
from alliance_web.api.errors import ApiError
from alliance_web.api.idempotency import idempotent
from alliance_web.api.schema import AllianceAutoSchema
from alliance_web.care import services
from alliance_web.care.access import get_or_404
from alliance_web.care.models import (
    AlertKind,
    AlertStatus,
    CheckInKind,
    CheckInStatus,
    ConsentScope,
    EpisodeStatus,
    GoalRating,
    SessionStatus,
)


def _mark_idempotent(fn: Any) -> Any:
    wrapped = idempotent(fn)
    wrapped.idempotent = True
    return wrapped


def _date_range(qs: QuerySet[Any], params: Any, field: str) -> QuerySet[Any]:
    for param, op in (("from", "gte"), ("to", "lt")):
        raw = params.get(param)
        if not raw:
            continue
        when = parse_when(raw)
        if when is None:
            raise ApiError(
                400, "invalid", f"?{param}= must be an ISO date or date-time.", {param: ["date"]}
            )
        qs = qs.filter(**{f"{field}__{op}": when})
    return qs


# Parsed by _date_range (lookup "" = declared for the OpenAPI document only).
_DATE_PARAMS = (
    Filter("from", "", "date", description="On or after this date (ISO date or date-time)."),
    Filter("to", "", "date", description="Before this date (ISO date or date-time)."),
)


class ApiViewSet(ScopedViewSet):
    schema = AllianceAutoSchema()
    parser_classes = [JSONParser]

    def created(self, data: Any) -> Response:
        return Response(data, status=201)

    def need_treat(self, episode: Any, obj: Any = None) -> None:
        if not self.scope.may_treat(episode):
            raise self.forbid(
                (obj if obj is not None else episode).public_id,
                episode.client.public_id,
                "Only the client's treating therapist may do this.",
            )

    def episode_in_scope(self, public_id: Any) -> Any:
        return get_or_404(
            self.scope,
            self.scope.episodes().select_related("client", "therapist"),
            entity="episode",
            public_id=public_id,
        )


# --------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Clients you may see", responses=s.ClientSerializer(many=True)),
    retrieve=extend_schema(summary="One client", responses=s.ClientSerializer),
    create=extend_schema(
        summary="Add a client",
        request=s.ClientCreateSerializer,
        responses={201: s.ClientSerializer},
    ),
)
class ClientViewSet(ApiViewSet):
    """Clients you may see: your caseload, or your practice's clients as a supervisor."""

    entity = "client"
    serializer_class = s.ClientSerializer
    filters = (
        Filter("therapist", "therapist__username", "text", description="Therapist's username."),
        Filter("name", "preferred_name__icontains", "text", description="Part of the name."),
    )
    orderings = {
        "name": ("preferred_name", "pk"),
        "created": ("created_at", "pk"),
        "last_contact": ("last_contact_at", "pk"),
    }
    default_ordering = "name"

    def scoped(self) -> QuerySet[Any]:
        return self.scope.clients().select_related("therapist")

    def patient_of(self, obj: Any) -> Any:
        return obj.public_id

    def list(self, request: Request) -> Response:
        return self.list_response(s.ClientSerializer)

    def retrieve(self, request: Request, public_id: str) -> Response:
        client = self.get_object()
        self.audit_read(client)
        return Response(s.ClientSerializer(client).data)

    @_mark_idempotent
    def create(self, request: Request) -> Response:
        form = s.ClientCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        therapist = request.user
        if data.get("therapist") and data["therapist"] != request.user.get_username():
            if self.scope.kind != "supervisor":
                raise ApiError(
                    403, "forbidden", "Only supervisors may add clients for another therapist."
                )
            therapist = User.objects.filter(
                username=data["therapist"],
                practice_id=request.user.practice_id,
                is_active=True,
                role__in=[Role.THERAPIST, Role.SUPERVISOR, Role.ADMIN],
            ).first()
            if therapist is None or not therapist.sees_caseload:
                raise ApiError(
                    400,
                    "invalid",
                    "No active therapist with that username in your practice.",
                    {"therapist": ["unknown therapist"]},
                )
        client = services.create_client(
            request.user,
            preferred_name=data["preferred_name"],
            therapist=therapist,
            email=data["email"],
            phone=data["phone"],
            date_of_birth=data["date_of_birth"],
            consents=data.get("consents", (ConsentScope.CARE, ConsentScope.SUPERVISION)),
        )
        return self.created(s.ClientSerializer(client).data)


# --------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Episodes of care", responses=s.EpisodeSerializer(many=True)),
    retrieve=extend_schema(summary="One episode", responses=s.EpisodeSerializer),
    create=extend_schema(
        summary="Open an episode of care (with its session schedule and goals)",
        request=s.EpisodeCreateSerializer,
        responses={201: s.EpisodeSerializer},
    ),
    close=extend_schema(
        summary="Close an episode (computes its outcome)",
        request=s.EpisodeCloseSerializer,
        responses={200: s.EpisodeSerializer},
    ),
)
class EpisodeViewSet(ApiViewSet):
    """Episodes of care: a course of therapy with its measure plan, schedule and outcome."""

    entity = "episode"
    serializer_class = s.EpisodeSerializer
    filters = (
        Filter("client", "client__public_id", "uuid"),
        Filter("status", "status", "choice", tuple(EpisodeStatus.values)),
        Filter("therapist", "therapist__username", "text", description="Therapist's username."),
    )
    orderings = {"opened": ("opened_at", "pk"), "closed": ("closed_at", "pk")}
    default_ordering = "-opened"

    def scoped(self) -> QuerySet[Any]:
        return self.scope.episodes().select_related("client", "therapist")

    def patient_of(self, obj: Any) -> Any:
        return obj.client.public_id

    def list(self, request: Request) -> Response:
        return self.list_response(s.EpisodeSerializer)

    def retrieve(self, request: Request, public_id: str) -> Response:
        episode = self.get_object()
        self.audit_read(episode)
        return Response(s.EpisodeSerializer(episode).data)

    @_mark_idempotent
    def create(self, request: Request) -> Response:
        form = s.EpisodeCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        client = get_or_404(  # own clients: a break-glass grant is read-only (REQ-AC2)
            self.scope, self.scope.own_clients(), entity="client", public_id=data["client"]
        )
        if not request.user.sees_caseload:
            raise self.forbid(
                client.public_id, client.public_id, "Only clinicians open episodes of care."
            )
        episode = services.open_episode(
            request.user,
            client,
            concerns=data["concerns"],
            measure_plan=data.get("measure_plan") or None,
            goals=data.get("goals", ()),
            first_session_at=data.get("first_session_at"),
            sessions=data["sessions"],
            interval_days=data["interval_days"],
        )
        episode = self.scoped().get(pk=episode.pk)
        return self.created(s.EpisodeSerializer(episode).data)

    @action(detail=True, methods=["post"])
    def close(self, request: Request, public_id: str) -> Response:
        episode = self.get_object()
        self.need_treat(episode)
        form = s.EpisodeCloseSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        episode = services.close_episode(
            request.user, episode, end_reason=form.validated_data["end_reason"]
        )
        return Response(s.EpisodeSerializer(episode).data)


# --------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Sessions", responses=s.SessionSerializer(many=True)),
    retrieve=extend_schema(summary="One session", responses=s.SessionSerializer),
    attendance=extend_schema(
        summary="Record attendance",
        request=s.AttendanceSerializer,
        responses={200: s.SessionSerializer},
    ),
)
class SessionViewSet(ApiViewSet):
    """Scheduled sessions and their attendance."""

    entity = "session"
    serializer_class = s.SessionSerializer
    filters = (
        Filter("episode", "episode__public_id", "uuid"),
        Filter("client", "episode__client__public_id", "uuid"),
        Filter("status", "status", "choice", tuple(SessionStatus.values)),
        *_DATE_PARAMS,
    )
    orderings = {"scheduled": ("scheduled_at", "pk"), "number": ("episode_id", "number")}
    default_ordering = "scheduled"

    def scoped(self) -> QuerySet[Any]:
        return self.scope.sessions().select_related("episode", "episode__client")

    def filter_extra(self, queryset: QuerySet[Any], params: Any) -> QuerySet[Any]:
        return _date_range(queryset, params, "scheduled_at")

    def patient_of(self, obj: Any) -> Any:
        return obj.episode.client.public_id

    def list(self, request: Request) -> Response:
        return self.list_response(s.SessionSerializer)

    def retrieve(self, request: Request, public_id: str) -> Response:
        session = self.get_object()
        self.audit_read(session)
        return Response(s.SessionSerializer(session).data)

    @action(detail=True, methods=["post"])
    def attendance(self, request: Request, public_id: str) -> Response:
        session = self.get_object()
        self.need_treat(session.episode, session)
        form = s.AttendanceSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        session = services.record_attendance(request.user, session, form.validated_data["status"])
        return Response(s.SessionSerializer(session).data)


# --------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(
        summary="Check-ins (administrations)", responses=s.CheckInSerializer(many=True)
    ),
    retrieve=extend_schema(summary="One check-in", responses=s.CheckInSerializer),
    create=extend_schema(
        summary="Issue a check-in link for a client",
        request=s.CheckInCreateSerializer,
        responses={201: s.CheckInIssuedSerializer},
    ),
    submit=extend_schema(
        summary="Submit answers (validated, scored, signals, stored, audited — all or nothing)",
        request=s.SubmissionSerializer,
        responses={
            201: s.SubmitResultSerializer,
            200: OpenApiResponse(
                s.SubmitResultSerializer, description="Already submitted: nothing stored."
            ),
        },
    ),
)
class CheckInViewSet(ApiViewSet):
    """Check-ins (administrations): the questionnaires a client answers before or after a session."""

    entity = "checkin"
    serializer_class = s.CheckInSerializer
    filters = (
        Filter("episode", "episode__public_id", "uuid"),
        Filter("client", "episode__client__public_id", "uuid"),
        Filter("status", "status", "choice", tuple(CheckInStatus.values)),
        Filter("kind", "kind", "choice", tuple(CheckInKind.values)),
    )
    orderings = {"created": ("created_at", "pk"), "expires": ("expires_at", "pk")}
    default_ordering = "-created"

    def scoped(self) -> QuerySet[Any]:
        return self.scope.checkins().select_related("episode", "episode__client", "session")

    def patient_of(self, obj: Any) -> Any:
        return obj.episode.client.public_id

    def list(self, request: Request) -> Response:
        return self.list_response(s.CheckInSerializer)

    def retrieve(self, request: Request, public_id: str) -> Response:
        checkin = self.get_object()
        self.audit_read(checkin)
        return Response(s.CheckInSerializer(checkin).data)

    @_mark_idempotent
    def create(self, request: Request) -> Response:
        from alliance_web.audit.trail import Actor
        from alliance_web.care import tokens

        form = s.CheckInCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        episode = self.episode_in_scope(data["episode"])
        self.need_treat(episode)
        session = None
        if data.get("session"):
            session = get_or_404(
                self.scope,
                self.scope.sessions().filter(episode=episode),
                entity="session",
                public_id=data["session"],
            )
        checkin, _path = services.issue_checkin(
            episode,
            kind=data["kind"],
            session=session,
            hours_valid=data.get("hours_valid"),
            actor=Actor.of(request.user),
        )
        checkin = self.scoped().get(pk=checkin.pk)
        out = dict(s.CheckInSerializer(checkin).data)
        out["link"] = tokens.link_url(checkin)
        return self.created(out)

    @action(detail=True, methods=["post"])
    @_mark_idempotent
    def submit(self, request: Request, public_id: str) -> Response:
        checkin = self.get_object()
        self.need_treat(checkin.episode, checkin)
        if checkin.kind == CheckInKind.THERAPIST:
            raise ApiError(409, "closed", "Therapist ratings are submitted once, when made.")
        form = s.SubmissionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        submission = services.Submission(
            answers={k: dict(v) for k, v in data["answers"].items()},
            goal_ratings={str(k): v for k, v in data["goal_ratings"].items()},
            note=data["note"],
        )
        result = services.submit_checkin(checkin, submission, by=request.user)
        # Serialise from what the service returned (no second round of scoped queries): the
        # check-in and its client were found through the scope above.
        done = result.checkin
        done.episode.client = checkin.episode.client
        scores = sorted(result.scores, key=lambda sc: sc.pk)
        for score in scores:
            score.episode = done.episode
            score.response.checkin = done
        out = {
            "checkin": s.CheckInSerializer(done).data,
            "scores": s.ScoreSerializer(scores, many=True).data,
            "alerts": [str(a.public_id) for a in result.alerts],
            "duplicate": result.duplicate,
        }
        return Response(out, status=200 if result.duplicate else 201)


# --------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Scores", responses=s.ScoreSerializer(many=True)),
)
class ScoreViewSet(ApiViewSet):
    """Scores computed by the engine, with the method and engine version that produced them."""

    entity = "score"
    serializer_class = s.ScoreSerializer
    filters = (
        Filter("episode", "episode__public_id", "uuid"),
        Filter("client", "episode__client__public_id", "uuid"),
        Filter("checkin", "response__checkin__public_id", "uuid"),
        Filter("instrument", "instrument", "text", description="Instrument id, e.g. phq9."),
        Filter("rater", "rater", "choice", ("client", "therapist")),
        *_DATE_PARAMS,
    )
    orderings = {"administered": ("administered_at", "pk")}
    default_ordering = "administered"

    def scoped(self) -> QuerySet[Any]:
        return self.scope.scores().select_related("episode__client", "response__checkin")

    def filter_extra(self, queryset: QuerySet[Any], params: Any) -> QuerySet[Any]:
        return _date_range(queryset, params, "administered_at")

    def patient_of(self, obj: Any) -> Any:
        return obj.episode.client.public_id

    def list(self, request: Request) -> Response:
        return self.list_response(s.ScoreSerializer)


# --------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Alerts", responses=s.AlertSerializer(many=True)),
    retrieve=extend_schema(summary="One alert with its actions", responses=s.AlertSerializer),
    acknowledge=extend_schema(
        summary="Acknowledge an alert", request=None, responses={200: s.AlertSerializer}
    ),
    record_action=extend_schema(
        summary="Record what you did about an alert",
        request=s.AlertActionCreateSerializer,
        responses={201: s.AlertSerializer},
    ),
)
class AlertViewSet(ApiViewSet):
    """Alerts (safety, off track, rupture, dropout risk, perspective gap, missed check-ins) and what was done about them."""

    entity = "alert"
    serializer_class = s.AlertSerializer
    filters = (
        Filter("status", "status", "choice", tuple(AlertStatus.values)),
        Filter("kind", "kind", "choice", tuple(AlertKind.values)),
        Filter("episode", "episode__public_id", "uuid"),
        Filter("client", "episode__client__public_id", "uuid"),
    )
    orderings = {"priority": ("priority", "-created_at", "pk"), "created": ("created_at", "pk")}
    default_ordering = "priority"

    def scoped(self) -> QuerySet[Any]:
        return (
            self.scope.alerts()
            .select_related("episode__client", "acknowledged_by")
            .prefetch_related("actions__by")
        )

    def patient_of(self, obj: Any) -> Any:
        return obj.episode.client.public_id

    def list(self, request: Request) -> Response:
        return self.list_response(s.AlertSerializer)

    def retrieve(self, request: Request, public_id: str) -> Response:
        alert = self.get_object()
        self.audit_read(alert)
        return Response(s.AlertSerializer(alert).data)

    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, public_id: str) -> Response:
        alert = self.get_object()
        self.need_treat(alert.episode, alert)
        services.acknowledge_alert(request.user, alert)
        return Response(s.AlertSerializer(self.scoped().get(pk=alert.pk)).data)

    @action(detail=True, methods=["post"], url_path="actions", url_name="actions")
    @_mark_idempotent
    def record_action(self, request: Request, public_id: str) -> Response:
        alert = self.get_object()
        self.need_treat(alert.episode, alert)
        form = s.AlertActionCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.record_alert_action(
            request.user, alert, form.validated_data["kind"], form.validated_data["note"]
        )
        return self.created(s.AlertSerializer(self.scoped().get(pk=alert.pk)).data)


# --------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Goals", responses=s.GoalSerializer(many=True)),
    retrieve=extend_schema(summary="One goal with its ratings", responses=s.GoalSerializer),
    create=extend_schema(
        summary="Set goal 1, 2 or 3 of an episode (in the client's words)",
        request=s.GoalWriteSerializer,
        responses={201: s.GoalSerializer},
    ),
)
class GoalViewSet(ApiViewSet):
    """The client's goals (up to three per episode, in the client's words) and their 0–10 ratings."""

    entity = "goal"
    serializer_class = s.GoalSerializer
    filters = (
        Filter("episode", "episode__public_id", "uuid"),
        Filter("client", "episode__client__public_id", "uuid"),
    )
    orderings = {"position": ("episode_id", "position"), "created": ("created_at", "pk")}
    default_ordering = "position"

    def scoped(self) -> QuerySet[Any]:
        return (
            self.scope.goals()
            .select_related("episode__client")
            .prefetch_related(
                Prefetch("ratings", queryset=GoalRating.objects.order_by("rated_at", "pk"))
            )
        )

    def patient_of(self, obj: Any) -> Any:
        return obj.episode.client.public_id

    def list(self, request: Request) -> Response:
        return self.list_response(s.GoalSerializer)

    def retrieve(self, request: Request, public_id: str) -> Response:
        goal = self.get_object()
        self.audit_read(goal)
        return Response(s.GoalSerializer(goal).data)

    @_mark_idempotent
    def create(self, request: Request) -> Response:
        form = s.GoalWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        episode = self.episode_in_scope(data["episode"])
        self.need_treat(episode)
        goal = services.set_goal(request.user, episode, data["position"], data["text"])
        return self.created(s.GoalSerializer(self.scoped().get(pk=goal.pk)).data)
