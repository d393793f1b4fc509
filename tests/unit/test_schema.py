"""Survey definitions: the shipped catalog, validation of broken files, localization."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from surveys.schema import (
    DEFAULT_TEXT_MAX_LENGTH,
    GOOD_RATINGS,
    SCALE_CODES,
    UNKNOWN_CODE,
    CatalogError,
    Survey,
    default_catalog_dir,
    load_catalog,
    load_survey_file,
    localized,
)

FAZHI = default_catalog_dir() / "fazhi-2026.yaml"

# Indicator titles exactly as in FACTS.md §1 / the seed gazette.
FAZHI_INDICATORS: dict[str, tuple[str, float | None]] = {
    "business_env": ("社会公众对政府法治化营商环境满意度", 0.80),
    "public_service": ("社会公众对公共服务总体满意度", 0.80),
    "major_decisions": ("人民群众对重大行政决策的满意度", 0.80),
    "law_enforcement": ("对行政执法的社会满意度", None),
    "oversight": ("新闻媒体、社会公众对行政机关接受监督工作的总体满意度", 0.80),
    "info_disclosure": ("社会公众对政府信息公开的总体满意度", 0.90),
    "dispute_resolution": ("人民群众对行政机关化解社会矛盾纠纷工作的总体满意度", 0.80),
    "rule_of_law_overall": ("社会公众对法治政府建设工作总体满意度", 0.80),
}


def fazhi_data() -> dict[str, Any]:
    """The shipped fazhi-2026 definition as plain data, to be broken by a test."""
    return yaml.safe_load(FAZHI.read_text(encoding="utf-8"))


def minimal(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "t1",
        "title": {"zh_CN": "测试", "en": "Test"},
        "intro": {"zh_CN": "说明", "en": "Intro"},
        "questions": [
            {"code": "q1", "type": "scale", "text": {"zh_CN": "满意吗？", "en": "Satisfied?"}},
            {
                "code": "q2",
                "type": "single",
                "text": {"zh_CN": "选一个", "en": "Pick one"},
                "options": [
                    {"code": "a", "label": {"zh_CN": "甲", "en": "A"}},
                    {"code": "b", "label": {"zh_CN": "乙", "en": "B"}},
                ],
            },
            {"code": "q3", "type": "text", "required": False, "text": {"zh_CN": "意见"}},
        ],
        "indicators": [
            {"code": "i1", "title": {"zh_CN": "指标"}, "questions": ["q1"], "target": 0.8}
        ],
    }
    data.update(overrides)
    return data


def write(tmp_path: Path, data: Any, name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def expect_error(path: Path, inner: str, reason: str) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        load_survey_file(path)
    message = str(info.value)
    assert str(path) in message
    assert f": {inner}: " in message, message
    assert reason in message, message
    assert info.value.file == path
    assert any(p.path == inner for p in info.value.problems)
    return info.value


# ------------------------------------------------------------------------------------------
# The shipped catalog


def test_shipped_catalog_loads_both_surveys() -> None:
    catalog = load_catalog()
    assert set(catalog) == {"fazhi-2026", "deputies-2026"}
    assert catalog["fazhi-2026"].audience == "public"
    assert catalog["deputies-2026"].audience == "deputies"


def test_fazhi_covers_every_public_indicator_with_exact_titles_and_targets() -> None:
    survey = load_survey_file(FAZHI)
    found = {ind.code: (ind.title["zh_CN"], ind.target) for ind in survey.indicators}
    assert found == FAZHI_INDICATORS
    law = survey.indicator("law_enforcement")
    assert law is not None and law.target_kind == "increase"
    for indicator in survey.indicators:
        assert indicator.satisfied == GOOD_RATINGS
        (qcode,) = indicator.questions
        question = survey.question(qcode)
        assert question is not None and question.type == "scale"
        # the five 好差评 levels, then "don't know" for residents who never dealt with it
        assert question.allow_unknown
        assert question.option_codes == (*SCALE_CODES, UNKNOWN_CODE)
        assert question.options[-1].label == {"zh_CN": "不了解", "en": "Don't know"}
        assert question.required


def test_fazhi_is_short_and_optional_extras_are_optional() -> None:
    survey = load_survey_file(FAZHI)
    assert len(survey.questions) <= 10
    assert "township" not in {q.code for q in survey.questions}
    extras = [q for q in survey.questions if q.type != "scale"]
    assert {q.type for q in extras} == {"multiple", "text"}
    assert all(not q.required for q in extras)
    comment = survey.question("comment")
    assert comment is not None and comment.max_length == 300


def test_deputies_survey_has_follow_up_on_dissatisfaction() -> None:
    survey = load_catalog()["deputies-2026"]
    (indicator,) = survey.indicators
    assert indicator.code == "deputies_proposals"
    assert indicator.title["zh_CN"] == "人大代表、政协委员对意见建议办理后的满意度"
    assert indicator.target == 0.95
    handling = survey.question("handling")
    # a deputy knows how their own suggestion was handled: no "don't know"
    assert handling is not None and not handling.allow_unknown
    assert handling.option_codes == SCALE_CODES
    follow_up = [q for q in survey.questions if q.show_if is not None]
    assert len(follow_up) == 1
    assert follow_up[0].type == "multiple"
    assert set(follow_up[0].show_if.in_) == {"dissatisfied", "very_dissatisfied"}  # type: ignore[union-attr]


def _texts(node: Any, path: str = "") -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []
    if isinstance(node, dict):
        if "zh_CN" in node:
            found.append((path, node))
        for key, value in node.items():
            found.extend(_texts(value, f"{path}.{key}"))
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            found.extend(_texts(value, f"{path}[{i}]"))
    return found


@pytest.mark.parametrize("name", ["fazhi-2026.yaml", "deputies-2026.yaml"])
def test_every_shipped_text_has_chinese_and_english(name: str) -> None:
    survey = load_survey_file(default_catalog_dir() / name)
    texts = _texts(survey.model_dump(by_alias=True))
    assert len(texts) > 10
    missing = [path for path, text in texts if not text.get("en") or not text.get("zh_CN")]
    assert missing == []


def test_shipped_surveys_are_open_through_2026() -> None:
    for survey in load_catalog().values():
        assert survey.is_open(datetime(2026, 6, 1, tzinfo=UTC))
        assert not survey.is_open(datetime(2025, 12, 31, 15, 0, tzinfo=UTC))  # 23:00 in Beijing
        assert not survey.is_open(datetime(2027, 1, 1, 0, 0, tzinfo=UTC))


# ------------------------------------------------------------------------------------------
# Defaults and helpers


def test_defaults_scale_options_text_length_and_target_kind() -> None:
    survey = Survey.model_validate(minimal())
    q1, _q2, q3 = survey.questions
    assert q1.option_codes == SCALE_CODES
    assert [o.label["zh_CN"] for o in q1.options] == [
        "非常满意",
        "满意",
        "基本满意",
        "不满意",
        "非常不满意",
    ]
    assert q1.max_length is None
    assert q3.max_length == DEFAULT_TEXT_MAX_LENGTH == 500
    assert q3.options == ()
    assert survey.indicators[0].target_kind == "rate"
    assert survey.audience == "public"


def test_null_target_means_increase() -> None:
    data = minimal()
    data["indicators"][0]["target"] = None
    survey = Survey.model_validate(data)
    assert survey.indicators[0].target_kind == "increase"


def test_to_public_shape_is_localized() -> None:
    survey = Survey.model_validate(minimal())
    data = survey.to_public("en")
    assert set(data) >= {"code", "title", "intro", "questions"}
    assert data["title"] == "Test"
    q2 = data["questions"][1]
    assert set(q2) == {"code", "type", "text", "required", "options", "max_length", "show_if"}
    assert q2["options"] == [{"code": "a", "label": "A"}, {"code": "b", "label": "B"}]
    # q3 has no English text: falls back to Chinese
    assert data["questions"][2]["text"] == "意见"


def test_show_if_serializes_with_in_key() -> None:
    survey = load_catalog()["deputies-2026"]
    public = survey.to_public("zh_CN")
    shown = [q["show_if"] for q in public["questions"] if q["show_if"]]
    assert shown == [{"question": "handling", "in": ["dissatisfied", "very_dissatisfied"]}]


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "Hello"),
        ("en_US", "Hello"),
        ("en-GB", "Hello"),
        ("zh_CN", "你好"),
        ("zh-CN", "你好"),
        ("zh-hans", "你好"),
        ("zh_TW", "你好"),
        ("fr", "你好"),
        (None, "你好"),
        ("", "你好"),
    ],
)
def test_localized_falls_back_to_zh_cn(locale: str | None, expected: str) -> None:
    assert localized({"zh_CN": "你好", "en": "Hello"}, locale) == expected


def test_localized_edge_cases() -> None:
    assert localized({}, "en") == ""
    assert localized({"en": "only"}, "de") == "only"


def test_direct_construction_validates_too() -> None:
    data = minimal()
    data["questions"][1]["show_if"] = {"question": "q9", "in": ["x"]}
    with pytest.raises(ValidationError, match=r"questions\[1\]\.show_if\.question"):
        Survey.model_validate(data)


def test_models_are_frozen() -> None:
    survey = Survey.model_validate(minimal())
    with pytest.raises(ValidationError):
        survey.code = "other"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------
# Broken files: the error names file, inner path and reason


def test_show_if_to_a_later_question(tmp_path: Path) -> None:
    data = fazhi_data()
    data["questions"][2]["show_if"] = {"question": "info_disclosure", "in": ["satisfied"]}
    expect_error(write(tmp_path, data), "questions[2].show_if.question", "not an earlier question")


def test_show_if_to_an_unknown_question(tmp_path: Path) -> None:
    data = fazhi_data()
    data["questions"][2]["show_if"] = {"question": "nope", "in": ["satisfied"]}
    expect_error(write(tmp_path, data), "questions[2].show_if.question", "is not a question")


def test_show_if_to_a_text_question(tmp_path: Path) -> None:
    data = minimal()
    data["questions"].append(
        {
            "code": "q4",
            "type": "scale",
            "text": {"zh_CN": "x"},
            "show_if": {"question": "q3", "in": ["a"]},
        }
    )
    expect_error(write(tmp_path, data), "questions[3].show_if.question", "text question")


def test_show_if_with_unknown_option(tmp_path: Path) -> None:
    data = minimal()
    data["questions"][2]["show_if"] = {"question": "q2", "in": ["a", "zz"]}
    expect_error(write(tmp_path, data), "questions[2].show_if.in[1]", "'zz' is not an option")


def test_show_if_with_empty_in(tmp_path: Path) -> None:
    data = minimal()
    data["questions"][2]["show_if"] = {"question": "q2", "in": []}
    expect_error(write(tmp_path, data), "questions[2].show_if.in", "at least 1")


def test_indicator_with_unknown_question(tmp_path: Path) -> None:
    data = fazhi_data()
    data["indicators"][3]["questions"] = ["law_enforcement", "ghost"]
    expect_error(write(tmp_path, data), "indicators[3].questions[1]", "'ghost' is not a question")


@pytest.mark.parametrize("qcode", ["channels", "comment"])
def test_indicator_scoring_a_non_rating_question(tmp_path: Path, qcode: str) -> None:
    data = fazhi_data()
    data["indicators"][0]["questions"] = [qcode]
    expect_error(write(tmp_path, data), "indicators[0].questions[0]", "scale or single")


def test_indicator_scoring_a_conditional_question(tmp_path: Path) -> None:
    data = minimal()
    data["questions"][0]["show_if"] = None
    data["questions"].append(
        {
            "code": "q4",
            "type": "scale",
            "text": {"zh_CN": "x"},
            "show_if": {"question": "q2", "in": ["a"]},
        }
    )
    data["indicators"][0]["questions"] = ["q4"]
    expect_error(write(tmp_path, data), "indicators[0].questions[0]", "show_if")


def test_indicator_with_unknown_satisfied_code(tmp_path: Path) -> None:
    data = fazhi_data()
    data["indicators"][1]["satisfied"] = ["very_satisfied", "happy"]
    expect_error(write(tmp_path, data), "indicators[1].satisfied[1]", "'happy' is not an option")


def test_default_satisfied_on_custom_options_needs_explicit_list(tmp_path: Path) -> None:
    data = minimal()
    data["indicators"][0]["questions"] = ["q2"]
    expect_error(write(tmp_path, data), "indicators[0].satisfied", "list satisfied options")
    data["indicators"][0]["satisfied"] = ["a"]
    assert load_survey_file(write(tmp_path, data, "fixed.yaml")).indicators[0].satisfied == ("a",)


def test_duplicate_codes(tmp_path: Path) -> None:
    data = fazhi_data()
    data["questions"][1]["code"] = "business_env"
    expect_error(write(tmp_path, data), "questions[1].code", "duplicate question code")
    data = fazhi_data()
    data["indicators"][2]["code"] = "business_env"
    expect_error(write(tmp_path, data), "indicators[2].code", "duplicate indicator code")
    data = minimal()
    data["questions"][1]["options"][1]["code"] = "a"
    expect_error(write(tmp_path, data), "questions[1].options[1].code", "duplicate option code")


@pytest.mark.parametrize("code", ["fazhi_2026", "a" * 25, "", "法治"])
def test_bad_survey_codes(tmp_path: Path, code: str) -> None:
    data = fazhi_data()
    data["code"] = code
    expect_error(write(tmp_path, data), "code", "not a valid survey code")


def test_survey_code_of_24_characters_is_fine(tmp_path: Path) -> None:
    data = fazhi_data()
    data["code"] = "A-z0" * 6
    assert load_survey_file(write(tmp_path, data)).code == "A-z0" * 6


def test_missing_chinese_text(tmp_path: Path) -> None:
    data = fazhi_data()
    data["questions"][4]["text"] = {"en": "only English"}
    expect_error(write(tmp_path, data), "questions[4].text", "zh_CN text is required")


def test_bad_locale_key_and_empty_text(tmp_path: Path) -> None:
    data = fazhi_data()
    data["title"]["EN!"] = "x"
    expect_error(write(tmp_path, data), "title", "not a locale name")
    data = fazhi_data()
    data["intro"]["en"] = "   "
    expect_error(write(tmp_path, data), "intro", "the en text is empty")


def test_misspelt_field(tmp_path: Path) -> None:
    data = fazhi_data()
    data["questions"][8]["requried"] = False
    expect_error(write(tmp_path, data), "questions[8].requried", "Extra inputs are not permitted")


def test_unknown_question_type(tmp_path: Path) -> None:
    data = fazhi_data()
    data["questions"][0]["type"] = "rating"
    expect_error(
        write(tmp_path, data), "questions[0].type", "'single', 'multiple', 'scale' or 'text'"
    )


def test_text_question_with_options(tmp_path: Path) -> None:
    data = minimal()
    data["questions"][2]["options"] = data["questions"][1]["options"]
    expect_error(write(tmp_path, data), "questions[2].options", "has no options")


def test_max_length_on_a_choice_question(tmp_path: Path) -> None:
    data = minimal()
    data["questions"][1]["max_length"] = 10
    expect_error(write(tmp_path, data), "questions[1].max_length", "only a text question")


def test_single_question_with_one_option(tmp_path: Path) -> None:
    data = minimal()
    data["questions"][1]["options"] = data["questions"][1]["options"][:1]
    expect_error(write(tmp_path, data), "questions[1].options", "at least 2 options")


def test_rate_indicator_without_target(tmp_path: Path) -> None:
    data = fazhi_data()
    data["indicators"][0]["target"] = None
    data["indicators"][0]["target_kind"] = "rate"
    expect_error(write(tmp_path, data), "indicators[0].target", "needs a target")


def test_increase_indicator_with_target(tmp_path: Path) -> None:
    data = fazhi_data()
    data["indicators"][3]["target"] = 0.8
    expect_error(write(tmp_path, data), "indicators[3].target", "set it to null")


def test_missing_target(tmp_path: Path) -> None:
    data = fazhi_data()
    del data["indicators"][5]["target"]
    expect_error(write(tmp_path, data), "indicators[5].target", "Field required")


def test_target_as_percentage(tmp_path: Path) -> None:
    data = fazhi_data()
    data["indicators"][5]["target"] = 90
    expect_error(write(tmp_path, data), "indicators[5].target", "write 0.80 for 80%")
    data["indicators"][5]["target"] = 0
    expect_error(write(tmp_path, data), "indicators[5].target", "not a fraction")


def test_window_closing_before_opening(tmp_path: Path) -> None:
    data = fazhi_data()
    data["closes_at"] = data["opens_at"]
    expect_error(write(tmp_path, data), "closes_at", "later than opens_at")


def test_naive_datetime_is_rejected(tmp_path: Path) -> None:
    data = fazhi_data()
    data["opens_at"] = "2026-01-01T00:00:00"
    expect_error(write(tmp_path, data), "opens_at", "timezone")


def test_unknown_audience(tmp_path: Path) -> None:
    data = fazhi_data()
    data["audience"] = "everyone"
    expect_error(write(tmp_path, data), "audience", "'public'")


def test_unquoted_yaml_boolean_option_code_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "yesno.yaml"
    text = yaml.safe_dump(minimal(), allow_unicode=True, sort_keys=False)
    path.write_text(text.replace("code: a\n", "code: yes\n"), encoding="utf-8")
    expect_error(path, "questions[1].options[0].code", "put it in quotes")


def test_no_questions(tmp_path: Path) -> None:
    data = fazhi_data()
    data["questions"] = []
    data["indicators"] = []
    expect_error(write(tmp_path, data), "questions", "at least 1")


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    data = fazhi_data()
    data["code"] = "bad_code"
    data["audience"] = "everyone"
    error = expect_error(write(tmp_path, data), "code", "survey code")
    assert {p.path for p in error.problems} == {"code", "audience"}
    assert len(str(error).splitlines()) == 2


SHOW_IF_YAML = """\
code: lines
title: {zh_CN: 标题}
intro: {zh_CN: 说明}
questions:
  - code: first
    type: scale
    text: {zh_CN: 一}
  - code: second
    type: text
    text: {zh_CN: 二}
    show_if:
      question: third
      in: [satisfied]
  - code: third
    type: scale
    text: {zh_CN: 三}
