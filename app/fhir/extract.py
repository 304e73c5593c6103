"""``POST /fhir/QuestionnaireResponse/$extract`` (SDC observation-based extraction): the Observations the server
would make of a response, returned and never stored.

The response is checked exactly as a create checks it (``questionnaire_responses.prepare``: structure, status,
subject, form, answers, missing items), so it is refused with the same OperationOutcome a create would get, and
scored by the same scorer. Its scores then go through the same mapping as a stored measurement's
(``observations.observations``: one Observation per score with a value, and the LOINC panel of PHQ-9 and GAD-7)
and come back as a ``transaction`` Bundle of creates, as SDC's operation returns them: no ids (each entry's
``fullUrl`` is a ``urn:uuid``, the panel's ``hasMember`` points at them) and no ``meta``, since none is stored.

The input is the QuestionnaireResponse itself or a ``Parameters`` resource with one ``questionnaire-response``
parameter; the operation's ``questionnaire`` parameter is not taken: the form is resolved as for a create (ours,
the clinic's registered forms, or one contained in the response).
"""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any

from fhir.resources.R4B.observation import Observation

from app.core.audit_notes import note_patient_read
from app.core.db import utcnow
from app.fhir import codes, observations, questionnaire_responses
from app.fhir.errors import FhirError, Issue, MalformedResource, UnprocessableResource
from app.fhir.write_context import FhirWrite
from app.instruments import service as scoring
from app.measurements.models import Measurement

INPUT_PARAMETER = "questionnaire-response"


def extract(write: FhirWrite, data: dict[str, Any]) -> dict[str, Any]:
    """The transaction Bundle of the Observations ``data`` (a response, or Parameters holding one) would yield."""
    response, prefix = _response(data)
    try:
        prepared = questionnaire_responses.prepare(write, data=response, text="")
    except FhirError as exc:
        if prefix is not None:
            exc.issues = [issue.under(prefix) for issue in exc.issues]
        raise
    finally:
        for patient_id in write.lookups.patients:  # only patients found in the caller's clinic
            note_patient_read(write.db, patient_id)
    scored = prepared.scored
    now = utcnow()
    measurement = Measurement(
        measurement_id=uuid.uuid4(),
        version=1,
        patient_id=scored.patient_id,
        measured_at=scored.measured_at.astimezone(UTC),  # as the database gives a stored one back
        scores=scoring.stored_scores(scored.result),
        warnings=scoring.stored_warnings(scored.result),
        created_at=now,
    )
    response_id = response.get("id")
    made = observations.observations(
        measurement,
        scored.resolved.definition,
        response_id=response_id if isinstance(response_id, str) and codes.FHIR_ID.fullmatch(response_id) else None,
    )
    return _transaction(made)


def _response(data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The response to extract from, and the path it sits at (None: the body itself)."""
    if data.get("resourceType") != "Parameters":
        return data, None
    parameters = data.get("parameter")
    entries = parameters if isinstance(parameters, list) else []
    found: list[tuple[int, dict[str, Any]]] = []
    for index, parameter in enumerate(entries):
        name = parameter.get("name") if isinstance(parameter, dict) else None
        resource = parameter.get("resource") if isinstance(parameter, dict) else None
        if name != INPUT_PARAMETER:
            raise UnprocessableResource(
                f"$extract takes one parameter, {INPUT_PARAMETER!r}",
                issues=[
                    Issue(
                        "not-supported",
                        f"parameter {name!r} is not taken: send the QuestionnaireResponse as {INPUT_PARAMETER!r} "
                        "(a form of the clinic's own is registered, or contained in the response)",
                        (f"Parameters.parameter[{index}]",),
                    )
                ],
            )
        if isinstance(resource, dict):
            found.append((index, resource))
    if len(found) != 1 or len(entries) != 1:
        raise MalformedResource(
            f"expected one {INPUT_PARAMETER!r} parameter holding a QuestionnaireResponse",
            issues=[
                Issue(
                    "required",
                    f"Parameters must hold exactly one {INPUT_PARAMETER!r} parameter with a resource",
                    ("Parameters.parameter",),
                )
            ],
        )
    index, resource = found[0]
    return resource, f"Parameters.parameter[{index}].resource"


def _transaction(made: list[Observation]) -> dict[str, Any]:
    full_urls = {f"Observation/{observation.id}": f"urn:uuid:{uuid.uuid4()}" for observation in made}
    entries = []
    for observation in made:
        resource = observation.model_dump(mode="json", exclude_none=True)
        full_url = full_urls[f"Observation/{resource.pop('id')}"]
        resource.pop("meta", None)
        for member in resource.get("hasMember", []):
            member["reference"] = full_urls[member["reference"]]
        entries.append({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": "Observation"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
