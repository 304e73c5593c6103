"""FHIR R4 façade.

Module map (a write runs router → bundles → writes → the resource's module; reads go from router to search or to
the resource's module):

- ``router``: the ``/fhir`` routes; each write builds its ``FhirWrite`` here.
- ``write_context``: ``FhirWrite``, one write's context (db, registry, principal, Prefer, Idempotency-Key guard,
  validation pool, lookups), passed down instead of parameter lists.
- ``writes``: the create/update interactions shared by routes and Bundles, their ``Outcome``, and the HTTP reply.
- ``bundles``: ``POST /fhir``, transaction and batch Bundles, entry by entry, new responses stored together; GET
  entries last.
- ``questionnaire_responses``: QuestionnaireResponses scored, stored (with their measurements), read and served back.
- ``response_answers``: a QuestionnaireResponse's answers read against its form (status, authored, subject).
- ``conditional_create``: ``If-None-Exist`` criteria (``identifier=[system|]value``) and their match key.
- ``patients``: FHIR Patient ⇄ the clinic's patients (create, update, read).
- ``registered_questionnaires``: the clinic's own Questionnaires, registered, listed and served back.
- ``instrument_questionnaires``: our instruments as Questionnaires, and how a response to one maps.
- ``form_mapping``: compiling a Questionnaire into a ``FormMap`` (its items and answers onto one instrument).
- ``known_forms``: hand-written item mappings of published forms that carry no codes.
- ``form_resolution``: which form a response's ``questionnaire`` reference names (contained, ours, registered).
- ``observations``: a measurement's scores as Observations (and the panel), with their ids.
- ``search``: the searches (Questionnaire, QuestionnaireResponse, Observation, Patient, Task), the read of one
  Observation, and the reads of a Bundle's GET entries.
- ``search_params``: the search rules every search follows (parameters applied or ignored, strict handling, paging,
  dates with prefixes, patient references) and the searchset Bundle.
- ``tasks``: assessments (``app.care``) searched and read as Tasks, with the response and Observation they name.
- ``task_mapping``: an assessment occurrence as an SDC Task; the ``status`` search's codes mapped back.
- ``verbatim``: a kept resource served back under our id, version and update time.
- ``versioning``: ETags, If-Match (412) and If-None-Match (304), the absolute ``Location``; ``content_version``: the
  version of what is derived rather than stored.
- ``history``: vread and ``_history`` (history Bundles); ``kept_versions``: the earlier versions updates replaced.
- ``validation``: structural validation with the R4B models, as OperationOutcome issues; an update's id rule.
- ``validation_pool``: worker processes that validate a large Bundle's new responses ahead.
- ``request_body``: the request body read, parsed (duplicate keys refused) and bounded (``FhirBody``).
- ``http``: the FHIR response, OperationOutcome errors, ``FhirRoute``, format negotiation, route parameters.
- ``measures``: the depression quality measures as Measures, and ``$evaluate-measure``'s MeasureReports (computed by
  ``app.clinical.measure_reports``).
- ``capability``: the CapabilityStatement (``/fhir/metadata``).
- ``errors``: FHIR domain errors carrying OperationOutcome issues.
- ``codes``: every URI and code the package emits or recognises.
- ``models``: the tables (resources kept verbatim, registered Questionnaires).
- ``schemas``: ``FormMap``, how a Questionnaire's items map onto an instrument.

Logical ids follow FHIR's rule, ``[A-Za-z0-9\\-\\.]{1,64}``: the R4B models (``fhir.resources``) allow 255 characters
unless told otherwise before they are imported, which this package does first.
"""

import fhir_core.constraints

fhir_core.constraints.TYPES_ID_MAX_LENGTH = 64
