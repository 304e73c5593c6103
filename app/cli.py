"""Administrative commands: ``python -m app --help``.

Only a command's result goes to stdout (``create-api-key`` prints the key and nothing else); messages go to stderr.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from app.auth import service as auth
from app.auth.permissions import Role
from app.core.config import get_settings
from app.core.db import create_db_engine, make_sessionmaker, transaction, writer
from app.core.migrations import upgrade_to_head

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Compassion Outcomes administration.")
stderr = Console(stderr=True)


@cli.command("create-api-key")
def create_api_key(
    clinic: Annotated[str, typer.Option(help="Clinic name; created if it does not exist.")],
    role: Annotated[Role, typer.Option(help="Role of the key.")],
    label: Annotated[str | None, typer.Option(help="A note on what the key is for.")] = None,
) -> None:
    """Create an API key (and the clinic, if new). The key is printed once, on stdout; only its hash is stored."""
    settings = get_settings()
    engine = create_db_engine(settings)
    try:
        for session in transaction(make_sessionmaker(writer(engine))):
            clinic_row = auth.get_or_create_clinic(session, name=clinic)
            issued = auth.issue_api_key(
                session,
                clinic=clinic_row,
                role=role,
                label=label,
                pepper=settings.api_key_pepper.get_secret_value(),
            )
            key = issued.key
    finally:
        engine.dispose()
    stderr.print(
        f"Created a {role.value} key for clinic {clinic!r}. Store it now: it cannot be shown again.", soft_wrap=True
    )
    typer.echo(key)


@cli.command("migrate")
def migrate() -> None:
    """Apply every database migration (``alembic upgrade head``) to DATABASE_URL."""
    upgrade_to_head(get_settings().database_url)
    stderr.print("Database is at the latest migration.")
