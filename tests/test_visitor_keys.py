"""Visitor keys are recognised without a database row: the server tells the keys it issued
from invented, altered or foreign ones by their signature, across a SECRET_KEY rotation."""

from django.core import signing

from widget import keys


def test_it_recognises_a_key_it_issued_for_the_site():
    key = keys.new_visitor_key(7)

    assert keys.is_visitor_key(key, 7)
    assert len(key) <= 100


def test_it_refuses_a_key_issued_for_another_site():
    assert not keys.is_visitor_key(keys.new_visitor_key(7), 8)


def test_it_refuses_an_altered_or_invented_key():
    value, _, signature = keys.new_visitor_key(7).partition(".")

    def altered(text):  # its last character changed (to another one, whatever it was)
        return text[:-1] + ("y" if text.endswith("x") else "x")

    assert not keys.is_visitor_key(f"{altered(value)}.{signature}", 7)
    assert not keys.is_visitor_key(f"{value}.{altered(signature)}", 7)
    assert not keys.is_visitor_key("k" * 40, 7)
    assert not keys.is_visitor_key(".", 7)


def test_it_keeps_recognising_keys_while_the_secret_key_is_rotated(settings):
    old_secret, old_key = settings.SECRET_KEY, keys.new_visitor_key(7)

    settings.SECRET_KEY = "a brand new secret key for this installation"
    assert not keys.is_visitor_key(old_key, 7)

    settings.SECRET_KEY_FALLBACKS = [old_secret]
    assert keys.is_visitor_key(old_key, 7)


def test_it_writes_keys_in_djangos_signer_format(settings):
    # Keys stay checkable by django.core.signing should the hand-written signer ever go.
    key = keys.new_visitor_key(7)
    signer = signing.Signer(salt="dynchat.visitor.7", sep=".", algorithm="sha256")

    assert signer.unsign(key) == key.partition(".")[0]
