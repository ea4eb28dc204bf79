"""The OpenAPI 3 schema at /api/schema/ validates, and the docs page at /api/docs/ loads."""

import json

import pytest
from django.core.management import call_command
from django.test import Client


@pytest.fixture
def schema(anon_api, db) -> dict:
    response = anon_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_validates_against_openapi_3_without_warnings(tmp_path, db):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert target.read_text().startswith("openapi: 3")


def test_the_schema_is_served_at_api_schema(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Tideline API"


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/auth/register/", {"post"}),
        ("/api/auth/token/", {"post"}),
        ("/api/me/", {"get", "patch"}),
        ("/api/tasks/", {"get", "post"}),
        ("/api/tasks/{id}/", {"get", "put", "patch", "delete"}),
        ("/api/tasks/{id}/complete/", {"post"}),
        ("/api/tasks/{id}/reopen/", {"post"}),
        ("/api/tasks/import/", {"post"}),
        ("/api/feed/", {"get", "post", "delete"}),
        ("/api/categories/", {"get", "post"}),
        ("/api/categories/{id}/", {"get", "put", "patch", "delete"}),
        ("/api/tags/", {"get", "post"}),
        ("/api/tags/{id}/", {"get", "put", "patch", "delete"}),
        ("/api/tokens/", {"get", "post"}),
        ("/api/tokens/{id}/", {"delete"}),
    ],
)
def test_the_schema_documents_every_endpoint(schema, path, methods):
    assert methods <= set(schema["paths"][path])


def test_the_schema_documents_every_task_filter_and_sort(schema):
    documented = {p["name"] for p in schema["paths"]["/api/tasks/"]["get"]["parameters"]}

    assert documented >= {
        "status",
        "completed",
        "priority",
        "category",
        "tags",
        "tags_all",
        "due_before",
        "due_after",
        "overdue",
        "has_due_date",
        "has_recurrence",
        "search",
        "created_after",
        "created_before",
        "ordering",
        "sort_by",
        "sort_order",
        "page",
        "page_size",
    }


def test_the_schema_lists_the_priorities_in_urgency_order(schema):
    assert schema["components"]["schemas"]["PriorityEnum"]["enum"] == [
        "low",
        "medium",
        "high",
        "urgent",
    ]


def test_the_schema_describes_tags_as_a_list_of_names(schema):
    tags = schema["components"]["schemas"]["Task"]["properties"]["tags"]

    assert tags["type"] == "array"
    assert tags["items"]["type"] == "string"


def test_the_docs_page_loads(db):
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
    assert b"/api/schema/" in response.content
