"""``core.http.parse_json``, which every JSON body goes through (the survey API, the Telegram
webhook): strict JSON in, the same values the standard library reads, and everything that is
not usable JSON a ``ValueError``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.http import parse_json
from tests.helpers import examples

# JSON documents whose numbers fit 64 bits and whose strings hold no lone surrogate: what a
# client legitimately sends.
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",)))
)
DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=examples(300), deadline=None)
@given(doc=DOCUMENTS, ascii_only=st.booleans())
def test_reads_what_the_standard_library_reads(doc: Any, ascii_only: bool) -> None:
    raw = json.dumps(doc, ensure_ascii=ascii_only).encode()
    assert parse_json(raw) == json.loads(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": 1e400}',
        b'{"a": 1' + b"0" * 20_000 + b"}",
        b'"\\ud800"',
        b'{"text": "x\\udc00y"}',
        b"\xff\xfe",
        b'{"a": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8
        b"[" * 2000 + b"]" * 2000,
        b'{"a": "\x00"}',  # a raw control character in a string
        b'{"a": 1,}',
        b"",
        b"{} {}",
    ],
)
def test_refuses_what_is_not_usable_json(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_json(raw)


def test_integers_past_64_bits_arrive_as_floats() -> None:
    assert parse_json(b"18446744073709551615") == 2**64 - 1
    big = parse_json(b"18446744073709551617")
    assert isinstance(big, float)
