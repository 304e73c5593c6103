# syntax=docker/dockerfile:1
# Multi-stage build: dependencies are installed from the lock file in a builder, the runtime runs as non-root,
# applies migrations, then serves with uvicorn (one process per container; scale with replicas).

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
RUN python -m venv /app/.venv
COPY requirements.lock ./
RUN uv pip install --no-cache --python /app/.venv/bin/python -r requirements.lock

FROM python:3.11-slim AS runtime
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --home-dir /app app
WORKDIR /app
COPY --from=builder --chown=app:app /app/.venv /app/.venv
COPY --chown=app:app app ./app
COPY --chown=app:app scales ./scales
COPY --chown=app:app migrations ./migrations
COPY --chown=app:app alembic.ini ./
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/livez').status != 200)"]
CMD ["sh", "-c", "python -m app migrate && exec uvicorn app.asgi:app --host 0.0.0.0 --port 8000 --no-access-log --proxy-headers --timeout-graceful-shutdown 20"]
