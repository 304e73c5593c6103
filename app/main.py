"""The application factory. ``uvicorn app.main:app`` serves the default settings; tests call ``create_app``."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response

from app.audit.router import router as audit_router
from app.audit.service import AuditTrail, observe_answer
from app.auth.router import oauth_error_response, smart_router
from app.auth.router import router as auth_router
from app.auth.smart_tokens import OAuthError
from app.auth.verified_keys import VerifiedKeys
from app.care.router import clinic_router as care_clinic_router
from app.care.router import me_router as care_me_router
from app.care.router import router as care_router
from app.clinical.router import router as clinical_router
from app.core.config import Settings, get_settings
from app.core.limits import Clock, GuessLimits, RateLimits
from app.core.logging import configure_logging, install_request_logging
from app.core.middleware import install_middleware
from app.core.openapi import add_component_schemas
from app.core.problems import install_problem_handlers, problem_schemas
from app.core.state import AppState, Database, opened_state
from app.fhir.http import OPERATION_OUTCOME_SCHEMA, refusal_outcome
from app.fhir.router import router as fhir_router
from app.fhir.validation import load_fhir_models
from app.fhir.validation_pool import ValidationPool
from app.health.router import router as health_router
from app.idempotency.service import IdempotentReplay, replay_response
from app.instruments.registry import InstrumentRegistry, load_registry
from app.instruments.router import router as instruments_router
from app.jobs.runner import InProcessRunner
from app.measurements.router import me_router
from app.measurements.router import router as measurements_router
from app.patients.router import router as patients_router
from app.research.router import me_router as research_me_router
from app.research.router import patient_router as research_patient_router
from app.research.router import router as research_router
from app.therapy_sessions.router import router as sessions_router

DESCRIPTION = """
Measure fear of compassion, self-compassion, self-criticism, depression and anxiety at every session; score them
exactly; keep every patient's course. Errors are RFC 9457 `application/problem+json`. Authenticate with
`Authorization: Bearer <api key>`. Every POST honours `Idempotency-Key`.
"""


def settle_startup_objects() -> None:
    """Load the FHIR models requests use, then exempt everything alive at startup from the garbage collector.

    The collector's full passes walk every object in the process: the app's modules, models and tables as well as a
    request's garbage. A large Bundle allocates enough to trigger many of them, a large share of its time
    (bench/README.md, change 24); frozen, the startup objects are never walked again (``gc.freeze``, as Instagram's
    servers do).
    """
    load_fhir_models()
    gc.collect()
    gc.freeze()


def open_app_state(
    settings: Settings, registry: InstrumentRegistry, rate_limits: RateLimits, enrolment_limits: GuessLimits
) -> AppState:
    """Everything the requests share, made as the app starts serving (its lifespan)."""
    database = Database.open(settings)
    state = AppState(
        settings=settings,
        database=database,
        rate_limits=rate_limits,
        enrolment_limits=enrolment_limits,
        observe_transaction=AuditTrail,
        observe_answer=observe_answer,
    )
    state.provide(registry)
    state.provide(VerifiedKeys(settings.api_key_cache_seconds))
    pool = ValidationPool(settings.fhir_validation_processes)
    state.provide(pool, close=pool.close)
    if settings.jobs_in_process and database.write_engine.dialect.name == "sqlite":
        runner = InProcessRunner(database.write_engine, settings, reads=database.engine)
        runner.start()
        state.provide(runner, close=runner.stop)
    return state


def create_app(settings: Settings | None = None, *, monotonic: Clock = time.monotonic) -> FastAPI:
    """The app; it opens its state (``open_app_state``) when it starts serving. ``monotonic``: the rate limits' clock.
    The limits live as long as the app (the middleware counts requests before they are routed)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    registry = load_registry(settings.scales_dir)
    rate_limits = RateLimits.from_settings(settings, monotonic)
    enrolment_limits = GuessLimits.for_enrolment(settings, monotonic)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settle_startup_objects()
        async with opened_state(app, lambda: open_app_state(settings, registry, rate_limits, enrolment_limits)):
            yield

    app = FastAPI(
        title="Compassion Outcomes API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_exception_handler(OAuthError, oauth_error_response)  # the token endpoint's errors (RFC 6749 §5.2)
    add_component_schemas(app, {**problem_schemas(), "OperationOutcome": OPERATION_OUTCOME_SCHEMA})

    @app.exception_handler(IdempotentReplay)
    async def _replay(_request: Request, exc: IdempotentReplay) -> Response:
        return replay_response(exc)

    install_request_logging(app)
    install_middleware(app, settings, rate_limits, refusal_renderers={fhir_router.prefix: refusal_outcome})
    for router in (  # the busiest first: a request is matched against the routes in this order
        measurements_router,
        smart_router,  # before fhir_router, whose catch-all would answer /fhir/.well-known/smart-configuration
        fhir_router,
        health_router,
        instruments_router,
        patients_router,
        sessions_router,
        clinical_router,
        care_router,
        care_clinic_router,
        research_router,
        research_patient_router,
        audit_router,
        auth_router,
        me_router,
        care_me_router,
        research_me_router,
    ):
        app.include_router(router, max_body_size=settings.max_body_bytes)
    return app
