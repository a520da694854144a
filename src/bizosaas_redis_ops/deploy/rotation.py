"""A password rotation that refuses no client: `start` keeps the current password as the
previous one (still accepted, a second hash on the same ACL user) and sets a new one,
which the consumer secrets publish; `finish` removes the previous one once the consumers
have moved. Both change the stack's config only; `bizosaas-redis up` applies it.

Turning authentication on where it is off is the same two steps, from no password: `start`
sets a password that the consumer secrets publish while the server still requires none
(its application user is `nopass`, which accepts any password, so clients already sending
the new one are accepted too); `finish` sets `authEnabled` true, from which on a client
without the password is refused.

The topology's own passwords (`replication`, `sentinel`) have clients that are the stack's
nodes and Sentinels, which `up` changes one after the other, so they take three steps:
`start` sets the next password, accepted beside the current one while every client keeps
the current one; `switch` makes it the one the clients use (each node's masterauth, each
Sentinel's auth-pass and sentinel-pass; `up` replaces the nodes, with a handover, and the
Sentinels) and keeps the old one accepted as the previous one; `finish` removes that. At
no point does a client hold a password a server it talks to does not accept."""

from __future__ import annotations

import secrets
import string
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Literal

from bizosaas_redis.connection import instance_names
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import DURABLE_PREFIX, NAMESPACE, NEXT_KEYS, PREVIOUS_KEYS, Settings

User = Literal["app", "admin", "exporter", "replication", "sentinel"]
USERS: tuple[User, ...] = ("app", "admin", "exporter", "replication", "sentinel")
# Each rotated user's password key (see PREVIOUS_KEYS for its previous one's).
PASSWORD_KEYS: dict[User, str] = {
    "app": "password",
    "admin": "adminPassword",
    "exporter": "exporterPassword",
    "replication": "replicationPassword",
    "sentinel": "sentinelPassword",
}
# The users rotated in three steps (start, switch, finish), on topology sentinel only.
THREE_STEPS: tuple[User, ...] = ("replication", "sentinel")
# Where the running stack's outputs hold these users' passwords (the app's and admin's: below).
OUTPUT_KEYS: dict[User, str] = {
    "exporter": "exporter_password",
    "replication": "replication_password",
    "sentinel": "sentinel_password",
}
# As long as the generated ones (random.RandomPassword, 32 characters, no special ones).
LENGTH = 32
ALPHABET = string.ascii_letters + string.digits


class RotationError(BizosaasRedisError):
    pass


@dataclass(frozen=True)
class Step:
    """The stack config changes of one step (namespaced keys): set as secrets, set in the
    clear (with `--path`: a durable instance's settings are a block), removed."""

    secrets: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()

    def changed(self) -> list[str]:
        return [*self.secrets, *self.settings, *self.remove]


@dataclass(frozen=True)
class Keys:
    """The stack config keys (namespaced) of one user's rotation on one instance."""

    password: str
    previous: str
    next: str = ""  # three-step users only


def keys(settings: Settings, user: User) -> Keys:
    names = instance_names(settings.role)
    password = PASSWORD_KEYS[user]

    def key(name: str) -> str:
        return f"{NAMESPACE}:{names.config_key(name)}"

    return Keys(key(password), key(PREVIOUS_KEYS[password]), key(NEXT_KEYS[password]) if password in NEXT_KEYS else "")


def new_password() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def current_password(settings: Settings, user: User, outputs: dict[str, Any]) -> str:
    """The password the running instance takes now, from its outputs (the instance's keys
    unprefixed, as deploy.outputs.load gives them)."""
    if user in OUTPUT_KEYS:
        if not outputs.get(OUTPUT_KEYS[user]):
            raise RotationError(
                f"stack {settings.stack} ({settings.role}): its outputs hold no {user} password "
                f"({OUTPUT_KEYS[user]}); run `bizosaas-redis up` first"
            )
        return str(outputs[OUTPUT_KEYS[user]])
    if user == "app":
        if not outputs.get("redis_password"):
            raise RotationError(
                f"stack {settings.stack} ({settings.role}): its outputs hold no application password "
                "(redis_password); run `bizosaas-redis up` first"
            )
        return str(outputs["redis_password"])
    password = urllib.parse.urlsplit(str(outputs["redis_admin_url"])).password
    if not password:
        raise RotationError(f"stack {settings.stack} ({settings.role}): its admin URL holds no password")
    return urllib.parse.unquote(password)


