"""The one registry of reason codes: every ``.reason`` reviewflow puts on an error it raises.

A code is public: hosts match on it, so a code's text never changes. Each code has an
English and a Chinese meaning and says what the ``reviewflow`` command exits with when an
error carries it (1: a rule refused the step; 2: the input, a file or the database was
wrong). ``late`` is the one code that is not an error: it marks a step done after a soft
deadline (an event's ``reason``).

This module sits at the bottom layer and imports nothing of reviewflow;
:mod:`reviewflow.exceptions` re-exports :class:`Reason`. ``docs/reference/errors.md``
lists the codes from here (``tools/gen_reason_docs.py``), and
``tests/test_reason_codes.py`` fails when ``src/`` raises a code that is not here.

>>> Reason.NOT_PERMITTED == "not_permitted", Reason("token_used").exit_code
(True, 1)
>>> Reason.TIME_BACKWARDS.zh
'时间早于该案例的上一事件'
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import NamedTuple

__all__ = ["DONE", "REFUSED", "USAGE", "Meaning", "Reason"]

#: The exit code of a step that was done (``late``: no error carries it).
DONE = 0
#: The exit code of the ``reviewflow`` command for a refusal (a rule said no).
REFUSED = 1
#: The exit code for bad usage or input (a file, an argument, the database): nothing was written.
USAGE = 2


class Reason(StrEnum):
    """Every reason code reviewflow raises; a member equals its code (``"not_permitted"``)."""

    # -- steps the rules refuse (TransitionRefused)
    UNKNOWN_EVENT = "unknown_event"
    WRONG_STAGE = "wrong_stage"
    NOT_PERMITTED = "not_permitted"
    SELF_SIGN_OFF = "self_sign_off"
    ALREADY_SIGNED = "already_signed"
    NOT_IN_GROUP = "not_in_group"
    DEADLINE_PASSED = "deadline_passed"
    TOO_EARLY = "too_early"
    CONTENT_RULE = "content_rule"
    MISSING_DATA = "missing_data"
    INVALID_DATA = "invalid_data"
    TIME_BACKWARDS = "time_backwards"
    NO_DEADLINE = "no_deadline"
    NOT_LATER = "not_later"
    COMMENT_EXISTS = "comment_exists"
    ALREADY_PUBLISHED = "already_published"
    LATE = "late"
    # -- the vote (TransitionRefused and BallotError)
    QUORUM_NOT_MET = "quorum_not_met"
    NO_VALID_BALLOTS = "no_valid_ballots"
    VOTE_CLOSED = "vote_closed"
    BALLOT_VOTE_OPEN = "ballot_vote_open"
    VOTES_EXCEED_ATTENDANCE = "votes_exceed_attendance"
    NO_VOTE = "no_vote"
    ROUND_OPEN = "round_open"
    UNKNOWN_TOKEN = "unknown_token"  # noqa: S105  # a reason code, not a secret
    WRONG_CASE = "wrong_case"
    WRONG_ROUND = "wrong_round"
    TOKEN_USED = "token_used"  # noqa: S105
    DUPLICATE_TOKEN = "duplicate_token"  # noqa: S105
    UNKNOWN_OPTION = "unknown_option"
    UNKNOWN_CATEGORY = "unknown_category"
    ALREADY_ENTERED = "already_entered"
    MIXED_CATEGORIES = "mixed_categories"
    # -- bad input (InputError)
    BAD_IDENTIFIER = "bad_identifier"
    INVALID_ARGUMENT = "invalid_argument"
    BAD_TIMEOUT = "bad_timeout"
    BAD_BACKOFF = "bad_backoff"
    EXISTS = "exists"
    NO_DIRECTORY = "no_directory"
    CANNOT_WRITE = "cannot_write"
    SHEET_TOO_LARGE = "sheet_too_large"
    # -- the policy (PolicyMismatch)
    POLICY_DIFFERS = "policy_differs"
    # -- the database (StoreTimeout, ScrubIncomplete)
    CONNECT_TIMEOUT = "connect_timeout"
    NO_REPLY = "no_reply"
    STATEMENT_TIMEOUT = "statement_timeout"
    LOCK_TIMEOUT = "lock_timeout"
    IDLE_IN_TRANSACTION_TIMEOUT = "idle_in_transaction_timeout"
    SCRUB_INCOMPLETE = "scrub_incomplete"

    @property
    def en(self) -> str:
        """What the code means, in English."""
        return MEANINGS[self].en

    @property
    def zh(self) -> str:
        """What the code means, in Chinese."""
        return MEANINGS[self].zh

    @property
    def exit_code(self) -> int:
        """What the ``reviewflow`` command exits with for an error with this code (1 or 2;
        0 for ``late``, which marks a step that was done)."""
        return MEANINGS[self].exit_code

    def meaning(self, lang: str) -> str:
        """The meaning in ``lang`` (``"zh"``; anything else gives English)."""
        return self.zh if lang == "zh" else self.en


class Meaning(NamedTuple):
    """A code's entry: its exit code and its meaning in English and in Chinese."""

    exit_code: int
    en: str
    zh: str


