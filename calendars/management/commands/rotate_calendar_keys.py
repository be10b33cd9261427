from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from calendars import crypto
from calendars.models import CalendarConnection, OAuthAttempt

# Every encrypted column, by model.
ENCRYPTED = {
    CalendarConnection: ("refresh_token", "access_token", "token_cache"),
    OAuthAttempt: ("secret",),
}


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored calendar token with the first key of CALENDAR_TOKEN_KEYS. "
        "Run after putting a new key in front; the old key can be dropped afterwards."
    )

    def handle(self, *args, **options):
        rotated = 0
        for model, columns in ENCRYPTED.items():
            for pk in model.objects.values_list("pk", flat=True):
                # Raw values, row-locked: the field would decrypt on read, and a worker
                # refreshing the same token meanwhile must not be overwritten.
                with transaction.atomic():
                    stored = _read_raw(model, pk, columns)
                    try:
                        fresh = {column: crypto.rotate(v) for column, v in stored.items() if v}
                    except crypto.UnreadableSecret as exc:
                        raise CommandError(
                            f"{model.__name__} {pk}: {exc}. Keep the old key in "
                            "CALENDAR_TOKEN_KEYS until every row is rotated."
                        ) from None
                    if fresh:
                        _write_raw(model, pk, fresh)
                        rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} rows with the newest key.")


def _sql_names(model, columns) -> tuple[str, list[str]]:
    quote = connection.ops.quote_name
    return quote(model._meta.db_table), [quote(model._meta.get_field(c).column) for c in columns]


def _read_raw(model, pk, columns) -> dict:
    table, names = _sql_names(model, columns)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(names)} FROM {table} WHERE id = %s{lock}",  # noqa: S608
            [pk],
        )
        values = cursor.fetchone() or ()
    return dict(zip(columns, values, strict=False))


def _write_raw(model, pk, values: dict) -> None:
    table, names = _sql_names(model, values)
    sets = ", ".join(f"{name} = %s" for name in names)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {sets} WHERE id = %s",  # noqa: S608 - names are our columns
            [*values.values(), pk],
        )
