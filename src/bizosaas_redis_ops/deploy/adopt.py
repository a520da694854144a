"""Adopting the Redis that runs today (made by docker compose or Dokploy) into a stack's
first deployment, without losing a key: discover it, compare it with the stack's settings
and refuse before touching anything where they differ in what holds or reaches the data,
prepare everything, then cut over with the old container kept (renamed, stopped) until the
new one is proven to hold the same data, and put it back on any failure.

The pure parts (what runs, how it compares, what the data looked like) are functions of
`docker inspect` and of Redis's replies; `cli/deploy.py` runs the steps in order."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import docker
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis import redis_conf
from bizosaas_redis.connection import with_db
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import NAMESPACE, Settings

DATA_DIR = "/data"
# Redis's port inside the container, as the image and compose files publish it.
REDIS_PORT_KEY = f"{redis_conf.CONTAINER_PORT}/tcp"
# Compose's labels on the containers it makes: which project and service, from where.
COMPOSE_LABELS = {
    "project": "com.docker.compose.project",
    "service": "com.docker.compose.service",
    "config_files": "com.docker.compose.project.config_files",
    "working_dir": "com.docker.compose.project.working_dir",
}
# What becomes of the compose service that made the container, said on each of its rows.
COMPOSE_AFTER = "after adoption the stack owns the container: take the service out of compose"
# Networks every container may be on that consumers do not reach Redis through.
DOCKER_NETWORKS = ("bridge", "host", "none")
# Keys sampled per database before the stop and compared after it.
SAMPLE_PER_DB = 1000
# The old container's new name while the stack's runs under its own, until adoption is proven.
KEPT_SUFFIX = "-before-adoption"


class AdoptError(BizosaasRedisError):
    """Adoption stopped; the line says whether anything was changed."""


def _brief(text: str, limit: int | None = None) -> str:
    """A message's words on one line (engine and Docker errors span many), cut at `limit`."""
    return " ".join(text.split())[:limit]


@dataclass(frozen=True)
class Found:
    """The running container, as `docker inspect` shows it."""

    name: str
    image: str
    status: str
    restart: str
    volume: str | None  # the named volume at /data
    bind: str | None  # or the host folder bound there
    networks: dict[str, tuple[str, ...]]  # network -> aliases
    published: tuple[tuple[str, int], ...]  # (address, host port) of Redis's port
    compose: dict[str, str] = field(default_factory=dict)

    @property
    def reachable_at(self) -> tuple[str, int] | None:
        """Where a tool on this host reaches it: its published port on loopback or every address."""
        for address, port in self.published:
            if address in ("", "0.0.0.0", "127.0.0.1", "::"):
                return ("127.0.0.1", port)
        return None


def found_from(attrs: dict[str, Any]) -> Found:
    """What `docker inspect` says of a container, the parts adoption needs."""
    data = [m for m in attrs.get("Mounts", []) if m.get("Destination") == DATA_DIR]
    mount = data[0] if data else {}
    settings = attrs.get("NetworkSettings", {})
    networks = {
        name: tuple(a for a in (net.get("Aliases") or []) if a not in (attrs["Id"][:12], attrs["Name"].lstrip("/")))
        for name, net in (settings.get("Networks") or {}).items()
    }
    bindings = (settings.get("Ports") or {}).get(REDIS_PORT_KEY) or []
    labels = attrs.get("Config", {}).get("Labels") or {}
    return Found(
        name=attrs["Name"].lstrip("/"),
        image=attrs.get("Config", {}).get("Image", ""),
        status=attrs.get("State", {}).get("Status", ""),
        restart=(attrs.get("HostConfig", {}).get("RestartPolicy") or {}).get("Name") or "no",
        volume=mount.get("Name") if mount.get("Type") == "volume" else None,
        bind=mount.get("Source") if mount.get("Type") == "bind" else None,
        networks=networks,
        published=tuple(sorted({(b.get("HostIp", ""), int(b["HostPort"])) for b in bindings if b.get("HostPort")})),
        compose={key: labels[label] for key, label in COMPOSE_LABELS.items() if label in labels},
    )


