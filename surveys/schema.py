"""Pydantic models of a survey definition, and the loader for the YAML catalog.

A survey definition is plain, immutable data (frozen models, tuples for sequences). It is
validated in full when it is built: field types, code formats, and every cross-reference
(``show_if`` points at an earlier question and at options that exist, indicators score existing
rating questions, satisfied codes are options of those questions, codes are unique).

The five 好差评 levels are the default rating scale. Their option codes are
:data:`SCALE_CODES`, best first::

    very_satisfied     非常满意   Very satisfied
    satisfied          满意       Satisfied
    fairly_satisfied   基本满意   Fairly satisfied
    dissatisfied       不满意     Dissatisfied
    very_dissatisfied  非常不满意 Very dissatisfied

Codes are words rather than digits so that they can never be confused with the position
numbers a resident types on a channel without buttons ("1" for the first option). By default
an indicator counts the three 好评 levels (:data:`GOOD_RATINGS`) as satisfied.

A ``scale`` or ``single`` question with ``allow_unknown: true`` also offers "don't know"
(:data:`UNKNOWN_CODE` ``unknown``, 不了解 / Don't know) as its last option, for residents who
have had nothing to do with what is asked. Such answers are stored but never scored: they are
left out of an indicator's ``n`` and reported separately. The default is ``false``, so a file
written before the switch existed means the same. The code ``unknown`` is reserved on rated
questions: a file may list it only as the last option of a question that allows it (to word
the label differently), and an indicator may not count it as satisfied.

:func:`load_survey_file` and :func:`load_catalog` read YAML; a broken file raises
:class:`CatalogError` naming the file, the path inside it (``questions[2].show_if.question``),
the reason, and the line where the YAML can tell.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

__all__ = [
    "CHOICE_TYPES",
    "DEFAULT_LOCALE",
    "DEFAULT_SCALE",
    "DEFAULT_TEXT_MAX_LENGTH",
    "GOOD_RATINGS",
    "OPEN_AUDIENCES",
    "RATED_TYPES",
    "SCALE_CODES",
    "SCALE_WEIGHTS",
    "UNKNOWN_CODE",
    "UNKNOWN_OPTION",
    "Audience",
    "CatalogError",
    "CatalogProblem",
    "Code",
    "DefinitionIssue",
    "Indicator",
    "LocalizedText",
    "Option",
    "Question",
    "QuestionType",
    "ShowIf",
    "Survey",
    "SurveyCode",
    "TargetKind",
    "default_catalog_dir",
    "format_path",
    "load_catalog",
    "load_survey_file",
    "localized",
]

DEFAULT_LOCALE = "zh_CN"
"""The locale every localized text must have and every lookup falls back to."""

DEFAULT_TEXT_MAX_LENGTH = 500
"""``max_length`` of a free-text question that does not set one (characters)."""

SCALE_CODES: tuple[str, ...] = (
    "very_satisfied",
    "satisfied",
    "fairly_satisfied",
    "dissatisfied",
    "very_dissatisfied",
)
"""Option codes of the five 好差评 levels, best first."""

GOOD_RATINGS: tuple[str, ...] = SCALE_CODES[:3]
"""The 好评 levels (非常满意, 满意, 基本满意): what an indicator counts as satisfied by default."""

SCALE_WEIGHTS: Mapping[str, int] = dict(zip(SCALE_CODES, (100, 80, 60, 40, 20), strict=True))
"""Points per 好差评 level for the weighted satisfaction index."""

UNKNOWN_CODE = "unknown"
"""Option code of the "don't know" answer (不了解) of a question with ``allow_unknown``. Such
an answer is never counted in an indicator's ``n``."""

_SCALE_LABELS: tuple[tuple[str, str], ...] = (
    ("非常满意", "Very satisfied"),
    ("满意", "Satisfied"),
    ("基本满意", "Fairly satisfied"),
    ("不满意", "Dissatisfied"),
    ("非常不满意", "Very dissatisfied"),
)

_BOOL: TypeAdapter[bool] = TypeAdapter(bool)

