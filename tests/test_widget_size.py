"""The widget loads on every page of every customer: its size is a budget, checked here."""

import gzip

from django.conf import settings

WIDGET = settings.BASE_DIR / "static" / "widget" / "dynchat.js"
BUDGET_BYTES = 10 * 1024


def test_it_keeps_the_widget_within_its_gzipped_size_budget():
    size = len(gzip.compress(WIDGET.read_bytes(), compresslevel=9))
    print(f"dynchat.js: {size} bytes gzipped (budget {BUDGET_BYTES})")
    assert size <= BUDGET_BYTES
