"""Catalog maintenance used by ``make i18n`` and ``make test``.

Each feature has its own catalog domain, so features never edit one shared file:
:data:`DOMAINS` maps a source folder to its domain, and every other file of ``core/``,
``bot/`` and ``storage/`` belongs to ``messages``.

- ``python tools/i18n.py update`` extracts messages per domain, merges them into every shipped
  locale (``locales/<locale>/LC_MESSAGES/<domain>.po``), fills the English catalog's new
  entries with their English msgid (the source language), takes a translation already made in
  another domain of the same locale, and lists Chinese entries that still need one;
- ``check`` extracts and reports without writing: a message in the source with no translation,
  or a catalog that is not up to date, fails;
- ``compile`` writes the ``.mo`` files.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from jinja2.ext import babel_extract

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "locales"
SHIPPED = ("zh_CN", "en")
SOURCES = ("core", "bot", "storage", "surveys")
DEFAULT_DOMAIN = "messages"
DOMAINS: dict[str, str] = {
    "surveys": "surveys",
    "bot/rota": "rota",
    "bot/volunteers": "volunteers",
    "bot/outbox": "outbox",
    "bot/web": "console",
    "bot/channels/wecom": "wecom",
}
"""Source folder (relative to the project) → catalog domain; the longest match wins."""
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}


def domain_of(path: Path) -> str:
    """The catalog domain of a source file."""
    rel = path.relative_to(ROOT).as_posix()
    best = ""
    for folder in DOMAINS:
        if (rel == folder or rel.startswith(folder + "/")) and len(folder) > len(best):
            best = folder
    return DOMAINS[best] if best else DEFAULT_DOMAIN


def _sources() -> Iterator[tuple[Path, object]]:
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*")):
            if "__pycache__" in path.parts or "migrations" in path.parts:
                continue
            if path.suffix == ".py":
                yield path, "python"
            elif path.suffix == ".html" and "templates" in path.parts:
                yield path, babel_extract


def extract() -> dict[str, Catalog]:
    """Every marked message of the source, by domain."""
    templates: dict[str, Catalog] = {}
    for path, method in _sources():
        domain = domain_of(path)
        catalog = templates.setdefault(domain, Catalog(domain=domain))
        options = {"extensions": "jinja2.ext.i18n"} if method is babel_extract else {}
        for lineno, message, comments, context in extract_from_file(
            method,  # type: ignore[arg-type]
            str(path),
            keywords=KEYWORDS,
            options=options,
        ):
            catalog.add(
                message,
                None,
                [(str(path.relative_to(ROOT)), lineno)],
                auto_comments=comments,
                context=context,
            )
    return templates


def _po_path(locale: str, domain: str) -> Path:
    return LOCALES / locale / "LC_MESSAGES" / f"{domain}.po"


def _read(locale: str, domain: str) -> Catalog:
    path = _po_path(locale, domain)
    if not path.exists():
        return Catalog(locale=locale, domain=domain)
    with path.open("rb") as fh:
        return read_po(fh, locale=locale, domain=domain)


def _key(msgid: object) -> str:
    return msgid if isinstance(msgid, str) else str(msgid[0])  # type: ignore[index]


def _complete(string: object) -> bool:
    strings = string if isinstance(string, tuple | list) else (string,)
    return bool(strings) and all(strings)


def _memory(locale: str) -> dict[str, object]:
    """Every translation already made for ``locale``, in any domain."""
    memory: dict[str, object] = {}
    for path in sorted((LOCALES / locale / "LC_MESSAGES").glob("*.po")):
        for message in _read(locale, path.stem):
            if message.id and _complete(message.string) and not message.fuzzy:
                memory.setdefault(_key(message.id), message.string)
    return memory


def _merged(template: Catalog, locale: str, domain: str, memory: dict[str, object]) -> Catalog:
    existing = _read(locale, domain)
    merged = Catalog(locale=locale, domain=domain)
    for message in template:
        if not message.id:
            continue
        old = existing.get(message.id)
        if old is not None and _complete(old.string) and not old.fuzzy:
            string: object = old.string
        else:
            string = memory.get(_key(message.id))
        if not string and locale == "en":
            string = message.id
        if not string:
            string = ("",) * merged.num_plurals if isinstance(message.id, tuple) else ""
        merged.add(message.id, string, flags=message.flags)  # type: ignore[arg-type]
    return merged


def _render(catalog: Catalog) -> bytes:
    buffer = BytesIO()
    write_po(buffer, catalog, omit_header=True, sort_output=True, width=100, no_location=True)
    return buffer.getvalue()


def _missing(catalog: Catalog) -> list[str]:
    out = []
    for message in catalog:
        if not message.id:
            continue
        if not _complete(message.string) or message.fuzzy:
            out.append(str(message.id))
    return out


def run(write: bool) -> int:
    """Extract, merge and (when ``write``) save every catalog; return the number of problems."""
    templates = extract()
    problems = 0
    for locale in SHIPPED:
        memory = _memory(locale)
        wanted = set(templates)
        for path in (LOCALES / locale / "LC_MESSAGES").glob("*.po"):
            if path.stem not in wanted:
                print(f"{locale}: {path.name} has no source messages any more")
                problems += 0 if write else 1
                if write:
                    path.unlink()
        for domain, template in sorted(templates.items()):
            merged = _merged(template, locale, domain, memory)
            rendered = _render(merged)
            path = _po_path(locale, domain)
            current = path.read_bytes() if path.exists() else b""
            if rendered != current:
                if write:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(rendered)
                else:
                    print(f"{locale}/{domain}.po is not up to date: run `make i18n`")
                    problems += 1
            for msgid in _missing(merged):
                print(f"{locale}/{domain} needs a translation: {msgid!r}")
                problems += 1
    return problems


def compile_all() -> None:
    """Write ``<domain>.mo`` next to every ``<domain>.po``."""
    for po_path in sorted(LOCALES.glob("*/LC_MESSAGES/*.po")):
        locale = po_path.parent.parent.name
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=locale, domain=po_path.stem)
        with po_path.with_suffix(".mo").open("wb") as fh:
            write_mo(fh, catalog)


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else "update"
    if action == "compile":
        compile_all()
        sys.exit(0)
    count = run(write=action == "update")
    if action == "update":
        compile_all()
    sys.exit(1 if (count and action == "check") else 0)
