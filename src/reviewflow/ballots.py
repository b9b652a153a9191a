"""The on-site vote (现场测评): one-time tokens, secret ballots, paper counts, tallies.

A :class:`Vote` is plain in-memory state (rounds of ballots and paper counts) that a
store can keep as JSON; the functions here change it and say what they changed, and
never read a clock. Tokens live in a :class:`TokenBook`: redeeming one is atomic, so a
SQL store can implement the same protocol with one ``UPDATE ... WHERE used = false``.

A stored :class:`Ballot` carries a random id, the round, the voter's category and the
choice: no voter, no token, no time. Ballots are kept and exported in the order of
their random ids, never in the order they were cast.
"""

from __future__ import annotations

from reviewflow._vote.close import (
    CloseResult,
    ballots_digest,
    category_results,
    close_round,
    recount,
    verify_vote,
    void_round,
)
from reviewflow._vote.paper import MAX_IMPORT_BYTES as MAX_IMPORT_BYTES
from reviewflow._vote.paper import MAX_IMPORT_ROWS as MAX_IMPORT_ROWS
from reviewflow._vote.paper import PaperRow, read_paper_counts
from reviewflow._vote.rounds import cast, enter_paper, issue_tokens, open_round
from reviewflow._vote.state import ALL as ALL
from reviewflow._vote.state import Ballot, PaperCount, Vote, VoteRound
from reviewflow._vote.state import RoundStatus as RoundStatus
from reviewflow._vote.state import _InIdOrder as _InIdOrder
from reviewflow._vote.tally import BLANK as BLANK
from reviewflow._vote.tally import INVALID as INVALID
from reviewflow._vote.tally import Tally, classify_marks, tally
from reviewflow._vote.tokens import IssuedToken, MemoryTokenBook, TokenBook, TokenGrant
from reviewflow._vote.tokens import _check_grant as _check_grant
from reviewflow._vote.tokens import token_hash as token_hash

__all__ = [
    "Ballot",
    "CloseResult",
    "IssuedToken",
    "MemoryTokenBook",
    "PaperCount",
    "PaperRow",
    "Tally",
    "TokenBook",
    "TokenGrant",
    "Vote",
    "VoteRound",
    "ballots_digest",
    "cast",
    "category_results",
    "classify_marks",
    "close_round",
    "enter_paper",
    "issue_tokens",
    "open_round",
    "read_paper_counts",
    "recount",
    "tally",
    "verify_vote",
    "void_round",
]
