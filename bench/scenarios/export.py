"""Export: CSV and Parquet rows/s and peak server RSS, beside a bare loop streaming the same rows from the same DB.

Rows/s counts stored measurements over the whole request (first byte sent to last byte read). Peak RSS is the
largest resident set of the server process sampled every 10 ms while the export runs.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

from bench.common import Plan, Product, Row, compare
from bench.servers import BARE, PRODUCT, server

FORMATS = ("csv", "parquet")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_download(port: int, path: str, headers: dict[str, str], pid: int) -> tuple[float, float]:
    """Seconds to read the whole answer, and the server's peak RSS (MiB) meanwhile."""
    peak = [_rss_mib(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], _rss_mib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310 (loopback http only)
            if response.status != 200:
                raise RuntimeError(f"export {path}: {response.status}")
            while response.read(1 << 20):
                pass
    finally:
        done.set()
        sampler.join()
    return time.perf_counter() - started, max(peak[0], _rss_mib(pid))


def run(plan: Plan, product: Product, kind: str, stored: int) -> list[Row]:
    rows: list[Row] = []
    with server(BARE, product.env) as (bare_port, bare), server(PRODUCT, product.env) as (product_port, app):
        for export_format in FORMATS:
            speed: list[tuple[float, float | None]] = []
            memory: list[tuple[float, float | None]] = []
            for _ in range(plan.rounds):
                ref_s, ref_rss = timed_download(
                    bare_port, f"/export?clinic_id={product.clinic_id}&format={export_format}", {}, bare.pid
                )
                seconds, rss = timed_download(
                    product_port, f"/v1/research/export?format={export_format}", product.bearer("researcher"), app.pid
                )
                speed.append((stored / seconds, stored / ref_s))
                memory.append((rss, ref_rss))
            scenario = f"export {export_format} ({stored:,} stored)"
            rows.append(compare(scenario, kind, "rows/s", speed, unit="rows/s", target="≥ 0.80× reference"))
            rows.append(compare(scenario, kind, "peak RSS", memory, unit="MiB", target="1M ≤ 1.2× 100k"))
    return rows
