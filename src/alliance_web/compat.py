"""Django 6 and Django 5.2 LTS differences in one place (Python 3.11 runs 5.2)."""

from __future__ import annotations

try:  # Django >= 6.0
    from django.tasks import task
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import task  # type: ignore[no-redef]

__all__ = ["task"]
