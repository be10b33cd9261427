from django.apps import AppConfig


class DynchatConfig(AppConfig):
    name = "dynchat"

    def ready(self):
        from dynchat import checks  # noqa: F401 - registers the system checks
