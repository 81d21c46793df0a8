"""Fault injection for a Lambda run: the Nth AWS call of a run fails, then the same event is
retried cleanly, and the final state is compared with that of a run that never failed.

A fault is injected through botocore's event system on the handler's own session
(`DeployedLambda.invoke(hooks=...)`), so the Lambda's code, retries and error handling are
exercised as they are. Two kinds:
- `refused`: the call is refused before it reaches AWS, with `ThrottlingException` (as when
  the adaptive retries give up) at odd-numbered calls and a 500 `InternalError` at even ones:
  both leave nothing applied, and the Lambdas branch on neither code, so alternating them
  exercises both without running every call twice;
- `applied-but-failed`: the call reaches moto and takes effect, then the client sees a 500
  (a response lost on the way back: the caller cannot tell it from a refused call).

`prove_exactly_once` runs a scenario once cleanly, counts its AWS calls, then, for each kind
and each call, builds the scenario afresh in an empty account, injects the fault, retries,
and returns every trial whose final state differs from the clean run's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto.core.base_backend import BackendDict

from tests.harness import moto_fixes
from tests.harness.iam import IamAudit
from tests.harness.lambdas import DeployedLambda, deployed_lambda
from tests.harness.program import StackRun, run_program
from tests.harness.world import World

KINDS = ("refused", "applied-but-failed")
_REFUSALS = (
    (500, "InternalError", "We encountered an internal error. Please try again."),  # even calls
    (400, "ThrottlingException", "Rate exceeded"),
)  # odd calls
_LOST = (500, "InternalError", "injected: the call was applied, its response lost")


@dataclass
class Fault:
    """`kind` at the `at`-th AWS call (1-based) of one invocation; at 0, only counts the calls."""

    kind: str
    at: int
    seen: list[str] = field(default_factory=list)  # the operations called so far
    hit: str = ""  # the operation that failed, once it has

    def _count(self, model, context, **_: Any):
        self.seen.append(model.name)
        if len(self.seen) != self.at:
            return None
        self.hit = model.name
        if self.kind == "applied-but-failed":
            context["spotyard-fault"] = True
            return None
        status, code, message = _REFUSALS[self.at % 2]
        return AWSResponse("https://injected", status, {}, None), _error(status, code, message)

    def _lose_response(self, http_response, parsed, context, **_: Any) -> None:
        if context.get("spotyard-fault"):
            status, code, message = _LOST
            http_response.status_code = status
            parsed.update(_error(status, code, message))

    def hooks(self) -> tuple[tuple[str, Callable[..., Any]], ...]:
        return (("before-call", self._count), ("after-call", self._lose_response))

    def raised(self, error: ClientError) -> bool:
        """Whether `error` is this fault's (and not something the run did wrong)."""
        codes = [code for _, code, _ in (*_REFUSALS, _LOST)]
        return bool(self.hit) and error.response.get("Error", {}).get("Code") in codes


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


@dataclass
class Scenario:
    """A Lambda, the event it is given, and how to read the state its run leaves (in a form
    that does not depend on the ids moto hands out)."""

    function: DeployedLambda
    event: dict[str, Any]
    observe: Callable[[], Any]


@dataclass
class Trial:
    fault: Fault
    failed_run: str  # what the faulted run raised, "" if it absorbed the fault
    state: Any = None

    def __str__(self) -> str:
        return (
            f"{self.fault.kind} at call {self.fault.at} ({self.fault.hit}), run {self.failed_run or 'succeeded'}"
            f" -> {self.state!r}"
        )


def fresh_account(region: str) -> World:
    """Every moto backend emptied and the account seeded again (inside the test's mock_aws)."""
    BackendDict.reset()
    moto_fixes.apply()
    return World(region).seed()


def deployed(config: dict[str, Any], function: str, region: str, workdir: Path) -> tuple[StackRun, DeployedLambda]:
    """The stack deployed from `config` and its Lambda `function`, each call checked against
    the Lambda's own role (a local audit: which actions a trial exercises depends on its fault)."""
    run = run_program(copy.deepcopy(config), region=region, stack="dev")
    return run, deployed_lambda(run, function, workdir, IamAudit())


def prove_exactly_once(
    build: Callable[[World], Scenario],
    region: str,
    kinds: tuple[str, ...] = KINDS,
    from_call: str | None = None,
) -> tuple[Any, list[Trial]]:
    """(the clean run's state, the trials that ended in another state). With `from_call`, faults
    are injected from the clean run's first call of that operation on: the calls before it are
    reads that another scenario of the same run already faults."""
    clean, counter = build(fresh_account(region)), Fault(KINDS[0], at=0)
    clean.function.invoke(clean.event, hooks=counter.hooks())
    calls, expected = counter.seen, clean.observe()
    first = calls.index(from_call) + 1 if from_call else 1
    wrong = []
    for kind in kinds:
        for at in range(first, len(calls) + 1):
            scenario = build(fresh_account(region))
            fault = Fault(kind, at)
            failed = ""
            try:
                scenario.function.invoke(scenario.event, hooks=fault.hooks())
            except ClientError as error:
                if not fault.raised(error):
                    raise
                failed = f"failed at {fault.hit}"
            assert fault.hit, f"{kind} at call {at}: the run made fewer calls than the clean one {calls}"
            scenario.function.invoke(scenario.event)
            trial = Trial(fault, failed, scenario.observe())
            if trial.state != expected:
                wrong.append(trial)
    return expected, wrong
