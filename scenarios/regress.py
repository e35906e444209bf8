"""Scenario regression suite: KPIs of every controller on fixed seeds, against reviewed baselines.

A **suite** is a TOML file in ``scenarios/suites/`` (or anywhere)::

    name = "ci"
    scenarios = ["grid4x4", "arterial", "hanoi_mixed"]
    controllers = ["sumo", "actuated", "max-pressure"]   # what `regress` runs by default
    seeds = [1]
    end_s = 1800                # horizon override, the same for baselines and checks
    events = true               # also track event-based measures (arrivals on green)
    [exclude]                   # registered controllers `--controllers all` leaves out, and why
    fixed = "needs a timing plan"
    [tolerances]                # per KPI: rel (share of the baseline) and abs (floor, KPI units)
    mean_delay_s = { rel = 0.05, abs = 2.0 }
    [scenario.hanoi_mixed]      # per-scenario overrides (end_s)
    end_s = 1200

A **baseline** is one small JSON file per scenario and controller,
``scenarios/baselines/<suite>/<scenario>__<controller>.json``: the mean KPIs over
the suite's seeds, the run settings they came from, and the tolerances
(copied from the suite when first written; edit one file to loosen or tighten
one check; updates keep them). Baselines are reviewed like code and written
only by ``greenwave regress --update-baselines``.

**Check** (per KPI): ``tol = max(abs, rel * |baseline|)``; with ``worse`` the
change in the bad direction (up for delay, down for throughput and arrivals
on green), a KPI is a **regression** when ``worse > tol``, an **improvement**
when ``-worse > tol``, unchanged otherwise. Runs are deterministic (fixed
seeds, ``PYTHONHASHSEED=0``), so on the same SUMO version an unchanged
controller reproduces its baseline exactly; the tolerances absorb
platform and SUMO-version noise. A missing or stale baseline (the suite's
seeds or horizon changed) and a run that failed are problems too: the suite
fails and the report says which and why.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from xml.sax.saxutils import escape, quoteattr

from pydantic import Field

from intersections.config import ConfigModel, validate, where_of
from intersections.errors import InputError
from scenarios.runs import RunJob
from scenarios.sweep import KPI_DIRECTION, RunOutcome

__all__ = [
    "Suite",
    "Tolerance",
    "KpiCheck",
    "PairResult",
    "load_suite",
    "suite_jobs",
    "scenario_key",
    "baseline_path",
    "load_baseline",
    "write_baseline",
    "aggregate",
    "compare",
    "junit_xml",
    "markdown_report",
    "add_controllers_to_suite",
    "SUITES_DIR",
    "BASELINES_DIR",
]

SUITES_DIR = Path(__file__).resolve().parent / "suites"
BASELINES_DIR = Path(__file__).resolve().parent / "baselines"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Tolerance:
    rel: float
    abs: float
    better: str  # "lower" | "higher"

    def allowed(self, baseline: float) -> float:
        return max(self.abs, self.rel * abs(baseline))

    def to_json(self) -> dict[str, Any]:
        return {"rel": self.rel, "abs": self.abs, "better": self.better}


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    scenarios: tuple[str, ...]
    controllers: tuple[str, ...]
    seeds: tuple[int, ...]
    end_s: float | None
    events: bool
    tolerances: Mapping[str, Tolerance]
    exclude: Mapping[str, str] = field(default_factory=dict)
    scenario_end_s: Mapping[str, float] = field(default_factory=dict)
    description: str = ""

    def horizon(self, scenario: str) -> float | None:
        return self.scenario_end_s.get(scenario, self.end_s)


def _suite_file(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file():
        return p
    f = SUITES_DIR / f"{name_or_path}.toml"
    if not f.is_file():
        known = sorted(x.stem for x in SUITES_DIR.glob("*.toml"))
        raise InputError(f"unknown suite {name_or_path!r} (known: {', '.join(known)}; or give a .toml path)")
    return f


class _ToleranceTable(ConfigModel):
    rel: float = Field(0.0, ge=0)
    abs: float = Field(0.0, ge=0)


class _ScenarioTable(ConfigModel):
    end_s: float | None = Field(None, gt=0)


class _SuiteFile(ConfigModel):
    """A suite file as written (module docstring); :func:`load_suite` adds the cross-checks."""

    name: str | None = Field(None, pattern=_NAME_RE.pattern)
    description: str = ""
    scenarios: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    controllers: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    seeds: list[Annotated[int, Field(ge=0)]] = Field([1], min_length=1)
    end_s: float | None = Field(None, gt=0)
    events: bool = False
    exclude: dict[str, str] = Field(default_factory=dict)
    tolerances: dict[str, _ToleranceTable] = Field(default_factory=dict)
    scenario: dict[str, _ScenarioTable] = Field(default_factory=dict)


def load_suite(name_or_path: str | Path) -> Suite:
    """Read and check a suite file (module docstring); errors name the file, the table and the key."""
    path = _suite_file(name_or_path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("suite file not found", where=str(path)) from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"not valid TOML: {e}", where=str(path)) from None
    f = validate(_SuiteFile, doc, path=path)
    tols: dict[str, Tolerance] = {}
    for kpi, t in f.tolerances.items():
        if kpi not in KPI_DIRECTION:
            raise InputError(
                f"unknown KPI (known: {', '.join(KPI_DIRECTION)})", where=where_of(path, ("tolerances", kpi))
            )
        tols[kpi] = Tolerance(t.rel, t.abs, KPI_DIRECTION[kpi])
    if not tols:
        raise InputError("the suite tracks no KPI: add a [tolerances] table", where=str(path))
    return Suite(
        name=f.name if f.name is not None else path.stem,
        path=path,
        scenarios=tuple(f.scenarios),
        controllers=tuple(f.controllers),
        seeds=tuple(f.seeds),
        end_s=f.end_s,
        events=f.events,
        tolerances=tols,
        exclude=dict(f.exclude),
        scenario_end_s={scn: o.end_s for scn, o in f.scenario.items() if o.end_s is not None},
        description=f.description,
    )


def scenario_key(scenario: str) -> str:
    """File-safe name of a suite scenario (baseline files, reports): ``corpus:real/x`` -> ``corpus_real_x``."""
    if scenario.startswith("corpus:"):
        return re.sub(r"[^A-Za-z0-9_.-]", "_", scenario)
    return Path(scenario).stem


def suite_jobs(
    suite: Suite, scenarios: Sequence[str], controllers: Sequence[str], *, corpus_cache: str | Path | None = None
) -> list[RunJob]:
    """One job per scenario x controller x seed.

    A ``corpus:NAME`` scenario is an entry of the development corpus (:mod:`scenarios.corpus`),
    built into ``corpus_cache`` and run as its own SUMO configuration with teleporting off, as
    the corpus itself runs.
    """
    corpus = [s.removeprefix("corpus:") for s in scenarios if s.startswith("corpus:")]
    built: dict[str, Any] = {}
    if corpus:
        from scenarios.corpus.run import CORPUS_SUMO_ARGS, build_entries

        built = build_entries(corpus, corpus_cache or Path("out/corpus"))
    jobs = []
    for scn in scenarios:
        for ctl in controllers:
            for seed in suite.seeds:
                tag = f"{scn}__{ctl}"
                if scn.startswith("corpus:"):
                    entry = built[scn.removeprefix("corpus:")]
                    jobs.append(
                        RunJob(str(entry.sumocfg), ctl, seed, end_s=suite.horizon(scn), events=suite.events, tag=tag,
                               sumo_args=CORPUS_SUMO_ARGS)
                    )  # fmt: skip
                else:
                    jobs.append(RunJob(scn, ctl, seed, end_s=suite.horizon(scn), events=suite.events, tag=tag))
    return jobs


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------
def baseline_path(directory: Path, scenario: str, controller: str) -> Path:
    return directory / f"{scenario_key(scenario)}__{controller}.json"


def _settings(suite: Suite, scenario: str) -> dict[str, Any]:
    return {"seeds": list(suite.seeds), "end_s": suite.horizon(scenario), "events": suite.events}


def load_baseline(directory: Path, scenario: str, controller: str) -> tuple[dict[str, Any] | None, str]:
    """The baseline document, or None and why not."""
    p = baseline_path(directory, scenario, controller)
    if not p.is_file():
        return None, f"no baseline file {p}"
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, f"{p}: not valid JSON ({e})"
    if not isinstance(doc, dict) or not isinstance(doc.get("kpis"), dict):
        return None, f"{p}: no kpis table"
    return doc, ""


def write_baseline(
    directory: Path, suite: Suite, scenario: str, controller: str, kpis: Mapping[str, Any], *, sumo: str
) -> Path:
    """Write (or rewrite) one baseline, keeping hand-edited tolerances of an existing file."""
    p = baseline_path(directory, scenario, controller)
    p.parent.mkdir(parents=True, exist_ok=True)
    old, _ = load_baseline(directory, scenario, controller)
    tols = {k: t.to_json() for k, t in suite.tolerances.items()}
    if old and isinstance(old.get("tolerances"), dict):
        for k, t in old["tolerances"].items():
            if k in tols and isinstance(t, dict):
                tols[k] = {**tols[k], **{x: t[x] for x in ("rel", "abs") if x in t}}
    doc = {
        "suite": suite.name,
        "scenario": scenario_key(scenario),
        "controller": controller,
        "settings": _settings(suite, scenario),
        "sumo": sumo,
        "kpis": {k: _round(kpis.get(k)) for k in suite.tolerances},
        "tolerances": tols,
    }
    p.write_text(_baseline_text(doc), encoding="utf-8")
    return p


def _baseline_text(doc: Mapping[str, Any]) -> str:
    """JSON laid out for review: one line per KPI and per tolerance."""
    out = ["{"]
    items = list(doc.items())
    for n, (k, v) in enumerate(items):
        comma = "," if n < len(items) - 1 else ""
        if isinstance(v, dict) and k in ("kpis", "tolerances"):
            inner = [f"    {json.dumps(kk)}: {json.dumps(vv)}" for kk, vv in v.items()]
            out.append(f"  {json.dumps(k)}: {{\n" + ",\n".join(inner) + f"\n  }}{comma}")
        else:
            out.append(f"  {json.dumps(k)}: {json.dumps(v)}{comma}")
    return "\n".join(out) + "\n}\n"


def _round(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else round(float(v), 4)


def add_controllers_to_suite(suite: Suite, controllers: Sequence[str]) -> list[str]:
    """Append controllers to the suite file's ``controllers = [...]`` line; returns those added."""
    new = [c for c in controllers if c not in suite.controllers]
    if not new:
        return []
    text = suite.path.read_text(encoding="utf-8")
    m = re.search(r"(?m)^controllers\s*=\s*\[([^\]]*)\]", text)
    if m is None:
        raise InputError("cannot find a one-line `controllers = [...]` to extend", where=str(suite.path))
    items = [*suite.controllers, *new]
    line = "controllers = [" + ", ".join(json.dumps(c) for c in items) + "]"
    suite.path.write_text(text[: m.start()] + line + text[m.end() :], encoding="utf-8")
    return new


