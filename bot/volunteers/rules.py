"""What a valid 法律明白人 record is: names, genders, mainland mobile numbers, backgrounds, and the
fields of a village import row. Pure functions over plain text (no database, no I/O).

A check returns the cleaned value or a :class:`Problem`: an English msgid with parameters, which
the edge (chat, command line, API) translates into the user's language. The chat dialog and
both importers use the same checks, so a row refused by ``pufa import volunteers`` would have
been refused in ``/register`` too.

Mobile numbers are checked with Google's ``phonenumbers`` (the number must be a valid mainland
China mobile number) and kept as the 11-digit national number.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import PhoneNumberType

from core.i18n import N_, Translator

__all__ = [
    "BACKGROUNDS",
    "CODE_RE",
    "GENDER_LABELS",
    "OTHER",
    "Background",
    "Problem",
    "background_label",
    "gender_label",
    "mask_mobile",
    "mask_name",
    "parse_background",
    "parse_code",
    "parse_gender",
    "parse_mobile",
    "parse_name",
    "parse_note",
    "parse_poor",
    "parse_village_kind",
    "parse_village_name",
    "township_kind",
]

NAME_MIN, NAME_MAX = 2, 30
NOTE_MAX = 30
PLACE_NAME_MAX = 64
CODE_RE = re.compile(r"[A-Za-z0-9-]{1,24}")
"""Township and village codes: what a Telegram deep link can carry (CONTRACT.md)."""
_SCIENTIFIC_RE = re.compile(r"[0-9](\.[0-9]+)?[eE]\+?[0-9]+")
_NAME_DOTS = str.maketrans({"•": "·", "・": "·", "･": "·", "‧": "·", "∙": "·"})
_NAME_EXTRA = frozenset("· -.'")
_PHONE_JUNK_RE = re.compile(r"[\s\-–—_()（）.、/]")
_QUOTES_RE = re.compile(r"[\"'“”‘’「」『』\s]")
_OTHER_NOTE_RE = re.compile(r"(.+?)[:：(（](.*)")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a value was refused: an English msgid with ``{name}`` parameters."""

    message: str
    params: Mapping[str, object] = field(default_factory=dict)

    def render(self, t: Translator) -> str:
        """The message in ``t``'s language."""
        return t._(self.message, **self.params)


@dataclass(frozen=True, slots=True)
class Background:
    """Where a liaison is drawn from (FACTS §4): stored ``code``, the seed's Chinese wording
    ``zh`` (what import files use) and the English msgid shown through the catalog."""

    code: str
    zh: str
    label: str
    aliases: tuple[str, ...] = ()


OTHER = "other"
BACKGROUNDS: tuple[Background, ...] = (
    Background(
        "committee",
        "村“两委”班子成员",
        N_("Member of the village Party branch or village committee"),
        ("村两委", "两委成员", "两委班子成员", "村两委成员"),
    ),
    Background("mediator", "人民调解员", N_("People's mediator"), ("调解员",)),
    Background("grid", "网格员", N_("Grid worker")),
    Background("group_leader", "村民小组长", N_("Villagers' group leader"), ("小组长", "组长")),
    Background("cadre", "村干部", N_("Village cadre")),
    Background("party", "党员", N_("Party member"), ("中共党员",)),
    Background("entrepreneur", "致富带头人", N_("Local business leader")),
    Background("notable", "乡贤", N_("Respected local figure")),
    Background(OTHER, "其他", N_("Other"), ("其它",)),
)
"""The backgrounds FACTS §4 names (the first four are the ones the plan stresses), then other."""

GENDER_LABELS: Mapping[str, str] = {"m": N_("male"), "f": N_("female")}
_GENDER_WORDS: Mapping[str, str] = {
    "男": "m",
    "男性": "m",
    "m": "m",
    "male": "m",
    "女": "f",
    "女性": "f",
    "f": "f",
    "female": "f",
}
_TRUE = frozenset({"是", "1", "true", "y", "yes", "√", "✓", "贫困村", "t"})
_FALSE = frozenset({"否", "0", "false", "n", "no", "×", "非贫困村", "不是", "", "f"})
_VILLAGE_KINDS: Mapping[str, str] = {
    "村": "village",
    "行政村": "village",
    "村委会": "village",
    "village": "village",
    "社区": "community",
    "居委会": "community",
    "社区居委会": "community",
    "居": "community",
    "community": "community",
}
KIND_LABELS: Mapping[str, str] = {
    "village": N_("village"),
    "community": N_("community"),
    "town": N_("town"),
    "street": N_("street office"),
}


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


