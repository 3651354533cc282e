"""Rows of the record as FHIR R4 resources (plain dicts, valid under the ``fhir.resources`` R4B
models, which match R4 for these resources).

=========================  ==================================================================
resource                   from
=========================  ==================================================================
Patient/<client id>        :class:`~alliance_web.care.models.Client` (name as the client gave
                           it, birth date, email/phone; never notes)
QuestionnaireResponse/<r>  one :class:`~alliance_web.care.models.Response` — the answers to one
                           instrument in one check-in; ``<r>`` = check-in id (32 hex) ``.``
                           FHIR id of the instrument (``4f…9a.phq9``)
Observation/<r>            the :class:`~alliance_web.care.models.Score` of that response: the
                           total (LOINC-coded where the instrument has a total code, and always
                           with Alliance's own code), subscales as components, severity as
                           interpretation, flags as extensions, ``derivedFrom`` the response
Questionnaire/<id>         the engine's export of an instrument (``alliance.fhir``)
=========================  ==================================================================
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings

import alliance as al
from alliance.fhir import DEFAULT_BASE_URL, canonical_url, questionnaire_from_instrument

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
ALLIANCE = DEFAULT_BASE_URL.rstrip("/")
SCORE_SYSTEM = f"{ALLIANCE}/CodeSystem/instrument-scores"
FLAG_EXTENSION = f"{ALLIANCE}/StructureDefinition/score-flag"
SIGNAL_EXTENSION = f"{ALLIANCE}/StructureDefinition/recovery-signal"
METHOD_EXTENSION = f"{ALLIANCE}/StructureDefinition/engine-version"

_ID = re.compile(r"^([0-9a-f]{32})\.([A-Za-z0-9-]{1,30})$")


def fhir_instrument_id(instrument_id: str) -> str:
    return instrument_id.replace("_", "-")


@lru_cache(maxsize=1)
def instruments_by_fhir_id() -> dict[str, str]:
    return {fhir_instrument_id(i): i for i in al.instruments()}


@lru_cache(maxsize=64)
def questionnaire(instrument_id: str) -> dict[str, Any]:
    """The engine's export, cached per process (definitions do not change while it runs)."""
    return questionnaire_from_instrument(al.instrument(instrument_id))


def instrument_for_canonical(url: str) -> str | None:
    """The instrument whose Alliance canonical URL (with or without ``|version``) is ``url``."""
    bare = url.split("|", 1)[0]
    for inst_id in al.instruments():
        if canonical_url(inst_id) == bare:
            return inst_id
    return None


def record_id(checkin_public_id: uuid.UUID, instrument_id: str) -> str:
    return f"{checkin_public_id.hex}.{fhir_instrument_id(instrument_id)}"


def parse_record_id(rid: str) -> tuple[uuid.UUID, str] | None:
    m = _ID.match(rid)
    if not m:
        return None
    inst = instruments_by_fhir_id().get(m.group(2))
    return (uuid.UUID(m.group(1)), inst) if inst else None


def instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def base_url() -> str:
    return settings.ALLIANCE_BASE_URL.rstrip("/") + "/fhir/r4"


# --------------------------------------------------------------------------------------------
def patient(client: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(client.public_id),
        "active": client.erased_at is None,
        "name": [{"use": "usual", "text": client.preferred_name}],
        "managingOrganization": {"display": client.practice.name},
    }
    if client.date_of_birth:
        out["birthDate"] = client.date_of_birth.isoformat()
    telecom = []
    if client.email:
        telecom.append({"system": "email", "value": client.email})
    if client.phone:
        telecom.append({"system": "phone", "value": client.phone, "use": "mobile"})
    if telecom:
        out["telecom"] = telecom
    return out


def _answer(instrument_id: str, item_id: str, value: float) -> dict[str, Any] | None:
    """The answer as the exported questionnaire codes it (the same coding, so it reads back)."""
    inst = al.instrument(instrument_id)
    item = inst.item(item_id)
    q_item = next(
        (i for i in questionnaire(instrument_id)["item"] if i.get("linkId") == item_id), None
    )
    if item.kind == "choice" and q_item is not None:
        for opt, q_opt in zip(item.options, q_item.get("answerOption", []), strict=False):
            if float(opt.value) == float(value):
                return {"valueCoding": dict(q_opt["valueCoding"])}
        return {"valueDecimal": value}
    if float(value).is_integer():
        return {"valueInteger": int(value)}
    return {"valueDecimal": value}


def questionnaire_response(score: Any) -> dict[str, Any]:
    response = score.response
    checkin = response.checkin
    client = score.episode.client
    items = []
    for item_id, value in response.answers.items():
        answer = _answer(score.instrument, item_id, value)
        if answer is not None:
            items.append({"linkId": item_id, "answer": [answer]})
    inst = al.instrument(score.instrument)
    return {
        "resourceType": "QuestionnaireResponse",
        "id": record_id(checkin.public_id, score.instrument),
        "identifier": {"system": f"{ALLIANCE}/sid/checkin", "value": str(checkin.public_id)},
        "questionnaire": f"{canonical_url(inst)}|{response.instrument_version}",
        "status": "completed",
        "subject": {"reference": f"Patient/{client.public_id}"},
        "authored": instant(response.submitted_at),
        "item": items,
    }


def _quantity(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "{score}", "system": UCUM, "code": "{score}"}


def observation(score: Any) -> dict[str, Any]:
    inst = al.instrument(score.instrument)
    rid = record_id(score.response.checkin.public_id, score.instrument)
    coding = []
    if inst.loinc.total:
        coding.append(
            {"system": LOINC, "code": inst.loinc.total, "display": f"{inst.short_name} total score"}
        )
    coding.append(
        {"system": SCORE_SYSTEM, "code": score.instrument, "display": f"{inst.short_name} total"}
    )
    out: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {"coding": coding, "text": f"{inst.short_name} total score"},
        "subject": {"reference": f"Patient/{score.episode.client.public_id}"},
        "effectiveDateTime": instant(score.administered_at),
        "issued": instant(score.administered_at),
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{rid}"}],
        "method": {"text": score.method},
    }
    if score.total is not None:
        out["valueQuantity"] = _quantity(score.total)
    else:
        out["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": "error"}]}
        out["note"] = [{"text": score.error or "not scorable"}]
    if score.severity:
        out["interpretation"] = [{"text": score.severity}]
    extensions = [{"url": FLAG_EXTENSION, "valueCode": str(flag)} for flag in score.flags or []]
    if score.signal:
        extensions.append({"url": SIGNAL_EXTENSION, "valueCode": score.signal})
    extensions.append({"url": METHOD_EXTENSION, "valueString": score.engine_version})
    out["extension"] = extensions
    components = []
    for name, value in (score.subscales or {}).items():
        comp: dict[str, Any] = {
            "code": {
                "coding": [{"system": SCORE_SYSTEM, "code": f"{score.instrument}.{name}"}],
                "text": name.replace("_", " "),
            }
        }
        if value is None:
            comp["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": "error"}]}
        else:
            comp["valueQuantity"] = _quantity(value)
        components.append(comp)
    if components:
        out["component"] = components
    return out


def instruments_for_code(token: str) -> set[str]:
    """Instrument ids an Observation ``code`` search token names (``[system|]code``)."""
    system, _sep, code = token.rpartition("|") if "|" in token else ("", "", token)
    found = set()
    for inst_id, inst in al.instruments().items():
        if system in ("", LOINC) and inst.loinc.total and code == inst.loinc.total:
            found.add(inst_id)
        if system in ("", SCORE_SYSTEM) and code == inst_id:
            found.add(inst_id)
    return found
