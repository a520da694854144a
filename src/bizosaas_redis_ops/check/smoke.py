"""Post-deploy smoke suite: what BizOSaaS consumers do, against the real deployment.

Safe in production: every key lives under `smoke:<run-id>:` in the stack's databases,
gets a short TTL as a backstop, and is deleted at the end, also when a scenario fails or
the run is interrupted. The suite never flushes, never scans, and never touches a key it
did not create.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis.connection import with_db
from bizosaas_redis.constants import (
    DEFAULT_BROKER_DB,
    DEFAULT_CACHE_DB,
    DEFAULT_CACHE_TTL,
    DEFAULT_RESULT_DB,
    DEFAULT_SESSION_TTL,
    DEFAULT_STREAM_MAXLEN,
)
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis_ops import tables
from bizosaas_redis_ops.check.scenarios import BACKSTOP_TTL, SCENARIOS, scenarios_for
from bizosaas_redis_patterns import KeySpace


class SmokeError(BizosaasRedisError):
    """A one-line reason the suite could not run at all."""

    exit_code = 2


@dataclass
class Target:
    url: str  # secret: never printed
    cache_db: int = DEFAULT_CACHE_DB
    broker_db: int = DEFAULT_BROKER_DB
    result_db: int = DEFAULT_RESULT_DB
    cache_ttl: int = DEFAULT_CACHE_TTL
    session_ttl: int = DEFAULT_SESSION_TTL
    stream_maxlen: int = DEFAULT_STREAM_MAXLEN
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    role: str = "shared"  # what the instance holds: shared, cache or durable (stack outputs)

    @property
    def safe_address(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or 6379}"

    def url_for_db(self, db: int) -> str:
        return with_db(self.url, db)

    @classmethod
    def for_url(cls, url: str, broker_db: int | None = None, result_db: int | None = None) -> Target:
        """A target from a URL alone; its /db is the cache database."""
        parts = urlsplit(url)
        if "://" not in url or parts.scheme not in ("redis", "rediss") or not parts.hostname:
            # The URL may hold a password: name only its scheme.
            given = f"scheme {parts.scheme}://" if "://" in url else "no scheme"
            raise SmokeError(f"--url has {given}: want redis[s]://[user:password@]host:port[/db]")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise SmokeError(f"--url database {path!r}: want a number, e.g. redis://host:6379/0")
        try:
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise SmokeError("--url port: want a number from 1 to 65535") from None
        return cls(
            url=url,
            cache_db=int(path or DEFAULT_CACHE_DB),
            broker_db=DEFAULT_BROKER_DB if broker_db is None else broker_db,
            result_db=DEFAULT_RESULT_DB if result_db is None else result_db,
        )

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> Target:
        env = outputs.get("consumer_env", {})
        return cls(
            url=outputs["redis_url"],
            cache_db=int(outputs.get("cache_db", DEFAULT_CACHE_DB)),
            broker_db=int(outputs.get("celery_broker_db", DEFAULT_BROKER_DB)),
            result_db=int(outputs.get("celery_result_db", DEFAULT_RESULT_DB)),
            cache_ttl=int(env.get("REDIS_CACHE_TTL", DEFAULT_CACHE_TTL)),
            session_ttl=int(env.get("REDIS_SESSION_TTL", DEFAULT_SESSION_TTL)),
            stream_maxlen=int(env.get("REDIS_STREAM_MAXLEN", DEFAULT_STREAM_MAXLEN)),
            role=str(outputs.get("role", "shared")),
        )


@dataclass
class Result:
    scenario: str
    passed: bool
    seconds: float
    reason: str = ""


class Run:
    """One run: its prefix, its clients per database, and every key it wrote."""

    def __init__(self, target: Target, run_id: str | None = None):
        self.target = target
        self.run_id = run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        self.prefix = f"smoke:{self.run_id}:"
        self.keyspaces: dict[int, KeySpace] = {}
        self._clients: dict[tuple[int, bool], redis.Redis] = {}

    def keys(self, db: int | None = None) -> KeySpace:
        db = self.target.cache_db if db is None else db
        return self.keyspaces.setdefault(db, KeySpace(self.prefix, track=True))

    def client(self, db: int | None = None, decode: bool = True) -> redis.Redis:
        db = self.target.cache_db if db is None else db
        if (db, decode) not in self._clients:
            self._clients[(db, decode)] = self.new_client(db, decode)
        return self._clients[(db, decode)]

    def new_client(self, db: int | None = None, decode: bool = True) -> redis.Redis:
        db = self.target.cache_db if db is None else db
        kwargs: dict[str, Any] = {}
        if self.target.url.startswith("rediss://"):
            kwargs.update(
                ssl_ca_certs=self.target.ssl_ca_certs,
                ssl_certfile=self.target.ssl_certfile,
                ssl_keyfile=self.target.ssl_keyfile,
                ssl_check_hostname=False,
            )
        return redis.Redis.from_url(
            self.target.url_for_db(db),
            decode_responses=decode,
            socket_timeout=10,
            socket_connect_timeout=5,
            retry=Retry(NoBackoff(), 0),
            **kwargs,
        )

    def backstop(self) -> None:
        """Shorten every written key's TTL to BACKSTOP_TTL (LT: never lengthen one)."""
        for db, keyspace in self.keyspaces.items():
            pipe = self.client(db).pipeline(transaction=False)
            for key in keyspace.written:
                pipe.expire(key, BACKSTOP_TTL, lt=True)
            pipe.execute()

    def cleanup(self, attempts: int = 3) -> int:
        """Delete exactly the keys this run wrote; returns how many existed.

        Checked again afterwards: a client shutting down (Celery's) may still re-declare one.
        """
        removed = 0
        for attempt in range(attempts):
            left = 0
            for db, keyspace in self.keyspaces.items():
                names = sorted(keyspace.written)
                for start in range(0, len(names), 500):
                    removed += int(self.client(db).delete(*names[start : start + 500]))
                left += int(self.client(db).exists(*names)) if names else 0
            if not left:
                break
            time.sleep(0.2 * (attempt + 1))
        return removed

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


