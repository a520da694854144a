"""Absence and refusal are different answers.

A step that guards data asks the running deployment before it acts. Only *absence* may
mean "nothing to protect there": nothing listens (connection refused) or the name does not
exist (the container is gone). Everything else, an authentication error, a timeout, a
permission error, an unexpected reply, any error not named here, is a *refusal*: the step
could not see, so it stops with one line saying where, which error, and what to do.
"""

from __future__ import annotations

import socket

import redis

from bizosaas_redis.errors import BizosaasRedisError

# What a connection error says when nothing is there (redis-py keeps the OS's words).
ABSENT_MARKERS = ("Connection refused", "Name or service not known")


class Unseen(BizosaasRedisError):
    """A guard could not see what it guards; nothing was changed."""


def is_absent(error: BaseException) -> bool:
    """True only for "nothing is there"; an answer that refuses us never is."""
    if isinstance(error, ConnectionRefusedError):
        return True
    if isinstance(error, socket.gaierror):
        return error.errno == socket.EAI_NONAME
    if isinstance(error, redis.AuthenticationError | redis.TimeoutError | redis.ResponseError):
        return False
    if isinstance(error, redis.ConnectionError):
        return any(marker in str(error) for marker in ABSENT_MARKERS)
    return False


def refusal(where: str, error: BaseException, hint: str) -> str:
    """One line: where, which error, what to do. `where` names a host:port, never a URL."""
    message = " ".join(str(error).split()) or "no message"
    return f"{where} did not answer as expected ({type(error).__name__}: {message}); {hint}"
