"""The clinical record: practices, clients, episodes of care, sessions, goals, check-ins, scores,
alerts and the notes about the relationship.

Rules that hold across this module:

* A practice is the tenant boundary. Every row that holds client data reaches its practice in one
  hop (``practice`` is denormalised onto episodes, check-ins and alerts) so that the scoping helpers
  in :mod:`alliance_web.care.access` are single, indexable filters.
* Rows are addressed from outside by random ``public_id`` UUIDs, never by sequential keys.
* Free text written by clients or about them (private notes, goals, action notes, relationship
  notes) is encrypted at rest (:class:`~alliance_web.care.fields.EncryptedTextField`).
* Submitted answers are immutable: a correction is a new response, never an update; each response
  stores the SHA-256 of its content (REQ-IN1).
* Computed scores record the engine method and version that produced them.
* Workflows that change several rows live in :mod:`alliance_web.care.services`, each in one
  transaction with its audit entry.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from alliance_web.care.fields import EncryptedJSONField, EncryptedTextField

User = settings.AUTH_USER_MODEL


def default_crisis_resources() -> list[dict[str, str]]:
    """Defaults for Canada and the US (DESIGN.md); every practice should set its own."""
    return [
        {"label": "Suicide Crisis Helpline (Canada) — call or text", "contact": "9-8-8"},
        {"label": "988 Suicide & Crisis Lifeline (US) — call or text", "contact": "988"},
        {"label": "Emergency services", "contact": "9-1-1"},
    ]


class Practice(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    time_zone = models.CharField(max_length=64, default="America/Toronto")
    crisis_resources = models.JSONField(default=default_crisis_resources)
    checkin_link_hours = models.PositiveIntegerField(
        default=72, help_text="How long a check-in link stays valid."
    )
    invitation_lead_hours = models.PositiveIntegerField(
        default=24, help_text="How long before a session the check-in invitation goes out."
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Concern(models.TextChoices):
    DEPRESSION = "depression", "Depression"
    ANXIETY = "anxiety", "Anxiety"
    OCD = "ocd", "OCD"
    PANIC = "panic", "Panic"
    PHOBIA = "phobia", "Phobia"
    SOCIAL_ANXIETY = "social_anxiety", "Social anxiety"
    WELLBEING = "wellbeing", "Wellbeing / coaching"
    OTHER = "other", "Other"


class Client(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="clients")
    therapist = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        related_name="primary_clients",
        help_text="Primary therapist.",
    )
    preferred_name = models.CharField(max_length=120)
    date_of_birth = models.DateField(null=True, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    # Pseudonym for research exports: random, never derived from identity.
    pseudonym = models.CharField(max_length=16, unique=True, editable=False)
    progress_view_enabled = models.BooleanField(
        default=False, help_text="Show the client their own progress chart after a check-in."
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_contact_at = models.DateTimeField(default=timezone.now)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["practice", "therapist"])]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.pseudonym:
            self.pseudonym = "C" + uuid.uuid4().hex[:12].upper()
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.preferred_name


class ConsentScope(models.TextChoices):
    CARE = "care", "Measurement-based care (within the treating team)"
    SUPERVISION = "supervision", "Shared with the practice's clinical supervisors"
    RESEARCH = "research", "De-identified data used for research and service evaluation"
    MESSAGES = "messages", "Check-in invitations by email or text message"


class Consent(models.Model):
    """A consent decision. Withdrawal sets ``withdrawn_at``; the row itself is never deleted."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="consents")
    scope = models.CharField(max_length=16, choices=ConsentScope.choices)
    given_at = models.DateTimeField(default=timezone.now)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["client", "scope"])]

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


class EpisodeStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class EndReason(models.TextChoices):
    PLANNED = "planned", "Planned ending"
    DROPOUT = "dropout", "Client stopped attending (dropout)"
    REFERRED = "referred", "Referred on"
    OTHER = "other", "Other"


