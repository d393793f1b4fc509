"""Secrets at rest: authenticated encryption and keyed hashes, with keys derived from
``PUFA_SECRET_KEY``.

- :class:`Sealer` encrypts small values (a liaison's name or mobile number, a WeCom robot URL)
  with AES-256-GCM from the ``cryptography`` library. Each purpose gets its own key, derived
  with HKDF-SHA256 from the secret key, and each value a fresh random 96-bit nonce. The purpose
  is also bound as associated data, so a value sealed for one column cannot be moved into
  another. The stored form is ``v1.<base64url(nonce + ciphertext + tag)>``.
- :func:`keyed_hash` is an HMAC-SHA256 under another derived key: equal inputs give equal
  hashes (so a duplicate mobile number can be found without decrypting anything) but the
  value cannot be recovered or guessed without the key.

Changing ``PUFA_SECRET_KEY`` makes sealed values unreadable: keep it with the backups.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["SealError", "Sealer", "derive_key", "keyed_hash"]

_VERSION = "v1"
_NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that is malformed, was tampered with, or was sealed with another key."""


def derive_key(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """A key for ``purpose`` derived from the secret key with HKDF-SHA256."""
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=b"pufa/v1", info=purpose.encode()
    ).derive(secret)


def keyed_hash(secret: bytes, purpose: str, value: str) -> str:
    """Hex HMAC-SHA256 of ``value`` under a key derived for ``purpose``."""
    key = derive_key(secret, f"hash:{purpose}")
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


class Sealer:
    """Seals and opens text values of one purpose (e.g. ``"volunteer.mobile"``)."""

    def __init__(self, secret: bytes, purpose: str) -> None:
        self._aead = AESGCM(derive_key(secret, f"seal:{purpose}"))
        self._aad = purpose.encode()

    def seal(self, value: str) -> str:
        """The stored form of ``value``."""
        nonce = os.urandom(_NONCE_BYTES)
        data = self._aead.encrypt(nonce, value.encode("utf-8"), self._aad)
        return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + data).decode('ascii')}"

    def open(self, sealed: str) -> str:
        """The value of a stored form; :class:`SealError` if it is not one of ours."""
        version, _, encoded = sealed.partition(".")
        if version != _VERSION or not encoded:
            raise SealError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(encoded.encode("ascii"))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self._aad)
        except (InvalidTag, ValueError) as exc:
            raise SealError("sealed value does not open with this key") from exc
        return plain.decode("utf-8")