_SURVEY_CODE_RE = re.compile(r"[A-Za-z0-9-]{1,24}")
_ITEM_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
_LOCALE_RE = re.compile(r"[a-z]{2,3}(_[A-Z][A-Za-z]{1,3})?")

QuestionType = Literal["single", "multiple", "scale", "text"]
"""``single`` choice, ``multiple`` choice, ``scale`` (rating) or free ``text``."""

TargetKind = Literal["rate", "increase"]
"""``rate``: the satisfied share must reach ``target``; ``increase``: it must rise significantly
year on year (targets worded "显著提高" with no number)."""

Audience = Literal["public", "businesses", "media", "deputies", "staff"]
"""Who a survey is for: residents, businesses, news media, NPC deputies and CPPCC members, or
government staff."""

CHOICE_TYPES: frozenset[str] = frozenset({"single", "multiple", "scale"})
"""Question types whose answers are option codes."""

RATED_TYPES: frozenset[str] = frozenset({"single", "scale"})
"""Question types an indicator may score (one option per answer)."""

OPEN_AUDIENCES: frozenset[str] = frozenset({"public", "businesses", "media"})
"""Audiences anybody may answer for. A survey for any other audience (deputies, staff) is
:attr:`Survey.invitation_only`."""


# --------------------------------------------------------------------------------------------
# Errors


PathPart = str | int


