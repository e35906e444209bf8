"""Run every controller on the corpus and judge adaptive control against the best simple baseline.

The protocol is the one independent evaluations use on real networks
(``../shared/reference/real-networks.md``): a fixed horizon, several seeds, SUMO's teleporting
off (``--time-to-teleport -1``: a gridlock stays a gridlock), tripinfo with unfinished vehicles,
delay = time loss + depart delay per vehicle including unfinished ones (:mod:`simulation.kpi`),
every controller against the network's own programs (``sumo``) in the same SUMO build.

Runs go to Dask through :func:`scenarios.sweep.execute` (each run its own process, a failed run
retried once and then reported; the rest goes on).

Judgement per corpus entry (issue #15, target 3), with ``best`` the baseline of lowest mean delay
among ``sumo``, ``webster``, ``actuated`` and ``max-pressure``:

* ``delay_ok``: adaptive's mean delay <= best's mean + best's 95 % confidence half-width
  (Student t over the seeds);
* ``p95_ok`` and ``unfinished_ok``: adaptive's p95 delay and unfinished vehicles no worse than
  best's, within the same allowance;
* ``gridlock``: a controller leaves more than ``max(20, 2 x sumo's)`` vehicles unfinished where
  the network's own programs do not (a jam that teleporting-off never dissolves).

Over the corpus: the geometric mean of adaptive / sumo delay, and the worst adaptive / best
ratio: the worst case, not the best, is the headline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.corpus import CorpusEntry
from scenarios.runs import RunJob
from simulation.kpi import mean_ci95

__all__ = [
    "BASELINES",
    "CONTROLLERS",
    "NO_TELEPORT",
    "CORPUS_SUMO_ARGS",
    "corpus_entries",
    "corpus_jobs",
    "summarise_corpus",
    "markdown_report",
    "select",
    "build_entries",
    "CORPUS_PREFIX",
]

#: How a regression suite names a corpus entry: ``corpus:real/fokr_bs``, ``corpus:gen/<net>/<demand>/<mix>``.
CORPUS_PREFIX = "corpus:"

BASELINES = ("sumo", "webster", "actuated", "max-pressure")
CONTROLLERS = (*BASELINES, "adaptive")
#: Teleporting off, as the published benchmarks run: a gridlock is never hidden.
NO_TELEPORT = ("--time-to-teleport", "-1")
#: What every corpus run passes to SUMO: teleporting off; SUMO's per-vehicle warnings (emergency
#: braking, speed factors) kept out of the terminal, where thousands of runs would bury the report.
CORPUS_SUMO_ARGS = (*NO_TELEPORT, "--no-warnings", "true")
JUDGED = ("mean_delay_s", "p95_delay_s", "unfinished_veh")


def corpus_entries(
    cache_dir: str | Path, *, families: Sequence[str] = ("real", "generated"), warn: Callable[[str], None] | None = None
) -> list[CorpusEntry]:
    """Build (cached) and list the corpus; a family that cannot be built is said once, the rest goes on."""
    out = Path(cache_dir)
    entries: list[CorpusEntry] = []
    if "real" in families:
        try:
            from scenarios.corpus.real import build_real

            entries += build_real(out)
        except Exception as e:  # a missing source must not stop the rest of the corpus
            if warn:
                warn(f"real corpus not built: {type(e).__name__}: {e}")
    if "generated" in families:
        try:
            from scenarios.corpus.generated import build_generated

            entries += build_generated(out)
        except Exception as e:
            if warn:
                warn(f"generated corpus not built: {type(e).__name__}: {e}")
    return entries


def build_entries(names: Sequence[str], cache_dir: str | Path) -> dict[str, CorpusEntry]:
    """Build just the named entries (``real/<source>``, ``gen/<net>/<demand>/<mix>``); unknown names refused."""
    from intersections.errors import InputError

    out = Path(cache_dir)
    real = sorted({n.split("/", 1)[1] for n in names if n.startswith("real/")})
    gen = sorted({n.split("/")[1] for n in names if n.startswith("gen/") and n.count("/") >= 1})
    entries: list[CorpusEntry] = []
    if real:
        from scenarios.corpus.real import build_real

        entries += build_real(out, only=real)
    if gen:
        from scenarios.corpus.generated import build_generated

        entries += build_generated(out, only=gen)
    by_name = {e.name: e for e in entries}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InputError(f"unknown or unbuildable corpus entries {missing}", where="corpus")
    return {n: by_name[n] for n in names}


def select(entries: Iterable[CorpusEntry], patterns: Sequence[str] = ()) -> list[CorpusEntry]:
    """Entries whose name matches any of the shell patterns (all when none are given)."""
    entries = list(entries)
    if not patterns:
        return entries
    return [e for e in entries if any(fnmatch(e.name, p) for p in patterns)]


def corpus_jobs(
    entries: Sequence[CorpusEntry],
    controllers: Sequence[str] = CONTROLLERS,
    seeds: Sequence[int] = (1, 2, 3, 4, 5),
    *,
    end_s: float | None = None,
    sumo_args: Sequence[str] = CORPUS_SUMO_ARGS,
) -> list[RunJob]:
    """One job per entry x controller x seed, tagged with the entry's name."""
    return [
        RunJob(
            scenario=str(e.sumocfg),
            controller=c,
            seed=s,
            end_s=end_s,
            tag=e.name,
            sumo_args=tuple(sumo_args),
        )
        for e in entries
        for c in controllers
        for s in seeds
    ]


