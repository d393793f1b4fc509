"""Secrets at rest: sealed values open only with the same key and purpose; keyed hashes."""

from __future__ import annotations

import pytest

from core.crypto import Sealer, SealError, keyed_hash


def test_sealed_values_round_trip_and_hide_the_plain_text() -> None:
    sealer = Sealer(b"k" * 40, "volunteer.mobile")
    sealed = sealer.seal("13812341234")
    assert "13812341234" not in sealed and sealed.startswith("v1.")
    assert sealer.open(sealed) == "13812341234"
    assert sealer.seal("13812341234") != sealed  # a fresh nonce each time


def test_sealed_values_refuse_another_key_purpose_or_tampering() -> None:
    sealed = Sealer(b"k" * 40, "volunteer.mobile").seal("张三")
    with pytest.raises(SealError):
        Sealer(b"x" * 40, "volunteer.mobile").open(sealed)
    with pytest.raises(SealError):
        Sealer(b"k" * 40, "volunteer.name").open(sealed)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SealError):
        Sealer(b"k" * 40, "volunteer.mobile").open(flipped)
    with pytest.raises(SealError):
        Sealer(b"k" * 40, "volunteer.mobile").open("plain text")


def test_keyed_hash_is_stable_per_key_and_purpose() -> None:
    a = keyed_hash(b"k" * 40, "mobile", "13812341234")
    assert a == keyed_hash(b"k" * 40, "mobile", "13812341234")
    assert a != keyed_hash(b"x" * 40, "mobile", "13812341234")
    assert a != keyed_hash(b"k" * 40, "other", "13812341234")
    assert len(a) == 64