def format_path(parts: Sequence[PathPart]) -> str:
    """Render a location such as ``("questions", 2, "show_if", "question")`` as
    ``questions[2].show_if.question``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class DefinitionIssue(ValueError):
    """One or more problems found while validating a definition, each with a path relative to
    the model that raised it. Pydantic wraps it in a ``ValidationError``; the loader unwraps it
    to report exact paths."""

    def __init__(self, problems: Sequence[tuple[tuple[PathPart, ...], str]]) -> None:
        self.problems: tuple[tuple[tuple[PathPart, ...], str], ...] = tuple(problems)
        super().__init__("; ".join(f"{format_path(p) or '<root>'}: {r}" for p, r in problems))


@dataclass(frozen=True, slots=True)
class CatalogProblem:
    """One problem in a definition file: where (dotted path, YAML line if known) and why."""

    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.path or "<document>"
        return f"{where}: {self.reason}" + (f" (line {self.line})" if self.line else "")


class CatalogError(Exception):
    """A survey definition file (or catalog directory) cannot be loaded.

    ``str(error)`` has one line per problem: ``<file>: <path>: <reason> (line N)``.
    """

    def __init__(self, file: Path | str, problems: Sequence[CatalogProblem]) -> None:
        self.file = Path(file)
        self.problems: tuple[CatalogProblem, ...] = tuple(problems)
        super().__init__("\n".join(f"{self.file}: {p}" for p in self.problems))


# --------------------------------------------------------------------------------------------
# Field types


def _check_survey_code(value: str) -> str:
    if not _SURVEY_CODE_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid survey code: 1-24 characters of A-Z a-z 0-9 and '-'"
            " (no '_': it separates the parts of a chat deep link)"
        )
    return value


def _check_item_code(value: str) -> str:
    if not _ITEM_CODE_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid code: 1-40 characters of A-Z a-z 0-9 '_' '-',"
            " starting with a letter or digit"
        )
    return value


def _check_localized(value: dict[str, str]) -> dict[str, str]:
    for key, text in value.items():
        if not _LOCALE_RE.fullmatch(key):
            raise ValueError(f"{key!r} is not a locale name such as 'zh_CN' or 'en'")
        if not text.strip():
            raise ValueError(f"the {key} text is empty")
    if DEFAULT_LOCALE not in value:
        raise ValueError(f"a {DEFAULT_LOCALE} text is required")
    return value


def _check_fraction(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{value} is not a fraction in (0, 1]; write 0.80 for 80%")
    return value


SurveyCode = Annotated[str, AfterValidator(_check_survey_code)]
"""A survey code: at most 24 characters of ``A-Z a-z 0-9 -``."""

Code = Annotated[str, AfterValidator(_check_item_code)]
"""A question, option or indicator code."""

LocalizedText = Annotated[dict[str, str], AfterValidator(_check_localized)]
"""Text per locale (``zh_CN`` required, e.g. ``{"zh_CN": "…", "en": "…"}``)."""


def localized(mapping: Mapping[str, str], locale: str | None) -> str:
    """Pick the text for ``locale`` from a localized mapping.

    Tries the exact locale (``zh-CN`` and ``zh_CN`` are the same), then any text in the same
    language (``en_US`` finds ``en``, ``zh-hant`` finds ``zh_CN``), then ``zh_CN``, then the first
    text there is. An empty mapping gives ``""``.
    """
    if locale:
        wanted = locale.replace("-", "_")
        if wanted in mapping:
            return mapping[wanted]
        lowered = {key.lower(): key for key in mapping}
        if wanted.lower() in lowered:
            return mapping[lowered[wanted.lower()]]
        language = wanted.split("_", 1)[0].lower()
        for key, text in mapping.items():
            if key.split("_", 1)[0].lower() == language:
                return text
    if DEFAULT_LOCALE in mapping:
        return mapping[DEFAULT_LOCALE]
    return next(iter(mapping.values()), "")


# --------------------------------------------------------------------------------------------
# Models


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, str_strip_whitespace=True
    )


class Option(_Model):
    """A choice offered by a ``single``, ``multiple`` or ``scale`` question."""

    code: Code
    label: LocalizedText


DEFAULT_SCALE: tuple[Option, ...] = tuple(
    Option(code=code, label={"zh_CN": zh, "en": en})
    for code, (zh, en) in zip(SCALE_CODES, _SCALE_LABELS, strict=True)
)
"""The five 好差评 levels, best first; the options of a ``scale`` question that lists none."""

UNKNOWN_OPTION = Option(code=UNKNOWN_CODE, label={"zh_CN": "不了解", "en": "Don't know"})
"""The "don't know" option appended (last) to a question with ``allow_unknown: true``."""


class ShowIf(_Model):
    """Ask a question only when an earlier choice question was answered with one of ``in_``
    (YAML/JSON key ``in``); for a ``multiple`` question, when any chosen option is listed."""

    question: Code
    in_: tuple[Code, ...] = Field(alias="in", min_length=1)


def _allows_unknown(value: Any) -> bool:
    """Whether a raw ``allow_unknown`` value reads as true the way pydantic will read it."""
    try:
        return _BOOL.validate_python(value)
    except ValidationError:
        return False  # the field validation reports it


def _option_code(option: Any) -> Any:
    """The code of an option given as a model or as raw data (``None`` if it has none)."""
    if isinstance(option, Option):
        return option.code
    if isinstance(option, Mapping):
        return option.get("code")
    return None


class Question(_Model):
    """One question. ``options`` is empty for ``text``; ``max_length`` is set only for ``text``.

    ``allow_unknown`` (``scale`` and ``single`` only) appends :data:`UNKNOWN_OPTION` to the
    options unless the file already ends them with an ``unknown`` option of its own wording.
    """

    code: Code
    type: QuestionType
    text: LocalizedText
    required: bool = True
    allow_unknown: bool = False
    options: tuple[Option, ...] = ()
    max_length: int | None = Field(default=None, ge=1, le=10_000)
    show_if: ShowIf | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            if data.get("type") == "scale" and not data.get("options"):
                data["options"] = DEFAULT_SCALE
            if data.get("type") == "text" and data.get("max_length") is None:
                data["max_length"] = DEFAULT_TEXT_MAX_LENGTH
            options = data.get("options")
            if (
                _allows_unknown(data.get("allow_unknown", False))
                and data.get("type") in RATED_TYPES
                and isinstance(options, list | tuple)
                and not any(_option_code(o) == UNKNOWN_CODE for o in options)
            ):
                data["options"] = (*options, UNKNOWN_OPTION)
        return data

    @model_validator(mode="after")
    def _check(self) -> Question:
        problems: list[tuple[tuple[PathPart, ...], str]] = []
        if self.type in ("single", "multiple") and len(self.options) < 2:
            problems.append((("options",), f"a {self.type} question needs at least 2 options"))
        if self.type == "text":
            if self.options:
                problems.append((("options",), "a text question has no options"))
        elif self.max_length is not None:
            problems.append((("max_length",), "only a text question has max_length"))
        if self.allow_unknown and self.type not in RATED_TYPES:
            problems.append(
                (("allow_unknown",), 'only a scale or single question can offer "don\'t know"')
            )
        elif self.allow_unknown and (not self.options or self.options[-1].code != UNKNOWN_CODE):
            problems.append((("options",), f"the last option must be {UNKNOWN_CODE!r}"))
        seen: set[str] = set()
        last = len(self.options) - 1
        for i, option in enumerate(self.options):
            if option.code in seen:
                problems.append((("options", i, "code"), f"duplicate option code {option.code!r}"))
            seen.add(option.code)
            if option.code == UNKNOWN_CODE and self.type in RATED_TYPES:
                if not self.allow_unknown:
                    problems.append(
                        (
                            ("options", i, "code"),
                            f'{UNKNOWN_CODE!r} is reserved for "don\'t know": set'
                            " allow_unknown: true instead of listing it",
                        )
                    )
                elif i != last:
                    problems.append(
                        (("options", i, "code"), f"the {UNKNOWN_CODE!r} option must come last")
                    )
        if problems:
            raise DefinitionIssue(problems)
        return self

    @cached_property
    def option_codes(self) -> tuple[str, ...]:
        """The codes of the options, in order (computed once: the model is frozen)."""
        return tuple(option.code for option in self.options)

    def option(self, code: str) -> Option | None:
        """The option with this code, or ``None``."""
        return next((option for option in self.options if option.code == code), None)

    def to_public(self, locale: str | None = None) -> dict[str, Any]:
        """The question in the JSON shape of the public API, texts in ``locale``."""
        return {
            "code": self.code,
            "type": self.type,
            "text": localized(self.text, locale),
            "required": self.required,
            "options": [
                {"code": option.code, "label": localized(option.label, locale)}
                for option in self.options
            ],
            "max_length": self.max_length,
            "show_if": (
                {"question": self.show_if.question, "in": list(self.show_if.in_)}
                if self.show_if
                else None
            ),
        }


class Indicator(_Model):
    """A satisfaction indicator (满意度指标) scored from one or more rating questions.

    ``target`` is the share of satisfied answers to reach (0.80 for "达到80%以上") when
    ``target_kind`` is ``rate``; it is ``null`` when ``target_kind`` is ``increase`` ("显著提高").
    ``target_kind`` may be left out: it is then ``increase`` when ``target`` is null and ``rate``
    otherwise. ``target`` itself must be given (possibly as null).
    """

    code: Code
    title: LocalizedText
    questions: tuple[Code, ...] = Field(min_length=1)
    target: Annotated[float, AfterValidator(_check_fraction)] | None
    target_kind: TargetKind = "rate"
    satisfied: tuple[Code, ...] = Field(default=GOOD_RATINGS, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _derive_kind(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "target_kind" not in data and "target" in data:
            data = dict(data)
            data["target_kind"] = "increase" if data["target"] is None else "rate"
        return data

    @model_validator(mode="after")
    def _check(self) -> Indicator:
        if self.target_kind == "rate" and self.target is None:
            raise DefinitionIssue([(("target",), "a rate indicator needs a target such as 0.80")])
        if self.target_kind == "increase" and self.target is not None:
            raise DefinitionIssue(
                [(("target",), "an 'increase' indicator has no numeric target: set it to null")]
            )
        return self


class Survey(_Model):
    """A survey definition: texts, answering window, audience, questions and indicators."""

    code: SurveyCode
    title: LocalizedText
    intro: LocalizedText
    opens_at: AwareDatetime | None = None
    closes_at: AwareDatetime | None = None
    audience: Audience = "public"
    questions: tuple[Question, ...] = Field(min_length=1)
    indicators: tuple[Indicator, ...] = ()

    _by_code: dict[str, Question] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_references(self) -> Survey:
        problems: list[tuple[tuple[PathPart, ...], str]] = []
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            problems.append((("closes_at",), "must be later than opens_at"))

        earlier: dict[str, Question] = {}
        for i, question in enumerate(self.questions):
            if question.code in earlier:
                problems.append(
                    (("questions", i, "code"), f"duplicate question code {question.code!r}")
                )
            cond = question.show_if
            if cond is not None:
                qbase = ("questions", i, "show_if")
                ref = earlier.get(cond.question)
                if ref is None:
                    later = any(q.code == cond.question for q in self.questions[i:])
                    why = "is not an earlier question" if later else "is not a question"
                    problems.append(((*qbase, "question"), f"{cond.question!r} {why}"))
                elif ref.type not in CHOICE_TYPES:
                    problems.append(
                        (
                            (*qbase, "question"),
                            f"{cond.question!r} is a {ref.type} question; show_if needs a"
                            " single, multiple or scale question",
                        )
                    )
                else:
                    for j, code in enumerate(cond.in_):
                        if code not in ref.option_codes:
                            problems.append(
                                (
                                    (*qbase, "in", j),
                                    f"{code!r} is not an option of question {ref.code!r}",
                                )
                            )
            earlier.setdefault(question.code, question)

        seen_indicators: set[str] = set()
        for i, indicator in enumerate(self.indicators):
            ibase: tuple[PathPart, ...] = ("indicators", i)
            if indicator.code in seen_indicators:
                problems.append(((*ibase, "code"), f"duplicate indicator code {indicator.code!r}"))
            seen_indicators.add(indicator.code)
            for j, qcode in enumerate(indicator.questions):
                scored = earlier.get(qcode)
                if scored is None:
                    problems.append(((*ibase, "questions", j), f"{qcode!r} is not a question"))
                elif scored.type not in RATED_TYPES:
                    problems.append(
                        (
                            (*ibase, "questions", j),
                            f"{qcode!r} is a {scored.type} question; an indicator scores"
                            " scale or single questions",
                        )
                    )
                elif scored.show_if is not None:
                    problems.append(
                        (
                            (*ibase, "questions", j),
                            f"{qcode!r} has show_if; an indicator must score a question every"
                            " respondent sees",
                        )
                    )
                else:
                    for k, code in enumerate(indicator.satisfied):
                        if code == UNKNOWN_CODE:
                            problems.append(
                                (
                                    (*ibase, "satisfied", k),
                                    f"{UNKNOWN_CODE!r} (don't know) is never counted; it cannot"
                                    " count as satisfied",
                                )
                            )
                        elif code not in scored.option_codes:
                            default = "satisfied" not in indicator.model_fields_set
                            hint = (
                                " (the default is the 好评 levels of the 好差评 scale;"
                                " list satisfied options explicitly)"
                                if default
                                else ""
                            )
                            path = (*ibase, "satisfied") if default else (*ibase, "satisfied", k)
                            problems.append(
                                (path, f"{code!r} is not an option of question {qcode!r}{hint}")
                            )
        if problems:
            raise DefinitionIssue(problems)
        self._by_code = earlier
        return self

    @cached_property
    def _question_map(self) -> dict[str, Question]:
        # Plain dict lookup on the hot path (submissions); private attributes of a pydantic
        # model go through a slower __getattr__.
        return dict(self._by_code)

    def question(self, code: str) -> Question | None:
        """The question with this code, or ``None``."""
        return self._question_map.get(code)

    def indicator(self, code: str) -> Indicator | None:
        """The indicator with this code, or ``None``."""
        return next((ind for ind in self.indicators if ind.code == code), None)

    @property
    def invitation_only(self) -> bool:
        """Whether an answer needs a single-use invitation token: the audience is a closed
        group (deputies, staff) rather than one of :data:`OPEN_AUDIENCES`."""
        return self.audience not in OPEN_AUDIENCES

    def is_open(self, now: datetime) -> bool:
        """Whether answers are accepted at ``now`` (timezone-aware): ``opens_at <= now <
        closes_at``, an unset bound being no limit. Whether an operator closed the survey by
        hand is stored elsewhere."""
        if self.opens_at is not None and now < self.opens_at:
            return False
        return self.closes_at is None or now < self.closes_at

    def to_public(self, locale: str | None = None) -> dict[str, Any]:
        """The definition in the JSON shape of ``GET /api/v1/surveys/{survey}``."""
        return {
            "code": self.code,
            "title": localized(self.title, locale),
            "intro": localized(self.intro, locale),
            "opens_at": self.opens_at.isoformat() if self.opens_at else None,
            "closes_at": self.closes_at.isoformat() if self.closes_at else None,
            "audience": self.audience,
            "invitation_only": self.invitation_only,
            "questions": [question.to_public(locale) for question in self.questions],
        }


# --------------------------------------------------------------------------------------------
# Loading YAML


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """Safe loader (libyaml when available) that rejects duplicate mapping keys instead of
    keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in result
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"unhashable key {key!r}", key_node.start_mark
            ) from exc
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _line_of(root: yaml.Node | None, parts: Sequence[PathPart]) -> int | None:
    """The 1-based line of the YAML node deepest along ``parts``."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in parts:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == part:
                    child = value_node
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _problems(error: ValidationError) -> Iterator[tuple[tuple[PathPart, ...], str]]:
    for err in error.errors():
        loc = tuple(part for part in err["loc"] if isinstance(part, str | int))
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, DefinitionIssue):
            for path, reason in cause.problems:
                yield (*loc, *path), reason
            continue
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "string_type" and isinstance(err.get("input"), bool | int | float):
            message += " (YAML read an unquoted yes/no/number; put it in quotes)"
        yield loc, message


def load_survey_file(path: str | Path) -> Survey:
    """Read and validate one survey definition (YAML). Raises :class:`CatalogError`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(file, [CatalogProblem("", f"cannot read the file: {exc}")]) from exc
    try:
        root = yaml.compose(text, Loader=_StrictLoader)
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = f"invalid YAML: {getattr(exc, 'problem', None) or exc}"
        line = mark.line + 1 if mark is not None else None
        raise CatalogError(file, [CatalogProblem("", reason, line)]) from exc
    if not isinstance(data, dict):
        raise CatalogError(
            file, [CatalogProblem("", "the file must hold one mapping (code: …, title: …)")]
        )
    try:
        return Survey.model_validate(data)
    except ValidationError as exc:
        problems = [
            CatalogProblem(format_path(loc), reason, _line_of(root, loc))
            for loc, reason in _problems(exc)
        ]
        raise CatalogError(file, problems) from exc


def default_catalog_dir() -> Path:
    """The directory of the survey definitions shipped with the product."""
    return Path(__file__).resolve().parent / "catalog"


def load_catalog(directory: str | Path | None = None) -> dict[str, Survey]:
    """Load every ``*.yaml`` / ``*.yml`` file in ``directory`` (default: the shipped catalog),
    in file-name order, as ``{survey code: Survey}``.

    Raises :class:`CatalogError` for the first broken file, for two files defining the same
    survey code, or when ``directory`` is not a directory.
    """
    folder = Path(directory) if directory is not None else default_catalog_dir()
    if not folder.is_dir():
        raise CatalogError(folder, [CatalogProblem("", "not a directory")])
    surveys: dict[str, Survey] = {}
    origin: dict[str, Path] = {}
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for file in files:
        survey = load_survey_file(file)
        if survey.code in surveys:
            raise CatalogError(
                file,
                [
                    CatalogProblem(
                        "code",
                        f"survey {survey.code!r} is already defined in {origin[survey.code].name}",
                    )
                ],
            )
        surveys[survey.code] = survey
        origin[survey.code] = file
    return surveys
