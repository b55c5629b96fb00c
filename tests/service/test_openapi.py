"""schemathesis against /api/v1/openapi.json: no 5xx, status codes, content types and bodies as documented.

Bounded: a few dozen generated requests per operation, as admin, on SQLite seeded with the example.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from conftest import AUTH, make_app
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inventory.service.transfer import import_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inventory.yml"
MAX_EXAMPLES = 25
NEGATIVE_EXAMPLES = 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


@pytest.fixture(scope="module")
def api_app(tmp_path_factory):
    db = tmp_path_factory.mktemp("schemathesis") / "inventory.db"
    app = make_app(f"sqlite:///{db}")
    import_file(app.extensions["wardops_store"], EXAMPLE)
    yield app
    app.extensions["wardops_engine"].dispose()


@pytest.fixture(scope="module")
def api_schema(api_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)


def _run_all(api_schema, mode, checks, max_examples) -> list[str]:
    # Driven by hand (schemathesis' pytest loader does not support this pytest): every operation,
    # every failure collected, then reported together.
    failures, operations = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None, derandomize=True)
        def run(case):
            # identity: the WSGI transport does not decode gzip (the gzip SD path has its own test)
            case.call_and_validate(headers={**AUTH, "Accept-Encoding": "identity"}, checks=checks)

        try:
            run()
        except Unsatisfiable:
            # negative mode on an operation with nothing to break (no body, parameters all strings)
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as exc:  # a failure report: keep going, list them all
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 20
    return failures


def test_api_matches_its_openapi_document(api_schema):
    failures = _run_all(api_schema, GenerationMode.POSITIVE, CHECKS, MAX_EXAMPLES)
    assert not failures, "\n\n".join(failures)


def test_invalid_requests_never_get_a_5xx(api_schema):
    """Negative mode: bodies, paths and query strings that break the schema. Any 4xx is fine, the
    response must still be a documented JSON error, never a 5xx."""
    failures = _run_all(api_schema, GenerationMode.NEGATIVE, [not_a_server_error, content_type_conformance],
                        NEGATIVE_EXAMPLES)
    assert not failures, "\n\n".join(failures)
