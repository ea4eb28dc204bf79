"""The schema documents the API's error answers and limits as the server gives them, and the
server keeps to the schema's types (what schemathesis found; see test_openapi_conformance)."""

from __future__ import annotations

import json

import pytest
from django.conf import settings


@pytest.fixture
def schema(anon_api, db) -> dict:
    response = anon_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def responses(schema: dict, method: str, path: str) -> dict:
    return schema["paths"][path][method]["responses"]


def test_a_task_detail_route_documents_each_error_with_its_body(schema):
    documented = responses(schema, "patch", "/api/tasks/{id}/")

    assert {"200", "400", "401", "404", "413", "429"} <= set(documented)
    assert documented["400"] == {"$ref": "#/components/responses/BadRequest"}
    error = schema["components"]["responses"]["NotFound"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]


def test_a_throttled_answer_documents_retry_after(schema):
    too_many = schema["components"]["responses"]["TooManyRequests"]

    assert "Retry-After" in too_many["headers"]
    assert "429" in responses(schema, "post", "/api/auth/token/")


def test_operations_without_credentials_do_not_document_401(schema):
    assert "401" not in responses(schema, "post", "/api/auth/register/")
    assert "401" in responses(schema, "get", "/api/tasks/")


def test_only_routes_with_an_object_or_a_page_document_404_and_only_bodies_413(schema):
    assert "404" not in responses(schema, "get", "/api/me/")
    assert "404" in responses(schema, "get", "/api/tags/")  # a page past the last
    assert "413" not in responses(schema, "get", "/api/tasks/{id}/")
    assert "413" in responses(schema, "post", "/api/tasks/")


def test_the_413_states_the_body_limit(schema):
    description = schema["components"]["responses"]["ContentTooLarge"]["description"]

    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in description


def test_request_bodies_refuse_unknown_fields_in_the_schema_as_the_server_does(schema, api):
    components = schema["components"]["schemas"]

    assert components["TaskRequest"]["additionalProperties"] is False
    assert components["PatchedTaskRequest"]["additionalProperties"] is False
    assert components["TagRequest"]["additionalProperties"] is False
    assert api.post("/api/tags/", {"name": "home", "colour": "red"}).status_code == 400


def test_page_size_is_documented_with_the_bounds_the_server_enforces(schema, api):
    parameters = schema["paths"]["/api/tasks/"]["get"]["parameters"]
    page_size = next(p for p in parameters if p["name"] == "page_size")

    assert page_size["schema"]["minimum"] == 1
    assert page_size["schema"]["maximum"] == settings.API_MAX_PAGE_SIZE
    assert api.get("/api/tasks/", {"page_size": settings.API_MAX_PAGE_SIZE + 1}).status_code == 400
    assert api.get("/api/tasks/", {"page_size": settings.API_MAX_PAGE_SIZE}).status_code == 200


def test_an_empty_filter_is_documented_as_allowed_and_accepted(schema, api):
    parameters = {p["name"]: p for p in schema["paths"]["/api/tasks/"]["get"]["parameters"]}

    assert parameters["due_before"]["allowEmptyValue"] is True
    assert "allowEmptyValue" not in parameters["page_size"]
    assert api.get("/api/tasks/", {"due_before": ""}).status_code == 200


def test_a_date_bound_is_documented_as_a_date_or_a_date_time(schema, api):
    parameters = {p["name"]: p for p in schema["paths"]["/api/tasks/"]["get"]["parameters"]}

    assert parameters["due_before"]["schema"]["anyOf"] == [
        {"format": "date"},
        {"format": "date-time"},
    ]
    assert api.get("/api/tasks/", {"due_before": "2026-12-01"}).status_code == 200


def test_the_dapr_callbacks_are_not_in_the_public_schema(schema):
    assert all(path.startswith("/api/") for path in schema["paths"])


# --- What schemathesis found --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/tags/", {"name": 0}, "name"),
        ("/api/categories/", {"name": "Work", "color": 0}, "color"),
        ("/api/tasks/", {"title": "Pay rent", "completed": "true"}, "completed"),
        ("/api/tasks/", {"title": "Pay rent", "recurrence_interval": "2"}, "recurrence_interval"),
        ("/api/tasks/", {"title": "Pay rent", "tags": ["home", 7]}, "tags"),
        ("/api/tasks/quick-add/", {"text": 0}, "text"),
    ],
)
def test_a_json_value_of_the_wrong_type_is_a_400_naming_the_field(api, path, body, field):
    response = api.post(path, body, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_a_list_item_of_the_wrong_type_is_named_by_its_index(api):
    response = api.post("/api/tasks/", {"title": "Pay rent", "tags": ["home", 7]}, format="json")

    assert response.json() == {"tags": {"1": ["Must be a string."]}}


def test_a_null_is_still_left_to_the_field(api):
    response = api.post("/api/tasks/", {"title": "Pay rent", "due_date": None}, format="json")

    assert response.status_code == 201


@pytest.mark.parametrize("path", ["/api/tasks/1.5/", "/api/tags/a/b/", "/api/nothing/"])
def test_an_api_url_that_matches_no_route_is_a_json_404(api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_page_that_matches_no_route_outside_the_api_is_still_the_sites_page(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "text/html" in response["Content-Type"]
