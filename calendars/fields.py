from django.db import models

from calendars import crypto


class EncryptedTextField(models.TextField):
    """Text stored encrypted (calendars.crypto) and read back as plain text.

    The empty string is stored as is, so "no token" needs no key. Filtering on the value is
    meaningless (each encryption differs) and nobody does it.
    """

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(value)