@dataclass(frozen=True)
class Server:
    """What the running Redis says of itself."""

    version: str
    config: dict[str, str]  # CONFIG GET of the settings compared
    used_memory: int
    keys: dict[int, int]  # keys per database
    password: bool  # clients must authenticate


SERVER_CONFIG = (
    "maxmemory",
    "maxmemory-policy",
    "save",
    "appendonly",
    "appendfsync",
    "maxclients",
    "databases",
    "dir",
    "dbfilename",
)


def keyspace(info: dict[str, Any]) -> dict[int, int]:
    """Keys per database, from INFO keyspace."""
    return {int(name[2:]): int(value["keys"]) for name, value in info.items() if name.startswith("db")}


def ask_server(client: redis.Redis) -> Server:
    """The running server's version, settings, memory and keys (errors are the caller's)."""
    config = {key: str(client.config_get(key).get(key, "")) for key in SERVER_CONFIG}
    keys = keyspace(client.info("keyspace"))
    default: dict[str, Any] = client.acl_getuser("default") or {}
    flags = [str(flag) for flag in default.get("flags") or []]
    return Server(
        version=str(client.info("server")["redis_version"]),
        config=config,
        used_memory=int(client.info("memory")["used_memory"]),
        keys=keys,
        password="nopass" not in flags or "off" in flags,
    )


@dataclass(frozen=True)
class Row:
    setting: str
    stack: str
    running: str
    verdict: str  # "same", "the stack's value applies", or what must change first


def config_line(stack: str, key: str, value: str) -> str:
    return f"pulumi config set {NAMESPACE}:{key} '{value}' --stack {stack}"


@dataclass
class Comparison:
    """One row per setting; the config values that make the stack take over what runs
    (alias key -> value: `pulumi config set` lines, or `--write-config`); what no value can
    fix (refusals)."""

    rows: list[Row] = field(default_factory=list)
    fixes: dict[str, str] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)

    def must_match(self, setting: str, ours: str, theirs: str, fix: str) -> None:
        same = ours == theirs
        self.rows.append(Row(setting, ours, theirs, "same" if same else "differs: set it to what runs"))
        if not same:
            self.fixes[setting] = fix

    def stack_applies(self, setting: str, ours: str, theirs: str) -> None:
        self.rows.append(Row(setting, ours, theirs, "same" if ours == theirs else "the stack's value applies"))


def compare(found: Found, server: Server, settings: Settings) -> Comparison:
    """What holds and reaches the data must be what runs; the rest the stack decides."""
    found_here = Comparison()
    _where_the_data_is(found_here, found, server, settings)
    _how_it_is_reached(found_here, found, settings)
    beyond = sorted(db for db in server.keys if db >= settings.databases)
    if beyond:
        found_here.must_match("databases", str(settings.databases), f"keys in db {beyond[-1]}", str(beyond[-1] + 1))
    if not settings.retain_data_on_destroy:
        found_here.must_match("retainDataOnDestroy", "false", "true (a rollback destroys the stack)", "true")
    version = f"{server.version} ({found.image})"
    found_here.rows.append(Row("Redis version", settings.image, version, "checked on the backup"))
    for setting, ours, key in (
        ("maxmemory", str(settings.maxmemory), "maxmemory"),
        ("maxmemoryPolicy", settings.maxmemory_policy, "maxmemory-policy"),
        ("save", " ".join(str(rule) for rule in settings.save), "save"),
        ("appendonly", "yes" if settings.appendonly else "no", "appendonly"),
        ("maxclients", str(settings.maxclients), "maxclients"),
    ):
        found_here.stack_applies(setting, ours, server.config.get(key, ""))
    found_here.stack_applies("restartPolicy", settings.restart_policy, found.restart)
    auth = "password" if settings.auth_enabled else "none"
    found_here.stack_applies("authentication", auth, "password" if server.password else "none")
    for key, value in found.compose.items():
        # After adoption the stack owns the container: compose must not start its own again.
        found_here.rows.append(Row(f"compose {key}", "-", value, COMPOSE_AFTER))
    return found_here