R = Reason
#: The meaning of every code (checked below: one entry per member, no more).
MEANINGS: Mapping[Reason, Meaning] = {
    R.UNKNOWN_EVENT: Meaning(USAGE, "no such event", "没有这个事件"),
    R.WRONG_STAGE: Meaning(REFUSED, "the case is not in the stage this event needs",
                           "案例不在此事件所需的阶段"),
    R.NOT_PERMITTED: Meaning(REFUSED, "the actor's roles may not do this", "操作人的角色无权执行此操作"),
    R.SELF_SIGN_OFF: Meaning(REFUSED, "a secretary cannot sign off their own report",
                             "书记不能审阅签字自己的报告"),
    R.ALREADY_SIGNED: Meaning(REFUSED, "the same person cannot sign two levels", "同一人不能签署两级审阅"),
    R.NOT_IN_GROUP: Meaning(REFUSED, "not a member of the case's guidance group", "不是该案例指导组成员"),
    R.DEADLINE_PASSED: Meaning(REFUSED, "a hard deadline has passed", "已超过硬性截止时间"),
    R.TOO_EARLY: Meaning(REFUSED, "the stage's window has not opened yet", "该环节尚未开始"),
    R.CONTENT_RULE: Meaning(REFUSED, "the report breaks the content rules", "述职报告不符合内容要求"),
    R.MISSING_DATA: Meaning(USAGE, "the event needs more data", "此事件缺少必要数据"),
    R.INVALID_DATA: Meaning(USAGE, "the event's data is not valid", "此事件的数据无效"),
    R.TIME_BACKWARDS: Meaning(REFUSED, "dated before the case's last event", "时间早于该案例的上一事件"),
    R.NO_DEADLINE: Meaning(REFUSED, "the stage has no due time to extend", "该环节没有可延长的截止时间"),
    R.NOT_LATER: Meaning(REFUSED, "an extension must move the due time later",
                         "延期后的截止时间必须晚于原截止时间"),
    R.COMMENT_EXISTS: Meaning(REFUSED, "the channel has a comment; an amendment needs a reason",
                              "已有点评，修改需说明理由"),
    R.ALREADY_PUBLISHED: Meaning(REFUSED, "the results are published; a re-publication needs a reason",
                                 "结果已公布，重新公布需说明理由"),
    R.LATE: Meaning(DONE, "done after a soft deadline", "在软性截止时间之后完成"),
    R.QUORUM_NOT_MET: Meaning(REFUSED, "not enough ballots for a valid vote", "有效票数未达到法定比例"),
    R.NO_VALID_BALLOTS: Meaning(REFUSED, "the vote has no valid ballot to score", "测评没有可计分的有效票"),
    R.VOTE_CLOSED: Meaning(REFUSED, "the vote was closed; it changes only through a re-vote",
                           "测评已结束，只能通过重新测评更改"),
    R.BALLOT_VOTE_OPEN: Meaning(REFUSED, "the vote is held with ballots; typed counts are not accepted",
                                "测评正以测评票进行，不接受手工录入的票数"),
    R.VOTES_EXCEED_ATTENDANCE: Meaning(REFUSED, "more votes than people at the meeting",
                                       "票数多于到会人数"),
    R.NO_VOTE: Meaning(REFUSED, "no vote has been opened for the case", "该案例尚未开始测评"),
    R.ROUND_OPEN: Meaning(REFUSED, "the round is still open; close it first", "本轮测评尚未结束，请先结束"),
    R.UNKNOWN_TOKEN: Meaning(REFUSED, "no ballot token has this code", "没有这个测评票凭证"),
    R.WRONG_CASE: Meaning(REFUSED, "the ballot token belongs to another case's vote",
                          "该凭证属于另一案例的测评"),
    R.WRONG_ROUND: Meaning(REFUSED, "the ballot token is for another round", "该凭证属于另一轮测评"),
    R.TOKEN_USED: Meaning(REFUSED, "the ballot token has already been used", "该凭证已使用"),
    R.DUPLICATE_TOKEN: Meaning(REFUSED, "a ballot token was issued twice", "同一凭证被发放两次"),
    R.UNKNOWN_OPTION: Meaning(REFUSED, "not one of the vote's options", "不是测评的选项"),
    R.UNKNOWN_CATEGORY: Meaning(REFUSED, "not one of the vote's voter categories", "不是测评的投票人类别"),
    R.ALREADY_ENTERED: Meaning(REFUSED, "these paper counts are already entered", "该类别的纸质票数已录入"),
    R.MIXED_CATEGORIES: Meaning(REFUSED, "paper counts per category and for all voters together, "
                                "mixed", "纸质票数不能既按类别又按全体录入"),
    R.BAD_IDENTIFIER: Meaning(USAGE, "an id or a name holds a character it may not hold",
                              "编号或名称含有不允许的字符"),
    R.INVALID_ARGUMENT: Meaning(USAGE, "an argument is not valid", "参数无效"),
    R.BAD_TIMEOUT: Meaning(USAGE, "a database time limit is not a valid number of seconds",
                           "数据库时限不是有效的秒数"),
    R.BAD_BACKOFF: Meaning(USAGE, "a retry backoff setting is not valid", "重试间隔设置无效"),
    R.EXISTS: Meaning(USAGE, "a file is already at the path, and it is never overwritten",
                      "该路径已有文件，不会覆盖"),
    R.NO_DIRECTORY: Meaning(USAGE, "the output path's directory does not exist", "输出路径的目录不存在"),
    R.CANNOT_WRITE: Meaning(USAGE, "the file could not be written; nothing was left behind",
                            "文件无法写入，未留下任何内容"),
    R.SHEET_TOO_LARGE: Meaning(USAGE, "the workbook's sheet is too large to read", "工作表过大，无法读取"),
    R.POLICY_DIFFERS: Meaning(USAGE, "the policy differs from the one sealed on the campaign",
                              "政策与该评议已封存的政策不同"),
    R.CONNECT_TIMEOUT: Meaning(USAGE, "the database could not be reached in time", "未能在时限内连接数据库"),
    R.NO_REPLY: Meaning(USAGE, "the database did not reply in time", "数据库未在时限内响应"),
    R.STATEMENT_TIMEOUT: Meaning(USAGE, "a database statement ran past its time limit",
                                 "数据库语句超过时限"),
    R.LOCK_TIMEOUT: Meaning(USAGE, "waited too long for a lock another writer holds",
                            "等待其他写入者释放锁超时"),
    R.IDLE_IN_TRANSACTION_TIMEOUT: Meaning(USAGE, "the database closed a transaction left idle too long",
                                           "数据库关闭了空闲过久的事务"),
    R.SCRUB_INCOMPLETE: Meaning(USAGE, "old copies of ballot rows were not removed from the database",
                                "测评票的旧副本未从数据库中清除"),
}
del R

if set(MEANINGS) != set(Reason):  # pragma: no cover  # a member without a meaning is a bug
    raise RuntimeError(f"reason codes without a meaning: {sorted(set(Reason) - set(MEANINGS))}")
