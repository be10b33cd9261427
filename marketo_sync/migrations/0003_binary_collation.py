"""Marketo's keys and lookup values are compared for equality only: give their columns the "C"
collation (PostgreSQL only), whose byte comparisons let index builds use abbreviated keys.
Building the activity primary key after a first load of 2,000,000 rows took 1.5 s with the
database's default collation and 0.6 s with "C" (bench/README.md)."""

from django.db import migrations

COLUMNS = [
    ("marketo_sync_activity", "marketo_guid", "varchar(64)"),
    ("marketo_sync_lead", "email", "varchar(255)"),
    ("marketo_sync_lead", "cookies", "text"),
    ("marketo_sync_lead", "external_company_id", "varchar(255)"),
    ("marketo_sync_company", "external_company_id", "varchar(255)"),
]


def set_collation(collation):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table, column, kind in COLUMNS:
            clause = f' COLLATE "{collation}"' if collation else ""
            schema_editor.execute(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {kind}{clause}"
            )

    return run


class Migration(migrations.Migration):
    dependencies = [("marketo_sync", "0002_activity_date_brin")]

    operations = [migrations.RunPython(set_collation("C"), set_collation("default"))]
