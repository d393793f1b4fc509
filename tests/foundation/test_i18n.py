"""Every message is translated in both catalogs; negotiation and formatting."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from core.i18n import LOCALES_DIR, Translator, negotiate, negotiate_accept_language

ROOT = Path(__file__).resolve().parents[2]


def _source_msgids() -> set[str]:
    method_map = [
        ("core/**.py", "python"),
        ("bot/**.py", "python"),
        ("surveys/**.py", "python"),
        ("storage/**.py", "python"),
        ("**/templates/**.html", "jinja2"),
    ]
    found: set[str] = set()
    for sub in ("core", "bot", "surveys", "storage"):
        folder = ROOT / sub
        if not folder.exists():
            continue
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            str(folder),
            method_map=[(p.split("/", 1)[1], m) for p, m in method_map if p.startswith(sub)]
            + [("**/templates/**.html", "jinja2")],
            keywords={"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)},
            options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        ):
            if isinstance(message, tuple):  # plural: the singular is the catalog's key
                if message[0]:
                    found.add(message[0])
            elif message:
                found.add(message)
    return found


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_every_message_is_translated(locale: str) -> None:
    """Every message in the source has a translation in one of the locale's catalogs (one
    catalog per feature), and the translator the app uses finds it."""
    msgids = _source_msgids()
    assert len(msgids) >= 10
    translated: set[str] = set()
    catalogs = sorted((LOCALES_DIR / locale / "LC_MESSAGES").glob("*.po"))
    assert {p.stem for p in catalogs} >= {"messages", "surveys"}
    for path in catalogs:
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=locale, domain=path.stem)
        translated |= {
            m.id if isinstance(m.id, str) else m.id[0]
            for m in catalog
            if m.id and not m.fuzzy and (m.string if isinstance(m.string, str) else all(m.string))
        }
    missing = sorted(msgids - translated)
    assert not missing, f"{locale} lacks translations for: {missing}"
    if locale == "zh_CN":
        t = Translator(locale)
        assert t._("Take a satisfaction survey") == "参加满意度问卷调查"  # surveys catalog
        assert t._("What I can do") == "功能说明"  # messages catalog


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("zh-hans", "zh_CN"),
        ("zh-Hant-TW", "zh_CN"),
        ("zh_CN", "zh_CN"),
        ("zh", "zh_CN"),
        ("en-US", "en"),
        ("en", "en"),
        ("", "zh_CN"),
        (None, "zh_CN"),
        ("fr", "zh_CN"),
    ],
)
def test_negotiate(tag: str | None, expected: str) -> None:
    assert negotiate(tag) == expected


def test_accept_language_honours_quality() -> None:
    assert negotiate_accept_language("fr;q=1, en-US;q=0.8, zh;q=0.5") == "en"
    assert negotiate_accept_language("en;q=0.2, zh-CN") == "zh_CN"
    assert negotiate_accept_language("de, *;q=0.1") == "zh_CN"
    assert negotiate_accept_language("de", default="en") == "en"


def test_dates_and_numbers() -> None:
    zh = Translator("zh_CN")
    assert zh.date(date(2026, 12, 3)) == "2026年12月3日 星期四"
    assert zh.percent(0.834) == "83.4%"
    en = Translator("en")
    assert en.date(date(2026, 12, 3)) == "Thursday, December 3, 2026"
    assert en.number(1234567) == "1,234,567"


def test_translation_is_applied() -> None:
    assert Translator("zh_CN")._("Not found.") == "未找到。"
    assert Translator("en")._("Not found.") == "Not found."
