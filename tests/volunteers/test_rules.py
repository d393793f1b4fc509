"""The pure checks shared by /register and the importers: mobile numbers (phonenumbers), names,
genders, backgrounds (FACTS §4 wording), village fields, masking."""

from __future__ import annotations

import pytest

from bot.volunteers.rules import (
    BACKGROUNDS,
    Problem,
    mask_mobile,
    mask_name,
    parse_background,
    parse_code,
    parse_gender,
    parse_mobile,
    parse_name,
    parse_poor,
    parse_village_kind,
    township_kind,
)
from core.i18n import translator


@pytest.mark.parametrize(
    "typed",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "8613812345678",
        "１３８１２３４５６７８",
        "(138)12345678",
    ],
)
def test_mainland_mobile_numbers_are_accepted(typed: str) -> None:
    assert parse_mobile(typed) == "13812345678"


@pytest.mark.parametrize(
    ("typed", "english"),
    [
        ("", "The mobile number is empty."),
        ("0951-5012345", "0951-5012345 looks like a landline"),
        ("+852 9123 4567", "+852 9123 4567 is not a mainland China number"),
        ("1381234567", "A mobile number has 11 digits; 1381234567 has 10."),
        ("138123456789", "A mobile number has 11 digits; 138123456789 has 12."),
        ("12345678901", "12345678901 is not a mobile number in use in mainland China"),
        ("138abc", "“138abc” is not a phone number"),
        ("1.38123E+10", "“1.38123E+10” looks like a number Excel shortened"),
    ],
)
def test_bad_mobile_numbers_say_why(typed: str, english: str) -> None:
    problem = parse_mobile(typed)
    assert isinstance(problem, Problem)
    assert problem.render(translator("en")).startswith(english)
    assert problem.render(translator("zh_CN")) != problem.render(translator("en"))


def test_masking() -> None:
    assert mask_mobile("13812341234") == "138****1234"
    assert (mask_name("张三"), mask_name("马秀兰"), mask_name("欧阳娜娜")) == (
        "张*",
        "马*兰",
        "欧**娜",
    )


def test_names() -> None:
    assert parse_name("  张 三 ") == "张 三"
    assert parse_name("阿依古丽•买买提") == "阿依古丽·买买提"
    assert parse_name("Ma Wen") == "Ma Wen"
    for bad in ("", "张", "张3", "张@三", "张" * 31):
        assert isinstance(parse_name(bad), Problem), bad


def test_genders() -> None:
    assert [parse_gender(x) for x in ("男", "女", "M", "female", " 男性 ")] == [
        "m",
        "f",
        "m",
        "f",
        "m",
    ]
    assert isinstance(parse_gender("未知"), Problem)


def test_backgrounds_use_the_wording_of_the_plan() -> None:
    zh = translator("zh_CN")
    # FACTS §4: the four stressed, the four also named, then other
    assert [b.zh for b in BACKGROUNDS] == [
        "村“两委”班子成员",
        "人民调解员",
        "网格员",
        "村民小组长",
        "村干部",
        "党员",
        "致富带头人",
        "乡贤",
        "其他",
    ]
    for background in BACKGROUNDS:
        assert zh._(background.label) == background.zh
        assert parse_background(background.zh) == (background.code, "")
        assert parse_background(background.label) == (background.code, "")
    for typed in ('村"两委"班子成员', "村两委班子成员", "村“两委”班子成员 "):
        assert parse_background(typed) == ("committee", "")
    assert parse_background("其他：退休教师") == ("other", "退休教师")
    assert parse_background("其它(老党员)") == ("other", "老党员")
    problem = parse_background("村长")
    assert isinstance(problem, Problem) and "人民调解员" in problem.render(zh)


def test_village_fields() -> None:
    assert parse_code("640105100201") == "640105100201"
    assert parse_code("640105100201.0") == "640105100201"  # a number cell from a sheet
    assert isinstance(parse_code("6.40105E+11"), Problem)
    assert isinstance(parse_code("zbp 01"), Problem)
    assert [parse_poor(x) for x in ("是", "否", "1", "0", "Y", "n", "TRUE", "")] == [
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
    ]
    assert isinstance(parse_poor("也许"), Problem)
    assert parse_village_kind("社区", "x") == "community"
    assert parse_village_kind("", "团结村") == "village"
    assert parse_village_kind("", "文萃社区") == "community"
    assert isinstance(parse_village_kind("", "团结"), Problem)
    assert (township_kind("文昌路街道"), township_kind("镇北堡镇")) == ("street", "town")
