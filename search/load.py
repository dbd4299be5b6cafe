"""Bounded load test: concurrent clients on 127.0.0.1 while the index is rebuilt and reloaded.

`make load` (`python -m semsearch.search.load`) indexes a copy of seeds/ into a temporary
folder, starts `semsearch serve` on 127.0.0.1 with an admin token, and runs N clients for a fixed
number of requests. A third of the way in it adds an article and rebuilds through
`POST /admin/reindex`; two thirds in it adds another, builds with `semsearch index` and calls
`POST /admin/reload`.
Every answer names its generation (the X-Semsearch-Generation header) and must equal that
generation's reference answer, taken by the driver right after each switch: an answer mixing
two generations, or from an unknown one, fails the run as surely as an error does.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from semsearch.search.load_report import Answer, LoadReport, Signature, check_answers, signature

__all__ = ["Answer", "LoadReport", "fetch_references", "main", "run_load"]

GENERATION_HEADER = "X-Semsearch-Generation"
MODES = ("hybrid", "lexical", "dense")
QUERIES = (
    "power outages",
    "talks in Abu Dhabi",
    "who negotiated for Ukraine",
    "energy infrastructure attacks",
    "zephyr lighthouse keeper",
    "quokka marble festival",
)
ADDED_ARTICLES = (
    (
        "load-b.txt",
        "The lighthouse keeper Zephyr\n\nZephyr has kept the lighthouse on the northern cape "
        "for thirty years, climbing its spiral stairs every evening at dusk.\n\nShips passing "
        "the cape rely on the lighthouse beam during winter storms and fog.\n",
    ),
    (
        "load-c.txt",
        "The quokka marble festival\n\nEvery spring the island holds a marble festival where "
        "children race glass marbles along sand tracks while quokkas watch.\n\nThe festival "
        "ends with a parade of painted marbles through the harbour town.\n",
    ),
)


def _ask(client: Any, query: str, mode: str, post: bool) -> Answer:
    started = time.perf_counter()
    try:
        if post:
            response = client.post("/search", json={"query": query, "mode": mode, "k": 5})
        else:
            response = client.get("/search", params={"q": query, "mode": mode, "k": 5})
    except Exception as error:  # any transport failure counts as a failed request
        failure = f"{type(error).__name__}: {error}"
        return Answer(query, mode, 0, None, (), started, time.perf_counter(), failure)
    ended = time.perf_counter()
    if response.status_code != 200:
        text = response.text[:200]
        return Answer(query, mode, response.status_code, None, (), started, ended, text)
    generation = response.headers.get(GENERATION_HEADER)
    return Answer(query, mode, 200, generation, signature(response.json()), started, ended)


def fetch_references(
    client: Any, queries: Sequence[str] = QUERIES
) -> tuple[str, dict[tuple[str, str], Signature]]:
    """Ask every query in every mode once: (the generation that answered, its answers)."""
    answers = {}
    generations = set()
    for query in queries:
        for mode in MODES:
            answer = _ask(client, query, mode, post=False)
            if answer.status != 200 or answer.generation is None:
                raise RuntimeError(f"reference query {query!r} failed: {answer.error}")
            generations.add(answer.generation)
            answers[(query, mode)] = answer.hits
    if len(generations) != 1:
        raise RuntimeError(f"reference answers came from several generations: {generations}")
    return generations.pop(), answers


def run_load(
    base_url: str,
    *,
    clients: int,
    requests: int,
    events: Sequence[tuple[float, Callable[[], None]]] = (),
    queries: Sequence[str] = QUERIES,
    references: dict[str, dict[tuple[str, str], Signature]] | None = None,
    timeout: float = 60.0,
    pace: float = 0.1,
) -> LoadReport:
    """Send `requests` searches from `clients` threads; run each event once its share is done.

    Args:
        base_url: the server, such as http://127.0.0.1:8000.
        clients: concurrent clients, each with its own connection.
        requests: how many searches in all (a fixed number: the run is bounded).
        events: (fraction of requests done, action) pairs run in order from this thread while
            the clients go on, such as a reindex at 1/3 and a reload at 2/3. Requests from the
            next event's mark on (the last event: 95% of the requests) wait for it to finish,
            so every switch happens while requests remain.
        queries: the queries, cycled through with every mode, GET and POST in turn.
        references: generation -> (query, mode) -> expected hits; the events may add to it.
        timeout: seconds a single request may take.
        pace: seconds each client waits between requests while an event runs, so that the
            requests before the next mark last until the switch and some are in flight then.
    """
    import httpx

    references = references if references is not None else {}
    answers: list[Answer] = []
    lock = threading.Lock()
    taken = 0
    running = threading.Event()  # set while an event runs
    marks = [fraction for fraction, _ in events]
    gates = [
        (int((marks[k + 1] if k + 1 < len(marks) else 0.95) * requests), done)
        for k, done in enumerate(threading.Event() for _ in events)
    ]

    def client_loop() -> None:
        nonlocal taken
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            while True:
                with lock:
                    if taken >= requests:
                        return
                    i = taken
                    taken += 1
                for first, done in gates:
                    if i >= first:
                        done.wait(timeout=600)
                if running.is_set():
                    time.sleep(pace)
                query = queries[i % len(queries)]
                mode = MODES[(i // len(queries)) % len(MODES)]
                answer = _ask(client, query, mode, post=i % 2 == 1)
                with lock:
                    answers.append(answer)

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        for (fraction, action), (_, done) in zip(events, gates, strict=True):
            while len(answers) < fraction * requests and any(t.is_alive() for t in threads):
                time.sleep(0.01)
            running.set()
            try:
                action()
            finally:
                running.clear()
                done.set()
    finally:
        for _, done in gates:  # an event that failed must not leave clients waiting
            done.set()
    for thread in threads:
        thread.join()
    report = LoadReport(answers, time.perf_counter() - started, references)
    report.problems = check_answers(answers, references)
    return report


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(client: Any, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        try:
            if client.get("/health").json().get("index") == "loaded":
                return
        except Exception:  # not listening yet
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer within {seconds:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    import httpx

    parser = argparse.ArgumentParser(prog="python -m semsearch.search.load", description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--seeds", type=Path, default=Path("seeds"))
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 3:
        parser.error("need at least 1 client and 3 requests")

    semsearch = str(Path(sys.executable).parent / "semsearch")
    work = Path(tempfile.mkdtemp(prefix="semsearch-load-"))
    seeds, index = work / "seeds", work / "index"
    shutil.copytree(args.seeds, seeds)
    token = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "SEMSEARCH_SEEDS_DIR": str(seeds),
        "SEMSEARCH_INDEX_DIR": str(index),
        "SEMSEARCH_ADMIN_TOKEN": token,
        "SEMSEARCH_RELOAD_INTERVAL": "0",  # the reload in the middle is the explicit one
    }
    print(f"indexing {args.seeds} into {index}", flush=True)
    subprocess.run([semsearch, "index", "-q"], env=env, check=True)
    port = _free_port()
    log = open(work / "server.log", "wb")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [semsearch, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {token}"}
    references: dict[str, dict[tuple[str, str], Signature]] = {}
    try:
        with httpx.Client(base_url=base, timeout=120) as control:
            _wait_healthy(control, server)
            name, answers = fetch_references(control)
            references[name] = answers
            print(f"serving {name}; {args.clients} clients, {args.requests} requests", flush=True)

            def reindex() -> None:
                (seeds / ADDED_ARTICLES[0][0]).write_text(ADDED_ARTICLES[0][1], encoding="utf-8")
                job = control.post("/admin/reindex", headers=admin)
                job.raise_for_status()
                url = job.headers["Location"]
                state: dict[str, Any] = {}
                for _ in range(1200):  # bounded: 2 minutes
                    state = control.get(url, headers=admin).json()
                    if state["status"] != "running":
                        break
                    time.sleep(0.1)
                if state["status"] != "succeeded":
                    raise RuntimeError(f"reindex did not succeed: {state}")
                name, answers = fetch_references(control)
                references[name] = answers
                print(
                    f"reindex done: serving {name}; {state['in_flight']} requests were still "
                    "running on the old generation at the switch",
                    flush=True,
                )

            def reload() -> None:
                (seeds / ADDED_ARTICLES[1][0]).write_text(ADDED_ARTICLES[1][1], encoding="utf-8")
                subprocess.run([semsearch, "index", "-q"], env=env, check=True)
                result = control.post("/admin/reload", headers=admin)
                result.raise_for_status()
                name, answers = fetch_references(control)
                references[name] = answers
                done = result.json()
                print(
                    f"reload done: serving {name}; {done['in_flight']} requests were still "
                    "running on the old generation at the switch",
                    flush=True,
                )

            report = run_load(
                base,
                clients=args.clients,
                requests=args.requests,
                events=[(1 / 3, reindex), (2 / 3, reload)],
                references=references,
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    print(report.summary())
    for problem in report.problems[:20]:
        print(f"  {problem}")
    answered = report.generations()
    if len(references) < 3 or any(answered[name] == 0 for name in references):
        print(f"FAIL: every generation should answer some requests: {dict(answered)}")
        return 1
    if report.problems:
        print(f"FAIL: {len(report.problems)} failed or wrong answers")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("OK: no failed request, every answer from a known generation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
