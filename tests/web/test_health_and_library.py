"""The health check and the public instrument pages."""

import pytest

import alliance as al

pytestmark = pytest.mark.django_db


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] in {"sqlite", "postgresql"}


def test_healthz_says_503_when_the_database_is_down(client, monkeypatch):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise connection.Database.OperationalError("server closed the connection")

    with monkeypatch.context() as patched:  # undone before the suite's own checks touch the DB
        patched.setattr(connection, "cursor", broken_cursor)
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"


def test_the_library_lists_every_instrument(client):
    response = client.get("/instruments/")
    assert response.status_code == 200
    html = response.content.decode()
    for inst in al.instruments().values():
        assert inst.short_name in html


def test_a_free_instrument_previews_with_its_text(client):
    html = client.get("/instruments/phq9/").content.decode()
    assert "Little interest or pleasure in doing things" in html
    assert "Nearly every day" in html


def test_an_unknown_instrument_is_404(client):
    assert client.get("/instruments/nope/").status_code == 404
