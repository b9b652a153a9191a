"""The parts a scoring policy is made of: channels, grade bands, quotas, vetoes, vote and
publication rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Literal

import attrs

from reviewflow.scoring._numbers import _policy_number, _share

# --------------------------------------------------------------------------- channels


_CHANNEL_KINDS = ("vote", "comment", "number")


@attrs.frozen(kw_only=True)
class Channel:
    """One evaluation channel (评): a vote, a comment with a rating, or a host's number.

    ``weight`` is its share of the composite score; the weights of a policy add up to
    100 (or to 1). A channel of weight 0 is recorded but does not score (the seed's two
    comments). Scores of every channel are on the 0–``max_points`` scale (100).
    """

    key: str
    label: str = ""
    kind: str = "vote"
    weight: Decimal = attrs.field(converter=_policy_number)
    max_points: Decimal = attrs.field(default=Decimal(100), converter=_policy_number)
    #: For a comment channel: the role whose comment (点评) it rates.
    role: str = ""


# --------------------------------------------------------------------------- grades


@attrs.frozen(kw_only=True)
class GradeBand:
    """A grade (等次) and the lowest score that earns it."""

    key: str
    label: str = ""
    min_score: Decimal = attrs.field(converter=_policy_number)


@attrs.frozen(kw_only=True)
class Quota:
    """At most ``max_share`` of the cases (rounded down), and/or ``max_count`` cases, may get
    ``grade``. The lowest scores above the quota move down one grade; cases tied at the cut
    all move down (``ties="demote"``, so the quota is never exceeded) or all stay
    (``ties="keep"``)."""

    grade: str
    max_share: Fraction | None = attrs.field(default=None, converter=_share)
    max_count: int | None = None
    ties: Literal["demote", "keep"] = "demote"

    def allowed(self, n_cases: int) -> int:
        """Return how many of ``n_cases`` may have the grade."""
        limit = n_cases
        if self.max_share is not None:
            limit = min(limit, int(self.max_share * n_cases))
        if self.max_count is not None:
            limit = min(limit, self.max_count)
        return limit


@attrs.frozen(kw_only=True)
class Veto:
    """When the named ``condition`` holds for a case, its grade is at best ``cap``
    (一票否决 style: e.g. a disciplinary case may not be graded 好)."""

    condition: str
    cap: str
    label: str = ""


#: The seed's voter categories (参会人员类别).
DEFAULT_CATEGORIES: Mapping[str, str] = {
    "party_member": "党员",
    "cadre": "干部",
    "public": "群众",
    "parent": "家长代表",
    "teacher": "教师代表",
}


@attrs.frozen(kw_only=True)
class VoteRules:
    """Rules of the on-site vote (现场测评): voter categories, validity, quorum, privacy.

    ``blank``: a blank ballot is an abstention (``"abstain"``, outside the denominator) or
    ``"invalid"``. Over-marked and unreadable ballots are always invalid. ``quorum`` is
    the share of eligible voters that must have returned a ballot before the vote may
    close; ``min_grassroots_share`` the least share of returned ballots from the
    ``grassroots`` categories. No per-category result is shown for fewer than
    ``min_group_size`` voters.
    """

    categories: Mapping[str, str] = attrs.field(factory=lambda: dict(DEFAULT_CATEGORIES))
    grassroots: frozenset[str] = frozenset({"public", "parent", "teacher"})
    blank: Literal["abstain", "invalid"] = "abstain"
    quorum: Fraction | None = attrs.field(default=None, converter=_share)
    min_grassroots_share: Fraction | None = attrs.field(default=None, converter=_share)
    min_group_size: int = 5

    def category_label(self, key: str | None) -> str:
        """Return a category's Chinese name (``全体`` for no category)."""
        if key is None:
            return "全体"
        return self.categories.get(key, key)


@attrs.frozen(kw_only=True)
class PublicationRules:
    """How results are published (在一定范围内公布) and fed back (反馈).

    ``scope`` is the default audience when a publication names none; ``publicity_days``
    an optional public-notice period (公示), in calendar days or, with
    ``publicity_working_days``, working days.
    """

    scope: str = ""
    publicity_days: int | None = None
    publicity_working_days: bool = False
    feedback: bool = True
