"""``/register``: township staff register 法律明白人 (village legal liaisons) in chat.

Only an account bound as township staff (``pufa invite staff --township CODE``, then
``/bind CODE``) may use it, and only for its own township: every step looks the village or
liaison up again within the account's township, so a button from an earlier binding or a
village code of another township finds nothing. Everyone else gets a polite refusal.

The conversation:

1. the township's villages, each with its count and target (⚠ when short), a page at a time;
   typing part of a name searches (``/register 昊苑`` too);
2. a village: register a new liaison, or list its liaisons;
3. registering: name, gender, mobile number (a mainland mobile number, checked with
   ``phonenumbers``; a bad one is explained and asked again), background (FACTS §4, or other
   with a few words); then the personal-information notice (what is kept, why, who sees it),
   a summary, and *Save* — nothing is stored before that;
4. the list shows numbers masked (138****1234); a liaison can be edited field by field or
   removed with a reason.

The details typed so far live in the conversation state sealed (:mod:`core.crypto`), so no
name or number is ever stored in plain text, not even half-way. Every button of this flow uses
the action letter ``v`` with a sub-action in its argument.
"""

from __future__ import annotations

from typing import Any

from bot.volunteers.rules import (
    BACKGROUNDS,
    GENDER_LABELS,
    KIND_LABELS,
    OTHER,
    Problem,
    background_label,
    gender_label,
    mask_mobile,
    parse_background,
    parse_gender,
    parse_mobile,
    parse_name,
    parse_note,
)
from bot.volunteers.store import (
    Keys,
    Liaison,
    LiaisonData,
    VillageCount,
    add_liaison,
    count_in_village,
    find_duplicate,
    get_liaison,
    get_township,
    list_liaisons,
    remove_liaison,
    search_villages,
    township_villages,
    update_liaison,
    village_in_township,
)
from core.dialog import BAD_BUTTON, DialogRegistry, Step
from core.i18n import N_
from storage.models import Township, Village

__all__ = ["ACTION", "FLOW", "RegisterFlow", "install"]

FLOW = "register"
ACTION = "v"
PAGE = 8
MAX_LISTED = 30
REASON_MAX = 100
REASONS = (N_("moved away"), N_("no longer serving"), N_("registered by mistake"))
STEPS = 4

REFUSAL = N_(
    "Registering legal liaisons (法律明白人) is for township staff. If you work for a township"
    " or street office, ask the district Justice Bureau (司法局) for an invite code and send"
    " /bind CODE. Send /help to see what else I can do."
)
NOTICE = N_(
    "Personal information notice: pufa keeps this liaison's name, gender, mobile number,"
    " background and village, to contact them for the 法律明白人 programme and to count"
    " coverage (at least 2 per village, 3 per poor village). The name and number are stored"
    " encrypted. Only your township's staff and the district Justice Bureau (司法局) can see"
    " them; lists and exports show the number masked. Please make sure the person has been"
    " told and agrees; they may ask at any time for their record to be corrected or removed."
)


def _keys(step: Step) -> Keys:
    return Keys(step.runtime.secret)


def _sep(step: Step) -> str:
    return "" if step.locale == "zh_CN" else " "


