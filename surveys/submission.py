"""Storing survey responses: the one domain entry point every channel uses.

The H5 page, the JSON API and the chat dialogs all call :func:`submit_response` (or its batch
form :func:`submit_many`, used by the group committer of the HTTP edge). It writes in the
caller's session and transaction and never commits: the caller decides when the response is
durable (the dialog runtime commits the conversation state with it; the HTTP edge commits a
whole batch of concurrent requests at once and only then answers 2xx).

Integrity rules enforced here:

- a respondent is a keyed pseudonym (:func:`pseudonym`) of the chat identity or invitation
  token; a raw chat id is never stored with answers;
- one response per respondent per survey (:class:`AlreadyAnswered`);
- an invitation token is single-use (:class:`TokenUsed`) and must belong to the survey
  (:class:`TokenInvalid`); its township wins over any ``src`` of the link;
- a survey for a closed group (:attr:`surveys.schema.Survey.invitation_only`,
  e.g. the deputies' survey) takes answers only with an invitation token
  (:class:`InvitationRequired`), so its indicators count invited respondents only;
- a repeated ``Idempotency-Key`` returns the first result (``created=False``) instead of
  counting twice, even after the survey closed, but only for the same submission: a key reused
  with a different one (:func:`request_fingerprint`) is refused (:class:`IdempotencyKeyReused`)
  so its answers are never silently dropped;
- answers are validated and normalized in one pass by
  :func:`surveys.engine.check_submission` (:class:`InvalidAnswers`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from surveys.engine import AnswerError, check_submission
from surveys.respondents import invitation_hash
from surveys.schema import Survey
from surveys.state import open_by_code, open_states
from surveys.submission_sql import (
    Found,
    Lookup,
    SQLiteStatements,
    SubmissionSQL,
    Writes,
    submission_sql,
)

__all__ = [
    "AlreadyAnswered",
    "BatchPlan",
    "Checked",
    "IdempotencyKeyReused",
    "InvalidAnswers",
    "InvitationRequired",
    "Submission",
    "SubmitError",
    "SubmitResult",
    "SurveyClosed",
    "TokenInvalid",
    "TokenUsed",
    "batch_plan",
    "request_fingerprint",
    "run_batch",
    "run_batch_sync",
    "submit_many",
    "submit_response",
]


class SubmitError(Exception):
    """A submission that was not stored; ``code`` is the machine-readable reason."""

    code = "error"


class SurveyClosed(SubmitError):
    """The survey does not accept answers now (outside its window, or closed by an operator)."""

    code = "survey_closed"


class AlreadyAnswered(SubmitError):
    """This respondent has already answered this survey."""

    code = "already_answered"

    def __init__(self, response_id: int | None = None) -> None:
        super().__init__("already answered")
        self.response_id = response_id


class TokenUsed(SubmitError):
    """The invitation token has already been used."""

    code = "token_used"


class TokenInvalid(SubmitError):
    """The invitation token is unknown or belongs to another survey."""

    code = "token_invalid"


class InvitationRequired(SubmitError):
    """The survey is invitation-only and the submission carries no invitation token."""

    code = "invitation_required"


class IdempotencyKeyReused(SubmitError):
    """The ``Idempotency-Key`` was already used for a different submission of this survey."""

    code = "idempotency_key_reused"

    def __init__(self, response_id: int | None = None) -> None:
        super().__init__("idempotency key reused with a different submission")
        self.response_id = response_id


class InvalidAnswers(SubmitError):
    """Some answers are invalid; ``errors`` maps question codes to :class:`AnswerError`."""

    code = "invalid_answers"

    def __init__(self, errors: Mapping[str, AnswerError]) -> None:
        super().__init__(", ".join(f"{k}: {v.code}" for k, v in errors.items()))
        self.errors: dict[str, AnswerError] = dict(errors)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the errors (the message alone is not enough), e.g. by ``pickle`` when
        # the outcome comes back from the SQLite writer's process.
        return (type(self), (self.errors,))


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """A stored response. ``created`` is ``False`` when an ``Idempotency-Key`` replayed an
    earlier submission (then ``response_id`` is the first one's)."""

    response_id: int
    created: bool
    survey: str
    township: str | None = None


BatchPlan = Generator[tuple[str, tuple[Any, ...]], Any, list[SubmitResult | SubmitError]]
"""A :func:`batch_plan`: yields ``(statement method, args)``, receives each result, returns the
outcomes."""


@dataclass(slots=True)
class Submission:
    """One submission, as :func:`submit_many` takes it (same fields as :func:`submit_response`)."""

    survey: Survey
    answers: Mapping[str, Any]
    respondent: str
    channel: str
    township_code: str | None
    locale: str
    now: datetime
    token: str | None = None
    idempotency_key: str | None = None
    sample: bool = False
    token_hash: str | None = field(default=None, repr=False)
    checked: Checked | None = field(default=None, repr=False)

    def prepare(self) -> Checked:
        """Validate, normalize and (with an idempotency key) fingerprint the answers, once, and
        keep the result (``checked``); set ``token_hash`` and ``township_code`` first, as the
        fingerprint covers them."""
        if self.checked is None:
            errors, normal = check_submission(self.survey, self.answers)
            fingerprint = _fingerprint(self, normal) if self.idempotency_key else None
            self.checked = Checked(errors, normal, fingerprint)
        return self.checked


@dataclass(frozen=True, slots=True)
class Checked:
    """A submission's answers checked (:meth:`Submission.prepare`): the errors (empty when
    valid), the normalized answers (``None`` when invalid) and the request fingerprint (with an
    idempotency key)."""

    errors: Mapping[str, AnswerError]
    normal: dict[str, Any] | None
    fingerprint: str | None


def request_fingerprint(item: Submission) -> str:
    """What makes two submissions under one ``Idempotency-Key`` "the same request": hex SHA-256
    of a canonical JSON (sorted keys, no spaces) of the survey code, the answers, the invitation
    token's keyed hash and the ``src`` township code. Valid answers count in their normalized
    form (:func:`surveys.engine.normalize_answers`), so key order, blank or skipped answers and
    the order of multiple choices do not matter; invalid answers count as sent, so they never
    match a stored (valid) submission. Respondent, channel and locale are not part of it.
    """
    return _fingerprint(item, check_submission(item.survey, item.answers)[1])


def _fingerprint(item: Submission, normalized: Mapping[str, Any] | None) -> str:
    """:func:`request_fingerprint` given the normalized answers (``None``: they are invalid)."""
    answers: Any = {"invalid": dict(item.answers)} if normalized is None else normalized
    doc = {
        "survey": item.survey.code,
        "answers": answers,
        "token": item.token_hash,
        "src": item.township_code,
    }
    if normalized is None:
        # Answers as sent may hold anything JSON can (a float, a 40-digit integer): the
        # standard library's canonical form, as it has always been written.
        canonical = json.dumps(
            doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        ).encode()
    else:
        # Normalized answers are strings and lists of strings, as are the other fields:
        # orjson writes them byte for byte as the standard library's canonical form above
        # (tested), in a fraction of the time, so stored fingerprints keep matching.
        canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


async def submit_response(
    session: AsyncSession,
    survey: Survey,
    answers: Mapping[str, Any],
    *,
    respondent: str,
    channel: str,
    township_code: str | None,
    locale: str,
    now: datetime,
    token: str | None = None,
    idempotency_key: str | None = None,
    secret: bytes | None = None,
    sample: bool = False,
    token_hash: str | None = None,
) -> SubmitResult:
    """Validate and store one completed response in ``session`` (not committed here).

    ``respondent`` is a :func:`pseudonym`. With ``token`` (an invitation token) pass the
    ``secret`` key too so the token's stored hash can be found; a caller that kept only the
    hash (:func:`invitation_hash`) passes ``token_hash`` instead. Raises :class:`SurveyClosed`,
    :class:`InvitationRequired`, :class:`AlreadyAnswered`, :class:`TokenUsed`,
    :class:`TokenInvalid`, :class:`InvalidAnswers` or :class:`IdempotencyKeyReused` (the key
    was used for a different submission); returns the stored (or, for a repeated
    ``idempotency_key`` with the same submission, the earlier) response.
    """
    item = Submission(
        survey=survey,
        answers=answers,
        respondent=respondent,
        channel=channel,
        township_code=township_code,
        locale=locale,
        now=now,
        token=token,
        idempotency_key=idempotency_key,
        sample=sample,
        token_hash=token_hash,
    )
    if token is not None:
        if secret is None:
            raise ValueError("pass secret= to check an invitation token")
        item.token_hash = invitation_hash(secret, token)
    (outcome,) = await submit_many(session, [item])
    if isinstance(outcome, SubmitError):
        raise outcome
    return outcome


async def submit_many(
    session: AsyncSession, items: Sequence[Submission]
) -> list[SubmitResult | SubmitError]:
    """Store a batch of submissions in ``session`` with a handful of statements.

    Each item gets its own outcome, in order: a :class:`SubmitResult` or the
    :class:`SubmitError` explaining why it was not stored. Items in the same batch are checked
    against each other as well (the second use of a token or respondent is refused; a repeated
    idempotency key replays the first when the submissions have the same
    :func:`request_fingerprint`, and is refused with :class:`IdempotencyKeyReused` otherwise;
    rows stored without a fingerprint always replay). Item ``token_hash`` must be set for items
    with a token.
    Nothing is committed. A unique-constraint violation caused by a concurrent writer outside
    this batch propagates as ``IntegrityError`` (the caller retries one by one).
    """
    if not items:
        return []
    # The first statement runs through the session: it starts the transaction that the
    # driver-level statements of the batch are part of.
    now_open = await open_states(session, {i.survey.code for i in items}, items[0].now)
    return await run_batch(batch_plan(items, now_open), await submission_sql(session))


def batch_plan(
    items: Sequence[Submission], now_open: Mapping[str, bool] | None = None
) -> BatchPlan:
    """The decisions of :func:`submit_many` for ``items``, as a generator of statements.

    It yields its one read and its one write as ``(method, args)`` of
    :class:`~surveys.submission_sql.SubmissionSQL` (``lookup``, then ``write`` when something
    is stored), receives the method's result and returns the outcomes. Keeping the decisions
    free of I/O lets one implementation run on an async driver (:func:`run_batch`) and, in one
    hand-off, on a connection of a writer's own (:mod:`surveys.sqlite_writer`,
    :mod:`surveys.postgres_writer`). ``now_open`` tells which surveys take answers now; without
    it the lookup reads the surveys' states too.
    """
    outcomes: list[SubmitResult | SubmitError | None] = [None] * len(items)
    codes = sorted({i.survey.code for i in items})
    query = Lookup(
        codes=codes if now_open is None else (),
        keys=sorted({(i.survey.code, i.idempotency_key) for i in items if i.idempotency_key}),
        respondents=sorted({(i.survey.code, i.respondent) for i in items}),
        hashes=sorted({i.token_hash for i in items if i.token_hash}),
    )
    found: Found = yield ("lookup", (query,))
    if now_open is None:
        now_open = open_by_code(found.states, items[0].now)
    replays = {(code, key): (rid, town, stored) for code, key, rid, town, stored in found.replays}
    tokens = {row[1]: row for row in found.tokens}
    answered = {(code, respondent): rid for code, respondent, rid in found.answered}
    # Validation, normal form and fingerprint of every item, computed once.
    checks = [item.prepare() for item in items]
    fingerprints = {i: c.fingerprint for i, c in enumerate(checks) if c.fingerprint is not None}

    # Decide every item; collect the rows to write.
    to_insert: list[tuple[int, Submission, dict[str, Any], int | None, str | None]] = []
    pending_keys: dict[tuple[str, str], int] = {}
    taken_respondents: set[tuple[str, str]] = set()
    taken_tokens: set[str] = set()
    replay_of: dict[int, int] = {}  # item index -> index of the batch item it replays
    for index, item in enumerate(items):
        code = item.survey.code
        key = (code, item.idempotency_key) if item.idempotency_key else None
        if key is not None and key in replays:
            rid, town, stored_hash = replays[key]
            if stored_hash is not None and stored_hash != fingerprints[index]:
                outcomes[index] = IdempotencyKeyReused(rid)
            else:
                outcomes[index] = SubmitResult(rid, False, code, town)
            continue
        if key is not None and key in pending_keys:
            first = pending_keys[key]
            if fingerprints[first] != fingerprints[index]:
                outcomes[index] = IdempotencyKeyReused()
            else:
                replay_of[index] = first
            continue
        if not now_open.get(code, False):
            outcomes[index] = SurveyClosed("survey closed")
            continue
        township = item.township_code
        invitation_id: int | None = None
        if item.token_hash is None and item.survey.invitation_only:
            outcomes[index] = InvitationRequired("invitation required")
            continue
        if item.token_hash is not None:
            tok = tokens.get(item.token_hash)
            if tok is None or tok[2] != code:
                outcomes[index] = TokenInvalid("unknown token")
                continue
            if tok[4] is not None or item.token_hash in taken_tokens:
                outcomes[index] = TokenUsed("token used")
                continue
            invitation_id = tok[0]
            township = tok[3] or township
        who = (code, item.respondent)
        if who in answered or who in taken_respondents:
            outcomes[index] = AlreadyAnswered(answered.get(who))
            continue
        clean = checks[index].normal
        if clean is None:
            outcomes[index] = InvalidAnswers(checks[index].errors)
            continue
        taken_respondents.add(who)
        if item.token_hash is not None:
            taken_tokens.add(item.token_hash)
        if key is not None:
            pending_keys[key] = index
        to_insert.append((index, item, clean, invitation_id, township))

    if to_insert:
        ids = yield ("write", (_writes(to_insert, fingerprints),))
        for (index, item, _, _, township), rid in zip(to_insert, ids, strict=True):
            outcomes[index] = SubmitResult(rid, True, item.survey.code, township)

    for index, first in replay_of.items():
        earlier = outcomes[first]
        if isinstance(earlier, SubmitResult):
            outcomes[index] = SubmitResult(
                earlier.response_id, False, earlier.survey, earlier.township
            )
        else:
            outcomes[index] = earlier
    return [o if o is not None else SubmitError("not processed") for o in outcomes]


def _writes(
    to_insert: list[tuple[int, Submission, dict[str, Any], int | None, str | None]],
    fingerprints: dict[int, str],
) -> Writes:
    """The rows of the accepted responses and their answers (one per option chosen)."""
    responses: list[tuple[Any, ...]] = []
    answers: list[tuple[int, str, str | None, str | None]] = []
    for position, (index, item, clean, invitation_id, township) in enumerate(to_insert):
        responses.append(
            (
                item.survey.code,
                item.respondent,
                item.channel,
                township,
                item.locale,
                item.idempotency_key,
                fingerprints.get(index),
                invitation_id,
                item.sample,
                item.now,
            )
        )
        for qcode, value in clean.items():
            question = item.survey.question(qcode)
            if question is not None and question.type == "text":
                answers.append((position, qcode, None, value))
            elif isinstance(value, list):
                answers.extend((position, qcode, v, None) for v in value)
            else:
                answers.append((position, qcode, value, None))
    return Writes(responses, answers)


async def run_batch(plan: BatchPlan, sql: SubmissionSQL) -> list[SubmitResult | SubmitError]:
    """Run a :func:`batch_plan` on async statements; its outcomes."""
    try:
        name, args = next(plan)
        while True:
            result = await getattr(sql, name)(*args)
            name, args = plan.send(result)
    except StopIteration as done:
        return cast(list[SubmitResult | SubmitError], done.value)


def run_batch_sync(plan: BatchPlan, sql: SQLiteStatements) -> list[SubmitResult | SubmitError]:
    """Run a :func:`batch_plan` on a SQLite connection in the calling thread; its outcomes."""
    try:
        name, args = next(plan)
        while True:
            name, args = plan.send(getattr(sql, name)(*args))
    except StopIteration as done:
        return cast(list[SubmitResult | SubmitError], done.value)
