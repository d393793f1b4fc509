"""WeCom callback cryptography, compatible with WeCom's ``WXBizMsgCrypt`` reference code.

A self-built app's callback carries ``msg_signature``, ``timestamp`` and ``nonce`` in the
query string and an ``Encrypt`` field (the URL check: ``echostr``) whose content is:

- ``signature = SHA-1(sorted([token, timestamp, nonce, ciphertext]) joined)`` in hex, compared
  here in constant time;
- ``ciphertext = base64(AES-256-CBC(key, iv=key[:16], PKCS#7 padded to 32 bytes))`` where
  ``key = base64decode(EncodingAESKey + "=")`` (the 43-character key gives 32 bytes);
- ``plaintext = 16 random bytes + 4-byte big-endian length + message + receive id``, and the
  receive id must be our corp id.

Decryption checks every part (block length, padding bytes, length field, receive id) and
raises a :class:`CallbackCryptoError` subclass instead of returning something half-decoded.
The AES primitive is the ``cryptography`` library's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "AES_KEY_LENGTH",
    "BadSignature",
    "CallbackCryptoError",
    "MalformedCiphertext",
    "WeComCrypto",
    "WrongReceiveId",
    "decode_aes_key",
    "signature",
]

AES_KEY_LENGTH = 43
"""Characters of an EncodingAESKey (base64 of 32 bytes without its ``=``)."""
_BLOCK = 32
"""WeCom pads to 32 bytes (not AES's 16)."""
_RANDOM = 16


class CallbackCryptoError(ValueError):
    """A callback that does not verify or decrypt."""


class BadSignature(CallbackCryptoError):
    """The signature does not match: not from WeCom, or tampered with (HTTP 403)."""


class WrongReceiveId(CallbackCryptoError):
    """The message decrypts but is addressed to another corp (HTTP 403)."""


class MalformedCiphertext(CallbackCryptoError):
    """Not base64, not whole AES blocks, bad padding or a bad length field (HTTP 400)."""


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey; ``ValueError`` if it is not one."""
    if len(encoding_aes_key) != AES_KEY_LENGTH:
        raise ValueError(f"the EncodingAESKey has {AES_KEY_LENGTH} characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("the EncodingAESKey is not base64") from exc
    if len(key) != 32:  # pragma: no cover - 43 valid base64 characters always give 32 bytes
        raise ValueError("the EncodingAESKey does not give a 32-byte key")
    return key


def signature(token: str, timestamp: str, nonce: str, ciphertext: str) -> str:
    """The hex SHA-1 signature WeCom puts in ``msg_signature``."""
    parts = sorted([token, timestamp, nonce, ciphertext])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class EncryptedReply:
    """An encrypted passive reply: what goes in the ``<xml>`` answer to a callback."""

    encrypt: str
    msg_signature: str
    timestamp: str
    nonce: str

    def to_xml(self) -> str:
        """The reply body WeCom expects."""
        return (
            "<xml>"
            f"<Encrypt><![CDATA[{self.encrypt}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{self.msg_signature}]]></MsgSignature>"
            f"<TimeStamp>{self.timestamp}</TimeStamp>"
            f"<Nonce><![CDATA[{self.nonce}]]></Nonce>"
            "</xml>"
        )


class WeComCrypto:
    """Verifies, decrypts and encrypts callback messages of one app.

    Args:
        token: The callback Token of the app.
        encoding_aes_key: The 43-character EncodingAESKey.
        receive_id: Our corp id: every decrypted message must end with it.
    """

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self._token = token
        self._key = decode_aes_key(encoding_aes_key)
        self._receive_id = receive_id.encode("utf-8")

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    # ------------------------------------------------------------------ verifying

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str, data: str) -> None:
        """Raise :class:`BadSignature` unless ``msg_signature`` signs ``data``."""
        expected = signature(self._token, timestamp, nonce, data)
        if not hmac.compare_digest(expected.encode("ascii"), msg_signature.lower().encode()):
            raise BadSignature("signature mismatch")

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The plaintext of the URL check's ``echostr`` (what the GET answers)."""
        self.check_signature(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def decrypt_message(self, msg_signature: str, timestamp: str, nonce: str, data: str) -> str:
        """The decrypted XML of a callback's ``Encrypt`` field, after checking its signature."""
        self.check_signature(msg_signature, timestamp, nonce, data)
        return self.decrypt(data)

    # ------------------------------------------------------------------ the cipher

    def decrypt(self, data: str) -> str:
        """Decrypt a base64 ciphertext and check its padding, length and receive id."""
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedCiphertext("not base64") from exc
        if not raw or len(raw) % 16:
            raise MalformedCiphertext("not whole AES blocks")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(raw) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= _BLOCK or pad > len(padded) or padded[-pad:] != bytes([pad]) * pad:
            raise MalformedCiphertext("bad padding")
        plain = padded[:-pad]
        if len(plain) < _RANDOM + 4:
            raise MalformedCiphertext("too short")
        (length,) = struct.unpack(">I", plain[_RANDOM : _RANDOM + 4])
        body = plain[_RANDOM + 4 :]
        if length > len(body):
            raise MalformedCiphertext("bad length field")
        message, receive_id = body[:length], body[length:]
        if not hmac.compare_digest(receive_id, self._receive_id):
            raise WrongReceiveId("addressed to another receive id")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedCiphertext("not UTF-8") from exc

    def encrypt(self, message: str, *, random_prefix: bytes | None = None) -> str:
        """Encrypt ``message`` for WeCom (random prefix, length, message, our receive id)."""
        prefix = random_prefix if random_prefix is not None else os.urandom(_RANDOM)
        if len(prefix) != _RANDOM:
            raise ValueError("the random prefix has 16 bytes")
        body = message.encode("utf-8")
        plain = prefix + struct.pack(">I", len(body)) + body + self._receive_id
        pad = _BLOCK - len(plain) % _BLOCK
        encryptor = self._cipher().encryptor()
        data = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(data).decode("ascii")

    def encrypt_reply(
        self, message: str, *, nonce: str | None = None, timestamp: str | None = None
    ) -> EncryptedReply:
        """A signed, encrypted passive reply carrying ``message`` (an XML document)."""
        stamp = timestamp if timestamp is not None else str(int(time.time()))
        once = nonce if nonce is not None else str(int.from_bytes(os.urandom(4), "big"))
        encrypted = self.encrypt(message)
        return EncryptedReply(
            encrypt=encrypted,
            msg_signature=signature(self._token, stamp, once, encrypted),
            timestamp=stamp,
            nonce=once,
        )
