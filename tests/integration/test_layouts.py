"""What eviction takes, in each layout: the reason a split stack exists.

Each layout is deployed under the tests' own names with a small maxmemory. Services' data
goes in as services write it (a Celery queue with pending tasks, a stream with a consumer
group and pending entries, sessions, JWT blacklist entries), then cache entries worth
several times maxmemory. Layout single (one instance, allkeys-lru, as the service runs
today) loses some of it; layout split loses none: the cache instance evicts, the durable
instance (noeviction) refuses writes when full instead, and a Celery worker still runs
every queued task. The loss table is printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis_ops import results, tables
from bizosaas_redis_ops.check import smoke, smoke_celery
from bizosaas_redis_patterns import EventStream, KeySpace, SessionStore, TokenBlacklist
from conftest import TEST_EXTERNAL_NETWORK, TEST_PREFIX, cli, free_port
from harness import FAST, Deployment, write_results

MAXMEMORY_MB = 32
CACHE_FILL_MB = 4 * MAXMEMORY_MB  # "far past maxmemory"
VALUE = b"x" * 1024
TASKS, STREAM_ENTRIES, PENDING, SESSIONS, REVOKED = 200, 500, 100, 500, 500
PREFIX = "layout:"
QUEUE = "tasks"  # kombu keeps it under PREFIX + QUEUE (its global_keyprefix)

RESULTS: dict[str, dict[str, str]] = {}
FIGURES: list[dict[str, object]] = []


@pytest.fixture(scope="module", autouse=True)
def _loss_table() -> Iterator[None]:
    """After the module's tests: the loss table (`-s` shows it), and results/layouts.json when asked."""
    yield
    if RESULTS:
        rows = sorted({row for found in RESULTS.values() for row in found})
        cells = [[row, *(RESULTS[k].get(row, "") for k in RESULTS)] for row in rows]
        print("\n" + tables.render(["lost / measured", *RESULTS], cells))
    conditions = f"maxmemory {MAXMEMORY_MB}mb on each instance, then {CACHE_FILL_MB} MB of cache entries"
    write_results("layouts", conditions, FIGURES)


@dataclass
class Urls:
    """Application URLs through the published ports, per use (the same in layout single).
    They hold passwords: kept out of reprs, so failure reports never show them."""

    cache: str = field(repr=False)
    durable: str = field(repr=False)
    cache_admin: str = field(repr=False)
    durable_admin: str = field(repr=False)


def _client(url: str, db: int = 0) -> redis.Redis:
    return redis.Redis.from_url(
        smoke.with_db(url, db), retry=Retry(NoBackoff(), 0), socket_timeout=10, decode_responses=True
    )


def _urls(deployment: Deployment) -> Urls:
    values = deployment.outputs()
    durable = "durable_" if values["layout"] == "split" else ""
    return Urls(
        values["redis_url"],
        values[f"{durable}redis_url"],
        values["redis_admin_url"],
        values[f"{durable}redis_admin_url"],
    )


def _split_settings() -> str:
    return f"durable={{maxmemory: {MAXMEMORY_MB}mb, hostPort: {free_port()}}}"


@contextlib.contextmanager
def _deployment(name: str, stack: str, engine: docker.DockerClient, image: str) -> Iterator[Deployment]:
    names = {
        "containerName": f"{TEST_PREFIX}-layout-{name}",
        "volumeName": f"{TEST_PREFIX}-layout-{name}-data",
        "networkName": TEST_EXTERNAL_NETWORK,
    }
    settings = [*FAST, f"maxmemory={MAXMEMORY_MB}mb", f"memoryLimit={MAXMEMORY_MB + 64}mb"]
    if stack == "production":
        settings.append(_split_settings())
    deployment = Deployment(stack, names, image, settings)
    try:
        deployment.up()
        yield deployment
    finally:
        deployment.close(engine)


# Production's stack file splits; staging's is the service as it runs today.
@pytest.fixture(scope="module")
def single(engine, offline_image) -> Iterator[Urls]:
    with _deployment("single", "staging", engine, offline_image) as deployment:
        yield _urls(deployment)