class Episode(models.Model):
    """An episode of care: one course of therapy with its measure plan, goals and outcome."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="episodes")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="episodes")
    therapist = models.ForeignKey(User, on_delete=models.PROTECT, related_name="episodes")
    concerns = models.JSONField(default=list)
    # Instruments asked before each session (first = primary outcome) and after it.
    measure_plan = models.JSONField(default=list)
    alliance_instrument = models.CharField(max_length=40, default="wai_sr")
    therapist_alliance_instrument = models.CharField(max_length=40, default="wai_sr_t")
    session_interval_days = models.PositiveSmallIntegerField(default=7)
    status = models.CharField(
        max_length=8, choices=EpisodeStatus.choices, default=EpisodeStatus.OPEN
    )
    opened_at = models.DateTimeField(default=timezone.now)
    planned_end_session = models.PositiveSmallIntegerField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=12, choices=EndReason.choices, blank=True)
    outcome = models.JSONField(null=True, blank=True, help_text="Outcome classification at close.")

    class Meta:
        indexes = [models.Index(fields=["practice", "therapist", "status"])]

    @property
    def primary_instrument(self) -> str | None:
        return self.measure_plan[0] if self.measure_plan else None

    def __str__(self) -> str:
        return f"Episode {self.public_id} of {self.client_id}"


class Modality(models.TextChoices):
    IN_PERSON = "in_person", "In person"
    VIDEO = "video", "Video"
    PHONE = "phone", "Phone"
    TEXT = "text", "Text-based"


class SessionStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ATTENDED = "attended", "Attended"
    NO_SHOW = "no_show", "Did not attend"
    CANCELLED = "cancelled", "Cancelled"


class Session(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="sessions")
    number = models.PositiveSmallIntegerField()
    scheduled_at = models.DateTimeField()
    modality = models.CharField(max_length=12, choices=Modality.choices, default=Modality.IN_PERSON)
    status = models.CharField(
        max_length=12, choices=SessionStatus.choices, default=SessionStatus.SCHEDULED
    )
    # Set once when the scheduler created this session's check-in invitation (its claim marker).
    invited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["episode", "number"], name="session_number_unique")
        ]
        indexes = [models.Index(fields=["status", "scheduled_at"])]


class Goal(models.Model):
    """A goal agreed with the client, in the client's own words (encrypted)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="goals")
    position = models.PositiveSmallIntegerField()
    text = EncryptedTextField()
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["episode", "position"], name="goal_position_unique"),
            models.CheckConstraint(
                condition=models.Q(position__gte=1, position__lte=3), name="goal_position_1_3"
            ),
        ]


class CheckInKind(models.TextChoices):
    PRE_SESSION = "pre", "Before the session"
    POST_SESSION = "post", "After the session"
    THERAPIST = "therapist", "Therapist's rating"


