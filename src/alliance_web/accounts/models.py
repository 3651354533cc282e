"""People who sign in: therapists, supervisors and practice admins (clients use check-in links).

A staff account belongs to one practice (the tenant) and has one role. ``is_clinician`` lets a
practice admin also carry a caseload; an admin without it configures the practice but never sees
clinical content (SECURITY.md REQ-AC1).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    THERAPIST = "therapist", "Therapist"
    SUPERVISOR = "supervisor", "Supervisor"
    ADMIN = "admin", "Practice admin"


class User(AbstractUser):
    practice = models.ForeignKey(
        "care.Practice", null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.THERAPIST)
    is_clinician = models.BooleanField(
        default=False, help_text="A practice admin who also sees their own caseload."
    )
    display_name = models.CharField(max_length=120, blank=True)
    is_demo = models.BooleanField(
        default=False, help_text="Demo account (may skip 2FA in demo mode)."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=["therapist", "supervisor", "admin"]),
                name="user_role_valid",
            )
        ]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def sees_caseload(self) -> bool:
        """Whether this person treats clients of their own."""
        return (
            self.role == Role.THERAPIST
            or (self.role == Role.ADMIN and self.is_clinician)
            or (self.role == Role.SUPERVISOR and self.is_clinician)
        )

    @property
    def is_supervisor(self) -> bool:
        return self.role == Role.SUPERVISOR

    @property
    def is_practice_admin(self) -> bool:
        return self.role == Role.ADMIN
