from django.db import migrations

CREATE = "CREATE INDEX IF NOT EXISTS activity_date_brin ON marketo_sync_activity USING brin (activity_date)"
DROP = "DROP INDEX IF EXISTS activity_date_brin"


def create_brin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_brin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("marketo_sync", "0001_initial")]

    operations = [migrations.RunPython(create_brin, drop_brin)]
