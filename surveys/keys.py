"""Typed keys of what the survey feature keeps on the aiohttp application."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from surveys.committer import GroupCommitter
from surveys.ratelimit import OpenLinkLimits
from surveys.schema import Survey

__all__ = ["COMMITTER", "RATE_LIMITER", "SURVEYS", "TOWNSHIP_CACHE"]

SURVEYS = web.AppKey("surveys", dict[str, Survey])
"""The loaded survey catalog ``{code: Survey}``."""
COMMITTER = web.AppKey("survey_committer", GroupCommitter)
"""The group committer storing submissions."""
RATE_LIMITER = web.AppKey("survey_rate_limiter", OpenLinkLimits)
"""Limits on open-link submissions (those without an invitation token): per respondent, then
per client address."""
TOWNSHIP_CACHE = web.AppKey("survey_township_cache", dict[str, Any])
"""Known township codes, refreshed every minute."""
