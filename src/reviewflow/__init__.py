"""reviewflow: run the annual report-and-review assessment of Party-organisation secretaries
(述职评议考核, 一述三评一约谈) as a durable, explainable workflow."""

from __future__ import annotations

from reviewflow.audit import ChainProblem, VerifyReport
from reviewflow.campaign import Campaign, FireResult, Permission
from reviewflow.clock import Clock, FrozenClock, SystemClock
from reviewflow.content import Finding, check_report
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
from reviewflow.hooks import hookimpl
from reviewflow.model import Actor, Case, EventRecord, Problem, Report, Stage
from reviewflow.policy import ApprovalLevel, ContentRules, Policy, StageRule
from reviewflow.scoring import satisfaction_score
from reviewflow.store import MemoryStore, Store

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ApprovalLevel",
    "BallotError",
    "Campaign",
    "Case",
    "ChainProblem",
    "Clock",
    "ConflictError",
    "ContentRules",
    "DeadlineError",
    "DuplicateCaseError",
    "EventRecord",
    "Finding",
    "FireResult",
    "FrozenClock",
    "IdempotencyKeyReused",
    "InputError",
    "MemoryStore",
    "Permission",
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
    "Store",
    "StoreError",
    "SystemClock",
    "TransitionRefused",
    "UnknownCaseError",
    "VerifyReport",
    "check_report",
    "hookimpl",
    "satisfaction_score",
]
