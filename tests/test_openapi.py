"""The widget API's OpenAPI document (widget/openapi.json) stays true to the code.

The routes, the methods each view takes and every error code the code can emit are read from
the code itself, so a new route, method or error code without documentation fails here.
"""

import json
import re
import uuid
from pathlib import Path

import pytest
from django.urls import URLPattern, reverse

from tests.conftest import ACME_ORIGIN
from widget import urls as widget_urls
from widget.views import OPENAPI_PATH

ROOT = Path(__file__).resolve().parent.parent
HTTP_METHODS = ("get", "post", "put", "patch", "delete", "options", "head", "trace")
# error("<code>", ...) in the widget app, InvalidAnswer("<code>", ...) in the flow engine; the
# call may break its line after the parenthesis.
# error("code", ...) in the views and decorators; ConversationDenied("code", ...) in the services.
WIDGET_ERROR_CALL = re.compile(r"\b(?:error|ConversationDenied)\(\s*\"([a-z_]+)\"")
ANSWER_ERROR_CALL = re.compile(r"\bInvalidAnswer\(\s*\"([a-z_]+)\"")


@pytest.fixture(scope="module")
def document():
    return json.loads(OPENAPI_PATH.read_text())


def _api_routes() -> list[URLPattern]:
    return [p for p in widget_urls.urlpatterns if p.name != "openapi"]


def _path_template(route: URLPattern) -> str:
    """sites/<str:site_key>/sessions -> /sites/{site_key}/sessions"""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(route.pattern))


def _resolve(document: dict, ref: str):
    assert ref.startswith("#/"), f"{ref} is not a reference inside the document"
    node = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def _deref(document: dict, node: dict) -> dict:
    while "$ref" in node:
        node = _resolve(document, node["$ref"])
    return node


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _codes_in_source() -> set[str]:
    codes = set()
    for source in (ROOT / "widget").glob("*.py"):
        codes |= set(WIDGET_ERROR_CALL.findall(source.read_text()))
    for source in (ROOT / "dialogues" / "flow").glob("*.py"):
        codes |= set(ANSWER_ERROR_CALL.findall(source.read_text()))
    return codes


def _codes_documented_on_operations(document: dict) -> set[str]:
    """The error codes the operations' responses list (error.code narrowed by an enum)."""
    codes = set()
    for path_item in document["paths"].values():
        for method in HTTP_METHODS:
            for response in path_item.get(method, {}).get("responses", {}).values():
                content = _deref(document, response).get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                for part in schema.get("allOf", []):
                    code = part.get("properties", {}).get("error", {}).get("properties", {})
                    codes |= set(code.get("code", {}).get("enum", []))
    return codes


def test_it_serves_the_document_exactly_as_the_file_in_the_repository(client, settings):
    settings.ALLOWED_HOSTS = ["*"]

    response = client.get(reverse("widget:openapi"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == OPENAPI_PATH.read_bytes()


def test_it_declares_openapi_3_1(document):
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])


def test_it_places_the_paths_under_the_api_prefix(document):
    prefix = reverse("widget:openapi").removesuffix("/openapi.json")

    assert [server["url"] for server in document["servers"]] == [prefix]


def test_it_documents_every_route_and_only_routes_that_exist(document):
    routes = {_path_template(route) for route in _api_routes()}

    assert set(document["paths"]) == routes


def test_it_names_each_path_parameter_as_the_route_does(document):
    for route in _api_routes():
        template = _path_template(route)
        path_item = document["paths"][template]
        parameters = [_deref(document, p) for p in path_item.get("parameters", [])]
        documented = {p["name"] for p in parameters if p["in"] == "path"}

        assert documented == set(re.findall(r"\{(\w+)\}", template)), template


@pytest.mark.django_db
def test_it_documents_the_methods_each_view_takes(document, client, acme, settings):
    settings.ALLOWED_HOSTS = ["*"]
    for route in _api_routes():
        template = _path_template(route)
        url = "/api/widget/v1" + template.format(
            site_key=acme.public_key, conversation_id=uuid.uuid4()
        )
        # Ask with every method from an allowed origin: a method the view does not take is
        # refused with 405 before anything else is looked at.
        taken = set()
        for method in HTTP_METHODS:
            response = client.generic(method.upper(), url, HTTP_ORIGIN=ACME_ORIGIN)
            if response.status_code != 405:
                taken.add(method)

        documented = {m for m in HTTP_METHODS if m in document["paths"][template]}
        assert documented == taken, template


def test_it_lists_every_error_code_the_code_can_emit(document):
    in_source = _codes_in_source()
    # The scan must find something, or a changed call style would make this test pass vacuously.
    assert {"unknown_site", "conversation_over", "invalid_email"} <= in_source

    declared = set(document["components"]["schemas"]["ErrorCode"]["enum"])
    assert declared == in_source
    assert _codes_documented_on_operations(document) == in_source


def test_it_resolves_every_reference(document):
    refs = set(_refs(document))
    assert refs, "the document uses no $ref at all"

    for ref in refs:
        _resolve(document, ref)


def test_it_describes_the_conversation_token_as_a_bearer_scheme(document):
    scheme = document["components"]["securitySchemes"]["conversationToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")

    secured = {
        (path, method)
        for path, item in document["paths"].items()
        for method in HTTP_METHODS
        if item.get(method, {}).get("security")
    }
    assert secured == {
        ("/sites/{site_key}/conversations/{conversation_id}", "get"),
        ("/sites/{site_key}/conversations/{conversation_id}/answers", "post"),
        ("/sites/{site_key}/conversations/{conversation_id}/slots", "get"),
        ("/sites/{site_key}/conversations/{conversation_id}/bookings", "post"),
    }