# ---------------------------------------------------------------------------------- people


def parse_name(text: str) -> str | Problem:
    """A person's name: 2–30 letters (Chinese or Latin), middle dots, spaces or hyphens."""
    name = " ".join(_clean(text).translate(_NAME_DOTS).split())
    if not name:
        return Problem(N_("The name is empty."))
    if len(name) > NAME_MAX:
        return Problem(
            N_("The name is too long: at most {max} characters (this one has {length})."),
            {"max": NAME_MAX, "length": len(name)},
        )
    if any(ch.isdigit() for ch in name) or not all(
        ch.isalpha() or ch in _NAME_EXTRA for ch in name
    ):
        return Problem(N_("A name may contain only letters, for example 张三 or 阿依古丽·买买提."))
    if sum(ch.isalpha() for ch in name) < NAME_MIN:
        return Problem(N_("Please give the full name (at least two characters)."))
    return name


def parse_gender(text: str) -> str | Problem:
    """``m`` or ``f`` from 男/女 (or male/female, M/F)."""
    found = _GENDER_WORDS.get(_clean(text).lower())
    if found is None:
        return Problem(N_("The gender must be 男 or 女 (male or female)."))
    return found


def parse_mobile(text: str) -> str | Problem:
    """The 11-digit national number of a valid mainland China mobile number.

    Spaces, dashes, brackets, full-width digits and a ``+86`` / ``86`` prefix are accepted;
    landlines, numbers of other countries or regions (Hong Kong, Macao, Taiwan) and numbers
    that are not in use in the numbering plan are refused with a reason.
    """
    raw = _clean(text)
    if not raw:
        return Problem(N_("The mobile number is empty."))
    compact = _PHONE_JUNK_RE.sub("", raw)
    if _SCIENTIFIC_RE.fullmatch(raw.replace(" ", "")):
        return Problem(
            N_(
                "“{value}” looks like a number Excel shortened; format the column as text and"
                " type the 11 digits again."
            ),
            {"value": raw},
        )
    if not re.fullmatch(r"\+?[0-9]+", compact):
        return Problem(
            N_("“{value}” is not a phone number: use digits only, for example 13812345678."),
            {"value": raw},
        )
    try:
        number = phonenumbers.parse(compact, "CN")
    except phonenumbers.NumberParseException:
        return Problem(
            N_("“{value}” is not a phone number: use digits only, for example 13812345678."),
            {"value": raw},
        )
    if number.country_code != 86:
        return Problem(
            N_(
                "{value} is not a mainland China number; liaisons need a mainland mobile number"
                " (11 digits starting with 1)."
            ),
            {"value": raw},
        )
    national = phonenumbers.national_significant_number(number)
    if not national.startswith("1"):
        return Problem(
            N_(
                "{value} looks like a landline; please give a mobile number (11 digits starting"
                " with 1)."
            ),
            {"value": raw},
        )
    if len(national) != 11:
        return Problem(
            N_("A mobile number has 11 digits; {value} has {length}."),
            {"value": raw, "length": len(national)},
        )
    kind = phonenumbers.number_type(number)
    if not phonenumbers.is_valid_number(number) or kind not in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return Problem(
            N_("{value} is not a mobile number in use in mainland China; please check the digits."),
            {"value": raw},
        )
    return national


def mask_mobile(national: str) -> str:
    """``138****1234``: the first three and last four digits."""
    if len(national) < 8:
        return "*" * len(national)
    return f"{national[:3]}****{national[-4:]}"


