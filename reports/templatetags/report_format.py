"""Filters for the report pages."""

from django import template

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    """0.125 → "12.5%"; None (nothing to divide by) → an en dash."""
    if value is None:
        return "\u2013"
    return f"{value * 100:.1f}%"