"""


def test_error_reports_the_yaml_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.yaml"
    path.write_text(SHOW_IF_YAML, encoding="utf-8")
    error = expect_error(path, "questions[1].show_if.question", "not an earlier question")
    line = SHOW_IF_YAML.splitlines().index("      question: third") + 1
    assert error.problems[0].line == line
    assert f"(line {line})" in str(error)


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("code: x\ntitle: {zh_CN: 标题\nquestions: []\n", encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_survey_file(path)
    assert str(path) in str(info.value)
    assert "invalid YAML" in str(info.value)
    assert info.value.problems[0].line is not None


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(SHOW_IF_YAML + "code: again\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="duplicate key 'code'") as info:
        load_survey_file(path)
    assert info.value.problems[0].line == SHOW_IF_YAML.count("\n") + 1


def test_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="must hold one mapping"):
        load_survey_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read the file"):
        load_survey_file(tmp_path / "absent.yaml")


# ------------------------------------------------------------------------------------------
# Catalog directories


def test_load_catalog_from_a_directory(tmp_path: Path) -> None:
    write(tmp_path, fazhi_data(), "a.yaml")
    other = copy.deepcopy(minimal())
    write(tmp_path, other, "b.yml")
    (tmp_path / "notes.txt").write_text("not a survey", encoding="utf-8")
    assert set(load_catalog(tmp_path)) == {"fazhi-2026", "t1"}


def test_load_catalog_rejects_a_duplicate_survey_code(tmp_path: Path) -> None:
    write(tmp_path, fazhi_data(), "a.yaml")
    second = write(tmp_path, fazhi_data(), "b.yaml")
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    assert info.value.file == second
    assert "already defined in a.yaml" in str(info.value)


def test_load_catalog_names_the_broken_file(tmp_path: Path) -> None:
    write(tmp_path, fazhi_data(), "a.yaml")
    data = minimal()
    data["indicators"][0]["questions"] = ["q9"]
    broken = write(tmp_path, data, "b.yaml")
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    assert info.value.file == broken
    assert "indicators[0].questions[0]" in str(info.value)


def test_load_catalog_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not a directory"):
        load_catalog(tmp_path / "nowhere")
    assert load_catalog(tmp_path) == {}


# ------------------------------------------------------------------------------------------
# "Don't know" (allow_unknown)


def test_allow_unknown_defaults_to_false() -> None:
    survey = Survey.model_validate(minimal())
    q1, q2, _q3 = survey.questions
    assert not q1.allow_unknown and UNKNOWN_CODE not in q1.option_codes
    assert not q2.allow_unknown and q2.option_codes == ("a", "b")


def test_allow_unknown_appends_dont_know_last() -> None:
    data = minimal()
    data["questions"][0]["allow_unknown"] = True
    data["questions"][1]["allow_unknown"] = True
    survey = Survey.model_validate(data)
    q1, q2, _q3 = survey.questions
    assert q1.option_codes == (*SCALE_CODES, "unknown")
    assert q2.option_codes == ("a", "b", "unknown")
    assert localized(q1.options[-1].label, "en") == "Don't know"
    assert localized(q1.options[-1].label, "zh_CN") == "不了解"
    public = survey.to_public("en")["questions"][0]["options"]
    assert public[-1] == {"code": "unknown", "label": "Don't know"}
    # the indicator's default satisfied codes are still the 好评 levels
    assert survey.indicators[0].satisfied == GOOD_RATINGS


def test_allow_unknown_survives_a_round_trip() -> None:
    data = minimal()
    data["questions"][0]["allow_unknown"] = True
    survey = Survey.model_validate(data)
    again = Survey.model_validate(survey.model_dump(by_alias=True))
    assert again == survey
    assert again.questions[0].option_codes.count(UNKNOWN_CODE) == 1


def test_allow_unknown_with_own_wording() -> None:
    data = minimal()
    q2 = data["questions"][1]
    q2["allow_unknown"] = True
    q2["options"].append(
        {"code": "unknown", "label": {"zh_CN": "没有接触过", "en": "Never dealt with it"}}
    )
    survey = Survey.model_validate(data)
    assert survey.questions[1].option_codes == ("a", "b", "unknown")
    assert survey.questions[1].options[-1].label["zh_CN"] == "没有接触过"


def test_allow_unknown_on_a_text_question(tmp_path: Path) -> None:
    data = minimal()
    data["questions"][2]["allow_unknown"] = True
    expect_error(write(tmp_path, data), "questions[2].allow_unknown", "scale or single")


def test_allow_unknown_on_a_multiple_question(tmp_path: Path) -> None:
    data = fazhi_data()
    data["questions"][8]["allow_unknown"] = True
    expect_error(write(tmp_path, data), "questions[8].allow_unknown", "scale or single")


def test_unknown_option_without_allow_unknown(tmp_path: Path) -> None:
    data = minimal()
    data["questions"][1]["options"].append({"code": "unknown", "label": {"zh_CN": "不知道"}})
    expect_error(write(tmp_path, data), "questions[1].options[2].code", "allow_unknown: true")


def test_unknown_option_not_last(tmp_path: Path) -> None:
    data = minimal()
    q2 = data["questions"][1]
    q2["allow_unknown"] = True
    q2["options"].insert(0, {"code": "unknown", "label": {"zh_CN": "不知道"}})
    expect_error(write(tmp_path, data), "questions[1].options[0].code", "must come last")


def test_dont_know_cannot_count_as_satisfied(tmp_path: Path) -> None:
    data = fazhi_data()
    data["indicators"][0]["satisfied"] = ["very_satisfied", "unknown"]
    expect_error(write(tmp_path, data), "indicators[0].satisfied[1]", "never counted")


def test_show_if_may_follow_dont_know() -> None:
    data = minimal()
    data["questions"][0]["allow_unknown"] = True
    data["questions"][2]["show_if"] = {"question": "q1", "in": ["unknown"]}
    survey = Survey.model_validate(data)
    assert survey.questions[2].show_if is not None