def mask_name(name: str) -> str:
    """``张*`` / ``张*明`` / ``阿****提``: the first and (from three characters) last character."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _squash(text: str) -> str:
    return _QUOTES_RE.sub("", _clean(text)).lower()


_BACKGROUND_INDEX: dict[str, str] = {}
for _bg in BACKGROUNDS:
    for _word in (_bg.code, _bg.zh, _bg.label, *_bg.aliases):
        _BACKGROUND_INDEX[_squash(_word)] = _bg.code


def parse_background(text: str) -> tuple[str, str] | Problem:
    """``(code, note)`` from a background in Chinese (the FACTS wording, quotes optional), its
    English label or code; ``其他：说明`` gives ``("other", "说明")``."""
    value = _clean(text)
    if not value:
        return Problem(N_("The background is empty."))
    code = _BACKGROUND_INDEX.get(_squash(value))
    if code is not None:
        return code, ""
    other = _OTHER_NOTE_RE.fullmatch(value)
    if other is not None and _BACKGROUND_INDEX.get(_squash(other.group(1))) == OTHER:
        note = parse_note(other.group(2).rstrip(")）"))
        if isinstance(note, Problem):
            return note
        return OTHER, note
    return Problem(
        N_("“{value}” is not one of the backgrounds: {choices}."),
        {"value": value, "choices": "、".join(b.zh for b in BACKGROUNDS)},
    )


def parse_note(text: str) -> str | Problem:
    """A short description of an "other" background (at most 30 characters)."""
    note = " ".join(_clean(text).split())
    if not note:
        return Problem(N_("Please describe the background in a few words."))
    if len(note) > NOTE_MAX:
        return Problem(
            N_("Please keep it under {max} characters (yours has {length})."),
            {"max": NOTE_MAX, "length": len(note)},
        )
    return note


def gender_label(t: Translator, code: str) -> str:
    """男 / 女 (male / female)."""
    label = GENDER_LABELS.get(code)
    return t._(label) if label else code


def background_label(t: Translator, code: str, note: str = "") -> str:
    """The background as people read it (``其他（退休教师）``)."""
    found = next((b for b in BACKGROUNDS if b.code == code), None)
    label = t._(found.label) if found else code
    if code == OTHER and note:
        return f"{label}（{note}）" if t.locale == "zh_CN" else f"{label} ({note})"
    return label


# ---------------------------------------------------------------------------------- places


def parse_code(text: str) -> str | Problem:
    """A township or village code: 1–24 of ``A-Z a-z 0-9 -`` (e.g. 640105100201 or zbp-01)."""
    value = _clean(text)
    if not value:
        return Problem(N_("The code is empty."))
    if _SCIENTIFIC_RE.fullmatch(value):
        return Problem(
            N_(
                "“{value}” looks like a number Excel shortened; format the column as text and"
                " type the code again."
            ),
            {"value": value},
        )
    if value.endswith(".0") and value[:-2].isdigit():
        value = value[:-2]
    if not CODE_RE.fullmatch(value):
        return Problem(
            N_("“{value}” is not a valid code: use at most 24 letters, digits or dashes."),
            {"value": value},
        )
    return value


def parse_village_name(text: str) -> str | Problem:
    """A township, village or community name (1–64 characters)."""
    value = " ".join(_clean(text).split())
    if not value:
        return Problem(N_("The name is empty."))
    if len(value) > PLACE_NAME_MAX:
        return Problem(
            N_("The name is too long: at most {max} characters (this one has {length})."),
            {"max": PLACE_NAME_MAX, "length": len(value)},
        )
    return value


def parse_village_kind(text: str, name: str) -> str | Problem:
    """``village`` (村) or ``community`` (社区); a blank kind is read from the name's ending."""
    value = _clean(text).lower()
    if value:
        kind = _VILLAGE_KINDS.get(value)
        if kind is None:
            return Problem(
                N_("The type must be 村 or 社区 (village or community), not “{value}”."),
                {"value": text.strip()},
            )
        return kind
    if name.endswith(("社区", "居委会")):
        return "community"
    if name.endswith("村"):
        return "village"
    return Problem(N_("The type is empty and the name does not say it: write 村 or 社区."))


def parse_poor(text: str) -> bool | Problem:
    """Whether a village is a 贫困村: 是/否, 1/0, true/false, Y/N (blank is 否)."""
    value = _clean(text).lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return Problem(
        N_("“{value}” is not a yes/no value: write 是 or 否 (1/0, Y/N, true/false)."),
        {"value": text.strip()},
    )


def township_kind(name: str) -> str:
    """``street`` for a 街道 (office), otherwise ``town`` (镇/乡)."""
    return "street" if name.endswith(("街道", "办事处", "街道办")) else "town"
