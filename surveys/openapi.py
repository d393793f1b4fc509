"""The survey feature's part of the OpenAPI 3 description of ``/api/v1``.

Written by hand next to the routes (``surveys.api.API_ROUTES``); the composition root merges
every feature's part into ``/api/v1/openapi.json``, and a test checks that every ``/api/v1``
route served is described and nothing else is.
"""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_SURVEY_PARAM = {
    "name": "survey",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,24}$"},
}
_LANG_PARAM = {
    "name": "lang",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "examples": ["zh_CN", "en"]},
    "description": "Locale of texts: any language tag, answered in the closest shipped locale"
    " (zh_CN or en; e.g. zh-Hans, en-US); when absent or unknown, Accept-Language, then zh_CN.",
}

_INDICATOR = {
    "type": "object",
    "required": [
        "code",
        "title",
        "n",
        "satisfied",
        "rate",
        "ci_low",
        "ci_high",
        "target",
        "verdict",
        "more_needed",
    ],
    "properties": {
        "code": {"type": "string"},
        "title": {"type": "string"},
        "n": {"type": "integer"},
        "satisfied": {"type": "integer"},
        "rate": {"type": ["number", "null"], "description": "fraction, e.g. 0.83"},
        "ci_low": {"type": "number", "description": "Wilson 95% lower bound"},
        "ci_high": {"type": "number", "description": "Wilson 95% upper bound"},
        "target": {"type": ["number", "null"], "description": "null for 显著提高"},
        "target_kind": {"type": "string", "enum": ["rate", "increase"]},
        "verdict": {"type": "string", "enum": ["met", "not_met", "inconclusive"]},
        "more_needed": {"type": ["integer", "null"]},
        "baseline_n": {"type": ["integer", "null"]},
        "baseline_satisfied": {"type": ["integer", "null"]},
        "p_value": {"type": ["number", "null"]},
        "unknown": {"type": "integer", "description": "don't-know answers, not in n"},
        "weighted_index": {"type": ["number", "null"], "description": "100/80/60/40/20"},
        "levels": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}


PART: dict[str, Any] = {
    "paths": {
        "/api/v1/surveys": {
            "get": {
                "operationId": "listSurveys",
                "summary": "Surveys accepting answers now",
                "parameters": [_LANG_PARAM],
                "responses": {
                    "200": _json(
                        "Open surveys",
                        {"type": "array", "items": {"$ref": "#/components/schemas/SurveyItem"}},
                    )
                },
            }
        },
        "/api/v1/surveys/{survey}": {
            "get": {
                "operationId": "getSurvey",
                "summary": "A survey definition, localized",
                "parameters": [_SURVEY_PARAM, _LANG_PARAM],
                "responses": {
                    "200": _json("Definition", {"$ref": "#/components/schemas/Survey"}),
                    "404": _error("No such survey"),
                },
            }
        },
        "/api/v1/surveys/{survey}/responses": {
            "post": {
                "operationId": "submitResponse",
                "summary": "Submit a completed response",
                "parameters": [
                    _SURVEY_PARAM,
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 128},
                        "description": "A retried request with the same key and the same "
                        "body (answers, token, src) returns the first result (200) instead "
                        "of counting twice; the same key with a different body is refused "
                        "(422 idempotency_key_reused).",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Submission"}}
                    },
                },
                "responses": {
                    "201": _json("Stored", {"$ref": "#/components/schemas/Stored"}),
                    "200": _json(
                        "Replay of the same Idempotency-Key",
                        {"$ref": "#/components/schemas/Stored"},
                    ),
                    "400": _error("Not JSON"),
                    "403": _error(
                        "Invitation-only survey (invitation_required): the deputies' and"
                        " staff surveys take answers only with an invitation token"
                    ),
                    "404": _error("No such survey"),
                    "409": _error("Already answered (already_answered) or token used (token_used)"),
                    "410": _error("Survey closed"),
                    "413": _error("Body over 64 KiB"),
                    "422": _error(
                        "Invalid: fields maps each question (or token, src) to its error;"
                        " or idempotency_key_reused: the Idempotency-Key was already used"
                        " with a different body (answers, token or src), nothing stored"
                    ),
                    "429": _error(
                        "Too many open-link submissions just now from this respondent or,"
                        " far beyond a crowd, from this address (Retry-After); nothing stored"
                    ),
                },
            }
        },
        "/api/v1/surveys/{survey}/results": {
            "get": {
                "operationId": "getResults",
                "summary": "Satisfaction per indicator against its target",
                "security": [{"bearer": []}],
                "parameters": [
                    _SURVEY_PARAM,
                    _LANG_PARAM,
                    {
                        "name": "by",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["township", "channel"]},
                    },
                    {
                        "name": "baseline",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Previous period's survey for 显著提高 indicators"
                        " (422 when it has no responses)",
                    },
                    {
                        "name": "include_sample",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "boolean", "default": False},
                        "description": "Also count the sample (demo) responses of"
                        " `pufa seed --demo`; never for real use",
                    },
                ],
                "responses": {
                    "200": _json("Results", {"$ref": "#/components/schemas/Results"}),
                    "401": _error("No or unknown token"),
                    "403": _error("The token's role may not read results"),
                    "404": _error("No such survey"),
                    "422": _error("Bad parameter"),
                },
            }
        },
    },
    "components": {
        "schemas": {
            "SurveyItem": {
                "type": "object",
                "required": ["code", "title", "opens_at", "closes_at"],
                "properties": {
                    "code": {"type": "string"},
                    "title": {"type": "string"},
                    "opens_at": {"type": ["string", "null"], "format": "date-time"},
                    "closes_at": {"type": ["string", "null"], "format": "date-time"},
                },
            },
            "Survey": {
                "type": "object",
                "required": ["code", "title", "intro", "questions"],
                "properties": {
                    "code": {"type": "string"},
                    "title": {"type": "string"},
                    "intro": {"type": "string"},
                    "audience": {
                        "type": "string",
                        "enum": ["public", "businesses", "media", "deputies", "staff"],
                    },
                    "invitation_only": {
                        "type": "boolean",
                        "description": "Answers need a single-use invitation token",
                    },
                    "questions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["code", "type", "text", "required", "options"],
                            "properties": {
                                "code": {"type": "string"},
                                "type": {
                                    "type": "string",
                                    "enum": ["single", "multiple", "scale", "text"],
                                },
                                "text": {"type": "string"},
                                "required": {"type": "boolean"},
                                "options": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "code": {"type": "string"},
                                            "label": {"type": "string"},
                                        },
                                    },
                                },
                                "max_length": {"type": ["integer", "null"]},
                                "show_if": {"type": ["object", "null"]},
                            },
                        },
                    },
                },
            },
            "Submission": {
                "type": "object",
                "required": ["answers"],
                "properties": {
                    "answers": {
                        "type": "object",
                        "additionalProperties": {
                            "oneOf": [
                                {"type": "string"},
                                {"type": "array", "items": {"type": "string"}},
                                {"type": "null"},
                            ]
                        },
                    },
                    "token": {
                        "type": "string",
                        "description": "single-use invitation; required when the survey is"
                        " invitation_only",
                    },
                    "src": {"type": "string", "description": "township code of the link"},
                    "lang": {"type": "string"},
                },
            },
            "Stored": {
                "type": "object",
                "required": ["response_id"],
                "properties": {
                    "response_id": {"type": "integer"},
                    "survey": {"type": "string"},
                    "township": {"type": ["string", "null"]},
                    "created": {"type": "boolean"},
                },
            },
            "Results": {
                "type": "object",
                "required": ["survey", "indicators", "by"],
                "properties": {
                    "survey": {"type": "string"},
                    "title": {"type": "string"},
                    "baseline": {"type": ["string", "null"]},
                    "sample_included": {
                        "type": "boolean",
                        "description": "Whether sample (demo) responses are counted",
                    },
                    "sample_responses": {
                        "type": "integer",
                        "description": "Sample (demo) responses stored for the survey",
                    },
                    "indicators": {"type": "array", "items": _INDICATOR},
                    "by": {"type": "object"},
                },
            },
        },
    },
}
"""The survey routes in OpenAPI form."""
