"""/api/v1/clients/: scoped per persona, audited per client, allow-listed ordering and filters."""

from __future__ import annotations

import uuid

import pytest

from alliance_web.audit.models import Action, Outcome
from alliance_web.care import services
from alliance_web.care.models import Client, ConsentScope
from tests.web.api_helpers import audit_since, last_seq

pytestmark = pytest.mark.django_db

URL = "/api/v1/clients/"


def ids(response):
    return [row["id"] for row in response.json()["results"]]


def test_a_therapist_sees_their_own_caseload_only(api_as, therapist_a, therapist_b, client_of_a):
    other = services.create_client(therapist_b, preferred_name="Alex", therapist=therapist_b)
    response = api_as(therapist_a).get(URL)
    assert response.status_code == 200
    assert ids(response) == [str(client_of_a.public_id)]
    assert str(other.public_id) in ids(api_as(therapist_b).get(URL))
    assert str(client_of_a.public_id) not in ids(api_as(therapist_b).get(URL))


def test_a_supervisor_sees_the_practice_except_clients_who_withdrew_consent(
    api_as, supervisor, therapist_a, client_of_a
):
    other = services.create_client(therapist_a, preferred_name="Jo", therapist=therapist_a)
    services.set_consent(therapist_a, other, ConsentScope.SUPERVISION, given=False)
    assert ids(api_as(supervisor).get(URL)) == [str(client_of_a.public_id)]


def test_an_outsider_sees_nothing_and_gets_404_on_a_known_id(api_as, outsider, client_of_a):
    api = api_as(outsider)
    assert ids(api.get(URL)) == []
    seq = last_seq()
    response = api.get(f"{URL}{client_of_a.public_id}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    denied = audit_since(seq, outcome=Outcome.DENY)
    assert [(e.entity_type, e.username) for e in denied] == [("client", "outsider")]


def test_a_practice_admin_sees_no_clinical_content(api_as, practice_admin, client_of_a):
    seq = last_seq()
    response = api_as(practice_admin).get(URL)
    assert response.status_code == 403
    assert "clinical content" in response.json()["detail"]
    assert audit_since(seq, outcome=Outcome.DENY)


def test_a_list_is_audited_once_per_client_shown(api_as, therapist_a, client_of_a):
    second = services.create_client(therapist_a, preferred_name="Kim", therapist=therapist_a)
    seq = last_seq()
    api_as(therapist_a).get(URL)
    reads = audit_since(seq, action=Action.READ, entity_type="client")
    assert sorted(e.patient_id for e in reads) == sorted(
        [str(client_of_a.public_id), str(second.public_id)]
    )
    assert all(e.purpose == "api_list" for e in reads)


def test_a_detail_read_is_audited(api_as, therapist_a, client_of_a):
    seq = last_seq()
    response = api_as(therapist_a).get(f"{URL}{client_of_a.public_id}/")
    assert response.status_code == 200
    assert response.json()["preferred_name"] == "Sam"
    (event,) = audit_since(seq, action=Action.READ)
    assert event.patient_id == str(client_of_a.public_id)


@pytest.mark.parametrize("ordering", ["name", "-name", "created", "-last_contact"])
def test_ordering_accepts_the_allowed_keys(api_as, therapist_a, client_of_a, ordering):
    assert api_as(therapist_a).get(URL, {"ordering": ordering}).status_code == 200


@pytest.mark.parametrize(
    "ordering",
    ["preferred_name", "id;DROP TABLE care_client", "therapist__password", "a.b", "-", "?"],
)
def test_ordering_outside_the_allow_list_is_a_400_without_sql(api_as, therapist_a, ordering):
    response = api_as(therapist_a).get(URL, {"ordering": ordering})
    assert response.status_code == 400
    body = response.json()
    assert "ordering" in body["fields"]
    assert "SQL" not in str(body)
    assert "syntax" not in str(body)


def test_filters_by_name_and_therapist(api_as, therapist_a, client_of_a):
    services.create_client(therapist_a, preferred_name="Kim", therapist=therapist_a)
    api = api_as(therapist_a)
    assert len(ids(api.get(URL, {"name": "sa"}))) == 1
    assert len(ids(api.get(URL, {"therapist": "therapist_a"}))) == 2
    assert ids(api.get(URL, {"therapist": "nobody"})) == []


def test_pagination_limits_and_offsets(api_as, therapist_a):
    for n in range(5):
        services.create_client(therapist_a, preferred_name=f"P{n}", therapist=therapist_a)
    body = api_as(therapist_a).get(URL, {"limit": 2, "offset": 2}).json()
    assert body["count"] == 5
    assert [r["preferred_name"] for r in body["results"]] == ["P2", "P3"]
    assert body["next"]
    assert body["previous"]


def test_a_therapist_adds_a_client_to_their_own_caseload(api_as, therapist_a):
    seq = last_seq()
    response = api_as(therapist_a).post(
        URL, {"preferred_name": "Robin", "email": "robin@example.org"}, format="json"
    )
    assert response.status_code == 201, response.json()
    client = Client.objects.get(public_id=response.json()["id"])
    assert client.therapist == therapist_a
    assert [e.action for e in audit_since(seq, entity_type="client")] == [Action.CREATE]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "preferred_name"),
        ({"preferred_name": "x" * 121}, "preferred_name"),
        ({"preferred_name": "A", "email": "not-an-email"}, "email"),
        ({"preferred_name": "A", "consents": ["everything"]}, "consents.0"),
        ({"preferred_name": "A", "date_of_birth": "1990-02-30"}, "date_of_birth"),
    ],
)
def test_bad_client_input_is_a_400_naming_the_field_and_stores_nothing(
    api_as, therapist_a, body, field
):
    response = api_as(therapist_a).post(URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert Client.objects.count() == 0


def test_only_a_supervisor_may_add_a_client_for_another_therapist(
    api_as, therapist_a, therapist_b, supervisor
):
    body = {"preferred_name": "Lee", "therapist": "therapist_b"}
    assert api_as(therapist_a).post(URL, body, format="json").status_code == 403
    response = api_as(supervisor).post(URL, body, format="json")
    assert response.status_code == 201
    assert response.json()["therapist"] == "therapist_b"


def test_a_malformed_id_is_a_404(api_as, therapist_a):
    assert api_as(therapist_a).get(f"{URL}{'0' * 32}/").status_code == 404
    assert api_as(therapist_a).get(f"{URL}{uuid.uuid4()}/").status_code == 404
