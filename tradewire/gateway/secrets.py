"""API secrets at rest: encrypted with the exchange's master key, never stored or logged in clear.

HMAC signing needs the secret itself on the verifying side, so a hash will not do: secrets are
encrypted with AES-256-GCM under a master key that lives outside Redis, in ``<data-dir>/master.key``
(mode 0600, created by ``tradewire admin create-user``) or in ``$TRADEWIRE_MASTER_KEY``. A dump of
Redis alone therefore reveals no secret. The API key is the GCM associated data, so a ciphertext
copied onto another key's record does not decrypt.

Stored form: ``v1:`` + urlsafe base64 of ``nonce (12 bytes) || ciphertext+tag``.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import string
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASTER_KEY_ENV: Final = "TRADEWIRE_MASTER_KEY"
MASTER_KEY_FILE: Final = "master.key"
_VERSION: Final = "v1:"
_ALPHABET: Final = string.ascii_letters + string.digits


class SecretError(RuntimeError):
    """No usable master key, or a stored secret that does not decrypt with it."""


def decode_master_key(text: str) -> bytes:
    """A master key written as 64 hex digits or as base64 of 32 bytes."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 64 else base64.urlsafe_b64decode(text)
    except (ValueError, binascii.Error) as exc:
        raise SecretError(f"the master key is neither 64 hex digits nor base64: {exc}") from None
    if len(key) != 32:
        raise SecretError(f"the master key must be 32 bytes, not {len(key)}")
    return key


def load_master_key(data_dir: Path | None, *, create: bool = False) -> bytes:
    """``$TRADEWIRE_MASTER_KEY``, else ``<data-dir>/master.key`` (created 0600 when ``create``)."""
    env = os.environ.get(MASTER_KEY_ENV, "").strip()
    if env:
        return decode_master_key(env)
    if data_dir is None:
        raise SecretError(f"no master key: set ${MASTER_KEY_ENV} or pass --data-dir")
    path = data_dir / MASTER_KEY_FILE
    if not path.exists():
        if not create:
            raise SecretError(f"no master key: {path} does not exist and ${MASTER_KEY_ENV} is not set")
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_bytes(32).hex() + "\n")
    return decode_master_key(path.read_text())


def new_api_key() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(64))


def new_api_secret() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(64))


def encrypt_secret(master: bytes, api_key: str, secret: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(master).encrypt(nonce, secret.encode(), api_key.encode())
    return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt_secret(master: bytes, api_key: str, stored: str) -> str:
    if not stored.startswith(_VERSION):
        raise SecretError("unknown secret format")
    try:
        blob = base64.urlsafe_b64decode(stored[len(_VERSION) :])
        return AESGCM(master).decrypt(blob[:12], blob[12:], api_key.encode()).decode()
    except (InvalidTag, ValueError, binascii.Error) as exc:
        raise SecretError("the stored secret does not decrypt with this master key") from exc