# --------------------------------------------------------------------------------------------
# Results and comparison
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KpiCheck:
    kpi: str
    baseline: float | None
    current: float | None
    tolerance: Tolerance | None
    status: str  # regression | improvement | ok | missing | error | n/a
    message: str = ""

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    @property
    def severity(self) -> float:
        """How far beyond tolerance, in tolerances (positive = worse); problems sort first."""
        if self.status in ("missing", "error"):
            return math.inf
        d = self.delta
        if d is None or self.tolerance is None:
            return 0.0
        worse = d if self.tolerance.better == "lower" else -d
        allowed = self.tolerance.allowed(self.baseline or 0.0)
        return worse / allowed if allowed > 0 else (math.inf if worse > 0 else -math.inf if worse < 0 else 0.0)


@dataclass(frozen=True)
class PairResult:
    scenario: str
    controller: str
    checks: tuple[KpiCheck, ...]
    problem: str = ""  # missing baseline / failed run, with the reason
    wall_s: float = 0.0
    kpis: Mapping[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return bool(self.problem) or any(c.status == "regression" for c in self.checks)


def aggregate(outcomes: Sequence[RunOutcome]) -> dict[str, tuple[dict[str, Any] | None, str, float]]:
    """Per ``scenario__controller`` tag: mean KPIs over seeds (None if a run failed), the error, wall time."""
    groups: dict[str, list[RunOutcome]] = {}
    for o in outcomes:
        groups.setdefault(o.job.tag, []).append(o)
    out: dict[str, tuple[dict[str, Any] | None, str, float]] = {}
    for tag, runs in groups.items():
        wall = sum(float((o.kpis or {}).get("meta", {}).get("wall_s", 0.0)) for o in runs)
        bad = [o for o in runs if not o.ok]
        if bad:
            err = "; ".join(f"seed {o.job.seed}: {o.error} (after {o.attempts} attempts)" for o in bad)
            out[tag] = (None, err, wall)
            continue
        mean: dict[str, Any] = {}
        keys = set().union(*(o.kpis or {} for o in runs)) | {"safety_events"}
        for k in keys:
            vals = [_kpi(o.kpis or {}, k) for o in runs]
            if all(isinstance(v, int | float) for v in vals):
                mean[k] = sum(vals) / len(vals)
            elif all(v is None for v in vals):
                mean[k] = None
        out[tag] = (mean, "", wall)
    return out


def _kpi(kpis: Mapping[str, Any], k: str) -> Any:
    if k == "safety_events":
        return kpis.get("meta", {}).get("safety_events")
    v = kpis.get(k)
    return v if isinstance(v, int | float) or v is None else "non-scalar"


def _check(kpi: str, base: Any, cur: Any, tol: Tolerance | None) -> KpiCheck:
    if tol is None:
        return KpiCheck(kpi, base, cur, None, "n/a", "not tracked by the baseline")
    if base is None and cur is None:
        return KpiCheck(kpi, None, None, tol, "n/a", "not measured (no such detection in this scenario)")
    if base is None:
        return KpiCheck(kpi, None, cur, tol, "ok", "newly measured: no baseline value")
    if cur is None:
        return KpiCheck(kpi, base, None, tol, "regression", "no longer measured")
    d = float(cur) - float(base)
    worse = d if tol.better == "lower" else -d
    allowed = tol.allowed(float(base))
    if worse > allowed:
        return KpiCheck(kpi, base, cur, tol, "regression", f"worse by {abs(d):.4g} (> {allowed:.4g} allowed)")
    if -worse > allowed:
        return KpiCheck(kpi, base, cur, tol, "improvement", f"better by {abs(d):.4g} (> {allowed:.4g})")
    return KpiCheck(kpi, base, cur, tol, "ok")


def compare(
    suite: Suite,
    directory: Path,
    scenario: str,
    controller: str,
    result: tuple[dict[str, Any] | None, str, float],
) -> PairResult:
    kpis, err, wall = result
    scn = scenario_key(scenario)
    names = list(suite.tolerances)
    if kpis is None:
        checks = tuple(KpiCheck(k, None, None, suite.tolerances[k], "error", "the run failed") for k in names)
        return PairResult(scn, controller, checks, f"run failed: {err}", wall)
    base, why = load_baseline(directory, scenario, controller)
    hint = f"`greenwave regress --suite {suite.name} --scenarios {scn} --controllers {controller} --update-baselines`"
    if base is None:
        checks = tuple(KpiCheck(k, None, kpis.get(k), suite.tolerances[k], "missing", why) for k in names)
        return PairResult(scn, controller, checks, f"missing baseline ({why}); create it with {hint}", wall, kpis)
    settings = _settings(suite, scenario)
    if base.get("settings") != settings:
        msg = f"stale baseline: recorded with {base.get('settings')}, the suite now runs {settings}; update with {hint}"
        old = base["kpis"]
        checks = tuple(KpiCheck(k, old.get(k), kpis.get(k), suite.tolerances[k], "missing", msg) for k in names)
        return PairResult(scn, controller, checks, msg, wall, kpis)
    tols = {k: Tolerance(float(t.get("rel", 0)), float(t.get("abs", 0)), KPI_DIRECTION.get(k, "lower"))
            for k, t in (base.get("tolerances") or {}).items() if isinstance(t, dict)}  # fmt: skip
    # Compared at the precision baselines are stored with, so an exact reproduction shows a zero delta.
    checks = tuple(_check(k, base["kpis"].get(k), _round(kpis.get(k)), tols.get(k, suite.tolerances[k])) for k in names)
    return PairResult(scn, controller, checks, "", wall, kpis)


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------
def junit_xml(suite: Suite, results: Sequence[PairResult], *, wall_s: float) -> str:
    """JUnit XML: one testcase per scenario x controller x KPI (classname ``regress.SUITE.SCENARIO.CONTROLLER``)."""
    cases = []
    failures = errors = 0
    for r in results:
        per = r.wall_s / max(len(r.checks), 1)
        for c in r.checks:
            cls = f"regress.{suite.name}.{r.scenario}.{r.controller}"
            attrs = f"classname={quoteattr(cls)} name={quoteattr(c.kpi)}"
            body = ""
            if c.status == "regression":
                failures += 1
                body = f'<failure type="regression" message={quoteattr(_line(c))}>{escape(_detail(r, c))}</failure>'
            elif c.status in ("missing", "error"):
                errors += 1
                body = f'<error type="{c.status}" message={quoteattr(r.problem or c.message)}/>'
            elif c.status == "improvement":
                body = f"<system-out>{escape(_line(c))}</system-out>"
            cases.append(f'    <testcase {attrs} time="{per:.3f}">{body}</testcase>')
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    head = (
        f'<testsuite name={quoteattr(f"regress.{suite.name}")} tests="{len(cases)}" failures="{failures}" '
        f'errors="{errors}" skipped="0" time="{wall_s:.1f}" timestamp="{stamp}">'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n  '
        + head
        + "\n"
        + "\n".join(cases)
        + ("\n  </testsuite>\n</testsuites>\n")
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _line(c: KpiCheck) -> str:
    d = c.delta
    pct = f" ({100 * d / c.baseline:+.1f} %)" if d is not None and c.baseline else ""
    return f"{c.kpi}: {_fmt(c.baseline)} -> {_fmt(c.current)}{pct}; {c.message}"


def _detail(r: PairResult, c: KpiCheck) -> str:
    t = c.tolerance
    tol = f"rel {t.rel:g}, abs {t.abs:g}, {t.better} is better" if t else "-"
    return f"{r.scenario} / {r.controller}: {_line(c)}\ntolerance: {tol}"


def markdown_report(
    suite: Suite,
    results: Sequence[PairResult],
    *,
    wall_s: float,
    sumo: str,
    not_run: Mapping[str, str] | None = None,
) -> str:
    """Markdown: verdict, problems, then every KPI delta with the worst regressions first."""
    checks = [(r, c) for r in results for c in r.checks]
    n_reg = sum(c.status == "regression" for _, c in checks)
    n_imp = sum(c.status == "improvement" for _, c in checks)
    problems = [r for r in results if r.problem]
    verdict = "FAIL" if n_reg or problems else "PASS"
    lines = [
        f"# greenwave regress: suite `{suite.name}`",
        "",
        f"**{verdict}**: {n_reg} regression(s), {n_imp} improvement(s), {len(problems)} problem(s) "
        f"(missing baselines or failed runs) over {len(results)} scenario x controller pairs, "
        f"{len(suite.seeds)} seed(s) each.",
        "",
        f"Seeds {list(suite.seeds)}; horizon {_fmt(suite.end_s) if suite.end_s else 'scenario'} s"
        + (f" ({', '.join(f'{k}: {v:g} s' for k, v in suite.scenario_end_s.items())})" if suite.scenario_end_s else "")
        + f"; SUMO {sumo}; wall time {wall_s:.0f} s; {datetime.now(UTC).isoformat(timespec='seconds')}.",
        "",
    ]
    if problems:
        lines += ["## Problems", ""]
        lines += [f"- **{r.scenario} / {r.controller}**: {r.problem}" for r in problems]
        lines.append("")
    if not_run:
        lines += ["## Not run", ""]
        lines += [f"- {k}: {v}" for k, v in not_run.items()]
        lines.append("")
    lines += [
        "## KPI deltas (worst first)",
        "",
        "| status | scenario | controller | KPI | baseline | current | delta | delta % | allowed | better |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    order = sorted(checks, key=lambda rc: (-rc[1].severity, rc[0].scenario, rc[0].controller, rc[1].kpi))
    icon = {"regression": "❌ regression", "improvement": "✅ improvement", "ok": "ok", "missing": "⚠ missing",
            "error": "⚠ run failed", "n/a": "n/a"}  # fmt: skip
    for r, c in order:
        d = c.delta
        t = c.tolerance
        allowed = t.allowed(c.baseline) if t and c.baseline is not None else None
        pct = f"{100 * d / c.baseline:+.1f}" if d is not None and c.baseline else "-"
        lines.append(
            f"| {icon[c.status]} | {r.scenario} | {r.controller} | {c.kpi} | {_fmt(c.baseline)} | {_fmt(c.current)} "
            f"| {f'{d:+.4g}' if d is not None else '-'} | {pct} | {_fmt(allowed)} | {t.better if t else '-'} |"
        )
    lines.append("")
    return "\n".join(lines)
