"""The regression suite: tolerance logic, reports, and a deliberately worsened controller caught by `regress`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from api.cli import main
from controller.policies.actuated import ActuatedPolicy
from controller.policies.common import stage_green_elapsed_s
from controller.safety import HOLD
from intersections.errors import InputError
from scenarios import regress as rg
from scenarios.runs import RunJob
from scenarios.sweep import RunOutcome

SUITE = """
name = "t"
scenarios = ["arterial"]
controllers = ["actuated"]
seeds = [1]
end_s = 600
events = true
[tolerances]
mean_delay_s = { rel = 0.05, abs = 2.0 }
throughput_veh = { rel = 0.03, abs = 10 }
aog_pct = { rel = 0.05, abs = 2.0 }
safety_events = { rel = 0.0, abs = 0 }
"""


def _suite(tmp_path: Path, text: str = SUITE) -> rg.Suite:
    p = tmp_path / "t.toml"
    p.write_text(text, encoding="utf-8")
    return rg.load_suite(p)


def _result(kpis: dict[str, float | None] | None, err: str = "") -> tuple[dict | None, str, float]:  # type: ignore[type-arg]
    return (dict(kpis) if kpis is not None else None, err, 1.0)


BASE = {"mean_delay_s": 40.0, "throughput_veh": 1000.0, "aog_pct": 50.0, "safety_events": 0}


def test_checks_are_direction_aware_with_a_relative_tolerance_and_an_absolute_floor(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    d = tmp_path / "bl"
    rg.write_baseline(d, suite, "arterial", "actuated", BASE, sumo="x")
    # allowed: delay max(2, 0.05*40)=2; throughput max(10, 30)=30; aog max(2, 2.5)=2.5; safety 0
    cur = {"mean_delay_s": 42.5, "throughput_veh": 1031.0, "aog_pct": 48.0, "safety_events": 1}
    res = rg.compare(suite, d, "arterial", "actuated", _result(cur))
    status = {c.kpi: c.status for c in res.checks}
    assert status == {
        "mean_delay_s": "regression",  # +2.5 s > 2 s: worse
        "throughput_veh": "improvement",  # +31 > 30: better (higher is better)
        "aog_pct": "ok",  # -2.0 points within 2.5
        "safety_events": "regression",  # any new safety event
    }
    assert res.failed
    same = rg.compare(suite, d, "arterial", "actuated", _result(BASE))
    assert not same.failed and {c.status for c in same.checks} == {"ok"}
    lower_delay = rg.compare(suite, d, "arterial", "actuated", _result({**BASE, "mean_delay_s": 30.0}))
    assert not lower_delay.failed and lower_delay.checks[0].status == "improvement"


def test_hand_edited_tolerances_are_used_and_kept(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    d = tmp_path / "bl"
    p = rg.write_baseline(d, suite, "arterial", "actuated", BASE, sumo="x")
    doc = json.loads(p.read_text())
    doc["tolerances"]["mean_delay_s"]["abs"] = 10.0
    p.write_text(json.dumps(doc))
    res = rg.compare(suite, d, "arterial", "actuated", _result({**BASE, "mean_delay_s": 45.0}))
    assert res.checks[0].status == "ok"
    rg.write_baseline(d, suite, "arterial", "actuated", BASE, sumo="x")
    assert json.loads(p.read_text())["tolerances"]["mean_delay_s"]["abs"] == 10.0


def test_missing_stale_and_failed_are_problems_with_reasons(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    d = tmp_path / "bl"
    missing = rg.compare(suite, d, "arterial", "actuated", _result(BASE))
    assert missing.failed and "missing baseline" in missing.problem and "--update-baselines" in missing.problem
    failed = rg.compare(suite, d, "arterial", "actuated", _result(None, "seed 1: SUMO failed to start"))
    assert failed.failed and "SUMO failed to start" in failed.problem
    rg.write_baseline(d, suite, "arterial", "actuated", BASE, sumo="x")
    longer = _suite(tmp_path, SUITE.replace("end_s = 600", "end_s = 900"))
    stale = rg.compare(longer, d, "arterial", "actuated", _result(BASE))
    assert stale.failed and "stale baseline" in stale.problem


def test_aggregate_means_over_seeds_and_flags_failed_runs() -> None:
    outs = [
        RunOutcome(RunJob("a", "c", 1, tag="a__c"), {"mean_delay_s": 10.0, "meta": {"safety_events": 0}}, None, 1, 1),
        RunOutcome(RunJob("a", "c", 2, tag="a__c"), {"mean_delay_s": 20.0, "meta": {"safety_events": 2}}, None, 1, 1),
        RunOutcome(RunJob("b", "c", 1, tag="b__c"), None, "worker died", 2, 1),
    ]
    agg = rg.aggregate(outs)
    assert agg["a__c"][0] == {"mean_delay_s": 15.0, "safety_events": 1.0}
    assert agg["b__c"][0] is None and "worker died (after 2 attempts)" in agg["b__c"][1]


def test_junit_and_markdown_put_the_worst_first(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    d = tmp_path / "bl"
    rg.write_baseline(d, suite, "arterial", "actuated", BASE, sumo="x")
    bad = rg.compare(suite, d, "arterial", "actuated", _result({**BASE, "mean_delay_s": 80.0, "aog_pct": 40.0}))
    gone = rg.compare(suite, d, "arterial", "max-pressure", _result(BASE))
    xml = rg.junit_xml(suite, [bad, gone], wall_s=3.0)
    root = ET.fromstring(xml)
    ts = root.find("testsuite")
    assert ts is not None and ts.get("tests") == "8" and ts.get("failures") == "2" and ts.get("errors") == "4"
    names = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert ("regress.t.arterial.actuated", "mean_delay_s") in names
    md = rg.markdown_report(suite, [bad, gone], wall_s=3.0, sumo="x")
    assert md.splitlines()[2].startswith("**FAIL**")
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")][1:]
    assert "max-pressure" in rows[0]  # problems (missing baseline) first
    first_regression = next(r for r in rows if "regression" in r)
    assert "mean_delay_s" in first_regression  # +40 s is 20 tolerances; aog -10 points is 4


def test_suite_file_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"tolerances\.delay"):
        _suite(tmp_path, SUITE + "delay = { rel = 0.1 }\n")
    with pytest.raises(InputError, match="seeds"):
        _suite(tmp_path, SUITE.replace("seeds = [1]", "seeds = []"))
    with pytest.raises(InputError, match="unknown suite"):
        rg.load_suite("no-such-suite")


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (("seeds = [1]", 'seeds = [1, "2"]'), "seeds[1]"),
        (("end_s = 600", "end_s = -5"), "end_s"),
        (("seeds = [1]", "seeds = [1]\ncolour = 1"), "colour"),
        (("events = true", "events = true\nscenario.arterial = { end_s = 900, seed = 2 }"), "scenario.arterial.seed"),
    ],
)
def test_suite_file_errors_are_one_line_naming_file_table_and_field(
    tmp_path: Path, change: tuple[str, str], where: str
) -> None:
    with pytest.raises(InputError) as e:
        _suite(tmp_path, SUITE.replace(*change))
    assert e.value.where is not None and e.value.where.endswith(f".toml:{where}")
    assert "\n" not in str(e.value)


def test_the_ci_suite_and_its_baselines_cover_every_scenario_and_controller() -> None:
    suite = rg.load_suite("ci")
    library = {s for s in suite.scenarios if not s.startswith("corpus:")}
    assert library == {"grid4x4", "arterial", "hanoi_mixed"}
    # The corpus slice (issue #15): a real network and generated ones, teleporting off.
    corpus = {s for s in suite.scenarios if s.startswith("corpus:")}
    assert "corpus:real/fokr_bs" in corpus and sum(s.startswith("corpus:gen/") for s in corpus) >= 3
    for scn in suite.scenarios:
        for ctl in suite.controllers:
            doc, why = rg.load_baseline(rg.BASELINES_DIR / "ci", scn, ctl)
            assert doc is not None, why
            assert doc["settings"] == {"seeds": list(suite.seeds), "end_s": suite.horizon(scn), "events": True}


def _worsened(monkeypatch: pytest.MonkeyPatch) -> None:
    """Actuated control that refuses to leave a stage for 100 s: long reds for everybody else."""
    original = ActuatedPolicy.decide

    def stubborn(self, obs, est, ctx):  # type: ignore[no-untyped-def]
        out = original(self, obs, est, ctx)
        young = (ctx.target >= 0) & (stage_green_elapsed_s(ctx, self.packed) < 100.0)
        return np.where(young, HOLD, out)

    monkeypatch.setattr(ActuatedPolicy, "decide", stubborn)


@pytest.mark.sumo
@pytest.mark.slow
def test_regress_passes_unchanged_and_catches_a_worsened_controller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = tmp_path / "t.toml"
    suite.write_text(SUITE, encoding="utf-8")
    bl = tmp_path / "bl"
    args = ["regress", "--suite", str(suite), "--baselines", str(bl), "--in-process"]
    assert main([*args, "--update-baselines"]) == 0
    assert (bl / "arterial__actuated.json").is_file()
    junit, report = tmp_path / "junit.xml", tmp_path / "report.md"
    assert main([*args, "--junit", str(junit), "--report", str(report)]) == 0  # deterministic: reproduces exactly
    assert "**PASS**" in report.read_text()

    _worsened(monkeypatch)
    assert main([*args, "--junit", str(junit), "--report", str(report)]) == 1
    md = report.read_text()
    assert "**FAIL**" in md and "❌ regression | arterial | actuated | mean_delay_s" in md
    failures = [c for c in ET.parse(junit).iter("testcase") if c.find("failure") is not None]
    assert "mean_delay_s" in {c.get("name") for c in failures}


@pytest.mark.sumo
@pytest.mark.slow
def test_the_committed_ci_baselines_catch_a_worsened_controller(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _worsened(monkeypatch)
    report = tmp_path / "report.md"
    code = main(["regress", "--suite", "ci", "--scenarios", "arterial", "--controllers", "actuated", "--in-process",
                 "--report", str(report)])  # fmt: skip
    assert code == 1
    assert "❌ regression | arterial | actuated | mean_delay_s" in report.read_text()


@pytest.mark.sumo
def test_a_scenario_that_fails_to_build_is_reported_and_the_rest_kept(tmp_path: Path) -> None:
    suite = tmp_path / "t.toml"
    suite.write_text(SUITE.replace('["arterial"]', '["arterial", "no_such_scenario"]').replace("600", "120"))
    bl = tmp_path / "bl"
    args = ["regress", "--suite", str(suite), "--baselines", str(bl), "--in-process"]
    assert main([*args, "--scenarios", "arterial", "--update-baselines"]) == 0
    report = tmp_path / "r.md"
    assert main([*args, "--report", str(report)]) == 1
    md = report.read_text()
    assert "no_such_scenario / actuated**: run failed: seed 1: scenario failed to build: unknown scenario" in md
    assert "| ok | arterial | actuated | mean_delay_s |" in md
