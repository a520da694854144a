"""The settings Redis applies while it runs (settings.online_directives), and those
Sentinel does (settings.online_sentinel_options), applied to a running server or Sentinel
without replacing its container.

Two resources carry them, so that a preview shows such a change as what it is:
- a files container of its own writes `online.conf`, which redis.conf includes: a new
  container (and a crash restart) starts with the values. It is replaced on a change; the
  server is not (it depends on it, it is not `replace_with` it);
- `RedisOnlineSettings`, a Python dynamic resource, sets them on the running server as the
  admin user: `CONFIG SET` of every directive at once, `CONFIG REWRITE` (redis.conf keeps
  what runs, also where Sentinel or an earlier rewrite wrote the directives into it), and
  `CONFIG GET` to check. On a Sentinel: `SENTINEL SET <master>` of every option at once
  (Sentinel rewrites its own file) and `SENTINEL MASTER` to check. It refuses to record
  anything it could not apply or read back: an error fails the `up` with one line naming
  the server, and the next `up` tries again.

The same files container writes users.acl, the ACL users (hashes), and the resource sets
them on servers and Sentinels alike: `ACL SETUSER` of every user (a connected client of a
changed user stays connected: Redis changes the user in place; `ACL LOAD` would drop
them all), `ACL DELUSER` of any other, `ACL SAVE`, and `ACL GETUSER` to check the
password hashes. A rotation's two hashes, a new password or a denied command therefore
need no restart. During an admin rotation it connects with the previous admin password,
which the running servers hold until `rotate finish`.

`maxmemory` comes with the container's memory limit, which Docker changes in place; the
container's before-update hook `lower_maxmemory_first` lowers maxmemory before a lower
limit (a raise needs nothing: the container is updated before RedisOnlineSettings).

With TLS on, it also sets the certificate files' directives again (same paths), which
makes Redis read them again, and records a fingerprint of the certificate and the CA: new
files in tlsCertsDir (a renewal) make the next `up` an update of this resource, and the
running server loads them without a restart; connected clients keep their sessions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pulumi
import redis
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from bizosaas_redis import handover
from bizosaas_redis.answers import refusal
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import format_size

# Seconds a server may take to answer: a silent one fails the `up` rather than hang it.
TIMEOUT = 5
HINT = (
    "the online settings need the admin user as deployed (redis:adminUsername, redis:adminPassword) "
    "and every server up; its online.conf and users.acl hold the new values, and the next `up` sets them again"
)
# What the state records (outputs): no password; `certificates` only with TLS on.
RECORDED = ("endpoints", "directives", "certificates", "users")
# What the fingerprint covers, in tlsCertsDir: the key is not read (a new key comes with a
# new certificate, and the state never holds anything derived from it).
FINGERPRINTED = ("tls.crt", "ca.crt")
T = TypeVar("T")


class OnlineSettingsError(BizosaasRedisError):
    """A running server did not take the settings."""


def certificates(folder: str) -> str:
    """SHA-256 of the certificate and the CA in `folder`, as this machine reads them (a file
    it cannot read counts as empty: its change is then not seen, and applying still works)."""
    digest = hashlib.sha256()
    for name in FINGERPRINTED:
        try:
            content = (Path(folder) / name).read_bytes()
        except OSError:
            content = b""
        digest.update(content + b"\0")
    return digest.hexdigest()


def _set_server(client: redis.Redis, directives: dict[str, str]) -> dict[str, str]:
    client.execute_command("CONFIG", "SET", *(word for pair in directives.items() for word in pair))
    client.execute_command("CONFIG", "REWRITE")
    return {str(name): str(value) for name, value in client.config_get(*directives).items()}


def _set_sentinel(client: redis.Redis, master: str, options: dict[str, str]) -> dict[str, str]:
    client.execute_command("SENTINEL", "SET", master, *(word for pair in options.items() for word in pair))
    state = client.sentinel_master(master)
    if not isinstance(state, dict):
        raise redis.ResponseError(f"SENTINEL MASTER {master} answered {state!r}")
    # redis-py reads numbers as int: compare as the config file and SENTINEL SET write them.
    return {str(name): str(value) for name, value in state.items()}


def _set_users(client: redis.Redis, users: list[str]) -> list[str]:
    """Every line of users.acl (`user <name> <rules>`) set with ACL SETUSER, any other user
    deleted, the file saved; the users whose password hashes or on/off/nopass then differ."""
    wanted = {}
    for line in users:
        _, name, *rules = line.split()
        client.execute_command("ACL", "SETUSER", name, *rules)
        wanted[name] = rules
    others = [str(name) for name in client.acl_users() if str(name) not in wanted]
    if others:
        client.execute_command("ACL", "DELUSER", *others)
    client.execute_command("ACL", "SAVE")
    differ = []
    for name, rules in wanted.items():
        found: dict[str, Any] = client.acl_getuser(name) or {}
        flags = {str(flag) for flag in found.get("flags") or []}
        hashes = {rule[1:] for rule in rules if rule.startswith("#")}
        state = ("on" in flags, "nopass" in flags, {str(value) for value in found.get("passwords") or []})
        if state != ("on" in rules, "nopass" in rules, hashes):
            differ.append(name)
    return differ


def _at(props: dict[str, Any], endpoint: str, who: str, work: Callable[[redis.Redis], T]) -> T:
    """`work` done with the admin's client of `endpoint` (`host:port`); any refusal, timeout
    or error stops with one line naming `who` there."""
    host, _, port = str(endpoint).rpartition(":")
    client = handover.client_at((host, int(port)), props["username"], props["password"], TIMEOUT, props.get("tls"))
    try:
        return work(client)
    except (redis.RedisError, OSError) as error:
        raise OnlineSettingsError(refusal(f"{who} at {endpoint}", error, HINT)) from None
    finally:
        client.close()


def apply(props: dict[str, Any]) -> None:
    """Set, persist and check `props["directives"]` and `props["users"]` on every endpoint
    (`host:port`): a server's, or with `props["master"]` a Sentinel's options for that master."""
    directives: dict[str, str] = props["directives"]
    users = str(props.get("users") or "").splitlines()
    master: str = props.get("master") or ""
    who, command = ("Sentinel", "SENTINEL SET") if master else ("Redis", "CONFIG SET")

    def work(client: redis.Redis) -> tuple[dict[str, str], list[str]]:
        found = _set_sentinel(client, master, directives) if master else _set_server(client, directives)
        return found, _set_users(client, users) if users else []

    for endpoint in props["endpoints"]:
        found, users_differ = _at(props, endpoint, who, work)
        differ = {name: found.get(name) for name, value in directives.items() if found.get(name) != value}
        if differ:
            raise OnlineSettingsError(f"{who} at {endpoint} reports {differ} after {command}; {HINT}")
        if users_differ:
            raise OnlineSettingsError(
                f"{who} at {endpoint} reports other passwords for {', '.join(users_differ)} after ACL SETUSER; {HINT}"
            )


def _lower(client: redis.Redis, maxmemory: int) -> bool:
    found = client.config_get("maxmemory").get("maxmemory")
    if found is None:
        raise redis.ResponseError("CONFIG GET maxmemory answered no value")
    running = int(found)
    if running and running <= maxmemory:  # 0: no limit, above any value
        return False
    _set_server(client, {"maxmemory": str(maxmemory)})
    return True


def lower_maxmemory(props: dict[str, Any], maxmemory: int) -> list[str]:
    """Lower maxmemory to `maxmemory` (CONFIG SET, REWRITE) on each endpoint of `props` (as
    `apply` takes them) that runs a higher one; the endpoints lowered."""
    return [
        endpoint for endpoint in props["endpoints"] if _at(props, endpoint, "Redis", lambda c: _lower(c, maxmemory))
    ]


def lower_maxmemory_first(name: str, container_name: str, props: dict[str, Any], maxmemory: int) -> pulumi.ResourceHook:
    """The server container's before-update hook. The limit follows maxmemory and changes in
    place; raised, it goes first and RedisOnlineSettings (after the container) raises
    maxmemory. Lowered, maxmemory must go down first: under a limit below what Redis may
    hold, the kernel kills it. `props`: the server's RedisOnlineSettings inputs."""
    known: dict[str, str] = {}
    pulumi.Output.from_input(props["password"]).apply(lambda password: known.setdefault("password", password))

    def before_update(args: pulumi.ResourceHookArgs) -> None:
        old, new = (float((inputs or {}).get("memory") or 0) for inputs in (args.old_inputs, args.new_inputs))
        if not new or (old and new >= old):
            return  # the limit is not lowered
        if "password" not in known:  # a guard that cannot see never passes
            raise OnlineSettingsError(
                f"{container_name}: the admin password is not known yet, so maxmemory could not be lowered "
                "first; its memory limit was not lowered"
            )
        if lower_maxmemory({**props, "password": known["password"]}, maxmemory):
            pulumi.log.info(f"{container_name}: maxmemory lowered to {format_size(maxmemory)} before its memory limit")

    return pulumi.ResourceHook(f"{name}-lower-maxmemory", before_update)