class RegisterFlow:
    """The registration conversation (see the module docstring)."""

    name = FLOW

    def title(self, step: Step) -> str:
        """What the conversation is about."""
        return step._("registering legal liaisons (法律明白人)")

    async def on_text(self, step: Step, text: str) -> None:
        """Typed text: a search, or the answer to the current question."""
        town = await _staff_township(step)
        if town is None:
            return
        stage = step.state.get("st")
        if stage in ("name", "edit_name"):
            await _got_name(step, town, text)
        elif stage in ("gender", "edit_gender"):
            gender = parse_gender(text)
            if isinstance(gender, Problem):
                step.say(gender.render(step.t))
                await self.prompt(step)
            else:
                await _got_gender(step, town, gender)
        elif stage in ("mobile", "edit_mobile"):
            await _got_mobile(step, town, text)
        elif stage in ("background", "edit_background"):
            found = parse_background(text)
            if isinstance(found, Problem):
                step.say(found.render(step.t))
                await self.prompt(step)
            else:
                await _got_background(step, town, *found)
        elif stage in ("note", "edit_note"):
            await _got_note(step, town, text)
        elif stage == "reason":
            reason = " ".join(text.split())[:REASON_MAX]
            step.update(st="remove", r=_keys(step).draft.seal(reason))
            await self.prompt(step)
        elif stage in ("confirm", "remove"):
            step.say(step._("Please use one of the buttons above."))
        else:
            await _search(step, town, text)

    async def on_button(self, step: Step, action: str, arg: str) -> None:
        """A button of this flow: ``v`` with a sub-action letter and value in ``arg``."""
        town = await _staff_township(step)
        if town is None:
            return
        if action != ACTION or not arg:
            step.say(step._(BAD_BUTTON))
            return
        sub, value = arg[0], arg[1:]
        handler = _BUTTONS.get(sub)
        if handler is None:
            step.say(step._(BAD_BUTTON))
            return
        await handler(step, town, value)

    async def prompt(self, step: Step) -> None:
        """Show where the conversation stands."""
        town = await _staff_township(step)
        if town is None:
            return
        stage = step.state.get("st", "villages")
        await _PROMPTS.get(stage, _show_villages)(step, town)

    async def restart(self, step: Step) -> None:
        """Back to the village list."""
        town = await _staff_township(step)
        if town is None:
            return
        step.update(st="villages", pg=0, d={}, e=None)
        await _show_villages(step, town)


# ---------------------------------------------------------------------------------- access


async def _staff_township(step: Step) -> Township | None:
    """The township of a staff account; otherwise a polite refusal (and the flow closed)."""
    person = step.person
    town = None
    if person.role == "staff" and person.township_id is not None:
        town = await get_township(step.session, person.township_id)
    if town is None:
        if step.flow == FLOW:
            step.end()
        step.say(step._(REFUSAL))
    return town


async def _village(step: Step, town: Township) -> Village | None:
    """The current village if it is (still) in the staff member's township."""
    village_id = step.state.get("v")
    village = (
        await village_in_township(step.session, int(village_id), town.id or 0)
        if isinstance(village_id, int)
        else None
    )
    if village is None:
        step.say(step._("That village is not one of {township}'s.", township=town.name))
        step.update(st="villages", v=None, e=None, d={})
        await _show_villages(step, town)
    return village


async def _liaison(step: Step, town: Township) -> tuple[Any, Liaison] | None:
    """The liaison being looked at, if it is (still) in the staff member's township."""
    liaison_id = step.state.get("e")
    found = (
        await get_liaison(step.session, _keys(step), liaison_id, township_id=town.id)
        if isinstance(liaison_id, int)
        else None
    )
    if found is None:
        step.say(step._("That liaison is not registered in {township}.", township=town.name))
        step.update(st="villages", v=None, e=None, d={})
        await _show_villages(step, town)
    return found


# ---------------------------------------------------------------------------------- villages


def _figures(step: Step, row: VillageCount) -> str:
    mark = " ⚠" if row.shortfall else " ✓"
    return f"{row.count}/{row.target}{mark}"


async def _show_villages(step: Step, town: Township) -> None:
    rows = await township_villages(step.session, town.id or 0)
    if not rows:
        step.end()
        step.say(
            step._(
                "{township} has no villages yet. Ask the district to import them"
                " (pufa import villages).",
                township=town.name,
            )
        )
        return
    pages = (len(rows) + PAGE - 1) // PAGE
    page = min(max(int(step.state.get("pg") or 0), 0), pages - 1)
    step.update(st="villages", pg=page)
    short = sum(1 for r in rows if r.shortfall)
    text = step._(
        "{township}: {short} of {total} villages are short of liaisons. Choose a village, or"
        " type part of its name to search. Figures are registered/target; ⚠ means short.",
        township=town.name,
        short=short,
        total=len(rows),
    )
    if pages > 1:
        text += "\n" + step._("Page {page} of {pages}.", page=page + 1, pages=pages)
    buttons = [
        [step.button(f"{r.village.name} {_figures(step, r)}", ACTION, f"V{r.village.id}")]
        for r in rows[page * PAGE : (page + 1) * PAGE]
    ]
    nav = []
    if page > 0:
        nav.append(step.button(step._("◀ Previous"), ACTION, f"P{page - 1}"))
    if page < pages - 1:
        nav.append(step.button(step._("Next ▶"), ACTION, f"P{page + 1}"))
    if nav:
        buttons.append(nav)
    buttons.append([step.button(step._("Done"), ACTION, "Z")])
    step.say(text, buttons)


