"""Long texts cut for platforms that cap a message (Telegram 4,096 UTF-16 code units, WeCom
2,048 UTF-8 bytes): property-based (hypothesis) and by example."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.messages import split_text
from tests.helpers import examples


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


LENGTHS: list[Callable[[str], int]] = [len, utf8, utf16]
# Chinese, ASCII, emoji outside the BMP (two UTF-16 units, four UTF-8 bytes), blanks, new lines,
# any other character but lone surrogates: no entry point lets one in (core.http.parse_json
# refuses them in the API and the Telegram webhook), so no reply can hold one.
TEXT = st.text(
    alphabet=st.sampled_from("法治政府满意度 abcXYZ019\n\n😀🏛️·，。")
    | st.characters(blacklist_categories=("Cs",)),
    max_size=600,
)


@settings(max_examples=examples(300), deadline=None)
@given(text=TEXT, limit=st.integers(min_value=4, max_value=80), length=st.sampled_from(LENGTHS))
def test_every_piece_fits_and_nothing_but_blanks_is_lost(
    text: str, limit: int, length: Callable[[str], int]
) -> None:
    pieces = split_text(text, limit, length)
    assert pieces
    if length(text) <= limit:
        assert pieces == [text]
        return
    assert all(0 < length(piece) <= limit for piece in pieces)
    # The characters, in order, are all there but for the blanks at the cuts.
    assert "".join("".join(pieces).split()) == "".join(text.split())


def test_cuts_fall_at_line_ends() -> None:
    lines = [f"第{n}行：西夏区法治政府建设" for n in range(1, 400)]
    text = "\n".join(lines)
    pieces = split_text(text, 4096, utf16)
    assert len(pieces) > 1
    assert [line for piece in pieces for line in piece.split("\n")] == lines


@pytest.mark.parametrize("length", LENGTHS)
def test_one_long_line_is_cut_between_characters(length: Callable[[str], int]) -> None:
    text = "满意" * 3000
    pieces = split_text(text, 2048, length)
    assert "".join(pieces) == text
    assert all(length(piece) <= 2048 for piece in pieces)