# --- running ----------------------------------------------------------------------------


def explain(exc: BaseException, target: Target) -> str:
    """One line that says what is wrong and what to check."""
    text = str(exc)
    where = target.safe_address
    if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text or "HELLO" in text:
        return f"authentication failed at {where}: check the password in the URL (redis_url output)"
    if isinstance(exc, redis.ReadOnlyError) or text.startswith("READONLY"):
        return f"{where} is a read-only replica: point the URL at the primary"
    if isinstance(exc, redis.OutOfMemoryError) or text.startswith("OOM"):
        return f"{where} is out of memory (maxmemory reached, policy refuses writes): check redis:maxmemoryPolicy"
    if isinstance(exc, ssl.SSLError) or "SSL" in text or "TLS" in text:
        return f"TLS mismatch at {where}: the server does not speak TLS (use redis://) or the CA is wrong"
    if isinstance(exc, redis.TimeoutError | socket.timeout):
        return f"{where} timed out: check the address, the firewall and that the container is healthy"
    if isinstance(exc, redis.ConnectionError):
        if "Connection refused" in text or "Errno 111" in text:
            return f"cannot connect to {where}: connection refused; is the container running and the port published?"
        if "Connection closed" in text or "reset" in text.lower():
            return f"{where} closed the connection: TLS mismatch? (the server may require rediss://)"
        return f"cannot connect to {where}: {text.splitlines()[0] if text else type(exc).__name__}"
    if isinstance(exc, redis.ResponseError):
        return f"{where} refused a command: {text.splitlines()[0]}"
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def preflight(run: Run) -> None:
    """Reach, authenticate, write and delete once, or stop with one line."""
    try:
        client = run.client()
        client.ping()
        key = run.keys().key("preflight")
        client.set(key, "1", ex=BACKSTOP_TTL)
        client.delete(key)
    except (redis.RedisError, OSError) as exc:
        raise SmokeError(explain(exc, run.target)) from None


def run_suite(
    target: Target,
    scenarios: list[tuple[str, Callable[[Run], None]]] | None = None,
    run_id: str | None = None,
    only: set[str] | None = None,
) -> tuple[Run, list[Result]]:
    """Run the scenarios; always clean up. Raises SmokeError when the server is unusable."""
    run = Run(target, run_id)
    results: list[Result] = []
    failure: BaseException | None = None
    try:
        preflight(run)
        for name, fn in scenarios if scenarios is not None else SCENARIOS:
            if only and name not in only:
                continue
            start = time.perf_counter()
            try:
                fn(run)
                results.append(Result(name, True, time.perf_counter() - start))
            except Exception as exc:  # a failing scenario is a result, not a crash
                reason = str(exc) if isinstance(exc, AssertionError) else explain(exc, target)
                results.append(Result(name, False, time.perf_counter() - start, reason.splitlines()[0][:200]))
            finally:
                run.backstop()
    except BaseException as exc:
        failure = exc
        raise
    finally:
        try:
            run.cleanup()
        except (redis.RedisError, OSError) as exc:
            # Behind another error (say, a read-only replica) that one says more.
            if failure is None:
                raise SmokeError(
                    f"cleanup failed ({explain(exc, target)}); keys under {run.prefix} expire within {BACKSTOP_TTL} s"
                ) from None
        finally:
            run.close()
    return run, results


def run_stack(
    targets: dict[str, Target], run_id: str | None = None, only: set[str] | None = None
) -> tuple[list[Run], list[Result]]:
    """Every scenario against the instance that serves it: one run for a single stack, one
    per instance for a split one (its rows marked with the instance)."""
    if targets["cache"].url == targets["durable"].url:
        run, results = run_suite(targets["cache"], run_id=run_id, only=only)
        return [run], results
    runs, rows = [], []
    for use, target in targets.items():
        run, results = run_suite(target, scenarios_for(use), run_id=run_id, only=only)
        runs.append(run)
        rows += [Result(f"{r.scenario} [{use}]", r.passed, r.seconds, r.reason) for r in results]
    return runs, rows


def table(results: list[Result]) -> str:
    failed = sum(not r.passed for r in results)
    return tables.render(
        ["scenario", "result", "time", "reason"],
        [[r.scenario, "PASS" if r.passed else "FAIL", f"{r.seconds * 1000:5.0f}ms", r.reason] for r in results],
        footer=f"{len(results) - failed} passed, {failed} failed",
    )


def junit_xml(results: list[Result], suite_name: str = "redis-smoke") -> str:
    suite = ET.Element(
        "testsuite",
        name=suite_name,
        tests=str(len(results)),
        failures=str(sum(not r.passed for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=suite_name, name=r.scenario, time=f"{r.seconds:.3f}")
        if not r.passed:
            ET.SubElement(case, "failure", message=r.reason).text = r.reason
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
