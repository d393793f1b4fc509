"""Binding a chat account to a role with an invite code: ``/bind CODE`` or ``/start b_CODE``.

``/bind`` without a code asks for it and waits for the next message. A code redeemed in a
group chat binds the person and the group: the group then receives the role's pushes too
(a unit's reminders in the unit's group).
"""

from __future__ import annotations

from bot.binding.invites import InviteProblem, normalize_code, redeem_invite
from bot.outbox.queue import set_push_target
from core.dialog import DialogRegistry, Step
from core.i18n import N_

__all__ = ["BindFlow", "bind", "install"]

_SEP = {"zh_CN": "", "en": " "}
"""Between two sentences: Chinese ones end in 。 and need no space."""


class BindFlow:
    """Waits for an invite code typed after a bare ``/bind``."""

    name = "bind"

    def title(self, step: Step) -> str:
        """What the conversation is about."""
        return step._("linking your account with an invite code")

    async def on_text(self, step: Step, text: str) -> None:
        """Treat the text as the code."""
        await bind(step, text)

    async def on_button(self, step: Step, action: str, arg: str) -> None:
        """This flow has no buttons of its own."""
        await self.prompt(step)

    async def prompt(self, step: Step) -> None:
        """Ask for the code."""
        step.say(step._("Please send the invite code you were given (for example ABCD2345EFGH)."))

    async def restart(self, step: Step) -> None:
        """Ask for the code again."""
        await self.prompt(step)


async def bind(step: Step, code_text: str) -> None:
    """Redeem ``code_text`` for the person of ``step`` and say what role they now have."""
    code = normalize_code(code_text)
    if step.flow == "bind":
        step.end()
    if not code:
        await _cmd_bind(step, "")
        return
    try:
        redeemed = await redeem_invite(
            step.session, step.runtime.secret, code, step.person.identity_id, step.now
        )
    except InviteProblem as problem:
        messages = {
            "unknown": step._("That invite code is not valid. Please check it and try again."),
            "used": step._("That invite code has already been used. Ask for a new one."),
            "expired": step._("That invite code has expired. Ask for a new one."),
        }
        step.say(messages[problem.reason])
        return
    step.person.role = redeemed.role
    if step.inbound.chat_id != step.inbound.external_id:
        await set_push_target(
            step.session,
            channel=step.inbound.channel,
            address=step.inbound.chat_id,
            role=redeemed.role,
            unit_id=redeemed.unit_id,
            township_id=redeemed.township_id,
            locale=step.locale,
            label=redeemed.scope_name,
        )
    if redeemed.role == "staff":
        text = step._(
            "Done: this account is now township staff of {township}.",
            township=redeemed.scope_name,
        )
        if step.runtime.has_command("register"):
            text += _SEP[step.locale] + step._("Send /register to register legal liaisons.")
    elif redeemed.role == "unit":
        text = step._(
            "Done: this account now represents {unit} in the lecture rota.",
            unit=redeemed.scope_name,
        )
        if step.runtime.has_command("duty"):
            text += _SEP[step.locale] + step._("Send /duty to see your turns.")
    else:
        text = step._(
            "Done: this account is now the rota coordinator and will receive escalations."
        )
    step.say(text)


async def _cmd_bind(step: Step, args: str) -> None:
    if args.strip():
        await bind(step, args)
        return
    step.begin("bind", {})
    await BindFlow().prompt(step)


async def _start_bind(step: Step, rest: str) -> None:
    await bind(step, rest)


def install(registry: DialogRegistry, catalog: None = None) -> None:
    """Register ``/bind``, the ``b_`` deep link and the flow."""
    registry.add_flow(BindFlow())
    registry.add_command("bind", _cmd_bind, N_("Link this account with an invite code"))
    registry.add_start_payload("b", _start_bind)
