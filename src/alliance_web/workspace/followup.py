"""The closed loop (SPEC §2.5): after an alert's action is recorded, did the client get back on
track? Compares what the check-ins said after the action with what raised the alert."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from alliance_web.care.access import Scope
from alliance_web.care.models import Alert, AlertKind, AlertStatus, Score

# Worse signals rank higher.
SIGNAL_RANK = {"recovered": 0, "improved": 1, "on_track": 2, "at_risk": 3, "off_track": 4}
GOOD = {"on_track", "improved", "recovered"}


@dataclass(frozen=True)
class FollowUp:
    state: str  # waiting | no_checkin | better | same | worse | safe | unsafe | repaired
    text: str

    @property
    def good(self) -> bool:
        return self.state in ("better", "safe", "repaired")


def later_scores(scope: Scope, alerts: Sequence[Alert]) -> dict[int, list[Score]]:
    """Client scores recorded after the first action on each alert's episode (one query)."""
    acted = [a for a in alerts if a.first_action_at is not None]
    if not acted:
        return {}
    since = min(a.first_action_at for a in acted)
    out: dict[int, list[Score]] = defaultdict(list)
    qs = scope.scores().filter(
        episode_id__in={a.episode_id for a in acted}, rater="client", administered_at__gt=since
    )
    for score in qs.order_by("administered_at", "pk").only(
        "episode_id", "instrument", "signal", "flags", "total", "administered_at"
    ):
        out[score.episode_id].append(score)
    return out


def follow_up(alert: Alert, scores: Iterable[Score], insight: Any = None) -> FollowUp:
    """What happened after the action, in words a therapist can act on."""
    if (
        alert.status in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
        or alert.first_action_at is None
    ):
        return FollowUp(
            "waiting", "Record what you did; the follow-up appears after the next check-in."
        )
    after = [s for s in scores if s.administered_at > alert.first_action_at]
    if alert.kind == AlertKind.RUPTURE and insight is not None:
        for r in (insight.alliance or {}).get("ruptures") or []:
            if r.get("repair_session") is not None and (
                alert.session_number is None
                or r.get("low_session") in (alert.session_number, None)
                or r.get("start_session") == alert.session_number
            ):
                return FollowUp(
                    "repaired",
                    f"Repaired: the client's alliance rating recovered by session {r['repair_session']}.",
                )
    if not after:
        return FollowUp("no_checkin", "No check-in since the action yet.")
    if alert.kind == AlertKind.SAFETY:
        again = [s for s in after if any("safety" in f for f in s.flags or [])]
        if again:
            return FollowUp("unsafe", "The safety item was endorsed again after the action.")
        return FollowUp(
            "safe",
            f"No safety item endorsed in {len({s.administered_at.date() for s in after})} check-in(s) since the action.",
        )
    with_signal = [s for s in after if s.signal in SIGNAL_RANK]
    if not with_signal:
        return FollowUp("no_checkin", "Check-ins since the action have no recovery signal yet.")
    now = with_signal[-1].signal
    before = (alert.detail or {}).get("signal") or (
        alert.kind if alert.kind in SIGNAL_RANK else "off_track"
    )
    label = now.replace("_", " ")
    if now in GOOD:
        return FollowUp("better", f"Back on track: the latest check-in is {label}.")
    if SIGNAL_RANK[now] < SIGNAL_RANK.get(before, 4):
        return FollowUp("better", f"Better than when the alert was raised: now {label}.")
    if SIGNAL_RANK[now] > SIGNAL_RANK.get(before, 4):
        return FollowUp("worse", f"Worse than when the alert was raised: now {label}.")
    return FollowUp("same", f"Still {label} at the latest check-in.")
