from django.apps import AppConfig


class MarketoSyncConfig(AppConfig):
    name = "marketo_sync"