async def _search(step: Step, town: Township, query: str) -> None:
    found = await search_villages(step.session, town.id or 0, query)
    if len(found) == 1:
        step.update(v=found[0].id)
        await _show_menu(step, town)
        return
    if not found:
        step.say(
            step._(
                "No village of {township} matches “{query}”. Type part of the name, or choose"
                " from the list.",
                township=town.name,
                query=query.strip()[:40],
            )
        )
        await _show_villages(step, town)
        return
    step.update(st="villages")
    step.say(
        step._(
            "Villages of {township} matching “{query}”:",
            township=town.name,
            query=query.strip()[:40],
        ),
        [[step.button(v.name, ACTION, f"V{v.id}")] for v in found[:PAGE]]
        + [[step.button(step._("All villages"), ACTION, "B")]],
    )


async def _show_menu(step: Step, town: Township) -> None:
    village = await _village(step, town)
    if village is None:
        return
    count = await count_in_village(step.session, village.id or 0)
    row = VillageCount(village, count)
    step.update(st="menu", d={}, e=None)
    kind = step._(KIND_LABELS.get(village.kind, village.kind))
    if village.poor:
        kind += "，" if step.locale == "zh_CN" else ", "
        kind += step._("poor village")
    text = step._(
        "{village} ({kind}): {count} of {target} legal liaisons registered.",
        village=village.name,
        kind=kind,
        count=count,
        target=row.target,
    )
    text += _sep(step) + (
        step._("{n} more needed.", n=row.shortfall)
        if row.shortfall
        else step._("The target is met.")
    )
    buttons = [[step.button(step._("Register a new liaison"), ACTION, "A")]]
    if count:
        buttons.append([step.button(step._("List the liaisons ({n})", n=count), ACTION, "L")])
    buttons.append([step.button(step._("Back to the villages"), ACTION, "B")])
    buttons.append([step.button(step._("Done"), ACTION, "Z")])
    step.say(text, buttons)


# ---------------------------------------------------------------------------------- register


def _draft(step: Step) -> dict[str, Any]:
    draft = step.state.get("d")
    return dict(draft) if isinstance(draft, dict) else {}


def _draft_name(step: Step) -> str:
    sealed = _draft(step).get("n")
    return _keys(step).draft.open(sealed) if isinstance(sealed, str) else ""


async def _ask_name(step: Step, town: Township) -> None:
    village = await _village(step, town)
    if village is None:
        return
    step.say(
        step._(
            "({n}/{steps}) {village}: please type the liaison's full name.",
            n=1,
            steps=STEPS,
            village=village.name,
        )
    )


async def _ask_gender(step: Step, town: Township) -> None:
    editing = step.state.get("st") == "edit_gender"
    text = (
        step._("New gender:")
        if editing
        else step._("({n}/{steps}) Gender of {name}?", n=2, steps=STEPS, name=_draft_name(step))
    )
    step.say(
        text,
        [[step.button(gender_label(step.t, code), ACTION, f"G{code}") for code in GENDER_LABELS]],
    )


async def _ask_mobile(step: Step, town: Township) -> None:
    if step.state.get("st") == "edit_mobile":
        step.say(step._("Please type the new mobile number (11 digits, mainland China)."))
        return
    step.say(
        step._(
            "({n}/{steps}) Mobile number of {name}? (11 digits, mainland China)",
            n=3,
            steps=STEPS,
            name=_draft_name(step),
        )
    )


