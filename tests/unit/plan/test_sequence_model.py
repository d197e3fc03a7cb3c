"""The sequence state machine's pure tier: the planner under many sequences, no server.

The model (Firestore, BigQuery, the runs and the invariants) is
``tests/support/sequence_model.py``; hypothesis explores its sequences here. Many
examples, in ``make unit``; ``F2BQ_MODEL_EXAMPLES`` raises them (and makes the
search random instead of derandomized). A sequence it finds becomes a named test
in ``tests/unit/plan/test_sequence_regressions.py``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.support.sequence_model import Model

EXAMPLES = int(os.environ.get("F2BQ_MODEL_EXAMPLES", "150"))


def test_the_planner_keeps_every_sequence_equal_to_a_full_rebuild() -> None:
    run_state_machine_as_test(
        Model,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=25,
            deadline=None,
            derandomize=os.environ.get("F2BQ_MODEL_EXAMPLES") is None,
            suppress_health_check=list(HealthCheck),
        ),
    )