def start(settings: Settings, user: User, config: dict[str, str], outputs: dict[str, Any]) -> Step:
    """What starts the rotation of `user`: `config` is the stack's secret config
    (namespaced keys) as set now."""
    found = keys(settings, user)
    if user in THREE_STEPS:
        _require_sentinel(settings, user)
        _refuse_under_way(settings, user, config, found)
        return Step(secrets={found.next: new_password()})
    if user == "exporter" and not settings.exporter_enabled:
        raise RotationError(f"stack {settings.stack} ({settings.role}) runs no exporter (redis:exporterEnabled false)")
    if turns_auth_on(settings, user):
        _refuse_sentinel(settings)
        if found.password in config:
            raise RotationError(
                f"{found.password} is set while authentication is off: turning it on is in progress; "
                f"finish it first (bizosaas-redis rotate finish --stack {settings.stack})"
            )
        return Step(secrets={found.password: new_password()})
    if found.previous in config:
        raise RotationError(
            f"{found.previous} is set: a rotation of the {user} password is in progress; "
            f"finish it first (bizosaas-redis rotate finish --stack {settings.stack})"
        )
    return Step(secrets={found.previous: current_password(settings, user, outputs), found.password: new_password()})


def switch(settings: Settings, user: User, config: dict[str, str], outputs: dict[str, Any]) -> Step:
    """The second step of a three-step rotation: the next password becomes the one the
    clients use, the current one stays accepted as the previous one."""
    if user not in THREE_STEPS:
        raise RotationError(f"`rotate switch` is for {' and '.join(THREE_STEPS)}; the {user} password has two steps")
    _require_sentinel(settings, user)
    found = keys(settings, user)
    if found.next not in config:
        raise RotationError(
            f"{found.next} is not set: `rotate start --user {user}` comes first (stack {settings.stack})"
        )
    current = current_password(settings, user, outputs)
    return Step(secrets={found.previous: current, found.password: config[found.next]}, remove=(found.next,))


def finish(settings: Settings, user: User, config: dict[str, str]) -> Step:
    """What finishes the rotation of `user`: the previous password removed, or, from no
    password, authentication turned on."""
    found = keys(settings, user)
    if user in THREE_STEPS and found.next in config:
        raise RotationError(
            f"{found.next} is set: the clients still use the current {user} password; "
            f"`bizosaas-redis rotate switch --stack {settings.stack} --user {user}` comes before finish"
        )
    if turns_auth_on(settings, user):
        _refuse_sentinel(settings)
        if found.password not in config:
            raise RotationError(
                f"authentication is off and {found.password} is not set: no rotation of the app password is in "
                f"progress on stack {settings.stack}; `rotate start` sets one first"
            )
        return Step(settings={auth_key(settings): "true"})
    if found.previous not in config:
        raise RotationError(
            f"{found.previous} is not set: no rotation of the {user} password is in progress on stack {settings.stack}"
        )
    return Step(remove=(found.previous,))


def turns_auth_on(settings: Settings, user: User) -> bool:
    """Whether a rotation of `user` starts from no password (authentication off)."""
    return user == "app" and not settings.auth_enabled


def auth_key(settings: Settings) -> str:
    """The `authEnabled` setting of the instance (a config path)."""
    return f"{NAMESPACE}:{DURABLE_PREFIX}.authEnabled" if settings.role == "durable" else f"{NAMESPACE}:authEnabled"


def _require_sentinel(settings: Settings, user: User) -> None:
    if settings.topology != "sentinel":
        raise RotationError(f"stack {settings.stack} has no {user} password: it is topology sentinel's")


def _refuse_under_way(settings: Settings, user: User, config: dict[str, str], found: Keys) -> None:
    for key, step in ((found.next, "switch"), (found.previous, "finish")):
        if key in config:
            raise RotationError(
                f"{key} is set: a rotation of the {user} password is in progress; "
                f"`bizosaas-redis rotate {step} --stack {settings.stack} --user {user}` comes next"
            )


def _refuse_sentinel(settings: Settings) -> None:
    if settings.topology == "sentinel":
        raise RotationError(
            f"stack {settings.stack} has topology sentinel: turning authentication on is not built for it yet "
            "(set redis:authEnabled true and move the consumers with the new URLs)"
        )