async def _ask_background(step: Step, town: Township) -> None:
    editing = step.state.get("st") == "edit_background"
    text = (
        step._("New background:")
        if editing
        else step._(
            "({n}/{steps}) What is {name}'s background? Choose one.",
            n=4,
            steps=STEPS,
            name=_draft_name(step),
        )
    )
    step.say(
        text,
        [[step.button(step._(b.label), ACTION, f"K{i}")] for i, b in enumerate(BACKGROUNDS)],
    )


async def _ask_note(step: Step, town: Township) -> None:
    step.say(step._("Please describe the background in a few words (for example 退休教师)."))


async def _ask_edit_name(step: Step, town: Township) -> None:
    step.say(step._("Please type the new name."))


async def _start_register(step: Step, town: Township, value: str) -> None:
    if await _village(step, town) is None:
        return
    step.update(st="name", d={})
    await _ask_name(step, town)


async def _got_name(step: Step, town: Township, text: str) -> None:
    name = parse_name(text)
    if isinstance(name, Problem):
        step.say(name.render(step.t) + _sep(step) + step._("Please type the name again."))
        return
    if step.state.get("st") == "edit_name":
        await _save_edit(step, town, name=name)
        return
    draft = _draft(step) | {"n": _keys(step).draft.seal(name)}
    step.update(st="gender", d=draft)
    await _ask_gender(step, town)


async def _got_gender(step: Step, town: Township, gender: str) -> None:
    if step.state.get("st") == "edit_gender":
        await _save_edit(step, town, gender=gender)
        return
    if step.state.get("st") != "gender":
        step.say(step._("Please use one of the buttons above."))
        return
    step.update(st="mobile", d=_draft(step) | {"g": gender})
    await _ask_mobile(step, town)


async def _button_gender(step: Step, town: Township, value: str) -> None:
    if value not in GENDER_LABELS:
        step.say(step._(BAD_BUTTON))
        return
    await _got_gender(step, town, value)


async def _duplicate_text(step: Step, town: Township, national: str, exclude: int | None) -> str:
    keys = _keys(step)
    other = await find_duplicate(
        step.session, town.id or 0, keys.mobile_hash(national), exclude=exclude
    )
    if other is None:
        return ""
    where = await village_in_township(step.session, other.village_id, town.id or 0)
    return step._(
        "{mobile} is already registered as a legal liaison in {township} ({village}). A number"
        " counts once in a township; please check it.",
        mobile=mask_mobile(national),
        township=town.name,
        village=where.name if where else "?",
    )


async def _got_mobile(step: Step, town: Township, text: str) -> None:
    national = parse_mobile(text)
    if isinstance(national, Problem):
        step.say(national.render(step.t) + _sep(step) + step._("Please type the number again."))
        return
    editing = step.state.get("st") == "edit_mobile"
    exclude = step.state.get("e") if editing else None
    duplicate = await _duplicate_text(step, town, national, exclude)
    if duplicate:
        step.say(duplicate + _sep(step) + step._("Please type another number, or send /cancel."))
        return
    if editing:
        await _save_edit(step, town, mobile=national)
        return
    step.update(st="background", d=_draft(step) | {"m": _keys(step).draft.seal(national)})
    await _ask_background(step, town)


async def _button_background(step: Step, town: Township, value: str) -> None:
    if not value.isdigit() or int(value) >= len(BACKGROUNDS):
        step.say(step._(BAD_BUTTON))
        return
    await _got_background(step, town, BACKGROUNDS[int(value)].code, "")


async def _got_background(step: Step, town: Township, code: str, note: str) -> None:
    stage = step.state.get("st")
    if stage not in ("background", "edit_background"):
        step.say(step._("Please use one of the buttons above."))
        return
    editing = stage == "edit_background"
    if code == OTHER and not note:
        step.update(st="edit_note" if editing else "note")
        await _ask_note(step, town)
        return
    if editing:
        await _save_edit(step, town, background=code, note=note)
        return
    step.update(st="confirm", d=_draft(step) | {"b": code, "o": note})
    await _show_confirm(step, town)


