"""FHIR validation of a Bundle's responses in worker processes, while the request scores and stores the checked ones.

Validating a QuestionnaireResponse with the R4B models is pure Python, a large share of storing it from a Bundle even
with the cache of valid items, and Python runs one thread at a time. A Bundle's responses are therefore validated in
chunks by ``FHIR_VALIDATION_PROCESSES`` worker processes (``validation.structural_issues``: the same verdicts as
``validate``) on another core, and the request consumes the verdicts in order as it goes (bench/README.md, change 17
and "Issue 18: speed machinery re-measured"). Small Bundles, and ``0`` processes, validate in the request's own
thread. The workers start on the first large Bundle (each imports the FHIR models once) and stop with the
application.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from threading import Lock
from typing import Any

from app.fhir.errors import Issue
from app.fhir.validation import structural_issues

MIN_RESOURCES = 200
"""Fewer resources than this are validated in the request's thread: shipping them costs more than it saves."""
CHUNK = 100
"""Resources per task: enough to amortise the hand-over, few enough that the first verdicts come back soon."""


def _issues_of(resources: Sequence[dict[str, Any]], resource_type: str) -> list[list[Issue]]:
    return [structural_issues(resource, resource_type) for resource in resources]


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

    def issues_of(self, resources: Sequence[dict[str, Any]], resource_type: str) -> Iterator[list[Issue]]:
        """Each resource's structural issues (``[]`` when valid), in order; computed ahead in the workers."""
        if self.processes <= 0 or len(resources) < MIN_RESOURCES:
            for resource in resources:
                yield structural_issues(resource, resource_type)
            return
        executor = self._started()
        starts = range(0, len(resources), CHUNK)
        try:
            chunks = [executor.submit(_issues_of, resources[start : start + CHUNK], resource_type) for start in starts]
        except BrokenProcessPool:
            self._discard(executor)
            chunks = []
        try:
            for start in starts:
                yield from self._verdicts(executor, chunks, start, resources, resource_type)
        finally:
            for chunk in chunks:
                chunk.cancel()

    def _verdicts(
        self,
        executor: ProcessPoolExecutor,
        chunks: list[Future[list[list[Issue]]]],
        start: int,
        resources: Sequence[dict[str, Any]],
        resource_type: str,
    ) -> list[list[Issue]]:
        """The chunk at ``start`` from its worker; validated here if the pool broke (a worker was killed or ran out
        of memory), and the next Bundle that reaches for the pool starts a new one."""
        if chunks:
            try:
                return chunks[start // CHUNK].result()
            except BrokenProcessPool:
                self._discard(executor)
        return _issues_of(resources[start : start + CHUNK], resource_type)

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