def _where_the_data_is(found_here: Comparison, found: Found, server: Server, settings: Settings) -> None:
    if found.volume is None:
        where = f"a bind mount of {found.bind}" if found.bind else "the container's own layer (no mount)"
        found_here.refusals.append(
            f"{found.name} keeps /data in {where}: the stack takes its data from a named volume; copy the data "
            "into a volume (docker volume create, then copy /data into it) and run that container first"
        )
    else:
        found_here.must_match("volumeName", settings.volume_name, found.volume, found.volume)
    if server.config.get("dir") != DATA_DIR or server.config.get("dbfilename", "dump.rdb") != "dump.rdb":
        where = f"{server.config.get('dir')}/{server.config.get('dbfilename')}"
        found_here.refusals.append(f"Redis in {found.name} writes its data to {where}, not to {DATA_DIR}/dump.rdb")


def _how_it_is_reached(found_here: Comparison, found: Found, settings: Settings) -> None:
    """The names, port and network consumers reach Redis by."""
    found_here.must_match("containerName", settings.name, found.name, found.name)
    if found.published:
        address, port = found.published[0]
        found_here.must_match("hostPort", str(settings.host_port), str(port), str(port))
        published = address or "0.0.0.0"
        found_here.must_match("publishAddress", settings.publish_address, published, published)
    networks = {n: a for n, a in found.networks.items() if n not in DOCKER_NETWORKS}
    if networks and settings.network_name not in networks:
        first = sorted(networks)[0]
        found_here.must_match("networkName", settings.network_name, first, first)
        found_here.fixes["networkExternal"] = "true"
    elif networks:
        found_here.rows.append(Row("networkName", settings.network_name, settings.network_name, "same"))
        if set(networks[settings.network_name]) - set(settings.network_aliases):
            wanted = json.dumps(sorted({*settings.network_aliases, *networks[settings.network_name]}))
            found_here.must_match("networkAliases", json.dumps(settings.network_aliases), wanted, wanted)
        if not settings.network_external:
            found_here.must_match("networkExternal", "false", "true (it exists already)", "true")


def auth_change(server: Server, settings: Settings, stack: str) -> str | None:
    """What adoption does to clients that connect without a password, said before it starts."""
    if server.password or not settings.auth_enabled:
        return None
    return (
        f"Redis runs without a password today and stack {stack} turns authentication on: from the moment the "
        "stack's container starts, every client that connects without a password is refused (NOAUTH). Give the "
        f"consumers their URLs first (bizosaas-redis outputs --stack {stack} --show-secrets: consumer_env, "
        "consumer_secrets, after this adoption) and restart them right after it, or, where the policy "
        f"allows it, adopt with `pulumi config set {NAMESPACE}:authEnabled false --stack {stack}` and turn it on "
        f"later with `bizosaas-redis rotate start` and `finish`, which refuse no client"
    )


# --- the data, before and after -------------------------------------------------------


@dataclass
class Fingerprint:
    """The data when writes stopped: keys per database, and a sample of keys' values and TTLs."""

    keys: dict[int, int]
    samples: dict[int, dict[bytes, tuple[str, int]]]  # db -> key -> (value digest, PTTL ms)

    @property
    def total(self) -> int:
        return sum(self.keys.values())


# How each type's value is read for its digest, in an order that does not depend on the
# server's encoding (a reloaded set or hash iterates in another order, so DUMP differs).
READ: dict[bytes, Callable[[Any, bytes], Any]] = {
    b"string": lambda pipe, key: pipe.get(key),
    b"list": lambda pipe, key: pipe.lrange(key, 0, -1),
    b"set": lambda pipe, key: pipe.smembers(key),
    b"zset": lambda pipe, key: pipe.zrange(key, 0, -1, withscores=True),
    b"hash": lambda pipe, key: pipe.hgetall(key),
    b"stream": lambda pipe, key: pipe.xrange(key),
}


