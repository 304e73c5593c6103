"""Settings, read once from the environment (and an optional ``.env``) and reached through ``get_settings``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as UnparsableSetting

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEVELOPMENT_PEPPER = "development-only-pepper-change-me"
DEVELOPMENT_RESEARCH_KEY = "development-only-research-key-change-me"
DEVELOPMENT_WEBHOOK_KEY = "development-only-webhook-signing-key-change-me"


DEVELOPMENT_PUBLIC_BASE_URL = "http://localhost:8000"


class SettingsError(ValueError):
    """Settings that cannot be used. Names each field and what is wrong with it, never the value given: a value may
    be a secret (a pepper, a password in ``DATABASE_URL``), and pydantic's own error repeats the input."""

    @classmethod
    def of(cls, error: ValidationError) -> SettingsError:
        lines = []
        for problem in error.errors(include_input=False, include_url=False, include_context=False):
            field = ".".join(str(part) for part in problem["loc"]).upper() or "settings"
            lines.append(f"  {field}: {str(problem['msg']).removeprefix('Value error, ')}")
        return cls(f"{len(lines)} invalid setting(s) (values not shown):\n" + "\n".join(lines))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    def __init__(self, **values: Any) -> None:
        """Read the settings; invalid ones raise ``SettingsError`` (field names and reasons, never values)."""
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise SettingsError.of(error) from None
        except UnparsableSetting as error:  # a list or number that does not parse: its message names the field only
            raise SettingsError(f"invalid settings (values not shown): {error}") from None

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'outcomes.db'}",
        description="SQLAlchemy URL. SQLite (WAL) is the embedded default; use postgresql+psycopg:// in production.",
    )
    api_key_pepper: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_PEPPER),
        description="Server secret for the keyed hash (HMAC-SHA256) of API keys. Changing it invalidates all keys.",
    )
    research_pseudonym_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_RESEARCH_KEY),
        description="Server secret from which each research project's pseudonym key (HMAC-SHA256) is derived.",
    )
    webhook_signing_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_WEBHOOK_KEY),
        description="Server secret from which each clinic's webhook signing secret (HMAC-SHA256) is derived; only a "
        "random salt per clinic is stored. Changing it changes every clinic's signing secret.",
    )
    webhook_allow_private_networks: bool = Field(
        default=False,
        description="Let alert webhooks go to loopback and private addresses (development, tests, a receiver on the "
        "same private network). Link-local (cloud metadata), multicast, reserved and IPv4-mapped addresses stay "
        "refused.",
    )
    scales_dir: Path = PROJECT_ROOT / "scales"
    sqlite_busy_timeout_ms: int = 30_000
    db_pool_size: int = Field(
        default=10,
        ge=1,
        description="Pooled connections per engine; on PostgreSQL also how many bounded reads and writes run on the "
        "event loop at once (later ones wait for a connection rather than open one the pool would close again).",
    )
    db_max_overflow: int = 30
    db_write_concurrency: int = Field(
        default=4,
        ge=0,
        description="Write transactions a worker runs at once on PostgreSQL; later ones wait their turn (503 after "
        "SQLITE_BUSY_TIMEOUT_MS). 0: no limit. SQLite always has one writer.",
    )
    db_loop_driver: Literal["asyncpg", "psycopg"] = Field(
        default="asyncpg",
        description="PostgreSQL driver of the small bounded writes (ingest, amendment), which await the network on "
        "the event loop. psycopg behind PgBouncer in transaction mode (asyncpg prepares statements) or with "
        "connection options other than sslmode in DATABASE_URL.",
    )
    db_ping_after_idle_seconds: float = Field(
        default=10.0,
        description="A pooled server connection idle this long is checked (SELECT 1) before use; a dead one is "
        "replaced. Busy connections are not pinged: under load that would be a round trip per request.",
    )
    api_key_cache_seconds: float = Field(
        default=5.0,
        description="A verified API key is trusted this long without another lookup (its expiry is still checked "
        "each time). Revoking through this process's API takes effect at once; through another worker process or "
        "the CLI, within this time. 0 looks every key up on every request.",
    )
    fhir_validation_processes: int = Field(
        default=1,
        ge=0,
        description="Worker processes that validate a large FHIR Bundle's QuestionnaireResponses while the request "
        "stores the ones already validated (started on the first such Bundle). 0 validates in the request's thread.",
    )
    idempotency_ttl_hours: int = Field(
        default=24,
        ge=1,
        description="How long a POST's Idempotency-Key replays its first response. An older record is not replayed "
        "(the key may be used again as new) and is deleted by an hourly job (or `python -m app "
        "purge-idempotency-records`).",
    )
    jobs_in_process: bool = Field(
        default=True,
        description="On SQLite, run background jobs (webhook deliveries and their retries, periodic expiry) in a "
        "thread of the app's process. Ignored on PostgreSQL, where `python -m app worker` runs them.",
    )
    jobs_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the in-process runner (SQLite) looks for due jobs."
    )
    jobs_heartbeat_seconds: float = Field(
        default=10.0, gt=0, description="How often a worker (PostgreSQL) tells the database it is alive."
    )
    jobs_stalled_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A worker silent this long is taken for dead (killed, its machine lost): the jobs it was running "
        "are run again. Well above JOBS_HEARTBEAT_SECONDS.",
    )
    jobs_stalled_check_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="How often the workers look for the jobs of dead workers (a periodic job; a divisor of 60 below "
        "a minute, else a whole number of minutes).",
    )
    reminder_overdue_lead_hours: int = Field(
        default=24,
        ge=1,
        le=366 * 24,
        description="How long before an assessment's window closes its `assessment.overdue` reminder is raised "
        "(if it is still neither completed, declined nor cancelled); never before the window's midpoint, so a short "
        "window does not get both reminders at once.",
    )
    page_size_max: int = 500
    log_level: str = "INFO"
    max_body_bytes: int = Field(default=32 * 1024 * 1024, description="Largest request body accepted (FHIR Bundles).")
    rate_limit_per_minute: int = Field(
        default=6000,
        ge=0,
        description="Requests per minute per verified API key, per worker process (counted only once the key "
        "verified: knowing a key's public prefix spends none of its quota); 0 disables.",
    )
    rate_limit_burst: int = Field(default=600, ge=1, description="Requests a key may send at once before throttling.")
    unverified_rate_limit_per_minute: int = Field(
        default=60,
        ge=0,
        description="Requests per minute per client address, per worker process, that no verified key answers for: "
        "without credentials, with a key that fails verification (over the limit: 429 instead of 401, not audited), "
        "or to an endpoint that needs none; 0 disables.",
    )
    unverified_rate_limit_burst: int = Field(
        default=30, ge=1, description="Such requests a client address may send at once before throttling."
    )
    enrolment_exchange_per_minute: int = Field(
        default=5,
        ge=0,
        description="Enrolment-code exchanges (right or wrong) per minute per client address, per worker process; "
        "0 disables.",
    )
    enrolment_exchange_burst: int = Field(
        default=10, ge=1, description="Enrolment-code exchanges a client address may try at once."
    )
    enrolment_exchange_failures_per_minute: int = Field(
        default=60,
        ge=0,
        description="Wrong enrolment codes per minute from all addresses together, per worker process (a wrong "
        "code names no clinic, so this bounds the guesses every clinic's codes face); once spent every exchange is "
        "refused (429) until it refills. 0 disables.",
    )
    cors_origins: list[str] = Field(default=[], description="Browser origins allowed by CORS; none by default.")
    public_base_url: str | None = Field(
        default=None,
        description="The service's address as patients' apps reach it (https://api.clinic.example, no path "
        "query or fragment): enrolment links are built from it, never from a request's Host header. Required in "
        f"production (https); elsewhere {DEVELOPMENT_PUBLIC_BASE_URL} when unset.",
    )

    @field_validator("public_base_url")
    @classmethod
    def _an_absolute_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL, such as https://api.clinic.example")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must hold no query, fragment or user name")
        return value.strip().rstrip("/")

    @property
    def public_base(self) -> str:
        """``PUBLIC_BASE_URL`` without a trailing slash (the development default when unset outside production)."""
        return self.public_base_url or DEVELOPMENT_PUBLIC_BASE_URL

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Settings:
        if self.environment == "production" and self.api_key_pepper.get_secret_value() == DEVELOPMENT_PEPPER:
            raise ValueError("API_KEY_PEPPER must be set to a secret value in production")
        if (
            self.environment == "production"
            and self.research_pseudonym_key.get_secret_value() == DEVELOPMENT_RESEARCH_KEY
        ):
            raise ValueError("RESEARCH_PSEUDONYM_KEY must be set to a secret value in production")
        if self.environment == "production" and self.webhook_signing_key.get_secret_value() == DEVELOPMENT_WEBHOOK_KEY:
            raise ValueError("WEBHOOK_SIGNING_KEY must be set to a secret value in production")
        if self.environment == "production" and not (self.public_base_url or "").startswith("https://"):
            raise ValueError("PUBLIC_BASE_URL must be set to the service's https address in production")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
