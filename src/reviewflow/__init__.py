"""reviewflow: run the annual report-and-review assessment of Party-organisation secretaries
(述职评议考核, 一述三评一约谈) as a durable, explainable workflow."""

from __future__ import annotations

from reviewflow.clock import Clock, FrozenClock, SystemClock
from reviewflow.exceptions import (
    BallotError,
    ConflictError,
    DeadlineError,
    DuplicateCaseError,
    IdempotencyKeyReused,
    InputError,
    PluginError,
    PolicyError,
    ReviewflowError,
    SchemaVersionError,
    ScoringError,
    StoreError,
    TransitionRefused,
    UnknownCaseError,
)
from reviewflow.model import Actor, Case, EventRecord, Problem, Report, Stage
from reviewflow.policy import ApprovalLevel, ContentRules, Policy, StageRule


__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ApprovalLevel",
    "BallotError",
    "Case",
    "Clock",
    "ConflictError",
    "ContentRules",
    "DeadlineError",
    "DuplicateCaseError",
    "EventRecord",
    "FrozenClock",
    "IdempotencyKeyReused",
    "InputError",
    "PluginError",
    "Policy",
    "PolicyError",
    "Problem",
    "Report",
    "ReviewflowError",
    "SchemaVersionError",
    "ScoringError",
    "Stage",
    "StageRule",
    "StoreError",
    "SystemClock",
    "TransitionRefused",
    "UnknownCaseError",
]