async def _got_note(step: Step, town: Township, text: str) -> None:
    note = parse_note(text)
    if isinstance(note, Problem):
        step.say(note.render(step.t))
        return
    if step.state.get("st") == "edit_note":
        await _save_edit(step, town, background=OTHER, note=note)
        return
    step.update(st="confirm", d=_draft(step) | {"b": OTHER, "o": note})
    await _show_confirm(step, town)


def _draft_data(step: Step) -> LiaisonData | None:
    draft = _draft(step)
    keys = _keys(step)
    try:
        return LiaisonData(
            name=keys.draft.open(draft["n"]),
            gender=draft["g"],
            mobile=keys.draft.open(draft["m"]),
            background=draft["b"],
            note=draft.get("o", ""),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _details(step: Step, data: LiaisonData, mobile: str) -> list[str]:
    return [
        step._("Name: {name}", name=data.name),
        step._("Gender: {gender}", gender=gender_label(step.t, data.gender)),
        step._("Mobile: {mobile}", mobile=mobile),
        step._(
            "Background: {background}",
            background=background_label(step.t, data.background, data.note),
        ),
    ]


async def _show_confirm(step: Step, town: Township) -> None:
    village = await _village(step, town)
    if village is None:
        return
    data = _draft_data(step)
    if data is None:
        await _start_register(step, town, "")
        return
    step.say(step._(NOTICE))
    lines = [
        step._("Please check before saving:"),
        step._("Village: {village}", village=village.name),
        *_details(step, data, data.mobile),
    ]
    step.say(
        "\n".join(lines),
        [
            [step.button(step._("Save"), ACTION, "C")],
            [step.button(step._("Start over"), ACTION, "R")],
            [step.button(step._("Cancel"), ACTION, "X")],
        ],
    )


async def _save(step: Step, town: Township, value: str) -> None:
    village = await _village(step, town)
    if village is None:
        return
    data = _draft_data(step)
    if step.state.get("st") != "confirm" or data is None:
        step.say(step._("Please use one of the buttons above."))
        return
    duplicate = await _duplicate_text(step, town, data.mobile, None)
    if duplicate:
        step.update(st="mobile")
        step.say(duplicate + _sep(step) + step._("Please type another number, or send /cancel."))
        return
    await add_liaison(
        step.session,
        _keys(step),
        village,
        data,
        actor=f"identity:{step.person.identity_id}",
        now=step.now,
    )
    step.say(
        step._(
            "Saved: {name} is now a legal liaison of {village}.",
            name=data.name,
            village=village.name,
        )
    )
    await _show_menu(step, town)


async def _start_over(step: Step, town: Township, value: str) -> None:
    await _start_register(step, town, value)


async def _cancel_draft(step: Step, town: Township, value: str) -> None:
    step.say(step._("Not saved."))
    await _show_menu(step, town)


# ---------------------------------------------------------------------------------- list, edit


async def _show_list(step: Step, town: Township) -> None:
    village = await _village(step, town)
    if village is None:
        return
    liaisons = await list_liaisons(step.session, _keys(step), village_id=village.id)
    step.update(st="list", e=None)
    if not liaisons:
        await _show_menu(step, town)
        return
    target = VillageCount(village, len(liaisons)).target
    lines = [
        step._(
            "Legal liaisons of {village} ({count} of {target}):",
            village=village.name,
            count=len(liaisons),
            target=target,
        )
    ]
    for n, item in enumerate(liaisons[:MAX_LISTED], start=1):
        background = background_label(step.t, item.data.background, item.data.note)
        gender = gender_label(step.t, item.data.gender)
        line = f"{n}. {item.data.name}  {gender}  {item.masked_mobile}  {background}"
        if item.sample:
            line += "  " + step._("(sample)")
        lines.append(line)
    lines.append(step._("Choose one to edit or remove it."))
    buttons = [
        [step.button(f"{n}. {item.data.name}", ACTION, f"S{item.id}")]
        for n, item in enumerate(liaisons[:MAX_LISTED], start=1)
    ]
    buttons.append([step.button(step._("Back"), ACTION, "M")])
    step.say("\n".join(lines), buttons)


async def _select(step: Step, town: Township, value: str) -> None:
    if not value.isdigit():
        step.say(step._(BAD_BUTTON))
        return
    step.update(e=int(value))
    await _show_card(step, town)


async def _show_card(step: Step, town: Township) -> None:
    found = await _liaison(step, town)
    if found is None:
        return
    _row, item = found
    step.update(st="card", v=item.village_id)
    lines = [
        step._("{village}: legal liaison", village=item.village_name),
        *_details(step, item.data, item.masked_mobile),
        step._(
            "Registered on {date}",
            date=step.t.date(item.created_at.astimezone(step.runtime.settings.tz).date()),
        ),
    ]
    step.say(
        "\n".join(lines),
        [
            [step.button(step._("Edit"), ACTION, "E")],
            [step.button(step._("Remove"), ACTION, "D")],
            [step.button(step._("Back to the list"), ACTION, "L")],
        ],
    )


async def _show_edit(step: Step, town: Township) -> None:
    found = await _liaison(step, town)
    if found is None:
        return
    step.update(st="edit")
    step.say(
        step._("What do you want to change for {name}?", name=found[1].data.name),
        [
            [step.button(step._("Name"), ACTION, "Fn")],
            [step.button(step._("Gender"), ACTION, "Fg")],
            [step.button(step._("Mobile number"), ACTION, "Fm")],
            [step.button(step._("Background"), ACTION, "Fb")],
            [step.button(step._("Back"), ACTION, "S" + str(step.state.get("e")))],
        ],
    )


_EDIT_STAGES = {"n": "edit_name", "g": "edit_gender", "m": "edit_mobile", "b": "edit_background"}


async def _edit_field(step: Step, town: Township, value: str) -> None:
    stage = _EDIT_STAGES.get(value)
    if stage is None:
        step.say(step._(BAD_BUTTON))
        return
    if await _liaison(step, town) is None:
        return
    step.update(st=stage)
    await _PROMPTS[stage](step, town)


async def _save_edit(step: Step, town: Township, **changes: str) -> None:
    found = await _liaison(step, town)
    if found is None:
        return
    row, before = found
    values = {
        "name": before.data.name,
        "gender": before.data.gender,
        "mobile": before.data.mobile,
        "background": before.data.background,
        "note": before.data.note,
    }
    if "background" in changes and "note" not in changes:
        changes["note"] = ""
    values.update(changes)
    after = LiaisonData(**values)
    if after != before.data:
        await update_liaison(
            step.session,
            _keys(step),
            row,
            before,
            after,
            actor=f"identity:{step.person.identity_id}",
            now=step.now,
        )
        step.say(step._("Saved."))
    else:
        step.say(step._("Nothing changed."))
    await _show_card(step, town)


async def _ask_reason(step: Step, town: Township) -> None:
    found = await _liaison(step, town)
    if found is None:
        return
    step.update(st="reason")
    step.say(
        step._("Why is {name} removed? Choose a reason or type it.", name=found[1].data.name),
        [[step.button(step._(r), ACTION, f"Q{i}")] for i, r in enumerate(REASONS)]
        + [[step.button(step._("Back"), ACTION, "S" + str(step.state.get("e")))]],
    )


async def _start_remove(step: Step, town: Township, value: str) -> None:
    await _ask_reason(step, town)


async def _reason_button(step: Step, town: Township, value: str) -> None:
    if not value.isdigit() or int(value) >= len(REASONS):
        step.say(step._(BAD_BUTTON))
        return
    step.update(st="remove", r=_keys(step).draft.seal(step._(REASONS[int(value)])))
    await _show_remove(step, town)


def _reason(step: Step) -> str:
    sealed = step.state.get("r")
    return _keys(step).draft.open(sealed) if isinstance(sealed, str) else ""


async def _show_remove(step: Step, town: Township) -> None:
    found = await _liaison(step, town)
    if found is None:
        return
    item = found[1]
    step.say(
        step._(
            "Remove {name} ({mobile}) from {village}? Reason: {reason}. Their record is deleted;"
            " the audit log keeps a masked note of it.",
            name=item.data.name,
            mobile=item.masked_mobile,
            village=item.village_name,
            reason=_reason(step),
        ),
        [
            [step.button(step._("Remove"), ACTION, "Y")],
            [step.button(step._("Keep"), ACTION, "S" + str(item.id))],
        ],
    )


async def _remove(step: Step, town: Township, value: str) -> None:
    found = await _liaison(step, town)
    if found is None:
        return
    reason = _reason(step)
    if step.state.get("st") != "remove" or not reason:
        step.say(step._("Please use one of the buttons above."))
        return
    row, item = found
    await remove_liaison(
        step.session,
        row,
        item,
        reason,
        actor=f"identity:{step.person.identity_id}",
        now=step.now,
    )
    step.update(r=None, e=None, v=item.village_id)
    step.say(
        step._("Removed {name} from {village}.", name=item.data.name, village=item.village_name)
    )
    await _show_menu(step, town)


# ---------------------------------------------------------------------------------- wiring


async def _choose_village(step: Step, town: Township, value: str) -> None:
    if not value.isdigit():
        step.say(step._(BAD_BUTTON))
        return
    step.update(v=int(value))
    await _show_menu(step, town)


async def _page(step: Step, town: Township, value: str) -> None:
    step.update(pg=int(value) if value.isdigit() else 0)
    await _show_villages(step, town)


async def _back(step: Step, town: Township, value: str) -> None:
    step.update(st="villages", v=None, e=None, d={})
    await _show_villages(step, town)


async def _menu(step: Step, town: Township, value: str) -> None:
    await _show_menu(step, town)


async def _list(step: Step, town: Township, value: str) -> None:
    await _show_list(step, town)


async def _edit(step: Step, town: Township, value: str) -> None:
    await _show_edit(step, town)


async def _done(step: Step, town: Township, value: str) -> None:
    step.end()
    step.say(step._("Done. Send /register whenever you want to continue."))


_BUTTONS = {
    "V": _choose_village,
    "P": _page,
    "B": _back,
    "M": _menu,
    "A": _start_register,
    "G": _button_gender,
    "K": _button_background,
    "C": _save,
    "R": _start_over,
    "X": _cancel_draft,
    "L": _list,
    "S": _select,
    "E": _edit,
    "F": _edit_field,
    "D": _start_remove,
    "Q": _reason_button,
    "Y": _remove,
    "Z": _done,
}
_PROMPTS = {
    "villages": _show_villages,
    "menu": _show_menu,
    "name": _ask_name,
    "gender": _ask_gender,
    "mobile": _ask_mobile,
    "background": _ask_background,
    "note": _ask_note,
    "confirm": _show_confirm,
    "list": _show_list,
    "card": _show_card,
    "edit": _show_edit,
    "edit_name": _ask_edit_name,
    "edit_gender": _ask_gender,
    "edit_mobile": _ask_mobile,
    "edit_background": _ask_background,
    "edit_note": _ask_note,
    "reason": _ask_reason,
    "remove": _show_remove,
}


async def _cmd_register(step: Step, args: str) -> None:
    town = await _staff_township(step)
    if town is None:
        return
    step.begin(FLOW, {"st": "villages", "pg": 0, "d": {}})
    if args.strip():
        await _search(step, town, args)
    else:
        await _show_villages(step, town)


def install(registry: DialogRegistry, catalog: None = None) -> None:
    """Register ``/register`` and its flow."""
    registry.add_flow(RegisterFlow())
    registry.add_command("register", _cmd_register, N_("Register legal liaisons (township staff)"))
