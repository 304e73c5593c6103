"""The application factory. ``uvicorn app.main:app`` serves the default settings; tests call ``create_app``."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response

from app.audit.router import router as audit_router
from app.audit.service import AuditTrail, observe_answer
from app.auth.router import router as auth_router
from app.auth.verified_keys import VerifiedKeys
from app.clinical import webhooks
from app.clinical.router import router as clinical_router
from app.core.config import Settings, get_settings
from app.core.db import (
    create_db_engine,
    create_lookup_engine,
    create_write_engine,
    make_sessionmaker,
)
from app.core.deps import WriteQueue
from app.core.limits import GuessLimits, RateLimits
from app.core.logging import configure_logging, install_request_logging
from app.core.loop_db import create_loop_sessions
from app.core.middleware import install_middleware
from app.core.problems import install_problem_handlers
from app.fhir.http import refusal_outcome
from app.fhir.router import router as fhir_router
from app.fhir.validation import load_fhir_models
from app.fhir.validation_pool import ValidationPool
from app.health.router import router as health_router
from app.idempotency.service import IdempotentReplay, replay_response
from app.instruments.registry import load_registry
from app.instruments.router import router as instruments_router
from app.measurements.router import me_router
from app.measurements.router import router as measurements_router
from app.patients.router import router as patients_router
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
    request's garbage. A large Bundle allocates enough to trigger many of them, and they cost a third of its time
    (bench/README.md); frozen, the startup objects are never walked again (``gc.freeze``, as Instagram's servers do).
    """
    load_fhir_models()
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    registry = load_registry(settings.scales_dir)
    engine = create_db_engine(settings)
    write_engine = create_write_engine(settings, engine)
    lookup_engine = create_lookup_engine(settings, engine)
    loop_write_sessions = create_loop_sessions(settings, write_engine)
    validation_pool = ValidationPool(settings.fhir_validation_processes)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        settle_startup_objects()
        if loop_write_sessions is not None:
            loop_write_sessions.serve_here()
        yield
        validation_pool.close()
        engine.dispose()
        write_engine.dispose()
        lookup_engine.dispose()
        if loop_write_sessions is not None:
            await loop_write_sessions.dispose()

    app = FastAPI(
        title="Compassion Outcomes API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.engine = engine
    app.state.lookups = lookup_engine
    app.state.verified_keys = VerifiedKeys(settings.api_key_cache_seconds)
    app.state.rate_limits = RateLimits.from_settings(settings)
    app.state.enrolment_limits = GuessLimits.for_enrolment(settings)
    app.state.validation_pool = validation_pool
    app.state.read_sessions = make_sessionmaker(engine)
    app.state.write_sessions = make_sessionmaker(write_engine)
    app.state.loop_write_sessions = loop_write_sessions
    app.state.write_queue = WriteQueue(
        writers=1 if write_engine.dialect.name == "sqlite" else settings.db_write_concurrency or None,
        wait_seconds=settings.sqlite_busy_timeout_ms / 1000,
    )
    app.state.transaction_observer = AuditTrail
    app.state.answer_observer = observe_answer
    """Records every answer of an audited route its transaction did not (refusals, rejections), as it is sent."""
    app.state.read_only_routes = frozenset({"/v1/research/lagged-effects"})
    """POST routes that only read: they must not hold SQLite's single write connection while a model fits."""

    webhooks.use_settings(settings, engine, write_engine)  # deliveries after a commit follow this app's settings
    install_problem_handlers(app)

    @app.exception_handler(IdempotentReplay)
    async def _replay(_request: Request, exc: IdempotentReplay) -> Response:
        return replay_response(exc)

    install_request_logging(app)
    install_middleware(app, settings, refusal_renderers={fhir_router.prefix: refusal_outcome})
    for router in (  # the busiest first: a request is matched against the routes in this order
        measurements_router,
        fhir_router,
        health_router,
        instruments_router,
        patients_router,
        sessions_router,
        clinical_router,
        research_router,
        audit_router,
        auth_router,
        me_router,
    ):
        app.include_router(router, max_body_size=settings.max_body_bytes)
    return app
