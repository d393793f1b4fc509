"""pufa's WeCom cryptography against an independent implementation (wechatpy) and WeCom's
own published example."""

from __future__ import annotations

import base64
import os
import struct

import pytest
import xmltodict
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.crypto import _get_signature
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

from bot.channels.wecom.crypto import (
    BadSignature,
    MalformedCiphertext,
    WeComCrypto,
    WrongReceiveId,
    decode_aes_key,
    signature,
)
from bot.channels.wecom.events import parse_envelope
from tests.fakes.wecom_api import random_aes_key

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"

MESSAGES = [
    "",
    "a",
    "<xml><Content><![CDATA[你好，普法]]></Content></xml>",
    "x" * 12,  # 16 + 4 + 12 + 18 = 50 bytes: padding 14
    "y" * 26,  # 16 + 4 + 26 + 18 = 64 bytes: a whole extra block of padding (32)
    "满意" * 700,  # several kilobytes
]


def test_wecom_documentation_example_url_check() -> None:
    """The URL-check example of WeCom's callback documentation decrypts to its echo."""
    crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
    echo = crypto.verify_url(
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        "1409659589",
        "263014780",
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
    )
    assert echo == "1616140317555161061"


@pytest.mark.parametrize("message", MESSAGES)
def test_messages_encrypted_by_wechatpy_decrypt(message: str) -> None:
    key = random_aes_key()
    theirs = WeChatCrypto("tok", key, "wwcorp01")
    sealed = xmltodict.parse(theirs.encrypt_message(message, "1234", "1700000000"))["xml"]
    ours = WeComCrypto("tok", key, "wwcorp01")
    assert ours.decrypt_message(
        sealed["MsgSignature"], "1700000000", "1234", sealed["Encrypt"]
    ) == (message)


@pytest.mark.parametrize("message", MESSAGES)
def test_pufa_replies_decrypt_with_wechatpy(message: str) -> None:
    key = random_aes_key()
    reply = WeComCrypto("tok", key, "wwcorp01").encrypt_reply(message, nonce="55", timestamp="17")
    theirs = WeChatCrypto("tok", key, "wwcorp01")
    xml = reply.to_xml()
    assert xmltodict.parse(xml)["xml"]["MsgSignature"] == reply.msg_signature
    assert theirs.decrypt_message(xml, reply.msg_signature, "17", "55") == message
    # and wechatpy refuses it once the signature is wrong: the check is real on both sides
    with pytest.raises(InvalidSignatureException):
        theirs.decrypt_message(xml, "0" * 40, "17", "55")


def test_signature_matches_wechatpy() -> None:
    for parts in [
        ("a", "b", "c", "d"),
        (TOKEN, "1409659589", "263014780", "Zz+/=="),
        ("", "", "", ""),
    ]:
        assert signature(*parts) == _get_signature(*parts)


def test_forged_or_tampered_signature_is_refused() -> None:
    key = random_aes_key()
    crypto = WeComCrypto("tok", key, "wwcorp01")
    encrypted = crypto.encrypt("<xml/>")
    good = signature("tok", "1", "2", encrypted)
    assert crypto.decrypt_message(good, "1", "2", encrypted) == "<xml/>"
    assert crypto.decrypt_message(good.upper(), "1", "2", encrypted) == "<xml/>"
    for forged in ("0" * 40, good[:-1] + ("0" if good[-1] != "0" else "1"), "", "签名"):
        with pytest.raises(BadSignature):
            crypto.decrypt_message(forged, "1", "2", encrypted)
    with pytest.raises(BadSignature):  # signed by someone with another token
        crypto.decrypt_message(signature("other", "1", "2", encrypted), "1", "2", encrypted)
    with pytest.raises(BadSignature):  # same signature, other timestamp
        crypto.decrypt_message(good, "3", "2", encrypted)


def test_message_for_another_corp_is_refused() -> None:
    key = random_aes_key()
    elsewhere = PrpCrypto(base64.b64decode(key + "=")).encrypt("<xml/>", "wwother").decode()
    with pytest.raises(WrongReceiveId):
        WeComCrypto("tok", key, "wwcorp01").decrypt(elsewhere)
    # a receive id that merely starts with ours is not ours either
    longer = PrpCrypto(base64.b64decode(key + "=")).encrypt("<xml/>", "wwcorp01x").decode()
    with pytest.raises(WrongReceiveId):
        WeComCrypto("tok", key, "wwcorp01").decrypt(longer)


def _raw_encrypt(key: str, plain: bytes) -> str:
    raw_key = base64.b64decode(key + "=")
    encryptor = Cipher(algorithms.AES(raw_key), modes.CBC(raw_key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def test_malformed_ciphertexts_are_refused() -> None:
    key = random_aes_key()
    crypto = WeComCrypto("tok", key, "wwcorp01")
    body = os.urandom(16) + struct.pack(">I", 6) + b"<xml/>" + b"wwcorp01"  # 34 bytes
    good = body + bytes([30]) * 30
    assert crypto.decrypt(_raw_encrypt(key, good)) == "<xml/>"
    bad_inputs = {
        "not base64": "%%%not base64%%%",
        "empty": "",
        "not whole blocks": base64.b64encode(os.urandom(20)).decode(),
        "padding byte 0": _raw_encrypt(key, body + bytes([0]) * 30),
        "padding over 32": _raw_encrypt(key, body + bytes([33]) * 30),
        "inconsistent padding": _raw_encrypt(key, body + bytes([29]) + bytes([30]) * 29),
        "length past the end": _raw_encrypt(
            key,
            os.urandom(16) + struct.pack(">I", 4000) + b"<xml/>wwcorp01" + bytes([30]) * 30,
        ),
        "too short": _raw_encrypt(key, os.urandom(8) + bytes([24]) * 24),
        "not UTF-8": _raw_encrypt(
            key, os.urandom(16) + struct.pack(">I", 2) + b"\xff\xfe" + b"wwcorp01" + bytes([2]) * 2
        ),
    }
    for what, data in bad_inputs.items():
        with pytest.raises(MalformedCiphertext):
            crypto.decrypt(data)
            pytest.fail(what)


def test_aes_key_must_be_43_base64_characters() -> None:
    assert len(decode_aes_key(random_aes_key())) == 32
    for bad in ("", "short", random_aes_key() + "A", "!" * 43):
        with pytest.raises(ValueError):
            decode_aes_key(bad)


def test_envelope_of_a_wechatpy_message() -> None:
    theirs = WeChatCrypto("tok", random_aes_key(), "wwcorp01")
    xml = theirs.encrypt_message("<xml/>", "9", "10")
    assert parse_envelope(xml.encode()) == xmltodict.parse(xml)["xml"]["Encrypt"]
