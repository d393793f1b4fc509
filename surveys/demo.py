"""Sample responses for ``pufa seed --demo``, so a newcomer sees populated results.

Every row is marked ``sample``; the generator is seeded, so the figures are the same on every
machine. The rates are chosen to show each verdict: some indicators meet their target, one
misses it, one is still inconclusive, and the "显著提高" indicator is compared with a sample
2025 baseline. A few residents answer "don't know" (不了解) where the question offers it, most
often on major administrative decisions, so the reports show that count too.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models_surveys import SurveyAnswer, SurveyInvitation, SurveyResponse
from surveys.schema import SCALE_CODES, UNKNOWN_CODE, Survey

SAMPLE_RATES: dict[str, dict[str, float]] = {
    "fazhi-2026": {
        "business_env": 0.90,
        "public_service": 0.88,
        "major_decisions": 0.84,
        "law_enforcement": 0.85,
        "oversight": 0.86,
        "info_disclosure": 0.84,
        "dispute_resolution": 0.80,
        "rule_of_law_overall": 0.89,
    },
    "fazhi-2025": {"law_enforcement": 0.74},
    "deputies-2026": {"handling": 0.96},
}
SAMPLE_UNKNOWN: dict[str, dict[str, float]] = {
    "fazhi-2026": {"major_decisions": 0.12, "dispute_resolution": 0.08, "oversight": 0.04},
}
"""Share of sample residents answering "don't know" per question (only where it is offered).
Drawn from a separate random stream, so the ratings of everybody else stay the same."""
SAMPLE_SIZES = {"fazhi-2026": 420, "fazhi-2025": 300, "deputies-2026": 60}
CHANNELS = ("h5", "h5", "h5", "telegram", "wecom")


def _level(rng: random.Random, satisfied_rate: float) -> str:
    if rng.random() < satisfied_rate:
        return rng.choices(SCALE_CODES[:3], weights=(3, 4, 2))[0]
    return rng.choices(SCALE_CODES[3:], weights=(3, 1))[0]


async def seed_sample_responses(
    session: AsyncSession,
    catalog: Mapping[str, Survey],
    townships: list[str],
    now: datetime,
) -> int:
    """Insert sample responses for the demo surveys that have none yet; return how many."""
    created = 0
    for code, size in SAMPLE_SIZES.items():
        existing = (
            await session.execute(
                select(func.count(col(SurveyResponse.id))).where(
                    col(SurveyResponse.survey) == code, col(SurveyResponse.sample).is_(True)
                )
            )
        ).scalar_one()
        if existing:
            continue
        rates = SAMPLE_RATES[code]
        survey = catalog.get(code) or catalog.get(code.replace("2025", "2026"))
        if survey is None:
            continue
        rng = random.Random(f"pufa-demo-{code}")
        unknown_rng = random.Random(f"pufa-demo-unknown-{code}")
        unknown_rates = {
            question: share
            for question, share in SAMPLE_UNKNOWN.get(code, {}).items()
            if (q := survey.question(question)) is not None and UNKNOWN_CODE in q.option_codes
        }
        created_at = now - timedelta(days=365) if code.endswith("2025") else now
        responses: list[dict[str, Any]] = []
        for i in range(size):
            responses.append(
                {
                    "survey": code,
                    "respondent": hashlib.sha256(f"sample:{code}:{i}".encode()).hexdigest(),
                    "channel": rng.choice(CHANNELS),
                    "township": rng.choice(townships) if townships else None,
                    "locale": "zh_CN",
                    "idempotency_key": None,
                    "invitation_id": None,
                    "sample": True,
                    "created_at": created_at - timedelta(minutes=rng.randint(0, 60 * 24 * 30)),
                }
            )
        if survey.invitation_only:
            # as in real use, every answer to an invitation-only survey came with its own
            # (used) invitation; sample invitations get unusable placeholder hashes
            invitations = [
                {
                    "survey": code,
                    "token_hash": hashlib.sha256(
                        f"sample-invitation:{code}:{i}".encode()
                    ).hexdigest(),
                    "township": row["township"],
                    "batch": "sample",
                    "created_at": row["created_at"],
                    "used_at": row["created_at"],
                }
                for i, row in enumerate(responses)
            ]
            invitation_ids = (
                (
                    await session.execute(
                        insert(SurveyInvitation).returning(
                            col(SurveyInvitation.id), sort_by_parameter_order=True
                        ),
                        invitations,
                    )
                )
                .scalars()
                .all()
            )
            for row, invitation_id in zip(responses, invitation_ids, strict=True):
                row["invitation_id"] = invitation_id
        ids = (
            (
                await session.execute(
                    insert(SurveyResponse).returning(
                        col(SurveyResponse.id), sort_by_parameter_order=True
                    ),
                    responses,
                )
            )
            .scalars()
            .all()
        )
        answers: list[dict[str, Any]] = []
        for rid, row in zip(ids, responses, strict=True):
            for question, rate in rates.items():
                if survey.question(question) is None:
                    continue
                value = _level(rng, rate)
                if unknown_rng.random() < unknown_rates.get(question, 0.0):
                    value = UNKNOWN_CODE
                answers.append(
                    {
                        "response_id": rid,
                        "survey": code,
                        "question": question,
                        "value": value,
                        "text": None,
                        "township": row["township"],
                        "channel": row["channel"],
                        "sample": True,
                    }
                )
        await session.execute(insert(SurveyAnswer), answers)
        created += size
    return created
