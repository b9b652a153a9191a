"""Post reviewflow's deadline reminders and published results to a group chat robot.

The robot is a URL that accepts JSON (DingTalk and Feishu group robots). The plugin
implements two reviewflow hooks:

* ``reviewflow_deadline_rung``: a reminder or escalation came due for a case;
* ``reviewflow_results_published``: results were published (公示).

Only the standard library is used for HTTP (``urllib``), so the plugin adds nothing
to a host's dependencies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from reviewflow import hookimpl

__all__ = ["WebhookError", "WebhookNotifier", "mask_url"]

log = logging.getLogger("reviewflow.webhook")

_SECRET_PARAMS = ("access_token", "token", "key", "sign", "secret", "timestamp")


class WebhookError(Exception):
    """A post that failed for good (after retries); the message never carries a secret."""


def mask_url(url: str) -> str:
    """Return the URL with tokens, keys and signatures masked, for logs and errors.

    >>> mask_url("https://oapi.dingtalk.com/robot/send?access_token=abc123&x=1")
    'https://oapi.dingtalk.com/robot/send?access_token=***&x=1'
    """
    parts = urllib.parse.urlsplit(url)
    query = [(k, "***" if k.lower() in _SECRET_PARAMS else v)
             for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    path = parts.path
    if "/hook/" in path:  # Feishu puts the token in the path
        path = path.split("/hook/", 1)[0] + "/hook/***"
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, urllib.parse.urlencode(query, safe="*"),
                                    ""))


class WebhookNotifier:
    """A reviewflow plugin posting reminders and results to a chat robot URL.

    Without arguments it reads ``REVIEWFLOW_WEBHOOK_URL``, ``REVIEWFLOW_WEBHOOK_SECRET``,
    ``REVIEWFLOW_WEBHOOK_STYLE``, ``REVIEWFLOW_WEBHOOK_TIMEOUT`` and
    ``REVIEWFLOW_WEBHOOK_RETRIES`` (that is how reviewflow builds it from the entry point).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        secret: str | None = None,
        style: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float = 0.5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        env = os.environ
        self.url = url or env.get("REVIEWFLOW_WEBHOOK_URL", "")
        self._secret = secret if secret is not None else env.get("REVIEWFLOW_WEBHOOK_SECRET") or None
        self.style = (style or env.get("REVIEWFLOW_WEBHOOK_STYLE") or "dingtalk").lower()
        self.timeout = float(timeout if timeout is not None else env.get("REVIEWFLOW_WEBHOOK_TIMEOUT", 5))
        self.retries = int(retries if retries is not None else env.get("REVIEWFLOW_WEBHOOK_RETRIES", 3))
        self.backoff = backoff
        self._clock = clock
        self._sleep = sleep
        if not self.url:
            raise WebhookError("no robot URL: set REVIEWFLOW_WEBHOOK_URL or pass url=...")
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise WebhookError(f"the robot URL must be http(s): {mask_url(self.url)}")
        if self.style not in ("dingtalk", "feishu"):
            raise WebhookError(f"style must be dingtalk or feishu, not {self.style!r}")
        if self.timeout <= 0 or self.retries < 0:
            raise WebhookError("timeout must be above 0 seconds and retries 0 or more")

    def __repr__(self) -> str:  # never show the secret
        return f"WebhookNotifier({mask_url(self.url)!r}, style={self.style!r})"

    # ------------------------------------------------------------------ hooks

    @hookimpl
    def reviewflow_deadline_rung(self, campaign: Any, case: Any, stage: Any, rung: Any, due: Any) -> None:
        """Post a reminder (or an escalation) for one case's deadline."""
        label = getattr(stage, "label", str(stage))
        what = rung.describe() if hasattr(rung, "describe") else str(rung)
        due_text = due.strftime("%Y-%m-%d %H:%M") if hasattr(due, "strftime") else str(due)
        title = f"述职评议提醒：{case.organization}"
        text = (f"**{case.organization}**（{case.case_id}）\n\n"
                f"环节：{label}，截止时间：{due_text}\n\n"
                f"提醒：{what}")
        self.post(title, text)

    @hookimpl
    def reviewflow_results_published(self, campaign: Any, results: Any, scope: Any) -> None:
        """Post the published results: each case's score, grade and rank."""
        names = {c.case_id: c.organization for c in _cases(campaign, results)}
        lines = []
        for r in sorted(results, key=lambda r: (getattr(r, "rank", 0), r.case_id)):
            score = getattr(getattr(r, "score", None), "rounded", getattr(r, "score", ""))
            grade = getattr(getattr(r, "grade", None), "label", "") or getattr(r.grade, "key", "")
            lines.append(f"{r.rank}. {names.get(r.case_id, r.case_id)}：{score} 分，{grade}")
        name = getattr(getattr(campaign, "policy", None), "name", "述职评议考核")
        title = f"{name}结果公示"
        text = f"**{title}**（公布范围：{scope}）\n\n" + "\n".join(lines)
        self.post(title, text)

    # ------------------------------------------------------------------ posting

    def payload(self, title: str, text: str) -> dict[str, Any]:
        """Return the JSON body for the robot (signed in the body for Feishu)."""
        if self.style == "feishu":
            body: dict[str, Any] = {"msg_type": "text", "content": {"text": f"{title}\n{text}"}}
            if self._secret:
                timestamp = str(int(self._clock()))
                key = f"{timestamp}\n{self._secret}".encode()
                body["timestamp"] = timestamp
                body["sign"] = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            return body
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}

    def target(self) -> str:
        """Return the URL to post to (signed in the query for DingTalk)."""
        if self.style != "dingtalk" or not self._secret:
            return self.url
        timestamp = str(int(self._clock() * 1000))
        to_sign = f"{timestamp}\n{self._secret}".encode()
        sign = base64.b64encode(hmac.new(self._secret.encode(), to_sign, hashlib.sha256).digest())
        query = urllib.parse.urlencode({"timestamp": timestamp, "sign": sign.decode()})
        return self.url + ("&" if "?" in self.url else "?") + query

    def post(self, title: str, text: str) -> Mapping[str, Any]:
        """Post one message; retry network errors, timeouts and 5xx; return the robot's answer."""
        data = json.dumps(self.payload(title, text), ensure_ascii=False).encode("utf-8")
        shown = mask_url(self.url)
        attempts = self.retries + 1
        last = ""
        for attempt in range(1, attempts + 1):
            request = urllib.request.Request(  # noqa: S310  # http(s) checked in __init__
                self.target(), data=data, method="POST",
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    answer = _answer(response.read())
            except urllib.error.HTTPError as exc:
                exc.close()  # release the connection it holds
                last = f"HTTP {exc.code}"
                if exc.code < 500 and exc.code != 429:
                    raise WebhookError(f"{shown} refused the message: {last}") from None
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
            else:
                code = answer.get("errcode", answer.get("code", 0))
                if code not in (0, None):
                    message = answer.get("errmsg", answer.get("msg", ""))
                    raise WebhookError(f"{shown} answered error {code}: {message}")
                log.info("posted %r to %s (attempt %d)", title, shown, attempt)
                return answer
            log.warning("post to %s failed (attempt %d of %d): %s", shown, attempt, attempts, last)
            if attempt < attempts:
                self._sleep(self.backoff * 2 ** (attempt - 1))
        raise WebhookError(f"could not post to {shown} after {attempts} attempt(s): {last}")


def _answer(raw: bytes) -> Mapping[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _cases(campaign: Any, results: Iterable[Any]) -> list[Any]:
    out = []
    for r in results:
        try:
            out.append(campaign.case(r.case_id))
        except Exception:  # noqa: S112  # a name is nice to have; the id will do
            continue
    return out
