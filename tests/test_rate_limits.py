"""Rate limits hold per site and per client, and a client cannot dodge them by forging
X-Forwarded-For behind our proxy."""

from tests.conftest import PAGE_URL


def start_session(acme_widget, **headers):
    return acme_widget.client.post(
        f"{acme_widget.base}/sessions",
        f'{{"page_url": "{PAGE_URL}"}}',
        content_type="application/json",
        HTTP_ORIGIN=acme_widget.origin,
        **headers,
    )


def test_it_counts_forged_forwarded_addresses_as_the_one_client_the_proxy_saw(
    acme_widget, settings
):
    settings.WIDGET_SESSION_RATE_LIMIT_PER_MINUTE = 2
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    statuses = [
        start_session(acme_widget, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 203.0.113.7").status_code
        for n in range(3)
    ]

    assert statuses == [200, 200, 429]


def test_it_keeps_separate_budgets_for_clients_behind_the_proxy(acme_widget, settings):
    settings.WIDGET_SESSION_RATE_LIMIT_PER_MINUTE = 1
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    first = start_session(acme_widget, HTTP_X_FORWARDED_FOR="203.0.113.7")
    second = start_session(acme_widget, HTTP_X_FORWARDED_FOR="198.51.100.9")

    assert (first.status_code, second.status_code) == (200, 200)


def test_it_ignores_forwarded_addresses_when_not_behind_a_proxy(acme_widget, settings):
    settings.WIDGET_SESSION_RATE_LIMIT_PER_MINUTE = 1
    settings.SECURE_PROXY_SSL_HEADER = None

    first = start_session(acme_widget, HTTP_X_FORWARDED_FOR="203.0.113.7")
    second = start_session(acme_widget, HTTP_X_FORWARDED_FOR="198.51.100.9")

    assert (first.status_code, second.status_code) == (200, 429)