@pytest.fixture(scope="module")
def split(engine, offline_image) -> Iterator[Urls]:
    with _deployment("split", "production", engine, offline_image) as deployment:
        yield _urls(deployment)


@dataclass
class Written:
    task_ids: list[str]
    sessions: list[str]
    revoked: list[str]


def _write_services_data(urls: Urls) -> Written:
    """What services keep in Redis, written as they write it, before the cache fills."""
    app = smoke_celery.make_app(smoke.with_db(urls.durable, 1), smoke.with_db(urls.durable, 2), PREFIX, QUEUE)
    try:
        task_ids = [app.send_task("smoke.add", args=(i, 1), queue=QUEUE).id for i in range(TASKS)]
    finally:
        app.close()
    client = _client(urls.durable)
    keys = KeySpace(PREFIX)
    stream = _stream(client)
    stream.ensure_group()
    for i in range(STREAM_ENTRIES):
        stream.publish({"order": i})
    stream.read("worker-1", count=PENDING)  # read, not acknowledged: pending
    sessions = SessionStore(client, keys)
    session_ids = [sessions.create({"user": i}) for i in range(SESSIONS)]
    blacklist = TokenBlacklist(client, keys)
    jtis = [f"jti-{i}" for i in range(REVOKED)]
    for jti in jtis:
        blacklist.revoke(jti, int(time.time()) + 3600)
    return Written(task_ids, session_ids, jtis)


def _fill_cache(urls: Urls) -> int:
    """Cache entries (TTL 1 h) worth CACHE_FILL_MB, as the API and LLM caches write them."""
    client = _client(urls.cache)
    count = CACHE_FILL_MB * 1024 * 1024 // len(VALUE)
    for start in range(0, count, 2000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + 2000, count)):
            pipe.set(f"cache:api:{i}", VALUE, ex=3600)
        pipe.execute()
    return count


def _stream(client: redis.Redis) -> EventStream:
    return EventStream(client, KeySpace(PREFIX), "orders", "billing")


def _lost(urls: Urls, written: Written) -> dict[str, int]:
    """What services no longer find where they now look for it (the durable URL)."""
    client, broker = _client(urls.durable), _client(urls.durable, 1)
    keys, stream = KeySpace(PREFIX), _stream(client)
    sessions, blacklist = SessionStore(client, keys), TokenBlacklist(client, keys)
    queued = int(broker.llen(PREFIX + QUEUE))
    stream_len = int(client.xlen(stream.stream)) if client.exists(stream.stream) else 0
    pending = stream.pending_count() if stream_len else 0
    return {
        "queued tasks": TASKS - queued,
        "stream entries": STREAM_ENTRIES - stream_len,
        "pending stream entries": PENDING - pending,
        "sessions": sum(sessions.get(s) is None for s in written.sessions),
        "blacklist entries": sum(not blacklist.is_revoked(j) for j in written.revoked),
    }


def _evicted(admin_url: str) -> int:
    return int(_client(admin_url).info("stats")["evicted_keys"])


def _record(layout: str, lost: dict[str, int], evictions: dict[str, int]) -> None:
    total = {"queued tasks": TASKS, "stream entries": STREAM_ENTRIES, "pending stream entries": PENDING}
    total |= {"sessions": SESSIONS, "blacklist entries": REVOKED}
    RESULTS[layout] = {what: f"{n} of {total[what]}" for what, n in lost.items()}
    RESULTS[layout] |= {f"evicted ({instance})": str(n) for instance, n in evictions.items()}
    for what, n in lost.items():
        # Split asserts it loses nothing; single only that it loses something.
        bound = (
            {"bound": 0, "bound_from": "the durable instance never evicts (noeviction)"} if layout == "split" else {}
        )
        FIGURES.append(results.figure(f"{layout}: {what} lost, of {total[what]}", [n], "keys", **bound))
    for instance, n in evictions.items():
        FIGURES.append(results.figure(f"{layout}: keys evicted ({instance})", [n], "keys"))


def test_single_layout_loses_services_data_when_the_cache_fills(single):
    written = _write_services_data(single)
    filled = _fill_cache(single)
    lost = _lost(single, written)
    _record("single", lost, {"the one instance": _evicted(single.cache_admin)})
    assert _evicted(single.cache_admin) > filled // 2, "the cache data went past maxmemory and was evicted"
    # Which keys LRU picks is sampled, so the counts vary; that it takes some is the point.
    assert sum(lost.values()) > 0, lost


