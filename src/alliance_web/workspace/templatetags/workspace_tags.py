"""Small presentation filters for the workspace templates."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def words(value: Any) -> str:
    """'life_events' → 'Life events'."""
    text = str(value or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@register.filter
def hours(value: Any) -> str:
    """A duration in hours, readable: '45 min', '5.2 h', '3.1 days'."""
    if value is None or value == "":
        return "—"
    h = float(value)
    if h < 1:
        return f"{h * 60:.0f} min"
    if h < 48:
        return f"{h:.1f} h"
    return f"{h / 24:.1f} days"


@register.filter
def pct(value: Any) -> str:
    return "—" if value is None or value == "" else f"{float(value) * 100:.0f}%"


@register.filter
def ago(value: Any) -> str:
    """'today', 'yesterday', '5 days ago', '3 weeks ago' — short enough for a table cell."""
    if value is None:
        return "—"
    from django.utils import timezone

    days = (timezone.localdate() - timezone.localtime(value).date()).days
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 14:
        return f"{days} days ago"
    if days < 60:
        return f"{days // 7} weeks ago"
    return f"{days // 30} months ago"
