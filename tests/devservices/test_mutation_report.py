"""`make mutation`'s report: the score per module, and allow-list lines that no longer name an equivalent mutant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devservices import mutation

AREA = mutation.Area(name="plans", mutate=["agencies/plans.py"], tests=["tests/foundation/test_plans.py"])
KILLED, SURVIVED = 1, 0  # mutmut's exit codes: the tests failed (killed) or passed (survived)


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(mutation, "WORK", tmp_path / ".mutation")
    monkeypatch.setattr(mutation, "ALLOW_FILE", tmp_path / "mutation-allow.md")
    meta = tmp_path / ".mutation" / "plans" / "mutants" / "agencies" / "plans.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": {
        "agencies.plans.x_plan_get__mutmut_1": KILLED,
        "agencies.plans.x_plan_get__mutmut_2": SURVIVED,
        "agencies.plans.x_plan_get__mutmut_3": SURVIVED,
        "agencies.plans.x_plan_get__mutmut_4": KILLED,
    }}))
    return tmp_path


def test_report_scores_and_names_stale_allow_list_lines(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (results / "mutation-allow.md").write_text(
        "- `agencies.plans.x_plan_get__mutmut_2` — equivalent\n"
        "- `agencies.plans.x_plan_get__mutmut_4` — said equivalent, but a test kills it\n"
        "- `agencies.plans.x_gone__mutmut_7` — its function was renamed\n"
        "- `rebill.access.x_other__mutmut_1` — another module's line is not this report's business\n")

    assert mutation.report([AREA], diffs=False) is False

    printed = capsys.readouterr().out
    assert "agencies/plans.py                         2      1      4   66.7%  < goal" in printed
    assert "  agencies.plans.x_plan_get__mutmut_3  [survived]" in printed
    assert "x_plan_get__mutmut_2  [" not in printed
    gone = printed.split("that name no mutant of it (drop or renumber them):\n")[1].split("\n\n")[0]
    assert gone.split() == ["agencies.plans.x_gone__mutmut_7"]
    killed = printed.split("that name mutants a test kills (drop or renumber them):\n")[1].split("\n\n")[0]
    assert killed.split() == ["agencies.plans.x_plan_get__mutmut_4"]
    assert "rebill.access" not in printed


def test_report_meets_the_goal_when_every_survivor_is_allowed(results: Path) -> None:
    (results / "mutation-allow.md").write_text("- `agencies.plans.x_plan_get__mutmut_2` — equivalent\n"
                                               "- `agencies.plans.x_plan_get__mutmut_3` — equivalent\n")

    assert mutation.report([AREA], diffs=False) is True