class CheckInStatus(models.TextChoices):
    PENDING = "pending", "Not started"
    STARTED = "started", "Started"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class CheckIn(models.Model):
    """One questionnaire visit: the client's pre- or post-session check-in, or the therapist's
    own alliance rating. A client reaches it by a single-use link (only the token's hash is
    stored) or a short code on the waiting-room tablet.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="checkins")
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="checkins"
    )
    kind = models.CharField(max_length=10, choices=CheckInKind.choices)
    instruments = models.JSONField(default=list)
    includes_goals = models.BooleanField(default=False)
    includes_note = models.BooleanField(default=False)
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    short_code_hash = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    short_code_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=CheckInStatus.choices, default=CheckInStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    opens_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Answers saved so far (save and resume); encrypted because it may hold the private note.
    draft = EncryptedJSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["episode", "kind", "status"]),
            models.Index(fields=["status", "expires_at"]),
        ]

    @property
    def is_open(self) -> bool:
        now = timezone.now()
        return (
            self.status in (CheckInStatus.PENDING, CheckInStatus.STARTED)
            and self.opens_at <= now < self.expires_at
        )


class Response(models.Model):
    """The answers to one instrument within a check-in. Immutable once written."""

    checkin = models.ForeignKey(CheckIn, on_delete=models.CASCADE, related_name="responses")
    instrument = models.CharField(max_length=40)
    instrument_version = models.CharField(max_length=16)
    answers = models.JSONField()
    submitted_at = models.DateTimeField(default=timezone.now)
    content_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["checkin", "instrument"], name="one_response_per_instrument"
            )
        ]


class Signal(models.TextChoices):
    """The per-administration recovery signal (DESIGN.md colours and shapes)."""

    OFF_TRACK = "off_track", "Off track"
    AT_RISK = "at_risk", "At risk"
    ON_TRACK = "on_track", "On track"
    IMPROVED = "improved", "Improved"
    RECOVERED = "recovered", "Recovered"
    NOT_ENOUGH_DATA = "not_enough_data", "Needs more sessions"


class Score(models.Model):
    """A computed score, stored with the method and engine version that produced it."""

    response = models.OneToOneField(Response, on_delete=models.CASCADE, related_name="score")
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="scores")
    instrument = models.CharField(max_length=40)
    rater = models.CharField(max_length=10, default="client")
    session_number = models.PositiveSmallIntegerField(null=True, blank=True)
    administered_at = models.DateTimeField()
    total = models.FloatField(null=True)
    subscales = models.JSONField(default=dict)
    severity = models.CharField(max_length=40, blank=True)
    flags = models.JSONField(default=list)
    prorated = models.BooleanField(default=False)
    error = models.CharField(max_length=300, blank=True)
    signal = models.CharField(max_length=16, choices=Signal.choices, blank=True)
    signal_detail = models.JSONField(default=dict)
    method = models.CharField(max_length=60)
    engine_version = models.CharField(max_length=20)

    class Meta:
        indexes = [models.Index(fields=["episode", "instrument", "administered_at"])]


class GoalRating(models.Model):
    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="ratings")
    checkin = models.ForeignKey(CheckIn, on_delete=models.CASCADE, related_name="goal_ratings")
    value = models.PositiveSmallIntegerField()
    rated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["goal", "checkin"], name="one_rating_per_goal_and_checkin"
            ),
            models.CheckConstraint(condition=models.Q(value__lte=10), name="goal_rating_0_10"),
        ]


class ClientNote(models.Model):
    """What the client wrote privately ("easier to write than to say"). Only the treating therapist
    sees it; encrypted at rest."""

    checkin = models.OneToOneField(CheckIn, on_delete=models.CASCADE, related_name="client_note")
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="client_notes")
    text = EncryptedTextField()
    written_at = models.DateTimeField(default=timezone.now)


class RelationshipEvent(models.TextChoices):
    RUPTURE = "rupture", "Rupture"
    REPAIR = "repair", "Repair"


class RelationshipNote(models.Model):
    """The therapist's log of a rupture or its repair in a session."""

    episode = models.ForeignKey(
        Episode, on_delete=models.CASCADE, related_name="relationship_notes"
    )
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    event = models.CharField(max_length=8, choices=RelationshipEvent.choices)
    marker = models.CharField(
        max_length=16,
        blank=True,
        choices=[("withdrawal", "Withdrawal"), ("confrontation", "Confrontation")],
    )
    text = EncryptedTextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)


class StageAssessment(models.Model):
    """A suggested relationship stage with its reasons, and the therapist's confirmation."""

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="stage_assessments")
    session_number = models.PositiveSmallIntegerField(null=True)
    suggested_stage = models.PositiveSmallIntegerField()
    reasons = models.JSONField(default=list)
    method = models.CharField(max_length=60)
    confirmed_stage = models.PositiveSmallIntegerField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]


class AlertKind(models.TextChoices):
    SAFETY = "safety", "Safety"
    OFF_TRACK = "off_track", "Off track"
    AT_RISK = "at_risk", "At risk"
    RUPTURE = "rupture", "Alliance rupture"
    DROPOUT = "dropout", "Dropout risk"
    GAP = "gap", "Perspective gap"
    MISSED = "missed", "Missed check-ins"


# Triage order (DESIGN.md): lower sorts first.
ALERT_PRIORITY = {
    AlertKind.SAFETY: 0,
    AlertKind.OFF_TRACK: 1,
    AlertKind.RUPTURE: 2,
    AlertKind.DROPOUT: 3,
    AlertKind.GAP: 4,
    AlertKind.MISSED: 5,
    AlertKind.AT_RISK: 6,
}


class AlertStatus(models.TextChoices):
    OPEN = "open", "New"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ACTIONED = "actioned", "Action recorded"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=12, choices=AlertKind.choices)
    priority = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=14, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    # One alert per cause: e.g. "safety:<checkin>" — a retried submission cannot raise it twice.
    dedupe_key = models.CharField(max_length=120, unique=True)
    session_number = models.PositiveSmallIntegerField(null=True, blank=True)
    detail = models.JSONField(default=dict, help_text="Rule, values and method; never free text.")
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notified_at = models.DateTimeField(null=True, blank=True)
    # The notification's claim lease and tries (care.tasks.notify_alert): sent once, never lost.
    notify_claimed_at = models.DateTimeField(null=True, blank=True)
    notify_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["priority", "-created_at"]
        indexes = [models.Index(fields=["practice", "status", "priority"])]


