"""Who may see which client: one scoping helper per role (SECURITY.md REQ-AC1, REQ-AC3, REQ-CO1).

Every query for client data in a view, API endpoint or export starts from ``scope_for(user)``;
nothing reads ``Client.objects`` / ``Episode.objects`` directly for a request. The rules:

* the practice is the tenant boundary — nobody sees another practice's rows;
* a therapist sees the clients they treat (primary therapist, or therapist of one of the client's
  episodes);
* a supervisor sees the clients of their practice, except those who withdrew consent to sharing with
  supervisors; a therapist's private process notes only when the therapist shared them, and never
  the client's private notes ("only your therapist will see this");
* a practice admin configures the practice but sees no clinical content — unless the account is also
  a clinician, in which case they see their own caseload like a therapist;
* a client (through a check-in link) sees only their own check-in;
* a therapist or supervisor holding a valid break-glass grant (SECURITY.md REQ-AC2,
  :mod:`alliance_web.care.emergency`) also *reads* that one client of their practice: the grant adds
  to :meth:`Scope.clients` and what hangs off it, never to :meth:`Scope.own_clients`,
  ``may_treat``, the client's private notes or another clinician's process notes.

:func:`get_or_404` turns a lookup outside the scope into a 404 (no existence leak) and writes an
audit "deny" row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Exists, Model, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record
from alliance_web.care import emergency
from alliance_web.care.models import (
    Alert,
    CheckIn,
    Client,
    ClientNote,
    Consent,
    ConsentScope,
    EmergencyAccess,
    Episode,
    Goal,
    PrivateNote,
    RelationshipNote,
    Score,
    Session,
    StageAssessment,
)

M = TypeVar("M", bound=Model)


def _latest_consent_withdrawn(scope: str) -> Subquery:
    latest = Consent.objects.filter(client=OuterRef("pk"), scope=scope).order_by("-given_at", "-pk")
    return Subquery(latest.values("withdrawn_at")[:1])


@dataclass(frozen=True)
class Scope:
    """The rows one signed-in person may see. Build it with :func:`scope_for`."""

    user: Any
    kind: str  # "therapist" | "supervisor" | "admin" | "none"

    @property
    def practice_id(self) -> int | None:
        return getattr(self.user, "practice_id", None)

    @property
    def sees_clinical(self) -> bool:
        return self.kind in ("therapist", "supervisor")

    # -- clients and episodes ------------------------------------------------------------------
    def _clients(self, *, emergency: bool) -> QuerySet[Client]:
        base = Client.objects.filter(practice_id=self.practice_id, erased_at__isnull=True)
        if self.kind == "therapist":
            treats = Episode.objects.filter(client=OuterRef("pk"), therapist=self.user)
            own = Q(therapist=self.user) | Exists(treats)
        elif self.kind == "supervisor":
            base = base.annotate(_sup_withdrawn=_latest_consent_withdrawn(ConsentScope.SUPERVISION))
            own = Q(_sup_withdrawn__isnull=True)
        else:
            return base.none()
        return base.filter((own | self._emergency()) if emergency else own)

    def _emergency(self) -> Q:
        """Clients opened to this person by a valid break-glass grant (REQ-AC2), as a filter."""
        grants = emergency.active_grants().filter(
            client=OuterRef("pk"), user=self.user, practice_id=self.practice_id
        )
        return Q(Exists(grants))

    def clients(self) -> QuerySet[Client]:
        """The clients whose record this person may read: their own, plus any break-glass grant."""
        return self._clients(emergency=True)

    def own_clients(self) -> QuerySet[Client]:
        """The clients of the person's role without break-glass grants: those they may export,
        import scores for, or record consent and erasure for."""
        return self._clients(emergency=False)

    def _episodes(self, clients: QuerySet[Client], *, emergency: bool) -> QuerySet[Episode]:
        base = Episode.objects.filter(practice_id=self.practice_id)
        if self.kind == "therapist":
            own = Q(therapist=self.user) | Q(client__therapist=self.user)
            if emergency:
                granted = Client.objects.filter(
                    practice_id=self.practice_id, erased_at__isnull=True
                )
                own |= Q(client__in=granted.filter(self._emergency()))
            return base.filter(own)
        if self.kind == "supervisor":
            return base.filter(client__in=clients)
        return base.none()

    def episodes(self) -> QuerySet[Episode]:
        """Episodes of :meth:`clients` (break-glass grants included)."""
        return self._episodes(self.clients(), emergency=True)

    def own_episodes(self) -> QuerySet[Episode]:
        """Episodes of :meth:`own_clients` (no break-glass grants)."""
        return self._episodes(self.own_clients(), emergency=False)

    def emergency_grant(self, client: Client) -> EmergencyAccess | None:
        """The valid break-glass grant through which this person reads ``client`` — None when the
        client is in their own scope (or not readable at all)."""
        if not self.sees_clinical or self.own_clients().filter(pk=client.pk).exists():
            return None
        return (
            emergency.active_grants()
            .filter(client=client, user=self.user, practice_id=self.practice_id)
            .order_by("-expires_at")
            .first()
        )

    # -- things that hang off an episode -------------------------------------------------------
    def _by_episode(self, qs: QuerySet[M]) -> QuerySet[M]:
        if not self.sees_clinical:
            return qs.none()
        return qs.filter(episode__in=self.episodes())

    def sessions(self) -> QuerySet[Session]:
        return self._by_episode(Session.objects.all())

    def goals(self) -> QuerySet[Goal]:
        return self._by_episode(Goal.objects.all())

    def checkins(self) -> QuerySet[CheckIn]:
        return self._by_episode(CheckIn.objects.all())

    def scores(self) -> QuerySet[Score]:
        return self._by_episode(Score.objects.all())

    def alerts(self) -> QuerySet[Alert]:
        return self._by_episode(Alert.objects.all())

    def relationship_notes(self) -> QuerySet[RelationshipNote]:
        return self._by_episode(RelationshipNote.objects.all())

    def stage_assessments(self) -> QuerySet[StageAssessment]:
        return self._by_episode(StageAssessment.objects.all())

    def client_notes(self) -> QuerySet[ClientNote]:
        """What clients wrote privately: the treating therapist only."""
        if self.kind != "therapist":
            return ClientNote.objects.none()
        return ClientNote.objects.filter(
            episode__in=self.own_episodes(), episode__therapist=self.user
        )

    def private_notes(self) -> QuerySet[PrivateNote]:
        """Therapists' process notes: the author; supervisors only when shared."""
        if self.kind == "therapist":
            return PrivateNote.objects.filter(episode__in=self.own_episodes(), author=self.user)
        if self.kind == "supervisor":
            return PrivateNote.objects.filter(
                episode__in=self.own_episodes(), shared_with_supervisors=True
            )
        return PrivateNote.objects.none()

    # -- what they may do ------------------------------------------------------------------------
    def may_treat(self, episode: Episode) -> bool:
        """Whether this person may record clinical work (ratings, notes, actions) on the episode."""
        return self.kind in ("therapist", "supervisor") and (
            episode.therapist_id == self.user.pk or episode.client.therapist_id == self.user.pk
        )


def scope_for(user: Any) -> Scope:
    """The scope of a signed-in staff member (an empty scope for anyone else)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Scope(user=user, kind="none")
    if getattr(user, "practice_id", None) is None:
        return Scope(user=user, kind="none")
    role = getattr(user, "role", "")
    if role == "therapist":
        return Scope(user=user, kind="therapist")
    if role == "supervisor":
        return Scope(user=user, kind="supervisor")
    if role == "admin":
        return Scope(user=user, kind="therapist" if user.is_clinician else "admin")
    return Scope(user=user, kind="none")


def get_or_404(scope: Scope, queryset: QuerySet[M], *, entity: str, **lookup: Any) -> M:
    """The row matching ``lookup`` within the scoped queryset, or 404 with an audit 'deny'.

    A row that exists outside the scope looks exactly like one that does not exist (no leak).
    """
    obj = queryset.filter(**lookup).first()
    if obj is None:
        record(
            Actor.of(scope.user),
            Action.READ,
            entity,
            next(iter(lookup.values()), ""),
            outcome=Outcome.DENY,
            detail={"reason": "out_of_scope_or_missing"},
        )
        raise Http404("Not found")
    return obj
