"""A writer that counts acknowledged writes, and a test deployment of a stack under its own names."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

import docker
import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis_ops import results
from bizosaas_redis_ops.deploy.sandbox import Sandbox, parse_assignments
from conftest import ROOT, stand_in_overrides

# A 1 s healthcheck keeps the tests short; the windows measured are Redis's, not Docker's.
FAST = ("healthcheckInterval=1", "healthcheckTimeout=1", "healthcheckStartPeriod=0")
# Writes, at most, per use (about 1 h of writing): one that reaches it fails its test.
WRITER_LIMIT = 1_000_000


def write_results(name: str, conditions: str, figures: list[dict[str, object]]) -> None:
    """results/<name>.json of what a module measured, when asked (BIZOSAAS_RESULTS_DIR):
    each figure's runs beside the bound the test asserted."""
    folder = results.requested()
    if folder is not None and figures:
        results.write(folder, results.document(name, conditions, figures, results.commit_of(ROOT)))


def refused(error: BaseException) -> bool:
    """A password refused: by the server, or by every Sentinel asked for the primary
    (redis-py then raises MasterNotFoundError naming each Sentinel's AuthenticationError)."""
    if isinstance(error, redis.AuthenticationError):
        return True
    return isinstance(error, redis.sentinel.MasterNotFoundError) and "AuthenticationError" in str(error)


@dataclass
class Knocker:
    """Connects again every 20 ms (`connect`: a new client with one password), as a client
    that restarts would, and counts what the server answered: accepted, refused (a wrong
    password) or unreachable."""

    connect: Callable[[], redis.Redis] = field(repr=False)
    accepted: int = 0
    refused: int = 0
    unreachable: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _knocked_to_the_end: bool = field(default=False, repr=False)

    def knock(self) -> bool:
        client = self.connect()
        try:
            return bool(client.ping())
        finally:
            client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.knock()
                self.accepted += 1
            except (redis.RedisError, OSError) as error:  # refused connection, reset, timeout
                if refused(error):
                    self.refused += 1
                else:
                    self.unreachable += 1
            time.sleep(0.02)
        self._knocked_to_the_end = True  # not when an exception ended the thread

    def __enter__(self) -> Knocker:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        assert self._knocked_to_the_end, "the knocking client stopped early (its exception is printed above)"


class CountingWriter:
    """Acknowledged writes (SET <prefix><n>) in a thread until stopped, and the longest time
    without one, counted to the stop: an outage still running then counts in full, and
    fails the block, since writes must have resumed when it ends. Subclasses say how to
    connect; a failed write reconnects."""

    def __init__(self, prefix: str = "w:") -> None:
        self.prefix = prefix
        self.acked: list[int] = []
        self.longest_gap = 0.0
        self.last_ok = time.monotonic()
        # Each failed write: when (monotonic) and why, to tell where a long pause went.
        self.failures: list[tuple[float, str]] = []
        self._stop = threading.Event()

    def connect(self) -> redis.Redis:
        raise NotImplementedError

    def run(self) -> None:
        client: redis.Redis | None = None
        self.last_ok = time.monotonic()
        n = 0
        while not self._stop.is_set() and n < WRITER_LIMIT:
            try:
                client = client or self.connect()
                client.set(f"{self.prefix}{n}", n)
            except (redis.RedisError, OSError) as failed:
                if len(self.failures) < WRITER_LIMIT:
                    self.failures.append((time.monotonic(), f"{type(failed).__name__}: {failed}"[:100]))
                client = None
                time.sleep(0.02)
                continue
            now = time.monotonic()
            self.longest_gap = max(self.longest_gap, now - self.last_ok)
            self.last_ok = now
            self.acked.append(n)
            n += 1
            time.sleep(0.002)

    def failure_timeline(self, since: float) -> str:
        """The failed writes after `since` (monotonic), alike ones in a row as one line:
        `+1.2-3.4 s x12 ConnectionError: ...`."""
        lines: list[list] = []  # [first, last, count, why]
        for at, why in self.failures:
            if at < since:
                continue
            if lines and lines[-1][3] == why:
                lines[-1][1], lines[-1][2] = at, lines[-1][2] + 1
            else:
                lines.append([at, at, 1, why])
        return "\n".join(f"  +{a - since:.1f}-{b - since:.1f} s x{n} {why}" for a, b, n, why in lines)

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        time.sleep(0.5)  # writing before the change starts
        assert self.acked, "the writer wrote nothing before the change"
        return self

    def __exit__(self, failed: type[BaseException] | None, *exc: object) -> None:
        time.sleep(0.5)  # and after it is done
        self._stop.set()
        stopped = time.monotonic()
        self._thread.join(timeout=30)
        self.longest_gap = max(self.longest_gap, stopped - self.last_ok)
        if failed is not None:
            return  # the block's own error says more
        assert len(self.acked) < WRITER_LIMIT, f"the writer reached WRITER_LIMIT ({WRITER_LIMIT}): it stopped early"
        since = [at for at, _ in self.failures if at > self.last_ok]
        assert not since, (
            f"writes had not resumed when the writer stopped: {len(since)} failed since the last acknowledged "
            f"write, {stopped - self.last_ok:.1f} s before the stop:\n{self.failure_timeline(self.last_ok)}"
        )


class Writer(CountingWriter):
    """Writes through a URL (the admin one); follows the port it is given."""

    def __init__(self, password_url: str, port: int) -> None:
        super().__init__()
        self.password_url = password_url
        self.port = port

    def __repr__(self) -> str:  # the URL holds a password
        return f"Writer(port={self.port}, acked={len(self.acked)})"

    def url(self) -> str:
        head, _, tail = self.password_url.rpartition(":")
        return f"{head}:{self.port}/{tail.split('/', 1)[1]}"

    def connect(self) -> redis.Redis:
        return redis.Redis.from_url(self.url(), socket_timeout=2, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))


class Deployment:
    """One stack file deployed under `names` with `bizosaas-redis up` (the real engine),
    from a project folder and state of its own, with a fast healthcheck."""

    def __init__(self, stack: str, names: dict[str, str], image: str, settings: list[str] | tuple[str, ...] = ()):
        overrides = stand_in_overrides(stack, image, names)
        self.sandbox = Sandbox(stack, {**overrides, **parse_assignments([*FAST, *settings])})
        self.stack = stack
        self.names = names

    @property
    def port(self) -> int:
        return self.sandbox.port

    def up(self, *changes: str, port: int | None = None) -> str:
        """`bizosaas-redis up` with `changes` (KEY=VALUE) and a new port if given; its output."""
        return self.sandbox.up(*changes, *([f"hostPort={port}"] if port else []))

    def admin(self, decode: bool = False) -> redis.Redis:
        url = self.outputs()["redis_admin_url"]
        return redis.Redis.from_url(url, decode_responses=decode, retry=Retry(NoBackoff(), 0))

    def outputs(self) -> dict:
        return self.sandbox.outputs()

    def close(self, client: docker.DockerClient) -> None:
        self.sandbox.close(client)
        self.sandbox.project.remove()