class ActionKind(models.TextChoices):
    DISCUSSED = "discussed", "Discussed it with the client"
    SAFETY_PLAN = "safety_plan", "Reviewed or made a safety plan"
    CONTACTED = "contacted", "Contacted the client before the next session"
    RELATIONSHIP = "relationship", "Talked about our working relationship"
    PLAN_CHANGED = "plan_changed", "Changed the treatment plan"
    CONSULTED = "consulted", "Consulted a supervisor or colleague"
    REFERRED = "referred", "Referred for additional support"
    NO_ACTION = "no_action", "No action needed (reason in note)"


class AlertAction(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="actions")
    kind = models.CharField(max_length=16, choices=ActionKind.choices)
    note = EncryptedTextField(blank=True)
    by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at"]


class PrivateNote(models.Model):
    """The therapist's own process notes ("psychotherapy notes", HIPAA §164.501): kept apart from
    the record, never in client exports, visible to a supervisor only when explicitly shared."""

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="private_notes")
    author = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    text = EncryptedTextField()
    shared_with_supervisors = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "Text message"


class DeliveryKind(models.TextChoices):
    INVITATION = "invitation", "Invitation"
    REMINDER = "reminder", "Reminder"


class Delivery(models.Model):
    """The outbox: a message about a check-in on one channel. The unique constraint is the
    sent-marker that makes sending idempotent (a retried task cannot send twice)."""

    checkin = models.ForeignKey(CheckIn, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    kind = models.CharField(max_length=12, choices=DeliveryKind.choices)
    due_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["checkin", "channel", "kind"], name="one_delivery_per_channel"
            )
        ]
        indexes = [models.Index(fields=["sent_at", "due_at"])]


class EpisodeInsight(models.Model):
    """What the engine concluded about an episode, recomputed whenever its data change.

    Pages read this snapshot instead of recomputing (the caseload of 200 clients is one query).
    Shapes of the JSON fields are documented in :mod:`alliance_web.care.insight`.
    """

    episode = models.OneToOneField(Episode, on_delete=models.CASCADE, related_name="insight")
    computed_at = models.DateTimeField(default=timezone.now)
    engine_version = models.CharField(max_length=20)
    triage = models.PositiveSmallIntegerField(
        default=99, help_text="Caseload sort rank (0 = safety first)."
    )
    signal = models.JSONField(default=dict)
    outcome = models.JSONField(default=dict)
    alliance = models.JSONField(default=dict)
    dropout = models.JSONField(default=dict)
    stage = models.JSONField(default=dict)
    checklist = models.JSONField(default=list)
    last_checkin_at = models.DateTimeField(null=True, blank=True)
    overdue_checkins = models.PositiveSmallIntegerField(default=0)


class PracticeModel(models.Model):
    """A recovery model calibrated on the practice's own data (nightly task), as engine JSON."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="models")
    instrument = models.CharField(max_length=40)
    method = models.CharField(max_length=60)
    fitted_at = models.DateTimeField(default=timezone.now)
    n_clients = models.PositiveIntegerField()
    n_obs = models.PositiveIntegerField()
    model = models.JSONField()
    validation = models.JSONField(default=dict)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-fitted_at"]
        indexes = [models.Index(fields=["practice", "instrument", "active"])]


class EmergencyAccess(models.Model):
    """A break-glass grant (SECURITY.md REQ-AC2): one clinician may read one client of their own
    practice, outside their usual scope, until ``expires_at``. Made by
    :func:`alliance_web.care.emergency.grant` with a written reason, audited and announced to the
    practice admins; an admin may end it early (``revoked_at``). Rows are kept as evidence."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="emergency_grants")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="emergency_grants")
    # Why, in the clinician's words (may mention the client, hence encrypted at rest).
    reason = EncryptedTextField()
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["user", "client", "expires_at"])]

    def is_active(self, now: datetime | None = None) -> bool:
        """Whether the grant opens the record at ``now`` (default: this instant)."""
        now = now or timezone.now()
        return self.revoked_at is None and self.granted_at <= now < self.expires_at
