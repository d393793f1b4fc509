"""Binding a chat account to a role with an invite code: ``/bind CODE`` or ``/start b_CODE``.

``/bind`` without a code asks for it and waits for the next message.
"""

from __future__ import annotations

from bot.dialogs.invites import InviteProblem, normalize_code, redeem_invite
from bot.dialogs.runtime import DialogRuntime, Step

__all__ = ["BindFlow", "install"]


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
    if redeemed.role == "staff":
        text = step._(
            "Done: this account is now township staff of {township}. "
            "Send /register to register legal liaisons.",
            township=redeemed.scope_name,
        )
    elif redeemed.role == "unit":
        text = step._(
            "Done: this account now represents {unit} in the lecture rota. "
            "Send /duty to see your turns.",
            unit=redeemed.scope_name,
        )
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


def install(runtime: DialogRuntime) -> None:
    """Register ``/bind``, the ``b_`` deep link and the flow on ``runtime``."""
    runtime.add_flow(BindFlow())
    runtime.add_command("bind", _cmd_bind)
    runtime.add_start_payload("b", _start_bind)
