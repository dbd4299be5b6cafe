"""What the benchmarks share: a free port, a server's start, HTTP load, percentiles, memory,
the machine, and queries drawn from an index's passages."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from semsearch.index.store_choice import make_store

__all__ = [
    "free_port",
    "http_load",
    "machine",
    "passage_queries",
    "percentiles",
    "rss_mb",
    "timed",
    "wait_for_server",
]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory in MB: all of it (VmRSS), or only its own (RssAnon: not
    counting pages of mapped files, which the system shares and can drop)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_for_server(
    base: str, server: subprocess.Popen[Any], seconds: float, log: Path | None = None
) -> None:
    """Wait until the server at `base` serves an index.

    Raises:
        RuntimeError: it stopped, or was not serving after `seconds` (with its log's tail).
    """
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).json().get("index") == "loaded":
                return
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log else ""
            raise RuntimeError(f"the benchmark server did not start{':' if tail else ''}\n{tail}")
        time.sleep(0.3)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99)}


def timed(run: Callable[[str], Any], queries: Sequence[str]) -> dict[str, float]:
    """`run` on each query in turn: the p50, p95 and p99 of its time, in ms."""
    return timed_together({"run": run}, queries)["run"]


def timed_together(
    runs: dict[str, Callable[[str], Any]], queries: Sequence[str], passes: int = 1
) -> dict[str, dict[str, float]]:
    """Each of `runs` on each query, one run after another for a query before the next query
    (`passes` times over the queries): the p50, p95 and p99 of each run's time, in ms. On a
    machine whose speed drifts, every run meets the same slow and fast moments, so their
    figures compare where `timed` one after the other would not."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(passes):
        for query in queries:
            for name, run in runs.items():
                started = time.perf_counter()
                run(query)
                samples[name].append((time.perf_counter() - started) * 1000)
    return {
        name: {key: round(value, 2) for key, value in percentiles(taken).items()}
        for name, taken in samples.items()
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_load(base: str, queries: list[str], mode: str, clients: int) -> dict[str, float]:
    # http.client, one keep-alive connection per client: a light client, so the figures are the
    # server's and not the load generator's (it shares the machine's cores).
    from http.client import HTTPConnection
    from urllib.parse import urlencode, urlsplit

    address = urlsplit(base)

    def worker(part: list[str]) -> list[float]:
        latencies = []
        connection = HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
        try:
            for query in part:
                path = "/search?" + urlencode({"q": query, "k": 10, "mode": mode})
                started = time.perf_counter()
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"{path} answered {response.status}")
                latencies.append((time.perf_counter() - started) * 1000)
        finally:
            connection.close()
        return latencies

    parts = [queries[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [ms for part in pool.map(worker, parts) for ms in part]
    elapsed = time.perf_counter() - started
    figures = {k: round(v, 2) for k, v in percentiles(latencies).items()}
    return {**figures, "qps": round(len(latencies) / elapsed, 1)}


def machine() -> dict[str, Any]:
    memory = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 2**20:.0f} GiB"
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "memory": memory, "cpu": cpu, "python": sys.version.split()[0]}


def passage_queries(index_dir: Path, count: int, offset: int = 0) -> list[str]:
    """A fixed set of different queries: the first words of passages spread over the index.

    `offset` shifts every pick by that many passages: another set, of the same kind.
    """
    store = make_store("faiss", index_dir).open()
    texts = [text for _, _, text in store.passage_locations()]
    store.close()
    step = max(1, len(texts) // count)
    return [" ".join(text.split()[:8]) for text in texts[offset % step :: step][:count]]
