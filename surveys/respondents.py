"""Who answered: keyed pseudonyms of respondents and invitation tokens.

A respondent is stored as a keyed pseudonym (:func:`pseudonym`) of the chat account, the
invitation token or the mobile page's browser cookie; a raw chat id is never stored with
answers, and without the secret key a pseudonym cannot be linked back to the person.
Invitation tokens are stored as keyed hashes (:func:`invitation_hash`), never in clear.
"""

from __future__ import annotations

import hmac
import secrets

__all__ = ["FORMULA_CHARACTERS", "invitation_hash", "new_invitation_token", "pseudonym"]


def pseudonym(secret: bytes, kind: str, value: str) -> str:
    """A keyed pseudonym: hex HMAC-SHA256 of ``"{kind}:{value}"`` under the secret key.

    ``kind`` separates namespaces: ``"chat"`` with ``f"{channel}:{external_id}"``, ``"token"``
    with an invitation token, ``"web"`` with the H5 page's browser cookie. Without the key the
    pseudonym cannot be linked back to the chat account.
    """
    return hmac.digest(secret, f"{kind}:{value}".encode(), "sha256").hex()


def invitation_hash(secret: bytes, token: str) -> str:
    """What is stored for an invitation token (a keyed hash, not the token itself)."""
    return pseudonym(secret, "invitation", token)


FORMULA_CHARACTERS = "-=+@"
"""First characters Excel and WPS read as the start of a formula (a token is never one)."""


def new_invitation_token() -> str:
    """A fresh single-use invitation token: 16 characters of ``A-Z a-z 0-9 - _`` (about 96
    bits) that never starts with ``-``, so a spreadsheet opening the invitation CSV shows it
    as text instead of reading it as a formula."""
    while True:
        token = secrets.token_urlsafe(12)
        if token[0] not in FORMULA_CHARACTERS:
            return token