def test_split_layout_loses_nothing_and_the_worker_runs_every_task(split):
    written = _write_services_data(split)
    filled = _fill_cache(split)
    lost = _lost(split, written)
    _record("split", lost, {"cache": _evicted(split.cache_admin), "durable": _evicted(split.durable_admin)})
    assert lost == dict.fromkeys(lost, 0)
    assert _evicted(split.cache_admin) > filled // 2, "the cache instance evicted"
    assert _evicted(split.durable_admin) == 0

    worker = smoke_celery.start_worker(smoke.with_db(split.durable, 1), smoke.with_db(split.durable, 2), PREFIX, QUEUE)
    app = smoke_celery.make_app(smoke.with_db(split.durable, 1), smoke.with_db(split.durable, 2), PREFIX, QUEUE)
    try:
        returned = [app.AsyncResult(task_id).get(timeout=120) for task_id in written.task_ids]
    finally:
        smoke_celery.stop_worker(worker)
        app.close()
    assert returned == [i + 1 for i in range(TASKS)]


def test_the_durable_instance_refuses_writes_when_full_instead_of_evicting(split):
    client = _client(split.durable)
    before = int(client.dbsize())
    with pytest.raises(redis.exceptions.OutOfMemoryError) as refused:
        for i in range(2 * MAXMEMORY_MB * 1024):
            client.set(f"{PREFIX}filler:{i}", VALUE)
    assert str(refused.value).startswith("command not allowed when used memory > 'maxmemory'")
    assert _evicted(split.durable_admin) == 0
    assert int(client.dbsize()) >= before, "nothing was evicted to make room"
    RESULTS.setdefault("split", {})["durable when full"] = "refused writes (OOM), 0 evicted"


def test_switching_to_split_names_what_stays_behind_and_layout_move_moves_it(engine, offline_image):
    with _deployment("switch", "staging", engine, offline_image) as deployment:
        before = _urls(deployment)
        written = _write_services_data(before)
        _client(before.cache).set("cache:api:kept", "on the cache", ex=3600)
        output = deployment.up("layout=split", _split_settings())
        found = re.search(r"note: redis:layout = split: (\d+) keys of the broker and result databases", output)
        # The queue, the stream, every session and blacklist entry, and kombu's own keys.
        assert found and int(found.group(1)) >= 2 + SESSIONS + REVOKED, output
        after = _urls(deployment)
        assert after.durable != after.cache
        assert _lost(after, written) != dict.fromkeys(_lost(after, written), 0), "not moved yet: not on the durable"

        env = {**os.environ, **deployment.sandbox.env()}
        dry = cli("layout-move", "--stack", "staging", "--dry-run", env=env)
        assert "db 1: " in dry.stdout and "would move" in dry.stdout
        # A key on both instances is never overwritten: reported, left on the cache, exit 1.
        clash = f"{PREFIX}session:{written.sessions[-1]}"
        _client(after.durable).set(clash, "written on the durable instance already")
        refused = cli("layout-move", "--stack", "staging", env=env, check=False)
        assert refused.returncode == 1 and f"'{clash}' exists on the durable instance" in refused.stderr
        assert _client(after.durable).get(clash) == "written on the durable instance already"
        assert _client(after.cache).exists(clash) == 1
        _client(after.durable).delete(clash)
        moved = cli("layout-move", "--stack", "staging", env=env)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert _lost(after, written) == dict.fromkeys(_lost(after, written), 0), moved.stdout
        assert _client(after.cache).get("cache:api:kept") == "on the cache", "cache entries stay"
        session_key = f"{PREFIX}session:{written.sessions[0]}"
        assert _client(after.cache).exists(session_key) == 0, "moved, not copied"
        assert 0 < _client(after.durable).ttl(session_key) <= 86400, "with its TTL"
        again = cli("layout-move", "--stack", "staging", env=env)
        assert "db 0: 0 found" in again.stdout, "a second run finds nothing left"
