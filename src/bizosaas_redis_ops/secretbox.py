"""Encrypt small secrets at rest with a passphrase (scrypt key, Fernet: AES-128-CBC + HMAC).

The local deployer keeps its generated passwords this way, keyed by the same
PULUMI_CONFIG_PASSPHRASE that Pulumi's file backend uses for its state.
"""

from __future__ import annotations

import base64
import os

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bizosaas_redis.errors import BizosaasRedisError

PASSPHRASE_ENV = "PULUMI_CONFIG_PASSPHRASE"


class SecretBoxError(BizosaasRedisError, ValueError):
    pass


def passphrase() -> str:
    value = os.environ.get(PASSPHRASE_ENV)
    if not value:
        raise SecretBoxError(
            f"set {PASSPHRASE_ENV}: it encrypts the generated passwords in the local deploy state, "
            "as it does Pulumi's file-backend state"
        )
    return value


def _fernet(secret: str, salt: bytes) -> Fernet:
    key = Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(plaintext: str, secret: str) -> dict[str, str]:
    salt = os.urandom(16)
    token = _fernet(secret, salt).encrypt(plaintext.encode())
    return {"salt": base64.b64encode(salt).decode(), "ciphertext": token.decode()}


def open_(box: dict[str, str], secret: str) -> str:
    try:
        return _fernet(secret, base64.b64decode(box["salt"])).decrypt(box["ciphertext"].encode()).decode()
    except (InvalidToken, KeyError, ValueError):
        raise SecretBoxError(f"cannot decrypt: wrong {PASSPHRASE_ENV}?") from None