def _recorded(props: dict[str, Any]) -> dict[str, Any]:
    return {key: props[key] for key in RECORDED if key in props}


class _Provider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        apply(props)
        return CreateResult(id_=",".join(props["endpoints"]), outs=_recorded(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=any(olds.get(key) != news.get(key) for key in RECORDED), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        apply(news)
        return UpdateResult(outs=_recorded(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # What was applied is what the state holds; verify reads the running values.
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: the values live in the server's files, which go with it."""


class RedisOnlineSettings(Resource, module="bizosaas", name="RedisOnlineSettings"):
    """The online settings of one server (or of each node listed), applied as `admin` (the
    password the running servers hold); `users`, users.acl (a secret); with `master`, a
    Sentinel's options for the primary it monitors under that name; `certificates`, the
    fingerprint of the TLS files the directives make Redis load; `labels`, what the policy
    pack reads with the directives (redis_server.online_labels)."""

    def __init__(
        self,
        name: str,
        endpoints: list[str],
        directives: dict[str, str],
        users: pulumi.Input[str],
        admin: tuple[str, pulumi.Input[str]],
        tls: dict[str, object],
        opts: pulumi.ResourceOptions,
        master: str = "",
        certificates: str = "",
        labels: dict[str, str] | None = None,
    ) -> None:
        username, password = admin
        props = {
            "endpoints": endpoints,
            "directives": directives,
            "username": username,
            "password": pulumi.Output.secret(password),
            # users.acl; hashes, still a secret (a hash of a weak password is guessable).
            "users": pulumi.Output.secret(users),
            "tls": tls,
            "master": master,
            # For the policy pack, shaped as a container's labels; not applied, not diffed.
            "labels": [{"label": key, "value": value} for key, value in (labels or {}).items()],
        }
        if certificates:  # `directives` then sets the certificate files again: a reload
            props["certificates"] = certificates
        secret = pulumi.ResourceOptions(additional_secret_outputs=["users"])
        super().__init__(_Provider(), name, props, pulumi.ResourceOptions.merge(opts, secret))
