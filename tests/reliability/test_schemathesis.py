"""Generated requests against the documented API of a real ``pufa serve``.

Schemathesis reads ``/api/v1/openapi.json`` and sends requests that fit the document (and,
in its negative mode, requests that do not) to every operation over real HTTP; every response
must be documented (status code, content type, body schema, headers) and none may be a 5xx.
Both surveys are open and the demo data is loaded. In one pass an admin bearer token goes with
each request so the results and registry routes answer with figures; in another no credentials
go with them, so the 401 answers of those routes are checked against the document too.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from tests.reliability.conftest import Served
from tests.reliability.counts import COUNTS, scale

EXAMPLES = scale(25, 400)
"""Examples per operation and generation mode (6 or 7 operations)."""


@pytest.fixture(scope="module")
def admin_token(served: Served) -> str:
    """An admin API token on the served database."""
    done = served.pufa("token", "create", "--role", "admin")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def api_schema(served: Served, admin_token: str) -> Any:
    """The OpenAPI document as the running app serves it, with the admin token configured as
    the API's credentials (so schemathesis knows requests carry it)."""
    loaded = schemathesis.openapi.from_url(f"{served.base}/api/v1/openapi.json")
    loaded.config.update(base_url=served.base, headers={"Authorization": f"Bearer {admin_token}"})
    return loaded


@pytest.fixture(scope="module")
def anonymous_schema(served: Served) -> Any:
    """The same document, with no credentials configured."""
    loaded = schemathesis.openapi.from_url(f"{served.base}/api/v1/openapi.json")
    loaded.config.update(base_url=served.base)
    return loaded


@pytest.mark.timeout(scale(120, 1200))
@pytest.mark.parametrize(
    ("mode", "credentials"),
    [
        (GenerationMode.POSITIVE, "admin"),
        (GenerationMode.NEGATIVE, "admin"),
        (GenerationMode.POSITIVE, "none"),
    ],
)
def test_every_generated_request_gets_a_documented_answer(
    mode: GenerationMode, credentials: str, request: pytest.FixtureRequest
) -> None:
    api_schema = request.getfixturevalue(
        "api_schema" if credentials == "admin" else "anonymous_schema"
    )
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6, "every /api/v1 operation is in the document"
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
        )
        def check(case: Any) -> None:
            COUNTS["schemathesis: requests"] += 1
            if credentials == "none":
                COUNTS["schemathesis: requests without credentials"] += 1
            try:
                response = case.call_and_validate()
            except Exception:
                COUNTS["schemathesis: failing requests"] += 1
                raise
            COUNTS[f"schemathesis: {response.status_code // 100}xx responses"] += 1

        try:
            check()
        except Exception as exc:
            failures[operation.label] = str(exc)[:3000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
