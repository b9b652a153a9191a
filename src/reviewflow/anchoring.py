"""Anchors and keyed MACs: what makes the record tamper-evident against the database's users.

Each case's events are hash-chained (:mod:`reviewflow.audit`), but the chain is unkeyed:
whoever can write the database can delete the newest events of a case and set its row
back, or change an event and compute every hash after it again. Two things catch that:

* an **anchor** (:meth:`Campaign.anchor`, ``reviewflow anchor``): a checkpoint of the
  whole campaign, one digest over every case's (id, version, head hash), the refusal
  journal's count and digest, and the head of the campaign's policy chain (the policy
  seal and its amendments, :mod:`reviewflow._policy_seal`).
  It is kept in the database, written to a small text file and printed in the 公示
  notice; :meth:`Campaign.verify` checks that the record still extends every anchor.
* a **keyed MAC**: with an audit key configured outside the database
  (``Campaign(..., audit_key=...)``, or ``REVIEWFLOW_AUDIT_KEY`` /
  ``REVIEWFLOW_AUDIT_KEY_FILE`` for the CLI), every sealed event also gets an
  HMAC-SHA256 over its hash, and every anchor one over its digest: an event re-chained
  by someone without the key has no valid MAC.

The anchor file (``reviewflow anchor 1``), one field per line, UTF-8, LF line ends::

    reviewflow anchor 1
    campaign "2016"
    at 2016-03-01T09:00:00+08:00
    refusals 2 <sha256 of the first 2 refusals>
    policy <hash of the newest record of the campaign's policy chain, or ->
    case "school-01" 11 <hash of event 11 of school-01>
    case "school-02" 9 <hash of event 9 of school-02>
    digest <sha256 of every line above, each ending in LF>
    mac <HMAC-SHA256 of the digest with the audit key, or ->

Ids are JSON strings; cases are listed by id (Python's order of the text).

>>> anchor = Anchor.build("2016", "2016-03-01T09:00:00+08:00", [("s1", 3, "ab" * 32)],
...                       refusals=(0, EMPTY_DIGEST), policy_digest=None)
>>> Anchor.from_text(anchor.to_text()) == anchor
True
>>> anchor.cases, anchor.events
(1, 3)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from reviewflow._macs import anchor_mac, event_mac
from reviewflow.audit import ChainProblem
from reviewflow.exceptions import InputError
from reviewflow.model import EventRecord
from reviewflow.store.base import Refusal, Store

__all__ = [
    "AUDIT_KEY_ENV",
    "AUDIT_KEY_FILE_ENV",
    "EMPTY_DIGEST",
    "FORMAT_LINE",
    "Anchor",
    "audit_key",
    "audit_key_from_env",
    "read_anchor",
    "refusals_digest",
]

#: The environment variable holding the audit key itself (at least 16 bytes of text).
AUDIT_KEY_ENV = "REVIEWFLOW_AUDIT_KEY"
#: The environment variable naming a file that holds the audit key.
AUDIT_KEY_FILE_ENV = "REVIEWFLOW_AUDIT_KEY_FILE"
#: The first line of an anchor file.
FORMAT_LINE = "reviewflow anchor 1"
#: The digest of nothing (an empty refusal journal).
EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()
#: The shortest audit key accepted, in bytes.
MIN_KEY_BYTES = 16
#: The largest anchor file read (a campaign of 100,000 cases writes about 12 MB).
MAX_ANCHOR_BYTES = 256 * 1024 * 1024
_HEX = frozenset("0123456789abcdef")
#: Cases whose MACs are read in one query during verify.
_MAC_BATCH = 500


# ---------------------------------------------------------------------- the key


def audit_key(value: bytes | str) -> bytes:
    """Return an audit key as bytes (text is taken as UTF-8); InputError when unusable.

    >>> audit_key("a key of sixteen+ characters")[:5]
    b'a key'
    """
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes):
        raise InputError(f"audit_key must be bytes or text, got {type(value).__name__}")
    if len(value) < MIN_KEY_BYTES:
        raise InputError(
            f"the audit key has {len(value)} bytes, fewer than {MIN_KEY_BYTES}; use a long "
            "random key (e.g. `python -c \"import secrets; print(secrets.token_hex(32))\"`) "
            "and keep it outside the database"
        )
    return value


def audit_key_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """Return the audit key configured in the environment, or None.

    ``REVIEWFLOW_AUDIT_KEY`` holds the key; ``REVIEWFLOW_AUDIT_KEY_FILE`` names a file
    holding it (a final line break is dropped). Setting both is refused.
    """
    env = os.environ if environ is None else environ
    text = env.get(AUDIT_KEY_ENV) or None
    path = env.get(AUDIT_KEY_FILE_ENV) or None
    if text and path:
        raise InputError(f"both {AUDIT_KEY_ENV} and {AUDIT_KEY_FILE_ENV} are set; keep one")
    if text:
        return audit_key(text)
    if path:
        from reviewflow._files import read_capped

        data = read_capped(path, 4096, "an audit key file",
                           too_large="an audit key is a short line of random text")
        return audit_key(data.rstrip(b"\r\n"))
    return None


def attach_key(store: Store, value: bytes | str) -> bytes:
    """Give ``store`` the key its commits seal MACs with; return the key as bytes."""
    key = audit_key(value)
    held = store.audit_key
    if held is not None and not hmac.compare_digest(held, key):
        raise InputError("this store already seals with another audit key; one store, one "
                         "key (open the store again for another key)")
    store.audit_key = key
    return key


# ---------------------------------------------------------------------- the anchor


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _hexdigest(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX:
        raise ValueError(f"{what} must be 64 lower-case hex digits, got {value!r}")
    return value


@attrs.frozen(kw_only=True)
class Anchor:
    """A checkpoint of a campaign's record: every case's (id, version, head hash), the
    refusal journal's count and digest, the policy's digest, and one digest over them.

    ``digest`` covers everything but itself and ``mac``; ``mac`` is the HMAC of the
    digest with the audit key, or None when the anchor was made without one. Made by
    :meth:`Campaign.anchor`; written with :meth:`to_text` and read with :meth:`from_text`.
    """

    campaign_id: str
    #: When the anchor was made, ISO 8601 with its offset (the campaign's clock).
    at: str
    #: ``(case_id, version, head hash)`` of every case, by case id.
    heads: tuple[tuple[str, int, str], ...]
    #: The number of refusals in the journal, and the digest of those refusals.
    refusals: int
    refusals_digest: str
    #: The hash of the newest record of the campaign's policy chain (or, where a store keeps
    #: none, the SHA-256 of its policy JSON), or None if unknown.
    policy_digest: str | None
    digest: str
    mac: str | None = None

    @classmethod
    def build(cls, campaign_id: str, at: str, heads: Iterable[tuple[str, int, str]], *,
              refusals: tuple[int, str], policy_digest: str | None,
              key: bytes | None = None) -> Anchor:
        """Return the anchor of these heads, with its digest (and MAC, given a key)."""
        ordered = tuple(sorted((str(c), int(v), str(h)) for c, v, h in heads))
        draft = cls(campaign_id=campaign_id, at=at, heads=ordered, refusals=refusals[0],
                    refusals_digest=refusals[1], policy_digest=policy_digest, digest="")
        digest = hashlib.sha256(draft.body().encode("utf-8")).hexdigest()
        return attrs.evolve(draft, digest=digest,
                            mac=None if key is None else anchor_mac(key, digest))

    @property
    def cases(self) -> int:
        """The number of cases anchored."""
        return len(self.heads)

    @property
    def events(self) -> int:
        """The number of events anchored (the sum of the cases' versions)."""
        return sum(v for _c, v, _h in self.heads)

    @property
    def date(self) -> str:
        """The date of the anchor (``YYYY-MM-DD``)."""
        return self.at[:10]

    def body(self) -> str:
        """Return the text the digest covers: every line of the file before ``digest``."""
        lines = [
            FORMAT_LINE,
            f"campaign {_quote(self.campaign_id)}",
            f"at {self.at}",
            f"refusals {self.refusals} {self.refusals_digest}",
            f"policy {self.policy_digest or '-'}",
            *(f"case {_quote(c)} {v} {h}" for c, v, h in self.heads),
        ]
        return "".join(line + "\n" for line in lines)

    def compute_digest(self) -> str:
        """Recompute the digest from the anchor's content."""
        return hashlib.sha256(self.body().encode("utf-8")).hexdigest()

    def to_text(self) -> str:
        """Return the anchor file's text (see the module's docs for the format)."""
        return f"{self.body()}digest {self.digest}\nmac {self.mac or '-'}\n"

    @classmethod
    def from_text(cls, text: str, source: str = "the anchor") -> Anchor:
        """Read an anchor file's text; InputError naming the line when it is not one,
        or when its digest does not match its content (the file was edited)."""
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()

        def bad(n: int, what: str) -> InputError:
            return InputError(f"{source}, line {n}: {what}; an anchor file is written by "
                              "`reviewflow anchor` and must not be edited")

        fields: dict[str, Any] = {}
        heads: list[tuple[str, int, str]] = []
        expect = ["format", "campaign", "at", "refusals", "policy"]
        for n, line in enumerate(lines, 1):
            try:
                if n == 1:
                    if line != FORMAT_LINE:
                        raise ValueError(f"expected {FORMAT_LINE!r}, found {line[:60]!r}")
                    continue
                word, _, rest = line.partition(" ")
                if n <= len(expect) and word != expect[n - 1]:
                    raise ValueError(f"expected the {expect[n - 1]!r} line")
                if word == "campaign" and n == 2:
                    fields["campaign_id"] = _json_text(rest)
                elif word == "at" and n == 3:
                    fields["at"] = rest
                elif word == "refusals" and n == 4:
                    count, digest = rest.split(" ")
                    fields["refusals"] = _count(count)
                    fields["refusals_digest"] = _hexdigest(digest, "the refusals digest")
                elif word == "policy" and n == 5:
                    fields["policy_digest"] = (None if rest == "-"
                                               else _hexdigest(rest, "the policy digest"))
                elif word == "case" and "digest" not in fields:
                    quoted, version, head = rest.rsplit(" ", 2)
                    heads.append((_json_text(quoted), _count(version),
                                  _hexdigest(head, "a head hash")))
                elif word == "digest" and "digest" not in fields:
                    fields["digest"] = _hexdigest(rest, "the digest")
                elif word == "mac" and "digest" in fields and "mac" not in fields:
                    fields["mac"] = None if rest == "-" else _hexdigest(rest, "the MAC")
                else:
                    raise ValueError(f"unexpected line {line[:60]!r}")
            except ValueError as exc:
                raise bad(n, str(exc)) from None
        if "mac" not in fields:
            raise bad(len(lines) + 1, "the file ends before its digest and mac lines "
                      "(it was cut short)")
        if [c for c, _v, _h in heads] != sorted(c for c, _v, _h in heads):
            raise bad(6, "the cases are not listed by id")
        anchor = cls(heads=tuple(heads), **fields)
        if anchor.compute_digest() != anchor.digest:
            raise InputError(f"{source}: the digest does not match the anchor's content: the "
                             "file was edited after it was written; use the file as "
                             "`reviewflow anchor` wrote it (its digest is in the 公示 notice)")
        return anchor

    def check_mac(self, key: bytes) -> bool:
        """True when the anchor's MAC is the one the key gives (False without a MAC)."""
        return self.mac is not None and hmac.compare_digest(self.mac,
                                                            anchor_mac(key, self.digest))

    def __str__(self) -> str:
        return (f"anchor {self.digest} of campaign {self.campaign_id!r} at {self.at}: "
                f"{self.cases} cases, {self.events} events, {self.refusals} refusals")


def _json_text(quoted: str) -> str:
    value = json.loads(quoted)
    if not isinstance(value, str):
        raise ValueError(f"expected a quoted id, found {quoted[:60]!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"expected a whole number, found {text[:20]!r}")
    return int(text)


def read_anchor(path: str | os.PathLike[str]) -> Anchor:
    """Read an anchor file written by ``reviewflow anchor`` (InputError when it is not one)."""
    from reviewflow._files import decode_utf8, read_capped

    name = os.fspath(path)
    data = read_capped(name, MAX_ANCHOR_BYTES, "an anchor file")
    return Anchor.from_text(decode_utf8(data, name, "the anchor file"), name)


def refusals_digest(refusals: Sequence[Refusal]) -> str:
    """Return the SHA-256 over the refusals, in journal order (one JSON line each)."""
    h = hashlib.sha256()
    for r in refusals:
        h.update(json.dumps([r.case_id, r.event, r.actor_id, list(r.roles), r.at, r.stage,
                             r.reason, r.message], ensure_ascii=False,
                            separators=(",", ":")).encode("utf-8") + b"\n")
    return h.hexdigest()


def policy_digest(store: Store, campaign_id: str) -> str | None:
    """Return what an anchor records of the campaign's policy: the hash of the newest
    record of its policy chain (the seal or the latest amendment), or, for a store that
    keeps no such chain, the SHA-256 of the policy JSON it keeps; None if neither."""
    chain = _policy_chain(store, campaign_id)
    if chain:
        return chain[-1].hash
    text = store.campaign_policy(campaign_id)
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def _policy_chain(store: Store, campaign_id: str) -> list[EventRecord]:
    return store.campaign_events(campaign_id)


def _policy_heads(store: Store, campaign_id: str) -> set[str]:
    """Every value an earlier anchor may have recorded of the policy that the record still
    extends: each record of the policy chain (an amendment after the anchor extends it),
    or the digest of the kept policy where there is no chain."""
    chain = _policy_chain(store, campaign_id)
    if chain:
        return {record.hash for record in chain}
    current = policy_digest(store, campaign_id)
    return set() if current is None else {current}


# ---------------------------------------------------------------------- taking and keeping


def take(store: Store, campaign_id: str, at: str, key: bytes | None, *,
         save: bool = True) -> Anchor:
    """Make the campaign's anchor as of ``at`` (ISO text), with a MAC when ``key`` is given
    (see :meth:`Campaign.anchor`)."""
    heads = [(c.case_id, c.version, c.last_hash) for c in store.cases(campaign_id)]
    journal = store.refusals(campaign_id)
    anchor = Anchor.build(campaign_id, at, heads,
                          refusals=(len(journal), refusals_digest(journal)),
                          policy_digest=policy_digest(store, campaign_id), key=key)
    if save:
        save_anchor(store, anchor)
    return anchor


def save_anchor(store: Store, anchor: Anchor) -> None:
    """Keep the anchor in the store."""
    store.save_anchor(anchor.campaign_id, anchor.digest, anchor.at, anchor.to_text())


def stored_anchor_texts(store: Store, campaign_id: str) -> list[str]:
    """Return the texts of the anchors the store keeps for the campaign, oldest first."""
    return store.stored_anchors(campaign_id)


def _event_macs(store: Store, campaign_id: str,
                case_ids: Sequence[str]) -> dict[tuple[str, int], str]:
    return store.stored_macs(campaign_id, case_ids)


# ---------------------------------------------------------------------- checking


class Check:
    """What :meth:`Campaign.verify` checks beyond each chain: the anchors and the MACs.

    Fed each case's chain in turn (:meth:`chain`), then :meth:`finish` returns the
    problems found; :attr:`notes` says what could not be checked.
    """

    def __init__(self, store: Store, campaign_id: str, key: bytes | None,
                 anchors: Iterable[Anchor] = ()) -> None:
        self.store = store
        self.campaign_id = campaign_id
        self.key = key
        self.problems: list[ChainProblem] = []
        self.notes: list[str] = []
        given = list(anchors)
        kept = self._stored()
        self.anchors: list[Anchor] = []
        seen: set[str] = set()
        for anchor in [*given, *kept]:
            if not isinstance(anchor, Anchor):
                raise InputError(f"anchors must be reviewflow.Anchor objects, got "
                                 f"{type(anchor).__name__}; read a file with read_anchor(path)")
            if anchor.digest in seen:
                continue
            seen.add(anchor.digest)
            if self._usable(anchor):
                self.anchors.append(anchor)
        #: case id -> {anchored version: (head hash, anchor label)}
        self.wanted: dict[str, dict[int, tuple[str, str]]] = {}
        for anchor in self.anchors:
            label = _label(anchor)
            for case_id, version, head in anchor.heads:
                self.wanted.setdefault(case_id, {}).setdefault(version, (head, label))
        self._batch: list[tuple[str, Sequence[EventRecord]]] = []
        if not self.anchors:
            self.notes.append(
                "no anchor checked: deleting the newest events of a case and setting its row "
                "back, re-chaining, deleting a case or the refusal journal cannot be detected; "
                "take anchors with `reviewflow anchor` (Campaign.anchor()) and keep the file")
        if self.key is None:
            self.notes.append(
                f"MACs not checked: no audit key is configured ({AUDIT_KEY_ENV} or "
                f"{AUDIT_KEY_FILE_ENV}, or Campaign(audit_key=...)); a chain re-computed by "
                "someone who can write the database cannot be told from the original")
        elif any(a.mac is None for a in self.anchors):
            self.notes.append("some anchors carry no MAC (made without the audit key): "
                              "they were checked, but who made them is not proved")

    def _stored(self) -> list[Anchor]:
        out = []
        for n, text in enumerate(stored_anchor_texts(self.store, self.campaign_id), 1):
            try:
                out.append(Anchor.from_text(text, f"the database's anchor {n}"))
            except InputError as exc:
                self.problems.append(ChainProblem("", 0, f"{exc} (rf_anchors)"))
        return out

    def _usable(self, anchor: Anchor) -> bool:
        label = _label(anchor)
        if anchor.campaign_id != self.campaign_id:
            self.problems.append(ChainProblem("", 0, (
                f"{label} is of campaign {anchor.campaign_id!r}, not {self.campaign_id!r}: "
                "give the anchor of this campaign")))
            return False
        if anchor.compute_digest() != anchor.digest:
            self.problems.append(ChainProblem("", 0, (
                f"{label}: its digest does not match its content: the anchor was edited")))
            return False
        if self.key is not None and anchor.mac is not None and not anchor.check_mac(self.key):
            self.problems.append(ChainProblem("", 0, (
                f"{label}: its MAC does not match the audit key: it was made or edited by "
                "someone without the key (or the key is another)")))
        return True

    def chain(self, case_id: str, records: Sequence[EventRecord]) -> None:
        """Check one case's chain against the anchors (and its MACs, with a key)."""
        anchored = self.wanted.pop(case_id, None)
        if anchored:
            for version, (head, label) in sorted(anchored.items()):
                if len(records) < version:
                    self.problems.append(ChainProblem(case_id, len(records) + 1, (
                        f"{label} recorded this case at version {version}, it has "
                        f"{len(records)} events now: events were deleted after the anchor")))
                    break
                if records[version - 1].hash != head:
                    self.problems.append(ChainProblem(case_id, version, (
                        f"{label} recorded another hash for event {version}: the chain was "
                        "rebuilt (events changed and re-chained) after the anchor")))
                    break
        if self.key is not None:
            self._batch.append((case_id, records))
            if len(self._batch) >= _MAC_BATCH:
                self._check_macs()

    def _check_macs(self) -> None:
        batch, self._batch = self._batch, []
        if not batch or self.key is None:
            return
        macs = _event_macs(self.store, self.campaign_id, [c for c, _r in batch])
        key = self.key
        for case_id, records in batch:
            for record in records:
                mac = macs.get((case_id, record.seq))
                if mac is None:
                    self.problems.append(ChainProblem(case_id, record.seq, (
                        "has no MAC: it was written without the audit key, or by someone "
                        "without it (or its MAC was deleted)")))
                    break
                if not hmac.compare_digest(mac, event_mac(key, record.hash)):
                    self.problems.append(ChainProblem(case_id, record.seq, (
                        "its MAC does not match its hash: the event was changed (and "
                        "re-chained) by someone without the audit key")))
                    break

    def finish(self) -> list[ChainProblem]:
        """Return every problem found (after the last chain)."""
        self._check_macs()
        for case_id, anchored in sorted(self.wanted.items()):
            version, (_head, label) = min(anchored.items())
            self.problems.append(ChainProblem(case_id, 0, (
                f"{label} recorded this case at version {version}; it is not in the record "
                "any more: the case was deleted")))
        self.wanted = {}
        if self.anchors:
            store, cid = self.store, self.campaign_id
            journal = store.refusals(cid)
            policies = _policy_heads(store, cid)
            for anchor in self.anchors:
                self.problems += _journal_problems(anchor, journal, policies)
        return self.problems


def _journal_problems(anchor: Anchor, journal: Sequence[Refusal],
                      policies: set[str]) -> Iterator[ChainProblem]:
    label = _label(anchor)
    if len(journal) < anchor.refusals:
        yield ChainProblem("", 0, (
            f"{label} recorded {anchor.refusals} refusals, the refusal journal has "
            f"{len(journal)} now: refusals were deleted after the anchor"))
    elif refusals_digest(journal[:anchor.refusals]) != anchor.refusals_digest:
        yield ChainProblem("", 0, (
            f"{label}: the first {anchor.refusals} refusals differ from what it recorded: "
            "the refusal journal was edited after the anchor"))
    if anchor.policy_digest is not None and anchor.policy_digest not in policies:
        yield ChainProblem("", 0, (
            f"{label}: the campaign's policy record no longer extends the one anchored: "
            "the policy seal or an amendment was changed or deleted after the anchor"))


def _label(anchor: Anchor) -> str:
    return f"the anchor {anchor.digest[:16]} of {anchor.at}"
