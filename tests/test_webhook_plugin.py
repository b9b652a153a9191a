"""The example webhook plugin (examples/reviewflow-webhook) against a real HTTP server on 127.0.0.1.

The plugin module is imported from its file: no installation is needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
import logging
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pendulum
import pytest

import reviewflow as rf
from reviewflow.testing import SAMPLE_VOTE, Cast, drive_to, seed_campaign

PLUGIN = Path(__file__).parents[1] / "examples" / "reviewflow-webhook" / "src" / "reviewflow_webhook" / \
    "__init__.py"
SECRET = "SECtopsecret0123456789"
TOKEN = "tok-abcdef-123456"


def load_plugin() -> ModuleType:
    """Import the plugin module from its path."""
    spec = importlib.util.spec_from_file_location("reviewflow_webhook_under_test", PLUGIN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


webhook = load_plugin()


class Robot:
    """A chat robot on 127.0.0.1: records each request; fails or stalls on demand."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = 0
        self.status = 500
        self.delay = 0.0
        self.answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                robot.requests.append({"path": self.path, "body": json.loads(body.decode("utf-8")),
                                       "type": self.headers.get("Content-Type")})
                if robot.delay:
                    time.sleep(robot.delay)
                if len(robot.requests) <= robot.fail_first:
                    self.send_response(robot.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps(robot.answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/robot/send?access_token={TOKEN}"


@pytest.fixture
def robot() -> Iterator[Robot]:
    r = Robot()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def notifier(robot: Robot, **kwargs: Any) -> Any:
    kwargs.setdefault("secret", SECRET)
    kwargs.setdefault("timeout", 2)
    kwargs.setdefault("retries", 2)
    return webhook.WebhookNotifier(robot.url, sleep=lambda _s: None, **kwargs)


def test_a_deadline_reminder_is_posted_as_signed_dingtalk_markdown(
    robot: Robot, caplog: pytest.LogCaptureFixture,
) -> None:
    campaign, clock = seed_campaign()
    campaign.register(notifier(robot))
    cast = Cast.default()
    campaign.open_case("s1", organization="第一中学党支部", secretary=cast.secretary("s1"))
    campaign.fire("s1", "finish_research", actor=cast.organizer, problems=["组织生活不规范"])
    clock.set(pendulum.datetime(2016, 1, 14, 10, tz="Asia/Shanghai"))
    with caplog.at_level(logging.DEBUG, logger="reviewflow"):
        sweep = campaign.sweep
        assert sweep is not None
        fired = sweep()
    assert len(fired.fired) >= 1
    assert len(robot.requests) == len(fired.fired)
    first = robot.requests[0]
    assert first["body"]["msgtype"] == "markdown"
    assert "第一中学党支部" in first["body"]["markdown"]["text"]
    assert "2016-01-18" in first["body"]["markdown"]["text"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(first["path"]).query))
    expected = base64.b64encode(hmac.new(SECRET.encode(), f"{query['timestamp']}\n{SECRET}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert query["sign"] == expected
    assert query["access_token"] == TOKEN
    assert SECRET not in caplog.text
    assert TOKEN not in caplog.text
    assert campaign.plugin_errors == []


def test_published_results_are_posted_once(robot: Robot) -> None:
    campaign, clock = seed_campaign()
    campaign.register(notifier(robot, style="feishu"))
    cast = Cast.default()
    for cid, org in (("s1", "第一中学党支部"), ("s2", "第二小学党支部")):
        campaign.open_case(cid, organization=org, secretary=cast.secretary(cid))
        drive_to(campaign, cid, rf.Stage.GROUP_TALK, cast=cast, clock=clock)
    robot.requests.clear()
    campaign.publish(actor=cast.organizer, scope="全局党员干部")
    assert len(robot.requests) == 1
    body = robot.requests[0]["body"]
    assert body["msg_type"] == "text"
    assert "第一中学党支部" in body["content"]["text"]
    assert "79" in body["content"]["text"]
    key = f"{body['timestamp']}\n{SECRET}".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert SAMPLE_VOTE["good"] == 10  # the sample vote scores 79


def test_server_errors_are_retried_until_it_answers(robot: Robot) -> None:
    robot.fail_first = 2
    answer = notifier(robot, retries=2).post("t", "x")
    assert answer["errcode"] == 0
    assert len(robot.requests) == 3


def test_a_client_error_is_not_retried_and_the_step_stands(
    robot: Robot, caplog: pytest.LogCaptureFixture,
) -> None:
    robot.fail_first = 10
    robot.status = 403
    campaign, clock = seed_campaign()
    campaign.register(notifier(robot, retries=3))
    cast = Cast.default()
    campaign.open_case("s1", organization="第一中学党支部", secretary=cast.secretary("s1"))
    drive_to(campaign, "s1", rf.Stage.GROUP_TALK, cast=cast, clock=clock)
    with caplog.at_level(logging.DEBUG):
        campaign.publish(actor=cast.organizer, scope="全局")
    assert len(robot.requests) == 1
    assert campaign.case("s1").data["publication"]["scope"] == "全局"  # the step stands
    assert len(campaign.plugin_errors) == 1
    message = str(campaign.plugin_errors[0])
    assert "HTTP 403" in message
    assert TOKEN not in message
    assert SECRET not in caplog.text
    assert TOKEN not in caplog.text


def test_a_stalled_robot_times_out_after_the_retries(robot: Robot, caplog: pytest.LogCaptureFixture) -> None:
    robot.delay = 0.6
    with caplog.at_level(logging.WARNING, logger="reviewflow.webhook"), \
            pytest.raises(webhook.WebhookError, match="after 2 attempt"):
        notifier(robot, timeout=0.2, retries=1).post("t", "x")
    assert len(robot.requests) == 2
    assert "access_token=***" in caplog.text
    assert TOKEN not in caplog.text


def test_settings_come_from_the_environment_and_are_checked(robot: Robot,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWFLOW_WEBHOOK_URL", robot.url)
    monkeypatch.setenv("REVIEWFLOW_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("REVIEWFLOW_WEBHOOK_STYLE", "feishu")
    made = webhook.WebhookNotifier()
    assert made.style == "feishu"
    assert SECRET not in repr(made)
    assert TOKEN not in repr(made)
    monkeypatch.delenv("REVIEWFLOW_WEBHOOK_URL")
    with pytest.raises(webhook.WebhookError, match="no robot URL"):
        webhook.WebhookNotifier()
    with pytest.raises(webhook.WebhookError, match="http"):
        webhook.WebhookNotifier("file:///etc/passwd")


def test_a_policy_that_does_not_name_the_plugin_never_loads_it() -> None:
    from reviewflow._plugins import load_named

    campaign, _clock = seed_campaign()
    assert campaign.policy.plugins == ()
    assert campaign._engine.pm.get_plugins() == set()  # nothing registered by itself
    with pytest.raises(rf.PluginError, match="not installed"):
        load_named(["webhook-not-installed"])
