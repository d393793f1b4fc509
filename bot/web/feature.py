"""The web console as the composition root sees it (``FEATURE``): the ``/admin`` routes,
``pufa admin create``, and the banner line saying where the console is."""

from __future__ import annotations

from collections.abc import Sequence

from bot.web import cli, routes
from core.feature import Feature, no_catalog
from core.settings import Settings

__all__ = ["FEATURE"]


def _banner(settings: Settings, _catalog: None) -> Sequence[str]:
    public = settings.public_url.rstrip("/")
    return [
        f"  console:  {public}/admin/  (create a login with `pufa admin create NAME --role admin`)"
    ]


FEATURE: Feature[None] = Feature(
    name="console",
    catalog=no_catalog,
    routes=routes.setup,
    commands=cli.commands,
    banner=_banner,
)
