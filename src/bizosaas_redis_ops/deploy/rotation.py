"""A password rotation that refuses no client: `start` keeps the current password as the
previous one (still accepted, a second hash on the same ACL user) and sets a new one,
which the consumer secrets publish; `finish` removes the previous one once the consumers
have moved. Both change the stack's config only; `bizosaas-redis up` applies it.

Turning authentication on where it is off is the same two steps, from no password: `start`
sets a password that the consumer secrets publish while the server still requires none
(its application user is `nopass`, which accepts any password, so clients already sending
the new one are accepted too); `finish` sets `authEnabled` true, from which on a client
without the password is refused."""

from __future__ import annotations

import secrets
import string
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Literal

from bizosaas_redis.connection import instance_names
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import DURABLE_PREFIX, NAMESPACE, PREVIOUS_KEYS, Settings

User = Literal["app", "admin"]
USERS: tuple[User, ...] = ("app", "admin")
# Each rotated user's password key (see PREVIOUS_KEYS for its previous one's).
PASSWORD_KEYS: dict[User, str] = {"app": "password", "admin": "adminPassword"}
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


def keys(settings: Settings, user: User) -> Keys:
    names = instance_names(settings.role)
    password = PASSWORD_KEYS[user]
    return Keys(f"{NAMESPACE}:{names.config_key(password)}", f"{NAMESPACE}:{names.config_key(PREVIOUS_KEYS[password])}")


def new_password() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def current_password(settings: Settings, user: User, outputs: dict[str, Any]) -> str:
    """The password the running instance takes now, from its outputs (the instance's keys
    unprefixed, as deploy.outputs.load gives them)."""
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


def finish(settings: Settings, user: User, config: dict[str, str]) -> Step:
    """What finishes the rotation of `user`: the previous password removed, or, from no
    password, authentication turned on."""
    found = keys(settings, user)
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


def _refuse_sentinel(settings: Settings) -> None:
    if settings.topology == "sentinel":
        raise RotationError(
            f"stack {settings.stack} has topology sentinel: turning authentication on is not built for it yet "
            "(set redis:authEnabled true and move the consumers with the new URLs)"
        )
