"""The benchmark harness runs and writes its results (how fast is bench/'s business, not this)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `pytest` run from elsewhere than `python -m pytest` at the root
    sys.path.insert(0, str(REPO))

from bench.common import fmt_size, parse_size  # noqa: E402
from bench.peers import PEERS, STEPS, Baseline, WorkloadError  # noqa: E402
from bench.run import SECTIONS  # noqa: E402


def _bench(*args: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc, json.loads(out.read_text(encoding="utf-8"))


def test_quick_run_writes_every_section(tmp_path: Path) -> None:
    proc, data = _bench("--quick", tmp_path=tmp_path)
    assert set(data["sections"]) == set(SECTIONS)
    for name, section in data["sections"].items():
        assert isinstance(section.get("status"), str), name
        assert section["status"] != "error", (name, section)
    assert data["machine"]["python"].startswith("3.")
    assert data["machine"]["packages"]["transitions"]
    life = data["sections"]["lifecycle"]
    assert life["status"] == "ok"
    for variant in ("baseline", "tr_C1", "tr_A"):
        row = life["results"][variant]["300"]
        assert row["runs"] == 1
        assert row["us_per_case"] > 0
        assert row["transitions_per_case"] == len(STEPS)
        assert row["bytes_per_case"] > 0
    assert "lifecycle at 300 cases" in proc.stdout
    assert "summary" in proc.stdout


def test_sections_and_sizes_can_be_picked(tmp_path: Path) -> None:
    _, data = _bench("--sections", "lifecycle", "--sizes", "50", "120", "--repeats", "2",
                     "--variants", "baseline,tr_C1", tmp_path=tmp_path)
    assert list(data["sections"]) == ["lifecycle"]
    results = data["sections"]["lifecycle"]["results"]
    assert set(results) == {"baseline", "tr_C1"}
    assert set(results["tr_C1"]) == {"50", "120"}
    assert results["baseline"]["120"]["runs"] == 2
    assert "50->120" not in data["sections"]["lifecycle"]["growth"]["baseline"]


def test_an_unknown_section_is_refused_with_its_name() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--sections", "lifecycle,nosuch"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode != 0
    assert "nosuch" in proc.stderr


@pytest.mark.parametrize(("text", "value"), [
    ("1000", 1000), ("10k", 10_000), ("100K", 100_000), ("1M", 1_000_000), ("1_000", 1000),
])
def test_sizes_read_with_suffixes(text: str, value: int) -> None:
    assert parse_size(text) == value
    assert parse_size(fmt_size(value)) == value


@pytest.mark.parametrize("text", ["", "ten", "0", "-5", "1G"])
def test_a_bad_size_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_every_peer_closes_every_case() -> None:
    for name, peer in PEERS.items():
        result = peer.run(40)
        assert result["transitions"] == 40 * len(STEPS), name


def test_a_peer_that_skips_a_step_is_caught() -> None:
    class Lazy(Baseline):
        def drive(self, built: object) -> None:
            _table, cases = built  # type: ignore[misc]
            super().drive(built)
            cases[0].state = "report_back"  # one case never closes

    with pytest.raises(WorkloadError, match="did not reach 'closed'"):
        Lazy().run(10)
