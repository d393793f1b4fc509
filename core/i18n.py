"""Translations, locale negotiation and locale-aware formatting (Babel).

Each feature keeps its own catalog, ``locales/<locale>/LC_MESSAGES/<domain>.po``: ``messages``
for the kernel, the runtime and the channels, ``surveys`` for the survey feature, and so on
(``tools/i18n.py`` maps source folders to domains). A locale's translations chain every domain,
so code only ever asks for a message. ``make i18n`` compiles ``.mo`` files; a missing or stale
``.mo`` is compiled in memory from its ``.po``. Source strings are English msgids marked with
``_()`` / ``N_()``; ``zh_CN`` is the default locale.
"""

from __future__ import annotations

import gettext as _gettext
import io
import os
import re
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date as _format_date
from babel.dates import format_datetime as _format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

from core.settings import SHIPPED_LOCALES

DEFAULT_LOCALE = "zh_CN"
DOMAIN = "messages"
LOCALES_DIR = Path(
    os.environ.get("PUFA_LOCALES_DIR", Path(__file__).resolve().parents[1] / "locales")
)

_TAG_SPLIT = re.compile(r"[-_]")


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet."""
    return message


def negotiate(requested: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Map a client's language tag to the nearest shipped locale.

    ``zh``, ``zh-hans``, ``zh-Hant-TW``, ``zh_CN`` → ``zh_CN``; ``en``, ``en-US`` → ``en``;
    anything else, or nothing, → ``default``. (Only one Chinese locale ships, so traditional
    Chinese readers get simplified Chinese rather than English.)
    """
    if not requested:
        return default
    tag = requested.strip()
    for shipped in SHIPPED_LOCALES:
        if tag.replace("-", "_").lower() == shipped.lower():
            return shipped
    language = _TAG_SPLIT.split(tag, maxsplit=1)[0].lower()
    if language == "zh":
        return "zh_CN"
    if language == "en":
        return "en"
    return default


def negotiate_accept_language(header: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Pick a shipped locale from an HTTP ``Accept-Language`` header (honouring q-values)."""
    if not header:
        return default
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip()
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, index, tag))
    for _q, _i, tag in sorted(ranked):
        found = negotiate(tag, default="")
        if found:
            return found
    return default


def _compile_po(po_path: Path, locale: str, domain: str) -> _gettext.GNUTranslations:
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=locale, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def _domain_translations(folder: Path, domain: str, locale: str) -> _gettext.NullTranslations:
    po_path = folder / f"{domain}.po"
    mo_path = folder / f"{domain}.mo"
    if mo_path.exists() and (
        not po_path.exists() or mo_path.stat().st_mtime >= po_path.stat().st_mtime
    ):
        with mo_path.open("rb") as fh:
            return _gettext.GNUTranslations(fh)
    if po_path.exists():
        return _compile_po(po_path, locale, domain)
    return _gettext.NullTranslations()


def domains(locale: str) -> list[str]:
    """The catalog domains shipped for ``locale`` (``messages`` first)."""
    folder = LOCALES_DIR / locale / "LC_MESSAGES"
    names = {p.stem for p in folder.glob("*.po")} | {p.stem for p in folder.glob("*.mo")}
    return sorted(names, key=lambda name: (name != DOMAIN, name))


@lru_cache(maxsize=8)
def translations(locale: str) -> _gettext.NullTranslations:
    """The gettext translations for a shipped locale: every domain chained (cached)."""
    folder = LOCALES_DIR / locale / "LC_MESSAGES"
    chain: _gettext.NullTranslations | None = None
    for domain in domains(locale):
        found = _domain_translations(folder, domain, locale)
        if chain is None:
            chain = found
        else:
            chain.add_fallback(found)
    return chain if chain is not None else _gettext.NullTranslations()


@lru_cache(maxsize=16)
def _babel_locale(locale: str) -> Locale:
    """Babel's data for a shipped locale (cached: parsing looks for locale files on disk,
    about a quarter of the web loop's time under a load of refused submissions)."""
    return Locale.parse(locale)


class Translator:
    """Translation and formatting bound to one locale: ``t = Translator("en"); t._("Hello")``."""

    def __init__(self, locale: str | None = None) -> None:
        self.locale = negotiate(locale) if locale else DEFAULT_LOCALE
        self._t = translations(self.locale)
        self.babel_locale = _babel_locale(self.locale)

    def _(self, message: str, **params: object) -> str:
        """Translate ``message`` and fill ``{name}`` placeholders from ``params``."""
        text = self._t.gettext(message)
        return text.format(**params) if params else text

    gettext = _

    def ngettext(self, singular: str, plural: str, n: int, **params: object) -> str:
        """Translate with a plural form chosen by ``n`` (``{n}`` is available in the text)."""
        text = self._t.ngettext(singular, plural, n)
        return text.format(n=n, **params)

    def date(self, value: date) -> str:
        """A date as people read it: ``2026年12月3日 星期四`` / ``Thursday, December 3, 2026``."""
        return format_date_local(value, self.locale)

    def datetime(self, value: datetime) -> str:
        """A date and time (value already in the local zone)."""
        if self.locale == "zh_CN":
            return f"{format_date_local(value.date(), self.locale)} {value:%H:%M}"
        return _format_datetime(value, "EEEE, MMMM d, y HH:mm", locale=self.babel_locale)

    def number(self, value: float | int) -> str:
        """A number with the locale's grouping."""
        return format_decimal(value, locale=self.babel_locale)

    def percent(self, value: float, digits: int = 1) -> str:
        """A fraction as a percentage, e.g. 0.834 → ``83.4%``."""
        pattern = "#,##0." + "0" * digits + "%" if digits else "#,##0%"
        return format_percent(value, pattern, locale=self.babel_locale)


@lru_cache(maxsize=16)
def translator(locale: str | None) -> Translator:
    """A shared :class:`Translator` per locale (it holds no per-person state, and building
    one parses Babel locale data, which is too slow to repeat on every request)."""
    return Translator(locale)


def format_date_local(value: date, locale: str) -> str:
    """Format a date in the long style of ``locale`` with the weekday."""
    if locale == "zh_CN":
        return _format_date(value, "y年M月d日 EEEE", locale="zh_CN")
    return _format_date(value, "full", locale=_babel_locale(locale))
