"""Forms of the workspace. Every choice comes from an allow-list (model choices, the instrument
library, the episode's own sessions); free text has a length limit and is stored verbatim
(escaped on output). A form that fails keeps what was typed and says what to do next.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.utils import timezone

import alliance as al
from alliance_web.care.emergency import REASON_MAX_CHARS, REASON_MIN_CHARS
from alliance_web.care.models import (
    ActionKind,
    CheckInKind,
    Concern,
    EndReason,
    RelationshipEvent,
    Session,
    SessionStatus,
)
from alliance_web.care.services import GOAL_MAX_CHARS, NOTE_MAX_CHARS

SIGNAL_FILTERS = [
    ("", "Any signal"),
    ("safety", "⚠ Safety"),
    ("off_track", "▼ Off track"),
    ("at_risk", "◆ At risk"),
    ("on_track", "● On track"),
    ("improved", "▲ Improved"),
    ("recovered", "★ Recovered"),
    ("not_enough_data", "○ Needs more sessions"),
]
SORTS = [
    ("triage", "Most urgent first"),
    ("name", "Name"),
    ("last_checkin", "Longest since check-in"),
]


class CaseloadFilter(forms.Form):
    """GET filters: anything outside the allow-lists is dropped, never passed to the ORM."""

    therapist = forms.ChoiceField(required=False)
    concern = forms.ChoiceField(required=False, choices=[("", "Any concern"), *Concern.choices])
    signal = forms.ChoiceField(required=False, choices=SIGNAL_FILTERS)
    sort = forms.ChoiceField(required=False, choices=SORTS)

    def __init__(self, *args: Any, therapists: list[tuple[str, str]] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.fields["therapist"].choices = [("", "All therapists"), *therapists]

    def value(self, name: str) -> str:
        """The cleaned value, or '' when it was missing or not allowed."""
        if not self.is_bound:
            return ""
        self.is_valid()
        return str(self.cleaned_data.get(name) or "") if name not in self.errors else ""


def outcome_instrument_choices() -> list[tuple[str, str]]:
    return [
        (i.id, f"{i.short_name} — {i.domain}")
        for i in al.instruments().values()
        if i.kind == "outcome"
    ]


class EpisodeForm(forms.Form):
    """Open an episode of care: concerns, measure plan, goals in the client's words, schedule."""

    concerns = forms.MultipleChoiceField(
        choices=Concern.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one presenting concern."},
    )
    measure_plan = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Measures before each session",
        help_text="Leave empty for the defaults for these concerns (PHQ-9 and GAD-7, plus a concern-specific measure when the library has one).",
    )
    goal_1 = forms.CharField(required=False, max_length=GOAL_MAX_CHARS, label="Goal 1")
    goal_2 = forms.CharField(required=False, max_length=GOAL_MAX_CHARS, label="Goal 2")
    goal_3 = forms.CharField(required=False, max_length=GOAL_MAX_CHARS, label="Goal 3")
    first_session = forms.DateTimeField(
        label="First session",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        error_messages={
            "invalid": "Enter the date and time of the first session, e.g. 2026-03-02 14:00."
        },
    )
    sessions = forms.IntegerField(min_value=1, max_value=52, initial=12, label="Number of sessions")
    interval_days = forms.IntegerField(
        min_value=1, max_value=28, initial=7, label="Days between sessions"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["measure_plan"].choices = outcome_instrument_choices()
        if not self.is_bound:
            start = (timezone.localtime() + timedelta(days=1)).replace(
                hour=10, minute=0, second=0, microsecond=0
            )
            self.fields["first_session"].initial = start.strftime("%Y-%m-%dT%H:%M")

    def clean_first_session(self) -> Any:
        value = self.cleaned_data["first_session"]
        now = timezone.now()
        if value < now - timedelta(days=366) or value > now + timedelta(days=366):
            raise forms.ValidationError("The first session should be within a year of today.")
        return value

    @property
    def goals(self) -> list[str]:
        return [g for g in (self.cleaned_data.get(f"goal_{i}", "").strip() for i in (1, 2, 3)) if g]


class NewClientForm(EpisodeForm):
    preferred_name = forms.CharField(
        max_length=120,
        label="Preferred name",
        help_text="What the client likes to be called.",
        error_messages={"required": "Write the name the client likes to be called."},
    )
    email = forms.EmailField(
        required=False, max_length=254, help_text="For check-in links (optional)."
    )
    phone = forms.RegexField(
        required=False,
        max_length=32,
        regex=r"^\+?[0-9 ()\-]{6,31}$",
        error_messages={"invalid": "Enter a phone number with digits, spaces, brackets or dashes."},
        help_text="For check-in links by text message (optional).",
    )
    date_of_birth = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    consent_supervision = forms.BooleanField(
        required=False, initial=True, label="Shared with the practice's clinical supervisors"
    )
    consent_messages = forms.BooleanField(
        required=False, initial=True, label="Check-in invitations by email or text message"
    )
    consent_research = forms.BooleanField(
        required=False,
        initial=False,
        label="De-identified data used for research and service evaluation",
    )

    field_order = ["preferred_name", "email", "phone", "date_of_birth"]

    def clean_preferred_name(self) -> str:
        name = self.cleaned_data["preferred_name"].strip()
        if not name:
            raise forms.ValidationError("Write the name the client likes to be called.")
        return name

    def clean_date_of_birth(self) -> Any:
        dob = self.cleaned_data.get("date_of_birth")
        if dob and dob > timezone.localdate():
            raise forms.ValidationError("The date of birth cannot be in the future.")
        return dob


class AlertActionForm(forms.Form):
    kind = forms.ChoiceField(
        choices=ActionKind.choices,
        label="What did you do?",
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose what you did.",
            "invalid_choice": "Choose what you did from the list.",
        },
    )
    note = forms.CharField(
        required=False,
        max_length=NOTE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Note (optional)",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == ActionKind.NO_ACTION and not (data.get("note") or "").strip():
            self.add_error("note", "Say briefly why no action was needed.")
        return data


def _session_choices(sessions: list[Session]) -> list[tuple[str, str]]:
    return [
        (str(s.public_id), f"Session {s.number} · {timezone.localtime(s.scheduled_at):%d %b %Y}")
        for s in sessions
    ]


SESSION_ERRORS = {
    "invalid_choice": "Choose one of this episode's sessions.",
    "required": "Choose the session.",
}


class TherapistRatingForm(forms.Form):
    """The therapist's own post-session alliance rating, built from the instrument definition."""

    session = forms.ChoiceField(label="Which session?", error_messages=SESSION_ERRORS)

    def __init__(
        self, *args: Any, instrument: al.Instrument, sessions: list[Session], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.instrument = instrument
        self.fields["session"].choices = _session_choices(sessions)
        self.sessions = {str(s.public_id): s for s in sessions}
        for item in instrument.items:
            if item.kind == "text" or not item.scored:
                continue
            label = item.text or f"Item {item.id}"
            if item.kind == "choice":
                self.fields[item.id] = forms.TypedChoiceField(
                    label=label,
                    choices=[(f"{o.value:g}", o.label or f"{o.value:g}") for o in item.options],
                    coerce=float,
                    widget=forms.RadioSelect,
                    error_messages={
                        "required": "Please rate this item.",
                        "invalid_choice": "Choose one of the options.",
                    },
                )
            else:
                self.fields[item.id] = forms.FloatField(
                    label=label,
                    min_value=item.min,
                    max_value=item.max,
                    error_messages={"required": "Please rate this item."},
                )

    @property
    def item_fields(self) -> list[Any]:
        return [self[name] for name in self.fields if name != "session"]

    def answers(self) -> dict[str, float]:
        return {k: v for k, v in self.cleaned_data.items() if k != "session"}

    def chosen_session(self) -> Session:
        return self.sessions[self.cleaned_data["session"]]


class StageForm(forms.Form):
    stage = forms.TypedChoiceField(
        coerce=int,
        choices=[
            (1, "1 · Engagement and trust"),
            (2, "2 · Shared goals and tasks"),
            (3, "3 · Working and challenge"),
            (4, "4 · Consolidation and ending"),
        ],
        error_messages={"invalid_choice": "Choose a stage from 1 to 4."},
    )


class PrivateNoteForm(forms.Form):
    text = forms.CharField(
        max_length=NOTE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Process note",
        error_messages={"required": "The note is empty."},
    )
    share = forms.BooleanField(required=False, label="Share this note with my supervisor")

    def clean_text(self) -> str:
        text = self.cleaned_data["text"].strip()
        if not text:
            raise forms.ValidationError("The note is empty.")
        return text


class RelationshipNoteForm(forms.Form):
    event = forms.ChoiceField(
        choices=RelationshipEvent.choices, widget=forms.RadioSelect, label="What happened?"
    )
    marker = forms.ChoiceField(
        required=False,
        choices=[("", "—"), ("withdrawal", "Withdrawal"), ("confrontation", "Confrontation")],
        label="Kind of rupture",
    )
    session = forms.ChoiceField(label="Session")
    text = forms.CharField(
        required=False,
        max_length=NOTE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Note",
    )

    def __init__(self, *args: Any, sessions: list[Session], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["session"].choices = _session_choices(sessions)
        self.sessions = {str(s.public_id): s for s in sessions}


class AttendanceForm(forms.Form):
    status = forms.ChoiceField(choices=SessionStatus.choices)


class IssueCheckinForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            (CheckInKind.PRE_SESSION, "Before the session"),
            (CheckInKind.POST_SESSION, "After the session"),
        ],
        initial=CheckInKind.PRE_SESSION,
        widget=forms.RadioSelect,
    )
    session = forms.ChoiceField(required=False, error_messages=SESSION_ERRORS)

    def __init__(self, *args: Any, sessions: list[Session], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["session"].choices = [
            ("", "Not tied to a session"),
            *_session_choices(sessions),
        ]
        self.sessions = {str(s.public_id): s for s in sessions}


class CloseEpisodeForm(forms.Form):
    end_reason = forms.ChoiceField(
        choices=EndReason.choices,
        widget=forms.RadioSelect,
        label="How did the episode end?",
        error_messages={"required": "Choose how the episode ended."},
    )


class AlertFilter(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("open", "Needs attention"), ("all", "All alerts")]
    )
    kind = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, kinds: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", "All kinds"), *kinds]

    def value(self, name: str, default: str = "") -> str:
        if not self.is_bound:
            return default
        self.is_valid()
        return str(self.cleaned_data.get(name) or default) if name not in self.errors else default


class PracticeFilter(forms.Form):
    period = forms.ChoiceField(
        required=False,
        choices=[("all", "All time"), ("365", "Last 12 months"), ("90", "Last 90 days")],
    )


class EmergencyAccessForm(forms.Form):
    """Break-glass (SECURITY.md REQ-AC2): the client's code and why, in the clinician's words."""

    code = forms.CharField(
        label="Client code",
        max_length=40,
        help_text="The client's code as it appears on their reports and exports (C followed by 12 "
        "letters and digits).",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    reason = forms.CharField(
        label="Why you need this record now",
        min_length=REASON_MIN_CHARS,
        max_length=REASON_MAX_CHARS,
        help_text="Required. Say why it is an emergency and why the client's own clinicians "
        "cannot help (e.g. covering for an absent colleague during a crisis call). Keep clinical "
        "details out; your practice admins read this.",
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def clean_reason(self) -> str:
        reason = " ".join(str(self.cleaned_data["reason"]).split())
        if len(reason) < REASON_MIN_CHARS:
            raise forms.ValidationError(
                f"Write at least {REASON_MIN_CHARS} characters: why you need it now."
            )
        return reason


class RevokeEmergencyAccessForm(forms.Form):
    """A practice admin ends a break-glass grant early."""

    grant = forms.UUIDField()
