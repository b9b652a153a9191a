"""Messages of the command line in Chinese and English.

The language comes from ``--lang``, else ``REVIEWFLOW_LANG``, else the locale
(``LC_ALL``, ``LC_MESSAGES``, ``LANG``: ``zh_CN.UTF-8`` gives Chinese), else English.
Error messages raised by the library are English with Chinese labels; the CLI
adds a translated lead-in and, for refusals, the meaning of the reason code.

>>> Messages("zh")("refused")
'已拒绝'
>>> Messages("en")("cases_imported", n=3)
'imported 3 cases'
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from reviewflow.exceptions import Reason

__all__ = ["LANGS", "MESSAGES", "REASONS", "Messages", "detect_lang"]

LANGS = ("zh", "en")

#: Message key: (English, Chinese), formatted with ``str.format``.
MESSAGES: Mapping[str, tuple[str, str]] = {
    "error": ("error", "错误"),
    "refused": ("refused", "已拒绝"),
    "internal_error": ("internal error (a bug in reviewflow; please report it with the command "
                       "you ran)", "内部错误（reviewflow 的缺陷，请连同所执行的命令一起报告）"),
    "demo_title": ("reviewflow demo: {n} branches, campaign {year}",
                   "reviewflow 演示：{n} 个党组织，{year} 年度"),
    "demo_store": ("store: {store}", "存储：{store}"),
    "stage_counts": ("cases per stage", "各阶段案例数"),
    "stage": ("stage", "阶段"),
    "cases": ("cases", "案例数"),
    "refusals_by_reason": ("refusals by reason", "按原因统计的拒绝"),
    "reason": ("reason", "原因"),
    "count": ("count", "次数"),
    "meaning": ("meaning", "含义"),
    "results": ("results", "评议结果"),
    "returned": ("reports sent back for revision: {n}", "退回修改的述职报告：{n} 份"),
    "rank": ("rank", "名次"),
    "case": ("case", "案例"),
    "organization": ("organisation", "党组织"),
    "secretary": ("secretary", "书记"),
    "valid": ("valid", "有效票"),
    "score": ("score", "得分"),
    "grade": ("grade", "等次"),
    "more_rows": ("... {n} more rows (see the workbook)", "……另有 {n} 行（见工作簿）"),
    "files_written": ("files written", "生成的文件"),
    "verify_ok": ("audit chain intact: {cases} cases, {events} events",
                  "审计链完整：{cases} 个案例，{events} 条事件"),
    "verify_broken": ("audit chain broken in {n} case(s)", "{n} 个案例的审计链被破坏"),
    "verify_anchors": ("the record extends {n} anchor(s)", "记录与 {n} 个锚点一致"),
    "verify_note": ("note: {text}", "注意：{text}"),
    "anchor_taken": ("anchor {digest} taken at {at}: {cases} cases, {events} events, "
                     "{refusals} refusals", "已于 {at} 锚定，摘要 {digest}：{cases} 个案例，"
                     "{events} 条事件，{refusals} 条拒绝记录"),
    "rungs_fired": ("deadline reminders fired: {n}", "已触发的期限提醒：{n}"),
    "next_steps": ("inspect it with: {cmd}", "查看：{cmd}"),
    "campaign_created": ("campaign {id} created in {db}", "已在 {db} 创建 {id} 年度评议"),
    "config_written": ("campaign file written: {path}", "已写入评议配置文件：{path}"),
    "policy_ok": ("{path}: the policy is valid", "{path}：政策文件有效"),
    "policy_warnings": ("{n} warning(s)", "{n} 条警告"),
    "warning": ("warning", "警告"),
    "cases_imported": ("imported {n} cases", "已导入 {n} 个案例"),
    "dry_run": ("checked {n} rows: nothing written (--dry-run)", "已检查 {n} 行：未写入（--dry-run）"),
    "overdue": ("overdue", "已逾期"),
    "due_soon": ("due soon", "即将到期"),
    "due": ("due", "截止"),
    "now": ("now", "当前时间"),
    "history": ("history", "历史记录"),
    "event": ("event", "事件"),
    "actor": ("actor", "操作人"),
    "at": ("at", "时间"),
    "allowed": ("allowed", "可以"),
    "not_allowed": ("not allowed", "不可以"),
    "needs": ("needs", "需要数据"),
    "fired": ("{case}: {event} done, now in {stage}", "{case}：{event} 已完成，当前阶段 {stage}"),
    "published": ("results published to {scope}", "结果已在{scope}范围公示"),
    "dispatched": ("hooks told of {n} pending event(s)", "已补发 {n} 条待通知事件"),
    "outbox_ok": ("every event was delivered to every plugin", "所有事件均已通知全部插件"),
    "outbox_undelivered": ("{n} event(s) not yet offered to the plugins (run reviewflow tick)",
                           "{n} 条事件尚未通知插件（运行 reviewflow tick）"),
    "outbox_failures": ("failed deliveries, retried by reviewflow tick: {n}",
                        "通知失败、由 reviewflow tick 重试的事件：{n} 条"),
    "plugin": ("plugin", "插件"),
    "attempts": ("attempts", "尝试次数"),
    "last_error": ("last error", "最近错误"),
    "next_try": ("next try", "下次重试"),
    "upgraded": ("database at revision {rev} (was {old})", "数据库已升级到 {rev}（原为 {old}）"),
    "tokens_written": ("{n} ballot tokens written to {path}", "已生成 {n} 张测评票凭证：{path}"),
    "tokens_kept": ("the token sheet {path} is kept: the database did not confirm the tokens; if "
                    "`reviewflow show {case}` lists no new issue_ballots event, delete the sheet",
                    "凭证表 {path} 已保留：数据库未确认凭证是否生成；如 `reviewflow show {case}` "
                    "中没有新的 issue_ballots 记录，请删除该表"),
    "tokens_not_removed": ("the token sheet {path} holds tokens that were not issued and could "
                           "not be removed; delete it", "凭证表 {path} 中的凭证未生效且无法删除，请手动删除"),
    "ballots_imported": ("{n} ballots imported", "已导入 {n} 张测评票"),
    "ballot_cast": ("ballot cast in the vote of {case}", "已在 {case} 的测评中投票"),
    "vote_closed": ("vote of {case} closed", "{case} 的测评已结束"),
    "scrub_not_done": ("the vote of {case} IS closed, but the scrub of the ballot table was "
                       "not done; run `reviewflow ballots scrub` when no other connection "
                       "to the database is open",
                       "{case} 的测评已结束，但测评票表的旧副本未清除；请在没有其他数据库连接时"
                       "运行 `reviewflow ballots scrub`"),
    "ballots_scrubbed": ("old copies of the ballot rows removed from the database's files",
                         "已从数据库文件中清除测评票的旧副本"),
    "nothing_to_scrub": ("the ballots are kept in memory: nothing to scrub",
                         "测评票保存在内存中，无需清除"),
    "revote_opened": ("re-vote of {case} opened: round {round}",
                      "{case} 已开始重新测评：第 {round} 轮"),
    "written": ("written: {path}", "已写入：{path}"),
}

#: Reason codes: (English, Chinese) meaning, from the one registry (:class:`reviewflow.exceptions.Reason`).
REASONS: Mapping[str, tuple[str, str]] = {str(r): (r.en, r.zh) for r in Reason}


def detect_lang(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Return ``"zh"`` or ``"en"``: the explicit choice, else REVIEWFLOW_LANG, else the locale.

    >>> detect_lang(environ={"LANG": "zh_CN.UTF-8"}), detect_lang(environ={"LANG": "C"})
    ('zh', 'en')
    """
    env = os.environ if environ is None else environ
    for value in (explicit, env.get("REVIEWFLOW_LANG"), env.get("LC_ALL"),
                  env.get("LC_MESSAGES"), env.get("LANG")):
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


class Messages:
    """Look up CLI messages in one language: ``msgs("key", name=value)``."""

    __slots__ = ("lang",)

    def __init__(self, lang: str = "en") -> None:
        self.lang = lang if lang in LANGS else "en"

    def __call__(self, key: str, **kwargs: object) -> str:
        """Return the message for ``key`` in this language, formatted with ``kwargs``."""
        en, zh = MESSAGES.get(key, (key, key))
        return (zh if self.lang == "zh" else en).format(**kwargs)

    def reason(self, code: str) -> str:
        """Return what a reason code means, in this language (empty if it is not registered)."""
        en, zh = REASONS.get(code, ("", ""))
        return zh if self.lang == "zh" else en
