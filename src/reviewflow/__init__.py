"""reviewflow: run the annual report-and-review assessment of Party-organisation secretaries
(述职评议考核, 一述三评一约谈) as a durable, explainable workflow."""

from __future__ import annotations

from reviewflow.audit import ChainProblem, VerifyReport
from reviewflow.ballots import Ballot, PaperCount, Tally, Vote, read_paper_counts
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
from reviewflow.policy_file import load_policy, policy_from_dict, policy_to_data, policy_to_toml
from reviewflow.scoring import (
    CaseResult,
    Channel,
    GradeBand,
    GradeScale,
    PublicationRules,
    Quota,
    Rounding,
    ScaleLevel,
    ScoreResult,
    ScoringPolicy,
    Veto,
    VoteRules,
    composite_score,
    grade_cases,
    rank_competition,
    satisfaction_score,
    score,
    score_table,
)
from reviewflow.store import MemoryStore, Store

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ApprovalLevel",
    "Ballot",
    "BallotError",
    "Campaign",
    "Case",
    "CaseResult",
    "ChainProblem",
    "Channel",
    "Clock",
    "ConflictError",
    "ContentRules",
    "DeadlineError",
    "DuplicateCaseError",
    "EventRecord",
    "Finding",
    "FireResult",
    "FrozenClock",
    "GradeBand",
    "GradeScale",
    "IdempotencyKeyReused",
    "InputError",
    "MemoryStore",
    "PaperCount",
    "Permission",
    "PluginError",
    "Policy",
    "PolicyError",
    "Problem",
    "PublicationRules",
    "Quota",
    "Report",
    "ReviewflowError",
    "Rounding",
    "ScaleLevel",
    "SchemaVersionError",
    "ScoreResult",
    "ScoringError",
    "ScoringPolicy",
    "Stage",
    "StageRule",
    "Store",
    "StoreError",
    "SystemClock",
    "Tally",
    "TransitionRefused",
    "UnknownCaseError",
    "VerifyReport",
    "Veto",
    "Vote",
    "VoteRules",
    "check_report",
    "composite_score",
    "grade_cases",
    "hookimpl",
    "load_policy",
    "policy_from_dict",
    "policy_to_data",
    "policy_to_toml",
    "rank_competition",
    "read_paper_counts",
    "satisfaction_score",
    "score",
    "score_table",
]
