"""The OpenAPI document and the offline docs page."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_the_openapi_document_is_served_and_describes_every_endpoint():
    response = APIClient().get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    paths = set(doc["paths"])
    for path in [
        "/api/v1/clients/",
        "/api/v1/episodes/{public_id}/close/",
        "/api/v1/checkins/{public_id}/submit/",
        "/api/v1/scores/",
        "/api/v1/alerts/{public_id}/acknowledge/",
        "/api/v1/alerts/{public_id}/actions/",
        "/api/v1/goals/",
        "/api/v1/imports/scores/",
        "/api/v1/exports/research.csv",
    ]:
        assert path in paths
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    ordering = next(
        p for p in doc["paths"]["/api/v1/clients/"]["get"]["parameters"] if p["name"] == "ordering"
    )
    assert "-name" in ordering["schema"]["enum"]
    submit = doc["paths"]["/api/v1/checkins/{public_id}/submit/"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in submit["parameters"])
    # The rate-limited exports say so; other operations do not.
    for export in ("research.csv", "practice.csv"):
        assert "429" in doc["paths"][f"/api/v1/exports/{export}"]["get"]["responses"]
    assert "429" not in doc["paths"]["/api/v1/clients/"]["get"]["responses"]


def test_the_docs_page_loads_nothing_from_the_internet(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls
    assert all(u.startswith("/") for u in urls), urls
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200
    assert "/api/v1/openapi.json" in script.content.decode()


def test_swagger_ui_assets_come_from_the_sidecar_package(client):
    html = client.get("/api/v1/docs/").content.decode()
    bundle = re.search(r'src="([^"]*swagger-ui-bundle\.js)"', html).group(1)
    asset = client.get(bundle)
    assert asset.status_code == 200
    # Reading the stream to its end closes the file (the test client closes the response then).
    assert b"SwaggerUIBundle" in b"".join(asset.streaming_content)
