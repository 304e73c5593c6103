"""FHIR validation of a Bundle's responses in worker processes, while the request stores the checked ones.

Validating a QuestionnaireResponse with the R4B models is pure Python, a large share of storing it from a Bundle even
with the cache of valid items, and Python runs one thread at a time. A Bundle's responses are therefore validated in
chunks by ``FHIR_VALIDATION_PROCESSES`` worker processes (``validation.structural_issues``: the same verdicts as
``validate``) on another core, and the request consumes the verdicts in order as it goes (bench/README.md, change 17
and "Issue 18: speed machinery re-measured"). Given the forms the responses name, a worker also reads and scores each
valid response's answers (``response_answers.score_response``, as the request would), so the request only checks
what needs the database (bench/README.md, change 41). Small Bundles, and ``0`` processes, validate in the request's
own thread. The workers start on the first large Bundle (each imports the FHIR models once) and stop with the
application.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from threading import Lock
from typing import TYPE_CHECKING, Any

from app.core.errors import DomainError
from app.fhir.errors import Issue
from app.fhir.response_answers import ResponseAnswers, score_response
from app.fhir.validation import structural_issues
from app.scoring.engine import ScoreResult

if TYPE_CHECKING:
    from app.fhir.form_resolution import ResolvedForm

MIN_RESOURCES = 200
"""Fewer resources than this are validated in the request's thread: shipping them costs more than it saves."""
CHUNK = 100
"""Resources per task: enough to amortise the hand-over, few enough that the first verdicts come back soon."""
WINDOW = 3
"""Tasks a Bundle has handed over and not yet consumed. Handing over all of them at once queued a second Bundle's
behind the whole of the first's, and its request waited for them (bench/README.md, change 41)."""


@dataclass(frozen=True)
class Verdict:
    """A resource checked ahead: its structural issues and, for a valid response whose form was given, its answers
    read and scored against that form (None otherwise, and when reading refused them: the request reads them again
    and refuses them itself, in its own order of checks)."""

    issues: list[Issue]
    scored: tuple[ResponseAnswers, ScoreResult] | None = None


Forms = Mapping[str, "ResolvedForm"]
"""The forms resolved before the responses run, by the reference (``QuestionnaireResponse.questionnaire``) that
names them."""


def _verdicts_of(resources: Sequence[dict[str, Any]], resource_type: str, forms: Forms) -> list[Verdict]:
    return [_verdict(resource, resource_type, forms) for resource in resources]


def _verdict(resource: dict[str, Any], resource_type: str, forms: Forms) -> Verdict:
    issues = structural_issues(resource, resource_type)
    reference = resource.get("questionnaire")
    form = forms.get(reference) if not issues and isinstance(reference, str) else None
    if form is None:
        return Verdict(issues)
    try:
        return Verdict(issues, score_response(resource, form.form, form.definition))
    except DomainError:
        return Verdict(issues)


def _start_worker(server: int) -> None:
    """Watch for the end of the server process that started this worker, then load the response model before the
    first task."""
    threading.Thread(target=_exit_after, args=(server,), name="server-watch", daemon=True).start()
    structural_issues({"resourceType": "QuestionnaireResponse", "status": "completed"}, "QuestionnaireResponse")


SERVER_CHECK_SECONDS = 1.0


def _exit_after(server: int) -> None:
    """Exit once ``server`` is gone. A worker holds both ends of its task queue, so it never sees the server's end
    close: a server killed outright (or stopped by a signal before its pool's shutdown reached the workers) would
    leave its workers behind, idle, for good."""
    while os.getppid() == server:
        time.sleep(SERVER_CHECK_SECONDS)
    os._exit(0)


class ValidationPool:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._lock = Lock()

    def works_ahead(self, count: int) -> bool:
        """Whether ``count`` resources go to the workers (else each is validated where it runs)."""
        return self.processes > 0 and count >= MIN_RESOURCES

    def verdicts(
        self, resources: Sequence[dict[str, Any]], resource_type: str, forms: Forms | None = None
    ) -> Iterator[Verdict]:
        """Each resource's verdict, in order; computed ahead in the workers (``works_ahead``), else here with its
        structural issues only."""
        if not self.works_ahead(len(resources)):
            for resource in resources:
                yield Verdict(structural_issues(resource, resource_type))
            return
        chunks = [resources[start : start + CHUNK] for start in range(0, len(resources), CHUNK)]
        executor: ProcessPoolExecutor | None = self._started()
        handed: dict[int, Future[list[Verdict]]] = {}
        try:
            for index, chunk in enumerate(chunks):
                for ahead in range(index, min(index + WINDOW, len(chunks))):
                    if executor is not None and ahead not in handed:
                        try:
                            handed[ahead] = executor.submit(_verdicts_of, chunks[ahead], resource_type, forms or {})
                        except BrokenProcessPool:
                            self._discard(executor)
                            executor = None
                yield from self._chunk(executor, handed.pop(index, None), chunk, resource_type)
        finally:
            for future in handed.values():
                future.cancel()

    def _chunk(
        self,
        executor: ProcessPoolExecutor | None,
        handed: Future[list[Verdict]] | None,
        chunk: Sequence[dict[str, Any]],
        resource_type: str,
    ) -> list[Verdict]:
        """The chunk's verdicts from its worker; validated here if the pool broke (a worker was killed or ran out
        of memory), and the next Bundle that reaches for the pool starts a new one."""
        if executor is not None and handed is not None:
            try:
                return handed.result()
            except BrokenProcessPool:
                self._discard(executor)
        return [Verdict(structural_issues(resource, resource_type)) for resource in chunk]

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                # wait: the server may exit right after (uvicorn re-raises the stopping signal), and workers that were
                # not yet told to stop would be left behind
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None

    def _discard(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    def _started(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                # spawn: a fork of a threaded server process could inherit a held lock
                context = multiprocessing.get_context("spawn")
                self._executor = ProcessPoolExecutor(
                    self.processes, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
                )
            return self._executor