def _stats(values: Sequence[float]) -> dict[str, float]:
    mean, ci = mean_ci95(values)
    return {"mean": mean, "ci": ci, "n": len(values)}


def summarise_corpus(entries: Sequence[CorpusEntry], outcomes: Sequence[Any]) -> dict[str, Any]:
    """Per entry and controller: mean and 95 % CI of the judged KPIs, ratios and verdicts; then the corpus."""
    by_entry: dict[str, dict[str, list[dict[str, Any]]]] = {}
    errors: dict[str, dict[str, list[str]]] = {}
    for o in outcomes:
        slot = by_entry.setdefault(o.job.tag, {}).setdefault(o.job.controller, [])
        if o.ok:
            slot.append(o.kpis)
        else:
            errors.setdefault(o.job.tag, {}).setdefault(o.job.controller, []).append(f"seed {o.job.seed}: {o.error}")
    rows: list[dict[str, Any]] = []
    for e in entries:
        runs = by_entry.get(e.name, {})
        ctl: dict[str, Any] = {}
        unmodelled: dict[str, str] = {}
        for c, kp in runs.items():
            ctl[c] = {k: _stats([r[k] for r in kp if k in r]) for k in JUDGED}
            for r in kp:
                for tls, why in r.get("meta", {}).get("unmodelled", []):
                    unmodelled[tls] = why
        row: dict[str, Any] = {
            "name": e.name,
            "family": e.family,
            "demand": e.demand,
            "mix": e.mix,
            "signals": e.n_signals,
            "features": list(e.features),
            "controllers": ctl,
            "errors": errors.get(e.name, {}),
            "unmodelled": unmodelled,
        }
        row.update(_verdicts(ctl))
        rows.append(row)
    return {"entries": rows, "summary": _overall(rows)}


def _mean(ctl: Mapping[str, Any], c: str, k: str = "mean_delay_s") -> float:
    s = ctl.get(c, {}).get(k)
    return float(s["mean"]) if s and s["n"] else math.nan


