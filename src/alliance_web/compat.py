"""Django 6 and Django 5.2 LTS differences in one place (Python 3.11 runs 5.2)."""

from __future__ import annotations

try:  # Django >= 6.0
    from django.tasks import task
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import task  # type: ignore[no-redef]

__all__ = ["TASKS_DUMMY_BACKEND", "TASKS_IMMEDIATE_BACKEND", "task"]

# The framework's own backends, for tests and settings (module paths differ between the two).
try:
    import django.tasks  # noqa: F401

    TASKS_IMMEDIATE_BACKEND = "django.tasks.backends.immediate.ImmediateBackend"
    TASKS_DUMMY_BACKEND = "django.tasks.backends.dummy.DummyBackend"
except ImportError:
    TASKS_IMMEDIATE_BACKEND = "django_tasks.backends.immediate.ImmediateBackend"
    TASKS_DUMMY_BACKEND = "django_tasks.backends.dummy.DummyBackend"
