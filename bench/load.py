"""A small closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending the next request as soon as
the previous answer arrives, for a fixed time. Latencies are measured per request; nothing else runs in the loop.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

Request = Callable[[int], bytes]
"""Builds the raw request bytes for the i-th request (so bodies and Idempotency-Keys can vary)."""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99(self) -> float:
        return self.percentile(99)


def http_request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        if not any(name.lower() == "content-type" for name in headers or {}):
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value.strip())
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _worker(
    port: int, build: Request, counter: list[int], stop_at: float, result: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            index = counter[0]
            counter[0] += 1
            started = time.perf_counter()
            writer.write(build(index))
            await writer.drain()
            status = await _read_response(reader)
            result.append((time.perf_counter() - started) * 1000)
            if status >= 400:
                errors[0] += 1
    finally:
        writer.close()


async def _run(port: int, build: Request, connections: int, seconds: float) -> LoadResult:
    latencies: list[float] = []
    errors = [0]
    counter = [0]
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(_worker(port, build, counter, stop_at, latencies, errors) for _ in range(connections)))
    return LoadResult(
        requests=len(latencies), errors=errors[0], seconds=time.perf_counter() - started, latencies_ms=latencies
    )


def run_load(port: int, build: Request, *, connections: int = 32, seconds: float = 10.0) -> LoadResult:
    return asyncio.run(_run(port, build, connections, seconds))
