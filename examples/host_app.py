"""Embed reviewflow in a host web application, with nothing but the standard library (wsgiref).

The host owns log-in and people; reviewflow owns the rules. Each request names a
user (here the ``X-User`` header, standing in for the host's session); the host maps
it to a ``reviewflow.Actor`` and asks the campaign. A refusal becomes HTTP 409 with
its reason code, bad input 400, an unknown case 404.

    python examples/host_app.py              # serves http://127.0.0.1:8000 on reviewflow-host.db
    curl -H 'X-User: bureau' http://127.0.0.1:8000/cases
    curl -H 'X-User: bureau' -d '{"problems": ["组织生活不规范"]}' \\
         http://127.0.0.1:8000/cases/school-01/events/finish_research

Routes: ``GET /cases``, ``GET /cases/<id>``, ``GET /cases/<id>/allowed``,
``POST /cases/<id>/events/<event>`` (body: the event's data as JSON).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import reviewflow as rf

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
MAX_BODY = 1024 * 1024


def make_app(campaign: rf.Campaign, users: Mapping[str, rf.Actor]) -> Callable[..., Iterable[bytes]]:
    """Return a WSGI application serving ``campaign`` to the host's ``users``."""

    def reply(start: StartResponse, status: str, body: Any) -> list[bytes]:
        data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
        start(status, [("Content-Type", "application/json; charset=utf-8"),
                       ("Content-Length", str(len(data)))])
        return [data]

    def case_json(case: rf.Case) -> dict[str, Any]:
        return {"case_id": case.case_id, "organization": case.organization,
                "stage": case.stage.value, "stage_label": case.stage.label, "version": case.version}

    def app(environ: dict[str, Any], start: StartResponse) -> list[bytes]:
        user = users.get(environ.get("HTTP_X_USER", ""))
        if user is None:
            return reply(start, "401 Unauthorized", {"error": "unknown user; send X-User"})
        method = environ.get("REQUEST_METHOD", "GET")
        parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        try:
            if method == "GET" and parts == ["cases"]:
                return reply(start, "200 OK", [case_json(c) for c in campaign.cases()])
            if method == "GET" and len(parts) == 2 and parts[0] == "cases":
                return reply(start, "200 OK", case_json(campaign.case(parts[1])))
            if method == "GET" and len(parts) == 3 and parts[0] == "cases" and parts[2] == "allowed":
                return reply(start, "200 OK", [
                    {"event": p.event, "allowed": p.allowed, "reasons": list(p.reasons)}
                    for p in campaign.allowed(parts[1], user)
                ])
            if method == "POST" and len(parts) == 4 and parts[0] == "cases" and parts[2] == "events":
                data = read_json(environ)
                case = campaign.fire(parts[1], parts[3], actor=user, **data)
                return reply(start, "200 OK", case_json(case))
            return reply(start, "404 Not Found", {"error": "no such route"})
        except rf.UnknownCaseError as exc:
            return reply(start, "404 Not Found", {"error": str(exc)})
        except rf.TransitionRefused as exc:
            return reply(start, "409 Conflict", {"error": str(exc), "reason": exc.reason,
                                                 "findings": list(exc.findings)})
        except rf.ConflictError as exc:
            return reply(start, "409 Conflict", {"error": str(exc), "reason": "conflict"})
        except rf.ReviewflowError as exc:
            return reply(start, "400 Bad Request", {"error": str(exc)})

    return app


def read_json(environ: Mapping[str, Any]) -> dict[str, Any]:
    """Read the request body as a JSON object (at most 1 MB); InputError otherwise."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise rf.InputError("bad Content-Length") from None
    if length > MAX_BODY:
        raise rf.InputError("the request body is over 1 MB")
    raw = environ["wsgi.input"].read(length) if length else b"{}"
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise rf.InputError("the body must be a JSON object in UTF-8") from None
    if not isinstance(data, dict) or "actor" in data:
        raise rf.InputError("the body must be a JSON object of the event's data (no 'actor')")
    return data


def demo_users() -> dict[str, rf.Actor]:
    """Return the host's people for the example (a real host reads its own user table)."""
    return {
        "bureau": rf.Actor("bureau", "区教育局党组", roles={"organizer"}),
        "li": rf.Actor("li", "李四", roles={"guidance_group"}),
        "zhang": rf.Actor("zhang", "张三", roles={"secretary"}),
    }


def main(argv: list[str] | None = None) -> None:
    """Serve the example on 127.0.0.1:8000 with a SQLite file (``reviewflow-host.db``)."""
    from wsgiref.simple_server import make_server

    args = sys.argv[1:] if argv is None else argv
    port = int(args[0]) if args else 8000
    users = demo_users()
    campaign = rf.Campaign(rf.Policy.default(year=2016), store="sqlite:///reviewflow-host.db")
    if not campaign.cases():
        campaign.open_case("school-01", organization="第一中学党支部", secretary=users["zhang"])
    with make_server("127.0.0.1", port, make_app(campaign, users)) as server:
        print(f"serving http://127.0.0.1:{port} (Ctrl-C to stop)")
        server.serve_forever()


if __name__ == "__main__":
    main()
