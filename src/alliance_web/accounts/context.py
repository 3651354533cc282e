"""Template context: who is signed in and what they may open."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_user": None}
    return {
        "nav_user": user,
        "nav_role": getattr(user, "role", ""),
        "nav_sees_caseload": getattr(user, "sees_caseload", False),
        "nav_is_supervisor": getattr(user, "is_supervisor", False),
        "nav_is_admin": getattr(user, "is_practice_admin", False),
    }
