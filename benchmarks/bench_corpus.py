"""The whole development corpus: adaptive against the networks' own programs and the best baseline.

Every corpus entry (real-city scenarios and generated networks at three demand levels, see
``scenarios/corpus``) under ``sumo``, ``webster``, ``actuated``, ``max-pressure`` and ``adaptive``,
5 seeds, teleporting off, on a local Dask cluster: the protocol of ``greenwave corpus run``, whose
per-entry lines this prints first. The whole corpus is a benchmark, not a test (hours on 2 cores).

Usage:  python benchmarks/bench_corpus.py [--seeds 5] [--only PATTERN ...] [--family real|generated]
        [--markdown docs/results/corpus.md] [--json out/corpus.json] [--end S] [--workers 2]
Prints ``name: value`` lines; last ``corpus_worst_adaptive_vs_best_baseline`` (the worst entry's
adaptive / best-baseline delay ratio) and then ``corpus_geomean_adaptive_vs_sumo``.
"""

from __future__ import annotations

import sys

from api.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--seeds" or a.startswith("--seeds=") for a in args):
        args = ["--seeds", "5", *args]
    sys.exit(main(["corpus", "run", *args]))