def _verdicts(ctl: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    base = {c: _mean(ctl, c) for c in BASELINES if not math.isnan(_mean(ctl, c))}
    best = min(base, key=lambda c: base[c]) if base else None
    out["best_baseline"] = best
    sumo_unf = _mean(ctl, "sumo", "unfinished_veh")
    out["gridlock"] = sorted(
        c for c in ctl if not math.isnan(sumo_unf) and _mean(ctl, c, "unfinished_veh") > max(20.0, 2.0 * sumo_unf)
    )
    for c in ctl:
        d = _mean(ctl, c)
        ctl[c]["vs_sumo"] = d / base["sumo"] if "sumo" in base and base["sumo"] > 0 else math.nan
        ctl[c]["vs_best"] = d / base[best] if best and base[best] > 0 else math.nan
    if "adaptive" in ctl and best is not None:
        a, b = ctl["adaptive"], ctl[best]
        for k, name in (("mean_delay_s", "delay_ok"), ("p95_delay_s", "p95_ok"), ("unfinished_veh", "unfinished_ok")):
            allowance = b[k]["ci"] if k == "mean_delay_s" else max(b[k]["ci"], 0.0)
            out[name] = bool(a[k]["mean"] <= b[k]["mean"] + allowance + 1e-9)
    return out


def _overall(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    vs_sumo = [r["controllers"]["adaptive"]["vs_sumo"] for r in rows if "adaptive" in r["controllers"]]
    vs_sumo = [v for v in vs_sumo if v > 0 and math.isfinite(v)]
    vs_best = [(r["controllers"]["adaptive"]["vs_best"], r["name"]) for r in rows if "adaptive" in r["controllers"]]
    vs_best = [(v, n) for v, n in vs_best if math.isfinite(v)]
    worst = max(vs_best) if vs_best else (math.nan, "")
    judged = [r for r in rows if "delay_ok" in r]
    return {
        "entries": len(rows),
        "judged": len(judged),
        "geomean_adaptive_vs_sumo": float(np.exp(np.mean(np.log(vs_sumo)))) if vs_sumo else math.nan,
        "worst_adaptive_vs_best_baseline": float(worst[0]),
        "worst_entry": worst[1],
        "delay_ok": sum(bool(r.get("delay_ok")) for r in judged),
        "p95_ok": sum(bool(r.get("p95_ok")) for r in judged),
        "unfinished_ok": sum(bool(r.get("unfinished_ok")) for r in judged),
        "adaptive_gridlocks": [r["name"] for r in rows if "adaptive" in r.get("gridlock", [])],
        "failed_runs": sum(len(v) for r in rows for v in r["errors"].values()),
    }


def _fmt(s: Mapping[str, float] | None) -> str:
    if not s or not s.get("n"):
        return "-"
    return f"{s['mean']:.1f} ± {s['ci']:.1f}"


def markdown_report(doc: Mapping[str, Any], *, command: str = "") -> str:
    """``docs/results/corpus.md``: one table row per entry and controller, then the verdicts."""
    s = doc["summary"]
    lines = ["# Corpus results", ""]
    if command:
        lines += [f"Printed by `{command}`.", ""]
    lines += [
        f"- entries: {s['entries']} (judged: {s['judged']}); seeds: {doc.get('seeds', '?')}; "
        f"horizon: {doc.get('end_s') or 'each scenario own'}; teleporting off",
        f"- geometric mean of adaptive / sumo delay: **{s['geomean_adaptive_vs_sumo']:.3f}** (target <= 0.55)",
        f"- worst adaptive / best baseline: **{s['worst_adaptive_vs_best_baseline']:.3f}** ({s['worst_entry']})",
        f"- adaptive within the best baseline's 95 % CI: delay {s['delay_ok']}/{s['judged']}, "
        f"p95 {s['p95_ok']}/{s['judged']}, unfinished {s['unfinished_ok']}/{s['judged']}",
        f"- adaptive gridlocks where the programs do not: {', '.join(s['adaptive_gridlocks']) or 'none'}",
        f"- failed runs: {s['failed_runs']}",
        "",
        "| entry | controller | mean delay s | p95 delay s | unfinished | vs sumo | vs best | notes |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in doc["entries"]:
        for c, st in r["controllers"].items():
            notes = []
            if c == r.get("best_baseline"):
                notes.append("best baseline")
            if c in r.get("gridlock", []):
                notes.append("gridlock")
            if c == "adaptive" and "delay_ok" in r:
                notes.append("ok" if r["delay_ok"] and r["p95_ok"] and r["unfinished_ok"] else "target missed")
            if c in r["errors"]:
                notes.append(f"{len(r['errors'][c])} failed")
            lines.append(
                f"| {r['name']} | {c} | {_fmt(st['mean_delay_s'])} | {_fmt(st['p95_delay_s'])} | "
                f"{_fmt(st['unfinished_veh'])} | {st['vs_sumo']:.2f} | {st['vs_best']:.2f} | {'; '.join(notes)} |"
            )
    left = [(r["name"], t, why) for r in doc["entries"] for t, why in r.get("unmodelled", {}).items()]
    lines += ["", "## Junctions left on their own program", ""]
    if left:
        lines += ["| entry | traffic light | reason |", "|---|---|---|"]
        lines += [f"| {n} | {t} | {why} |" for n, t, why in left]
    else:
        lines.append("None: every traffic light of every entry was modelled.")
    errs = [(r["name"], c, m) for r in doc["entries"] for c, ms in r["errors"].items() for m in ms]
    if errs:
        lines += ["", "## Failed runs", ""]
        lines += [f"- {n} / {c}: {m.splitlines()[0] if m else ''}" for n, c, m in errs]
    return "\n".join(lines) + "\n"
