"""schemathesis against the DigitalOcean emulator, with DigitalOcean's own OpenAPI description:
for every operation the emulator serves, generated requests (valid by the description) must
get a status code the description declares, a response body that conforms to the declared
schema, the declared content type, and never a 5xx. Used by test_do_schemathesis.py (a few
examples per operation) and scripts/schemathesis_do.py (many)."""

from __future__ import annotations

from dataclasses import dataclass

TOKEN = "schemathesis-not-a-secret"


@dataclass
class Outcome:
    operations: list[str]  # "METHOD /path" run
    examples: int  # requests sent
    failures: dict[str, str]  # operation -> first failure


def run(emulator: object, document: dict, max_examples: int, seed: int = 16) -> Outcome:
    """Run schemathesis against `emulator` (a started DigitalOceanEmulator) for each operation
    of `document` it serves; the first failure of each operation is kept."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    schema = schemathesis.openapi.from_dict(document)
    base_url = emulator.url  # type: ignore[attr-defined]
    outcome = Outcome([], 0, {})
    for result in schema.get_all_operations():
        operation = result.ok()
        if not emulator.serves(operation.method, operation.path):  # type: ignore[attr-defined]
            continue
        label = f"{operation.method.upper()} {operation.path}"
        outcome.operations.append(label)

        @hypothesis_seed(seed)
        @settings(max_examples=max_examples, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def probe(case: object) -> None:
            outcome.examples += 1
            case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"},  # type: ignore[attr-defined]
                                   checks=checks)

        try:
            probe()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis groups its failures
            outcome.failures[label] = f"{type(exc).__name__}: {exc}"[:2000]
    return outcome
