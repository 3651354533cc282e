"""People who sign in: therapists, supervisors and practice admins (clients use check-in links).

A staff account belongs to one practice (the tenant) and has one role. ``is_clinician`` lets a
practice admin also carry a caseload; an admin without it configures the practice but never sees
clinical content (SECURITY.md REQ-AC1).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models, transaction
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin


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


# --- backup codes, stored hashed (SECURITY.md REQ-AN1; ASVS 6.5.1, 6.5.2) -------------------------
# django-otp's StaticDevice keeps its codes in plain text; a database copy would then open every
# account's second factor. Here each code is "<lookup>-<secret>": the 4-character lookup finds the
# row, and only an Argon2id hash of the secret part is stored (like a password), so one
# verification costs one hash. Codes are single use: a used code keeps its row with used_at set.
class BackupCodeDevice(ThrottlingMixin, Device):
    """A set of single-use backup codes for one person (a django-otp device)."""

    def get_throttle_factor(self) -> int:
        return int(getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1))

    def verify_token(self, token: Any) -> bool:
        verify_allowed, _ = self.verify_is_allowed()
        if not verify_allowed:
            return False
        from alliance_web.accounts import backup

        code = backup.split(str(token))
        matched = False
        if code is not None:
            lookup, secret = code
            with transaction.atomic():
                row = (
                    self.codes.select_for_update()
                    .filter(lookup=lookup, used_at__isnull=True)
                    .first()
                )
                if row is not None and backup.check_secret(secret, row.code_hash):
                    row.used_at = timezone.now()
                    row.save(update_fields=["used_at"])
                    matched = True
        if matched:
            self.throttle_reset()
        else:
            self.throttle_increment()
        return matched

    def remaining(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    lookup = models.CharField(max_length=8)
    code_hash = models.CharField(max_length=200)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "lookup"], name="backup_code_lookup_unique")
        ]


class UserSession(models.Model):
    """Which session belongs to whom, so that all of a person's sessions can be ended at once
    (disabled account, password change, an admin's "sign out everywhere"; ASVS 7.4.2-7.4.5)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(default=timezone.now)


class Invitation(models.Model):
    """A one-time code with which a new (or reset) staff member sets their password.

    The code is shown once to the practice admin who created it and never appears in a URL;
    only its SHA-256 is stored (it has 100 bits of entropy, so a plain hash suffices).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations"
    )
    code_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    @property
    def usable(self) -> bool:
        return self.used_at is None and timezone.now() < self.expires_at
