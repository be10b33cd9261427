from django.conf import settings
from django.core.management.base import BaseCommand

from dynchat import demo


class Command(BaseCommand):
    help = "Create (or refresh) the demo site, marketer and dialogue. Safe to run again."

    def handle(self, *args, **options):
        site = demo.seed_demo()
        root = settings.SITE_ROOT
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "DynChat demo is ready.",
                    f"  Demo host page (the widget on a customer page): {root}/demo/",
                    f"  Marketer UI:  {root}/   (admin: {root}/admin/)",
                    f"  Reports:      {root}/sites/{site.pk}/reports/   (after a few chats)",
                    f"  Demo login:   {demo.DEMO_USERNAME} / {demo.DEMO_PASSWORD}",
                    "  Sales agents: "
                    + ", ".join(a["username"] for a in demo.DEMO_AGENTS)
                    + f" (same password; their calendar page: {root}/calendar/)",
                    f"  Site key:     {site.public_key}",
                    "",
                ]
            )
        )
