"""Catalog maintenance used by ``make i18n``.

``python tools/i18n.py update`` extracts messages from the source, merges them into every
shipped catalog, fills the English catalog's new entries with their English msgid (the source
language) and lists Chinese entries that still need a translation. ``check`` only reports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "locales"
POT = LOCALES / "messages.pot"
BABEL = [sys.executable, "-m", "babel.messages.frontend", "-q"]


def _po(locale: str) -> Path:
    return LOCALES / locale / "LC_MESSAGES" / "messages.po"


def extract() -> None:
    """Extract every marked message into ``locales/messages.pot``."""
    subprocess.run(
        [
            *BABEL,
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "N_",
            "-k",
            "_",
            "--no-location",
            "--omit-header",
            "--sort-output",
            "-o",
            str(POT),
            str(ROOT),
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


def update() -> int:
    """Merge the template into both catalogs; return how many Chinese entries are missing."""
    extract()
    for locale in ("zh_CN", "en"):
        subprocess.run(
            [
                *BABEL,
                "update",
                "-i",
                str(POT),
                "-d",
                str(LOCALES),
                "-l",
                locale,
                "--no-fuzzy-matching",
                "--ignore-obsolete",
                "--omit-header",
            ],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
    en_path = _po("en")
    with en_path.open("rb") as fh:
        catalog = read_po(fh, locale="en")
    for message in catalog:
        if message.id and not message.string:
            message.string = message.id
    with en_path.open("wb") as fh:
        write_po(fh, catalog, omit_header=True, sort_output=True, width=100)
    return report()


def report() -> int:
    """Print Chinese entries with no translation; return their number."""
    with _po("zh_CN").open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    missing = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    for msgid in missing:
        print(f"zh_CN needs a translation: {msgid!r}")
    return len(missing)


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else "update"
    count = update() if action == "update" else report()
    sys.exit(1 if (count and action == "check") else 0)
