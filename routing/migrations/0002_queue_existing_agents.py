"""Agents who connected a calendar before routing existed join their sites' queues, in the
order they joined the site (the order bookings used until now)."""

from django.db import migrations


def queue_connected_agents(apps, schema_editor):
    Membership = apps.get_model("dialogues", "Membership")
    QueueMember = apps.get_model("routing", "QueueMember")
    CalendarConnection = apps.get_model("calendars", "CalendarConnection")
    connected = set(CalendarConnection.objects.values_list("user_id", flat=True))
    positions = {}
    for membership in Membership.objects.filter(role="agent").order_by("pk"):
        if membership.user_id not in connected:
            continue
        position = positions.get(membership.site_id, 0)
        QueueMember.objects.get_or_create(
            site_id=membership.site_id,
            user_id=membership.user_id,
            defaults={"position": position},
        )
        positions[membership.site_id] = position + 1


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0001_initial"),
        ("dialogues", "0001_initial"),
        ("calendars", "0001_initial"),
    ]

    operations = [migrations.RunPython(queue_connected_agents, migrations.RunPython.noop)]
