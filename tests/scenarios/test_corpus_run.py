"""The corpus judgement (scenarios/corpus/run.py): verdicts, gridlock flags, headline figures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from scenarios.corpus import CorpusEntry
from scenarios.corpus.run import CONTROLLERS, NO_TELEPORT, corpus_jobs, markdown_report, select, summarise_corpus
from scenarios.runs import RunJob
from scenarios.sweep import RunOutcome


def _entry(name: str) -> CorpusEntry:
    return CorpusEntry(name=name, family="generated", sumocfg=Path(f"/x/{name}.sumocfg"), demand="near", mix="car")


def _outcome(entry: str, controller: str, seed: int, delay: float, p95: float, unfinished: float) -> RunOutcome:
    job = RunJob(scenario=f"/x/{entry}.sumocfg", controller=controller, seed=seed, tag=entry)
    kpis = {"mean_delay_s": delay, "p95_delay_s": p95, "unfinished_veh": unfinished, "meta": {"unmodelled": []}}
    return RunOutcome(job, kpis, None, 1, 1.0)


def _runs(entry: str, table: dict[str, tuple[float, float, float]], jitter: float = 1.0) -> list[RunOutcome]:
    out = []
    for c, (d, p, u) in table.items():
        for seed, k in ((1, -1.0), (2, 0.0), (3, 1.0)):
            out.append(_outcome(entry, c, seed, d + k * jitter, p + k * jitter, u))
    return out


def test_adaptive_is_judged_against_the_best_baseline_within_its_confidence_interval() -> None:
    e1, e2 = _entry("a"), _entry("b")
    outcomes = _runs("a", {"sumo": (100, 200, 5), "webster": (60, 150, 2), "actuated": (80, 160, 2),
                            "max-pressure": (70, 170, 2), "adaptive": (61, 140, 2)})  # fmt: skip
    outcomes += _runs("b", {"sumo": (100, 200, 5), "webster": (50, 150, 2), "actuated": (90, 160, 2),
                             "max-pressure": (95, 170, 2), "adaptive": (70, 140, 2)})  # fmt: skip
    doc = summarise_corpus([e1, e2], outcomes)
    a, b = doc["entries"]
    assert a["best_baseline"] == "webster" and b["best_baseline"] == "webster"
    # 61 is within webster's 60 +/- t(0.975, 2) * 1 / sqrt(3) = 60 +/- 2.48; 70 is not within 50 +/- 2.48.
    assert a["delay_ok"] and not b["delay_ok"]
    assert a["p95_ok"] and a["unfinished_ok"]
    s = doc["summary"]
    assert s["judged"] == 2 and s["delay_ok"] == 1
    assert s["worst_entry"] == "b" and s["worst_adaptive_vs_best_baseline"] == pytest.approx(70 / 50)
    assert s["geomean_adaptive_vs_sumo"] == pytest.approx(math.sqrt(0.61 * 0.70))


def test_a_controller_that_strands_vehicles_where_the_programs_do_not_is_a_gridlock() -> None:
    outcomes = _runs("g", {"sumo": (100, 200, 4), "actuated": (900, 2000, 300), "adaptive": (90, 180, 5)})
    doc = summarise_corpus([_entry("g")], outcomes)
    assert doc["entries"][0]["gridlock"] == ["actuated"]
    assert doc["summary"]["adaptive_gridlocks"] == []


def test_failed_runs_and_unmodelled_junctions_are_reported() -> None:
    outcomes = _runs("f", {"sumo": (100, 200, 4), "adaptive": (90, 180, 5)})
    outcomes[0].kpis["meta"]["unmodelled"] = [["J7", "traffic light J7: no link is ever green"]]  # type: ignore[index]
    job = RunJob(scenario="/x/f.sumocfg", controller="webster", seed=1, tag="f")
    outcomes.append(RunOutcome(job, None, "the webster controller needs route files", 2, 1.0))
    doc = summarise_corpus([_entry("f")], outcomes)
    text = markdown_report(doc, command="greenwave corpus run --seeds 3")
    assert "| f | J7 | traffic light J7: no link is ever green |" in text
    assert "f / webster: seed 1: the webster controller needs route files" in text
    assert doc["summary"]["failed_runs"] == 1


def test_jobs_run_every_controller_on_every_seed_with_teleporting_off() -> None:
    jobs = corpus_jobs([_entry("a"), _entry("b")], seeds=(1, 2))
    assert len(jobs) == 2 * len(CONTROLLERS) * 2
    assert all(j.sumo_args[:2] == NO_TELEPORT and j.scenario.endswith(".sumocfg") for j in jobs)
    assert RunJob.from_json(jobs[0].to_json()) == jobs[0]
    assert [e.name for e in select([_entry("gen/a/near/car"), _entry("real/x")], ["gen/*"])] == ["gen/a/near/car"]


@pytest.mark.sumo
def test_corpus_run_end_to_end_resumes_from_its_runs_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Real SUMO on the committed real entry: headline lines last, and a second invocation with one
    more seed runs only that seed (the rest comes from the runs log)."""
    import json

    from api.cli import main

    log = tmp_path / "runs.jsonl"
    common = ["corpus", "run", "--cache", str(tmp_path / "c"), "--family", "real", "--only", "real/fokr_bs",
              "--controllers", "sumo,adaptive", "--end", "54120", "--in-process", "--runs-log", str(log)]  # fmt: skip
    assert main([*common, "--seeds", "1"]) == 0
    first = capsys.readouterr().out.strip().splitlines()
    assert first[-2].startswith("corpus_worst_adaptive_vs_best_baseline: ")
    assert first[-1].startswith("corpus_geomean_adaptive_vs_sumo: ")
    assert len(log.read_text().splitlines()) == 2
    md = tmp_path / "corpus.md"
    assert main([*common, "--seeds", "2", "--markdown", str(md)]) == 0
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    assert sorted((r["controller"], r["seed"]) for r in rows) == [("adaptive", 1), ("adaptive", 2), ("sumo", 1),
                                                                  ("sumo", 2)]  # fmt: skip
    assert "| real/fokr_bs | adaptive |" in md.read_text()
