"""Scores, grades and ranks for the three evaluations (三评), as pure functions over policy data.

The seed scores the on-site vote as (好×100 + 较好×80 + 一般×60 + 差×0) ÷ valid ballots.
Everything in that sentence is policy here: the grade scale (:class:`GradeScale`), the
rounding rule, the evaluation channels and their weights (:class:`Channel`), the score
bands that give a grade (等次, :class:`GradeBand`), quotas (:class:`Quota`), vetoes
(:class:`Veto`) and the follow-up a grade brings. Scores are exact (a :class:`~fractions.Fraction`
underneath, shown as :class:`~decimal.Decimal`) and rounded once, for presentation.

The vote rules (:class:`VoteRules`) and the publication rules (:class:`PublicationRules`)
live here too, so that one policy field, ``Policy.scoring``, carries all of 三评.
"""

from __future__ import annotations

from reviewflow.scoring._channels import _channel_score as _channel_score
from reviewflow.scoring._channels import composite_score
from reviewflow.scoring._grades import OBLIGATION_LABELS as OBLIGATION_LABELS
from reviewflow.scoring._grades import (
    CaseResult,
    ScoreTable,
    grade_cases,
    rank_competition,
    score_table,
)
from reviewflow.scoring._numbers import Number as Number
from reviewflow.scoring._numbers import Rounding
from reviewflow.scoring._policy import ScoringPolicy
from reviewflow.scoring._rules import DEFAULT_CATEGORIES as DEFAULT_CATEGORIES
from reviewflow.scoring._rules import Channel, GradeBand, PublicationRules, Quota, Veto, VoteRules
from reviewflow.scoring._scale import _SEED_SCALE as _SEED_SCALE
from reviewflow.scoring._scale import GradeScale, ScaleLevel, ScoreResult, satisfaction_score, score

__all__ = [
    "CaseResult",
    "Channel",
    "GradeBand",
    "GradeScale",
    "PublicationRules",
    "Quota",
    "Rounding",
    "ScaleLevel",
    "ScoreResult",
    "ScoreTable",
    "ScoringPolicy",
    "Veto",
    "VoteRules",
    "composite_score",
    "grade_cases",
    "rank_competition",
    "satisfaction_score",
    "score",
    "score_table",
]
