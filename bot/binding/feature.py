"""The binding feature: invite codes that tie a chat account to a role.

Offers the composition root its dialog (``/bind CODE``, the ``b_`` deep link) and its
commands (``pufa invite staff|unit|coordinator``). Roles (township staff, lecture unit, rota
coordinator) are kept on :class:`~storage.models.ChatIdentity`, where the rota, the liaison
registry and the outbox read them.
"""

from __future__ import annotations

from bot.binding import cli, dialog
from core.feature import Feature, no_catalog

FEATURE: Feature[None] = Feature(
    name="binding",
    catalog=no_catalog,
    dialogs=dialog.install,
    commands=cli.commands,
)