def _digest(kind: bytes, value: Any) -> str:
    if isinstance(value, set):
        value = sorted(value)
    elif isinstance(value, dict):
        value = sorted(value.items())
    return hashlib.sha256(kind + repr(value).encode()).hexdigest()


def sample(client: redis.Redis, dbs: list[int], per_db: int = SAMPLE_PER_DB) -> dict[int, dict[bytes, tuple[str, int]]]:
    """RANDOMKEY `per_db` times per database (repeats dropped), each key's value digest and PTTL."""
    found: dict[int, dict[bytes, tuple[str, int]]] = {}
    for db in dbs:
        given = client.connection_pool.connection_kwargs
        db_client = redis.Redis(
            host=given["host"],
            port=given["port"],
            username=given.get("username"),
            password=given.get("password"),
            db=db,
            socket_timeout=30,
        )
        try:
            pipe = db_client.pipeline(transaction=False)
            for _ in range(per_db):
                pipe.randomkey()
            keys = sorted({k for k in pipe.execute() if k is not None})
            found[db] = values_of(db_client, keys)
        finally:
            db_client.close()
    return found


def values_of(client: redis.Redis, keys: list[bytes]) -> dict[bytes, tuple[str, int]]:
    """Each key's value digest and PTTL; a key gone has PTTL -2."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
        pipe.pttl(key)
    head = pipe.execute()
    kinds = [k if isinstance(k, bytes) else str(k).encode() for k in head[0::2]]
    pipe = client.pipeline(transaction=False)
    for key, kind in zip(keys, kinds, strict=True):
        READ.get(kind, lambda p, k: p.dump(k))(pipe, key)
    values = pipe.execute()
    return {
        key: (_digest(kind, value), int(ttl))
        for key, kind, value, ttl in zip(keys, kinds, values, head[1::2], strict=True)
    }


def differences(before: Fingerprint, after: dict[int, dict[bytes, tuple[str, int]]], elapsed_ms: float) -> list[str]:
    """Sampled keys whose value changed, or that are gone though their TTL had not run out,
    or whose TTL grew; empty when the data is the same."""
    problems = []
    for db, keys in before.samples.items():
        for key, (digest, ttl) in keys.items():
            now_digest, now_ttl = after.get(db, {}).get(key, ("", -2))
            expired = 0 <= ttl <= elapsed_ms
            if now_ttl == -2 and not expired:
                problems.append(f"db {db} key {key!r}: gone (TTL was {ttl} ms)")
            elif now_ttl != -2 and now_digest != digest:
                problems.append(f"db {db} key {key!r}: another value")
            elif now_ttl != -2 and (ttl == -1) != (now_ttl == -1):
                problems.append(f"db {db} key {key!r}: TTL {ttl} ms became {now_ttl} ms")
            elif ttl >= 0 and now_ttl > ttl:
                problems.append(f"db {db} key {key!r}: TTL grew from {ttl} to {now_ttl} ms")
    return problems


def loaded_all(before: Fingerprint, persistence: dict[str, Any]) -> str | None:
    """None when the new server loaded every key the old one saved (loaded, plus expired on
    load: Redis drops a key whose TTL ran out while it was down); else what is missing."""
    loaded = int(persistence.get("rdb_last_load_keys_loaded", -1))
    expired = int(persistence.get("rdb_last_load_keys_expired", 0))
    if loaded + expired == before.total:
        return None
    return (
        f"the stack's Redis loaded {loaded} keys (and dropped {expired} expired ones) where the old one held "
        f"{before.total}"
    )


# --- the steps that touch the running service ------------------------------------------

# Writes wait (CLIENT PAUSE WRITE) from the fingerprint to the stop, at most this long.
PAUSE_MS = 120_000


def connect(found: Found, username: str | None, password: str | None) -> redis.Redis:
    """A client of the running server through its published port (adoption runs on its host)."""
    at = found.reachable_at
    if at is None:
        raise AdoptError(
            f"{found.name} publishes no port on this host's loopback or every address "
            f"({', '.join(f'{a}:{p}' for a, p in found.published) or 'none'}): run adopt where it can reach "
            "Redis; nothing was changed"
        )
    return redis.Redis(
        host=at[0], port=at[1], username=username, password=password, socket_timeout=30, socket_connect_timeout=5
    )


def freeze(client: redis.Redis, aof: bool) -> Fingerprint:
    """Writes (and expiry and eviction) paused until the stop, the data saved and counted:
    what the stop leaves on the volume is exactly what the fingerprint describes. A failure
    here lets writes go on, as before."""
    client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
    try:
        client.save()
        if aof:
            _rewrite_aof(client)
        keys = keyspace(client.info("keyspace"))
        return Fingerprint(keys, sample(client, sorted(keys)))
    except BaseException:
        client.execute_command("CLIENT", "UNPAUSE")
        raise


def ready_to_stop(engine: docker.DockerClient, old: Any, client: redis.Redis, aof: bool, saved: Path) -> Fingerprint:
    """Frozen (writes paused, saved, counted), the data at the stop copied to `saved` while
    Redis still answers reads, and no second snapshot at the stop. A failure here lets
    writes go on, as before (nothing was changed)."""
    from bizosaas_redis_ops.data import backup as data

    frozen = freeze(client, aof)
    try:
        data.write_private(saved, data.copy_out(engine, old.id, f"{DATA_DIR}/dump.rdb"))
        without_a_second_save(client)
    except BaseException:
        client.execute_command("CLIENT", "UNPAUSE")
        raise
    finally:
        client.close()
    return frozen


def without_a_second_save(client: redis.Redis) -> None:
    """The old server's save rules dropped when nothing changed since freeze's SAVE: Redis
    would otherwise write the same snapshot again on SIGTERM, which at 500 MB adds seconds
    of no reply. Not persisted: on a rollback the container's own command line brings
    them back. With a change (nothing should write under the pause), the rules stay and
    the stop saves it; the proof then finds the counts differ and rolls back."""
    if int(client.info("persistence")["rdb_changes_since_last_save"]) == 0:
        client.config_set("save", "")


def _rewrite_aof(client: redis.Redis) -> None:
    """The AOF the stack's Redis will load, rewritten into one base: it loads it as the RDB
    it is, and counts it (INFO persistence, rdb_last_load_keys_loaded)."""
    client.bgrewriteaof()
    deadline = time.monotonic() + PAUSE_MS / 2000
    while (found := client.info("persistence"))["aof_rewrite_in_progress"] or found["aof_rewrite_scheduled"]:
        if time.monotonic() > deadline:
            raise AdoptError("the running Redis did not finish rewriting its AOF in time; nothing was changed")
        time.sleep(0.05)
    if found["aof_last_bgrewrite_status"] != "ok":
        raise AdoptError("the running Redis failed to rewrite its AOF (its log says why); nothing was changed")


def keep_aside(container: Any, grace: int) -> None:
    """Stopped (Redis saves on SIGTERM), renamed out of the stack's way and kept from
    restarting with the engine: the volume stays untouched until adoption is proven."""
    container.stop(timeout=grace)
    container.rename(container.name + KEPT_SUFFIX)
    container.update(restart_policy={"Name": "no"})
    container.reload()


def put_back(container: Any, found: Found) -> None:
    """The kept container under its own name and restart policy, running again."""
    container.reload()
    if container.name != found.name:
        container.rename(found.name)
    container.update(restart_policy={"Name": found.restart})
    container.start()


# Set to `after-stop` by the rollback test only: fail right after the old container stopped.
FAULT_ENV = "BIZOSAAS_ADOPT_FAULT"


def images_present(engine: docker.DockerClient, settings: Settings) -> None:
    """Every image the stack runs is on this host, or pulled now: never found missing after the stop."""
    wanted = [settings.image, *([settings.exporter_image] if settings.exporter_enabled else [])]
    for image in wanted:
        try:
            engine.images.get(image)
        except docker.errors.ImageNotFound:
            try:
                engine.images.pull(image)
            except docker.errors.APIError as error:
                key = "image" if image == settings.image else "exporterImage"
                raise AdoptError(
                    f"{NAMESPACE}:{key} = {image} is not on this Docker host and cannot be pulled "
                    f"({_brief(str(error.explanation or error))}); nothing was changed"
                ) from None


@dataclass(frozen=True)
class Adopted:
    keys: int
    outage_s: float  # from the old container's stop to the stack's Redis answering
    paused_s: float  # from the pause of writes to the stack's Redis answering
    load_s: float | None  # of that outage, the stack's Redis loading the data (its log)


# Redis's log line when it has loaded the data: `DB loaded from disk: 0.512 seconds`
# (`... from append only file: ...` with AOF on).
LOADED = re.compile(r"DB loaded from (?:disk|append only file): (?P<seconds>[\d.]+) seconds")


def load_seconds(log: str) -> float | None:
    """How long Redis took to load its data at its start, from its log; None if not said."""
    found = LOADED.findall(log)
    return float(found[-1]) if found else None


def prepare(settings: Settings, found: Found, say: Callable[[str], None]) -> None:
    """Before the stop, `up` of everything the stack holds but its Redis container (which
    would take the old one's name and port): what remains for the outage is creating that
    container. A failure destroys what it created (never a volume); the old one runs on."""
    from pulumi.automation.errors import CommandError

    from bizosaas_redis_ops.deploy import pulumi_stack

    try:
        pulumi_stack.up_all_but(settings, found.name)
    except (CommandError, BizosaasRedisError) as failure:
        why = pulumi_stack.engine_errors(failure) if isinstance(failure, CommandError) else str(failure)
        unprepare(settings, found, f"preparing stack {settings.stack} failed ({_brief(why, 300)})")
    say(f"adopt: stack {settings.stack} prepared: everything but its Redis container exists")


def unprepare(settings: Settings, found: Found, what_failed: str) -> NoReturn:
    """Before the stop: what `prepare` created destroyed (never a volume), then the line
    saying what failed. Always raises."""
    from pulumi.automation.errors import CommandError

    from bizosaas_redis_ops.deploy import pulumi_stack

    try:
        pulumi_stack.run("destroy", settings, yes=True)
    except (CommandError, BizosaasRedisError) as error:
        raise AdoptError(
            f"{what_failed}, and so did destroying what the preparation created "
            f"({_brief(str(error), 200)}): bizosaas-redis destroy --stack {settings.stack}; "
            f"{found.name} runs as before"
        ) from None
    raise AdoptError(
        f"{what_failed}; what the preparation created was destroyed (never a volume); {found.name} runs as before"
    )


class FirstReply:
    """PINGs an address every 50 ms from `start()` until any reply (NOAUTH is Redis
    answering): when clients could reach Redis again."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.at: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            probe = redis.Redis(*self.address, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
            try:
                probe.ping()
                self.at = time.monotonic()
            except (redis.AuthenticationError, redis.ResponseError):
                self.at = time.monotonic()
            except (redis.RedisError, OSError):
                time.sleep(0.05)
            finally:
                probe.close()
            if self.at is not None:
                return

    def start(self) -> FirstReply:
        self._thread.start()
        return self

    def stop(self) -> float | None:
        self._done.set()
        self._thread.join(timeout=5)
        return self.at


def cut_over(
    engine: docker.DockerClient,
    old: Any,
    found: Found,
    client: redis.Redis,
    settings: Settings,
    dest: Path,
    checks: Callable[[], None],
    say: Callable[[str], None],
) -> Adopted:
    """Pause, fingerprint, stop and keep aside the old container, copy its saved data out,
    `up`, prove; on any failure after the stop, roll back (the stack destroyed, its volume
    kept; the data as it was at the stop put back; the old container running again)."""
    from pulumi.automation.errors import CommandError

    from bizosaas_redis_ops.deploy import pulumi_stack

    aof = client.config_get("appendonly").get("appendonly") == "yes"
    paused = time.monotonic()
    saved = dest / f"{settings.instance_id}-at-adoption-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.rdb"
    try:
        frozen = ready_to_stop(engine, old, client, aof, saved)
    except (BizosaasRedisError, redis.RedisError, docker.errors.DockerException, OSError) as failure:
        why = f"{type(failure).__name__}: {_brief(str(failure), 300)}"
        unprepare(settings, found, f"adoption failed before the stop ({why}); writes resumed")
    sampled = sum(map(len, frozen.samples.values()))
    say(f"adopt: writes paused, {frozen.total} keys counted, {sampled} sampled; the data at the stop copied to {saved}")
    # Clients get no reply from here until the stack's Redis answers.
    stopped = time.monotonic()
    keep_aside(old, settings.stop_grace_period)
    reply = FirstReply(found.reachable_at or ("127.0.0.1", settings.host_port)).start()
    say(f"adopt: {found.name} stopped and kept as {old.name}")
    try:
        if os.environ.get(FAULT_ENV) == "after-stop":
            raise AdoptError(f"fault injected after the stop ({FAULT_ENV})")
        pulumi_stack.run("up", settings, yes=True)
        problem = prove(frozen, settings, paused)
        if problem:
            raise AdoptError(problem)
        checks()
    except BaseException as failure:
        reply.stop()
        why = pulumi_stack.engine_errors(failure) if isinstance(failure, CommandError) else str(failure)
        roll_back(engine, old, found, settings, saved, aof)
        raise AdoptError(
            f"adoption failed after the stop ({_brief(why, 300) or type(failure).__name__}); rolled "
            f"back: {found.name} runs again on volume {found.volume} with its data as it was at the stop, and "
            f"stack {settings.stack} holds no container"
        ) from None
    answered = reply.stop() or time.monotonic()
    old.remove(v=False)  # the container only: the volume is the stack's now
    log = engine.containers.get(settings.name).logs(tail=200).decode(errors="replace")
    return Adopted(frozen.total, answered - stopped, answered - paused, load_seconds(log))


def prove(frozen: Fingerprint, settings: Settings, paused: float) -> str | None:
    """None when the stack's Redis holds what the old one saved: every key loaded (or
    dropped on load, its TTL run out), the sampled keys with the same values and TTLs."""
    from bizosaas_redis_ops.deploy import outputs as stack_outputs

    url = stack_outputs.load(settings.stack)["redis_admin_url"]
    admin = redis.Redis.from_url(url, socket_timeout=30)
    try:
        problem = loaded_all(frozen, admin.info("persistence"))
    finally:
        admin.close()
    if problem is not None:
        return problem
    now = {}
    for db, keys in frozen.samples.items():
        one = redis.Redis.from_url(with_db(url, db), socket_timeout=30)
        try:
            now[db] = values_of(one, sorted(keys))
        finally:
            one.close()
    problems = differences(frozen, now, (time.monotonic() - paused) * 1000)
    return f"{len(problems)} sampled keys differ, first: {problems[0]}" if problems else None


def roll_back(engine: docker.DockerClient, old: Any, found: Found, settings: Settings, saved: Path, aof: bool) -> None:
    """The stack's containers gone (its volume kept: retainDataOnDestroy), the data at the
    stop back on the volume (what the stack's Redis wrote moved aside), the old container up."""
    from pulumi.automation.errors import CommandError

    from bizosaas_redis_ops.data import backup as data
    from bizosaas_redis_ops.deploy import pulumi_stack

    try:
        pulumi_stack.run("destroy", settings, yes=True)
        assert found.volume is not None  # compare() refused a container without one
        data.place(engine, found.image, found.volume, saved, aof, "adopt-rolled-back", settings.stack)
        put_back(old, found)
    except (BizosaasRedisError, docker.errors.DockerException, OSError, CommandError) as error:
        raise AdoptError(
            f"ROLLBACK INCOMPLETE ({_brief(str(error), 300)}): the data at the stop is in {saved}; "
            f"by hand: bizosaas-redis destroy --stack {settings.stack}; docker rename {old.name} {found.name}; "
            f"docker start {found.name}"
        ) from None
