"""Background jobs, the entry-point side: every task (``registry``), the SQLite in-process runner (``runner``) and
the procrastinate app and worker for PostgreSQL (``worker``). The task functions live in their domains; a domain
defers a job by the task's name (``app.core.jobs.defer``) and never imports this package."""
