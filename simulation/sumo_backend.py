"""The SUMO backend: libsumo in process (default) or TraCI (``sumo-gui`` too).

Implements the engine's backend protocol (:mod:`controller.backend`), so the
engine and the safety supervisor drive SUMO exactly as they drive field
controllers. Per tick it costs:

* the detector values the policy reads (``read_fields``: a lane-area
  detector on every incoming lane, an advance loop upstream): in process
  (libsumo) one compiled pass per lane-area value over libsumo's C++ getter
  (:mod:`simulation.native_reads`; one getter call per detector where that
  is not available, and for the loops), over TraCI one
  ``getAllSubscriptionResults`` per detector domain (subscribed once at
  start); never a call per vehicle;
* for ``exit_blocked`` (read only when the policy declares it): the halting
  number of every exit zone, and the occupancy of the few zones where a
  vehicle halts;
* one ``setRedYellowGreenState`` per intersection whose displayed states
  changed (at most one call per intersection per tick; the parts of a light
  over several junctions, one intersection each, are one string and one call);
* one ``simulationStep``.

Signal groups map to SUMO link indices (the loader keeps them). Where the
program shows a group as ``g`` (green, yield: a permissive left turn) the
backend shows ``g`` too, so drivers keep yielding exactly as under the net's
own program; a group that the program shows as ``G`` in some phases and ``g``
in others gets ``G`` only when the displayed set of green groups is one of the
program's ``G`` phases for it.

With ``control=False`` (the ``sumo`` controller) nothing is written: SUMO runs
the network's own programs, untouched, and the backend only observes.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from controller.arrays import any_rows, read_only
from controller.backend import OBSERVATION_FIELDS, SPECIAL_DTYPE, BaseBackend, Commands, Observation
from intersections.errors import SimulationError
from intersections.model import SignalState
from intersections.network import Network
from simulation.detectors import EXIT_BLOCKED_OCCUPANCY, SumoDetectors
from simulation.meso import MESO_UNSUPPORTED, MODEL_OPTIONS, MesoReader, Model, without_options
from simulation.native_reads import CheckedReads
from simulation.pedestrians import CrossingCalls
from simulation.sumo_home import sumo_binary

__all__ = ["SumoRun", "SumoBackend", "merge_sumo_args", "option_name", "sumo_command"]

_labels = itertools.count()

# traci.constants values (identical in libsumo); spelled here to keep the
# import of traci lazy.
LAST_STEP_VEHICLE_NUMBER = 0x10
LAST_STEP_OCCUPANCY = 0x13
LAST_STEP_VEHICLE_HALTING_NUMBER = 0x14
VAR_INTERVAL_NUMBER = 0x25
LAST_STEP_VEHICLE_DATA = 0x17
TL_RED_YELLOW_GREEN_STATE = 0x20

# One record per special vehicle approaching a controlled intersection (Observation.extra).

_GREEN = int(SignalState.GREEN)
STATE_CHAR = {int(SignalState.RED): "r", int(SignalState.YELLOW): "y", int(SignalState.FLASH): "o"}
CHAR_STATE = {
    "G": SignalState.GREEN,
    "g": SignalState.GREEN,
    "s": SignalState.GREEN,
    "y": SignalState.YELLOW,
    "u": SignalState.RED,
    "r": SignalState.RED,
    "o": SignalState.FLASH,
    "O": SignalState.FLASH,
}
# The same as a table over byte values (anything else reads as red, as CHAR_STATE's default).
_STATE_OF_CHAR = np.zeros(256, np.int8)
for _ch, _st in CHAR_STATE.items():
    _STATE_OF_CHAR[ord(_ch)] = int(_st)


def _increments(cum: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Vehicles counted since the previous read of SUMO's interval counters.

    A counter that went down restarted its interval, and then holds only the new part.
    """
    n = cum - prev
    return np.where(n >= 0, n, cum)


def _entered_since(data: Any, since: float, n: int) -> np.ndarray:
    """Per loop, the vehicles whose entry time is after ``since``, from last-step vehicle data.

    A vehicle standing on a loop is reported every step with its one entry
    time, so it is counted once; one that crossed within the step is counted
    too (its entry time is interpolated inside the step).
    """
    return np.fromiter((sum(1 for v in x if v[2] > since) if x else 0 for x in data), float, n)


def _side_by_side(ids: tuple[str, ...]) -> tuple[str, ...]:
    """Copies of ``ids`` allocated one after another, in read order.

    The ids as parsed lie scattered over the heap, and every tick reads each one
    (800 on the 10x10 grid) on caches SUMO's step has just evicted; copies made
    in one go share cache lines and pages with their neighbours in the read.
    """
    encoded = [i.encode() for i in ids]  # all kept alive, so the copies below are not interleaved with them
    return tuple(b.decode() for b in encoded)


def option_name(token: str) -> str | None:
    """``--foo=bar`` / ``--foo`` -> ``foo``; None for a value token."""
    if token.startswith("--"):
        return token[2:].split("=", 1)[0]
    if token.startswith("-") and len(token) > 1 and not token[1].isdigit():
        return token[1:].split("=", 1)[0]
    return None


# SUMO's one-letter abbreviations of the options greenwave sets.
_ALIASES = {
    "n": "net-file",
    "r": "route-files",
    "a": "additional-files",
    "c": "configuration-file",
    "b": "begin",
    "e": "end",
    "W": "no-warnings",
    "v": "verbose",
}


def merge_sumo_args(ours: list[str], user: list[str]) -> list[str]:
    """Our options, minus those the user gives, then the user's verbatim.

    SUMO refuses an option given twice, so a user's ``--time-to-teleport=-1``
    replaces greenwave's own default rather than adding to it.
    """

    def split(tokens: list[str]) -> list[tuple[str, list[str]]]:
        out: list[tuple[str, list[str]]] = []
        for t in tokens:
            name = option_name(t)
            if name is None and out:
                out[-1][1].append(t)
            else:
                out.append((_ALIASES.get(name or "", name or ""), [t]))
        return out

    user_names = {n for n, _ in split(user)}
    kept = [tok for name, toks in split(ours) if name not in user_names for tok in toks]
    return kept + list(user)


def sumo_command(
    *,
    net: str | Path,
    sumocfg: str | Path | None = None,
    routes: Sequence[str | Path] = (),
    additional: Sequence[str | Path] = (),
    outputs: Sequence[str] = (),
    seed: int,
    step_length_s: float,
    log_file: str | Path,
    begin_s: float | None = None,
    end_s: float | None = None,
    scenario_args: Sequence[str] = (),
    user_args: Sequence[str] = (),
    model: Model | str = Model.MICRO,
) -> list[str]:
    """SUMO's command line (without the binary) for a greenwave run: the one place it is built.

    The network comes from ``sumocfg`` when there is one (its values are then
    overridden by ours), else from ``net`` and ``routes``. Our options
    (``additional`` files, ``outputs``, seed, step, log, a 300 s teleport time)
    come first; a scenario's own options and then the user's replace any of ours
    with the same name (:func:`merge_sumo_args`: SUMO refuses an option twice).
    ``model`` adds that model's options (:data:`simulation.meso.MODEL_OPTIONS`: none
    for micro, ``--mesosim`` with junction control for meso); meso also drops the
    scenario's options it refuses (the sublane model: :data:`simulation.meso.MESO_UNSUPPORTED`).
    """
    base = ["-c", str(sumocfg)] if sumocfg else ["-n", str(net)]
    if routes and not sumocfg:
        base += ["-r", ",".join(str(r) for r in routes)]
    ours = [
        "--additional-files", ",".join(str(a) for a in additional),
        *outputs,
        "--seed", str(seed),
        "--step-length", f"{step_length_s:g}",
        "--no-step-log", "true",
        "--log", str(log_file),
        "--time-to-teleport", "300",
        *MODEL_OPTIONS[Model(model)],
    ]  # fmt: skip
    if begin_s is not None:
        ours += ["--begin", f"{begin_s:g}"]
    if end_s is not None:
        ours += ["--end", f"{end_s:g}"]
    if Model(model) is Model.MESO:
        scenario_args = without_options(scenario_args, MESO_UNSUPPORTED)
    return base + merge_sumo_args([*ours, *scenario_args], list(user_args))


@dataclass
class SumoRun:
    """How to start SUMO for one run."""

    sumo_args: list[str]  # net/routes/cfg and options, without the binary
    gui: bool = False
    traci: bool = False
    step_length_s: float = 1.0
    begin_s: float = 0.0
    end_s: float | None = None
    log_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class SumoBackend(BaseBackend):
    """Drives one SUMO simulation; see the module docstring."""

    def __init__(
        self,
        network: Network,
        run: SumoRun,
        *,
        detectors: SumoDetectors | None = None,
        control: bool = True,
        dt_s: float = 1.0,
        program_states: dict[str, list[str]] | None = None,
        read_fields: Iterable[str] = OBSERVATION_FIELDS,
        meso: MesoReader | None = None,
    ) -> None:
        super().__init__(detectors.network if detectors is not None else network, dt_s=dt_s)
        self.run = run
        # Observation fields to read each tick (the rest stay NaN): see controller.backend.fields_read_by.
        self.read_fields = frozenset(read_fields)
        unknown = self.read_fields - OBSERVATION_FIELDS
        if unknown:
            raise ValueError(f"unknown observation fields to read: {sorted(unknown)}")
        self.control = control
        self.sumo_detectors = detectors
        # SUMO's mesoscopic model: loops only, the rest estimated (simulation.meso); None for micro.
        self.meso = meso
        self.time_s = run.begin_s
        self._conn: Any = None
        self._label = f"gw{next(_labels)}"
        p = self.packed
        self._tls = [i.tls_id for i in self.network.intersections]
        self._shown = np.full((p.n, p.g), -1, np.int8)  # -1: nothing set yet, every row differs
        # What the observation reports as shown (all red before the first command; read-only:
        # the same array serves every observation until the next apply replaces it).
        (self._shown_state,) = read_only(np.zeros((p.n, p.g), np.int8))
        self._index_detectors()
        # SUMO always answers, and never with a controller fault (read-only: shared by every observation).
        self._healthy = read_only(np.zeros(p.n), np.zeros(p.n, bool))
        self._in_process = False
        self._string_cache: list[dict[bytes, str]] = [{} for _ in range(p.n)]
        self._link_maps = [self._link_map(i, (program_states or {}).get(i.tls_id)) for i in self.network.intersections]
        # Each group's first SUMO link, flat (row, column, link index): what _read_states gathers.
        first = [(r, k, g.link_indices[0]) for r, i in enumerate(self.network.intersections)
                 for k, g in enumerate(i.groups) if g.link_indices]  # fmt: skip
        self._state_row, self._state_col, self._state_link = (
            np.array([f[j] for f in first], np.int64) for j in range(3)
        )
        self._startup_stderr = ""
        self.steps = 0
        self.step_wall_s = 0.0  # wall time inside simulationStep (SUMO's own work)
        self.step_cpu_s = 0.0  # and this process's CPU time there (libsumo: SUMO's own; less load-bound)
        # Halting vehicles on each stop-line lane-area detector (detectors.e2_ids order), summed
        # and maximised over all reads (the queue KPIs), in the read while the values are in cache.
        n_e2 = len(detectors.e2_ids) if detectors is not None else 0
        self.e2_halting_sum, self.e2_halting_max = np.zeros(n_e2), np.zeros(n_e2)
        # Optional rewrite of each observation (fault injection in scenarios).
        self.observation_filter: Callable[[Observation], Observation] | None = None
        # Buses (GPS-tracked) and emergency vehicles, tracked from departure to arrival.
        self._special: dict[str, str] = {}  # vehicle id -> "bus" | "emergency"
        # People waiting at signalled crossings (simulation.pedestrians): built once SUMO runs.
        self._crossings: CrossingCalls | None = None
        # A light over several junctions can be several intersections (its parts, one row each:
        # intersections.loaders.sumo_net): their rows are written as one string, each link from the
        # row that drives it (_merged_state).
        self._rows_of_tls: dict[str, list[int]] = {}
        for r, tls in enumerate(self._tls):
            self._rows_of_tls.setdefault(tls, []).append(r)
        self._owner_of_link: dict[str, list[int]] = {}
        for tls, rows in self._rows_of_tls.items():
            if len(rows) > 1:
                owner = [-1] * max(self._link_maps[r]["n_links"] for r in rows)
                for r in rows:
                    for li in np.flatnonzero(self._link_maps[r]["group_of"] >= 0).tolist():
                        owner[li] = r
                self._owner_of_link[tls] = owner
        self._row_text = [""] * p.n  # each shared light's rows' last strings
        self._get_state: Callable[[str], str] | None = None  # the `sumo` controller's state getter, in process

    # ---- mapping groups <-> link indices ------------------------------------------
    def _link_map(self, inter: Any, program: list[str] | None) -> dict[str, Any]:
        n_links = max((max(g.link_indices) for g in inter.groups if g.link_indices), default=-1) + 1
        if program:
            n_links = max(n_links, len(program[0]))
        group_of = np.full(n_links, -1, np.int64)
        for k, grp in enumerate(inter.groups):
            for li in grp.link_indices:
                group_of[li] = k
        # Green character per group: G, g, or decided per displayed set.
        green_char: dict[int, str] = {}
        phase_char: dict[frozenset[int], dict[int, str]] = {}
        if program:
            for state in program:
                greens = frozenset(
                    k for k, grp in enumerate(inter.groups) if grp.link_indices and state[grp.link_indices[0]] in "Ggs"
                )
                phase_char[greens] = {k: state[inter.groups[k].link_indices[0]] for k in greens}
            for k, grp in enumerate(inter.groups):
                if not grp.link_indices:
                    continue
                chars = {s[grp.link_indices[0]] for s in program} & set("Ggs")
                green_char[k] = "G" if chars == {"G"} else ("s" if chars == {"s"} else "g")
        return {"group_of": group_of, "green_char": green_char, "phase_char": phase_char, "n_links": n_links}

    def _build_state_string(self, row: int, states: np.ndarray) -> str:
        lm = self._link_maps[row]
        shown = states.tolist()
        greens = frozenset(k for k, s in enumerate(shown) if s == _GREEN)
        exact = lm["phase_char"].get(greens, {})
        green_char = lm["green_char"]
        chars = []
        for k in lm["group_of"].tolist():
            if k < 0:
                chars.append("r")
            elif shown[k] == _GREEN:
                chars.append(exact.get(k) or green_char.get(k, "G"))
            else:
                chars.append(STATE_CHAR[shown[k]])
        return "".join(chars)

    # ---- lifecycle ----------------------------------------------------------------------
    def _module(self) -> Any:
        if self.run.traci or self.run.gui:
            import traci

            return traci
        import libsumo

        return libsumo

    def _open(self) -> None:
        binary = sumo_binary("sumo-gui" if self.run.gui else "sumo")
        cmd = [binary, *self.run.sumo_args]
        mod = self._module()
        # SUMO reports option and input errors on stderr before its log is open:
        # capture file descriptor 2 during start-up (libsumo runs in this process,
        # a TraCI child inherits it) so the message can name SUMO's own words.
        with tempfile.TemporaryFile(mode="w+b") as cap:
            saved = os.dup(2)
            os.dup2(cap.fileno(), 2)
            try:
                if mod.__name__ == "traci":
                    mod.start(cmd, label=self._label, stdout=subprocess.DEVNULL)
                    self._conn = mod.getConnection(self._label)
                else:
                    mod.start(cmd)
                    self._conn = mod
                error = None
            except Exception as e:  # libsumo raises its own error type; traci FatalTraCIError
                error = e
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            if error is not None:
                cap.seek(0)
                self._startup_stderr = cap.read().decode(errors="replace")
                if mod.__name__ == "traci":
                    self._reap_traci()
                raise SimulationError(f"SUMO failed to start: {self._sumo_error(error)}") from None
        try:
            self._subscribe()
        except Exception as e:
            self._shutdown()
            raise SimulationError(f"SUMO rejected the detector subscriptions: {self._sumo_error(e)}") from None
        self.time_s = float(self._conn.simulation.getTime())
        if self.meso is None and "extra" in self.read_fields:
            p = self.packed
            self._crossings = CrossingCalls.build(self.network, (p.n, p.g), self._conn)

    def _reap_traci(self) -> None:
        """A SUMO child that failed during start-up must not linger as a zombie."""
        import traci

        try:
            traci.switch(self._label)
            traci.close(wait=False)
        except Exception:
            pass

    def _sumo_error(self, e: BaseException) -> str:
        msg = str(e).strip()
        startup = [ln.strip() for ln in self._startup_stderr.splitlines() if ln.strip()]
        errs = [ln for ln in startup if ln.startswith("Error")]
        if errs:
            i = startup.index(errs[0])
            return " ".join(startup[i : i + 3])
        log = self.run.log_file
        if log is not None and Path(log).exists():
            errs = [ln.strip() for ln in Path(log).read_text(errors="replace").splitlines() if "Error" in ln]
            if errs:
                msg = " | ".join(errs[-3:])
        return msg or type(e).__name__

    def _subscribe(self) -> None:
        c = self._conn
        d = self.sumo_detectors if self.meso is None else None  # meso loads no lane-area detectors
        self._in_process = c.__name__ == "libsumo" if hasattr(c, "__name__") else False
        if self.meso is not None:
            getter = self._compiled(c, "inductionloop", "getIntervalVehicleNumber") if self._in_process else None
            self.meso.bind(c, getter, self._in_process)
        self._e1_per_step = self.dt_s <= self.run.step_length_s + 1e-9
        if d is not None and self._in_process:
            self._getters = tuple(
                self._compiled(c, dom, name)
                for dom, name in (
                    ("lanearea", "getIntervalVehicleNumber"),
                    ("lanearea", "getLastStepOccupancy"),
                    ("lanearea", "getLastStepHaltingNumber"),
                    ("inductionloop", "getIntervalVehicleNumber"),
                    ("inductionloop", "getVehicleData"),
                )
            )
            self._read_ids = (_side_by_side(d.e2_ids), _side_by_side(d.e1_ids))
            self._exit_read_ids = _side_by_side(d.exit_ids)
            # Each lane-area value the policy reads, in one compiled pass (simulation.native_reads).
            ids2 = self._read_ids[0]
            self._e2_reads = {
                field: CheckedReads(c, "lanearea", name, ids2, getter, returns=kind)
                for field, name, getter, kind in (
                    ("queue_veh", "getLastStepHaltingNumber", self._getters[2], int),
                    ("counts", "getIntervalVehicleNumber", self._getters[0], int),
                    ("occupancy", "getLastStepOccupancy", self._getters[1], float),
                )
                if field in self.read_fields
            }
            if "exit_blocked" in self.read_fields:
                self._exit_halt = CheckedReads(
                    c, "lanearea", "getLastStepHaltingNumber", self._exit_read_ids, self._getters[2]
                )
        self._set_state = self._compiled(c, "trafficlight", "setRedYellowGreenState")
        if d is not None and not self._in_process:
            f = self.read_fields
            e2_vars = tuple(
                v
                for v, name in (
                    (VAR_INTERVAL_NUMBER, "counts"),
                    (LAST_STEP_OCCUPANCY, "occupancy"),
                    (LAST_STEP_VEHICLE_HALTING_NUMBER, "queue_veh"),
                )
                if name in f
            )
            if e2_vars:
                for det in d.e2_ids:
                    c.lanearea.subscribe(det, e2_vars)
            if "exit_blocked" in f:
                for det in d.exit_ids:
                    c.lanearea.subscribe(det, (LAST_STEP_VEHICLE_HALTING_NUMBER, LAST_STEP_OCCUPANCY))
            if "counts" in f:
                for det in d.e1_ids:
                    c.inductionloop.subscribe(
                        det, (LAST_STEP_VEHICLE_DATA if self._e1_per_step else VAR_INTERVAL_NUMBER,)
                    )
        # SUMO's own programs run (the `sumo` controller): their states are read back each tick. In
        # process through the getter (hanoi_city's 1,059 lights: ~0.35 ms a tick against ~2-3 ms for
        # the subscription results, which SUMO also rebuilds every step); over TraCI subscribed.
        self._get_state = None
        if not self.control:
            if self._in_process and all(self._tls):
                self._get_state = self._compiled(c, "trafficlight", "getRedYellowGreenState")
            else:
                for tls in self._tls:
                    c.trafficlight.subscribe(tls, (TL_RED_YELLOW_GREEN_STATE,))

    def _shutdown(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        except Exception:
            pass
        self._conn = None

    def _close(self) -> None:
        self._shutdown()

    # ---- protocol -------------------------------------------------------------------------
    def _index_detectors(self) -> None:
        """Precompute where each model detector reads from (vectorised read)."""
        d = self.sumo_detectors
        lay = self.detectors
        if d is None:
            self._m_idx = np.zeros(0, np.int64)
            self._ex_src = np.zeros(0, np.int64)
            return
        order = {sid: k for k, sid in enumerate((*d.e2_ids, *d.e1_ids))}
        self._m_idx = np.array([order[d.model_to_sumo[m]] for m in lay.ids], dtype=np.int64)
        self._n_e2, self._n_e1 = len(d.e2_ids), len(d.e1_ids)
        self._cum = np.zeros(self._n_e2)
        self._cum1 = np.zeros(self._n_e1)
        self._read_at = -np.inf
        # Model detectors read from a lane-area detector (occupancy; loops report none).
        self._on_e2 = np.flatnonzero(self._m_idx < self._n_e2)
        self._e2_src = self._m_idx[self._on_e2]
        # What an unread field shows: NaN, not measured (read-only: shared by every observation).
        shapes = (len(lay.ids), len(lay.ids), (self.packed.n, self.packed.g))
        self._unread = read_only(*(np.full(shape, np.nan) for shape in shapes))
        # Stop-line detectors: each lane's halting vehicles summed into its group's queue.
        stop = lay.stop_line
        self._q_flat = lay.row[stop] * self.packed.g + lay.group[stop]
        self._q_src = self._m_idx[stop]
        # Exit zones: each (group, incoming lane) "slot" with the SUMO zones of the exits it leads to;
        # a slot is blocked when any of them is jammed, a group's share is its blocked slots' share.
        g = self.packed.g
        ex_order = {sid: k for k, sid in enumerate(d.exit_ids)}
        slot_of: dict[tuple[int, str], int] = {}
        zone, slot = [], []
        for r, (inter, dets) in enumerate(zip(self.network.intersections, d.exit_detectors, strict=False)):
            for det in dets:
                flat = r * g + inter.group_index(det.group)
                for in_lane in d.exit_feeds.get(det.id, ()):
                    zone.append(ex_order[d.model_to_sumo[det.id]])
                    slot.append(slot_of.setdefault((flat, in_lane), len(slot_of)))
        self._ex_src = np.array(zone, dtype=np.int64)
        self._ex_slot = np.array(slot, dtype=np.int64)
        self._ex_n_slots = len(slot_of)
        self._ex_slot_flat = np.array([f for f, _lane in slot_of], dtype=np.int64)
        self._ex_lanes = np.bincount(self._ex_slot_flat, minlength=self.packed.n * g).astype(float)
        # Each slot's stop-line zone (the queue on that lane), -1 where the lane has none.
        e2_of_lane = {sid: k for k, sid in enumerate(d.e2_ids)}
        self._ex_slot_e2 = np.array(
            [e2_of_lane.get(f"gw_e2_{lane}", -1) for _f, lane in slot_of], dtype=np.int64
        )  # fmt: skip
        self._no_exit = read_only(np.zeros((self.packed.n, g)))[0]
        self._unread_exit = read_only(np.full((self.packed.n, g), np.nan))[0]

    @staticmethod
    def _compiled(c: Any, domain: str, name: str) -> Callable[..., Any]:
        """libsumo's compiled function that its Python method only forwards to (0.2 µs a call
        saved), or the public method: over TraCI, or where a build lacks it."""
        raw = getattr(c, "_libsumo", None)
        return getattr(raw, f"{domain}_{name}", None) or getattr(getattr(c, domain), name)

    def _read_detectors(self) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """Per E2: interval count, occupancy %, halting; per E1: vehicles entered since the last read.

        Only what ``read_fields`` asks for is read (None for the rest): each
        value is one call into SUMO per detector per tick, the largest part of
        the engine's time on a large grid (10x10: 800 lane-area detectors and
        800 loops).

        libsumo runs in this process: a plain getter per detector costs less
        than building the subscription dictionaries (measured on the 10x10
        grid: 0.23-0.5 µs per value against 1.3-1.7 µs per detector fetched
        from ``getAllSubscriptionResults``, and the subscriptions added 40 %
        to SUMO's own step), so it reads with ``map`` over the ids, calling
        the compiled getters that libsumo's Python methods only forward to
        (the forwarding layer alone cost 0.2 µs per value); the lane-area values
        go further, one compiled pass each over the C++ getters behind those
        (:class:`~simulation.native_reads.CheckedReads`). Over TraCI every
        call is a socket round trip, so it reads the subscriptions: one
        message per domain per tick.

        An E1's interval count is recomputed by SUMO from every vehicle the
        loop saw since the interval began, so its cost grows through the run
        (10x10 grid: 0.4 µs per read at t = 100 s, 1.7 µs at 600 s). When a
        tick is one SUMO step, the loop's last-step vehicle data (entry time
        of each vehicle on or over it) gives the vehicles that entered since
        the last read at a cost that does not grow; longer ticks fall back to
        differences of the interval counter.
        """
        d = self.sumo_detectors
        assert d is not None
        f = self.read_fields
        n2, n1 = self._n_e2, self._n_e1
        since = self._read_at
        self._read_at = self.time_s
        if self._in_process:
            _ids2, ids1 = self._read_ids
            _e2_count, _e2_occ, _e2_halt, e1_count, e1_data = self._getters
            # Halting first: the first pass after a step pays for the caches SUMO's step evicted.
            reads = self._e2_reads
            halt = reads["queue_veh"].read() if "queue_veh" in reads else None
            cnt = reads["counts"].read() if "counts" in reads else None
            occ = reads["occupancy"].read() if "occupancy" in reads else None
            new1 = None
            if "counts" in f:
                if self._e1_per_step:
                    new1 = _entered_since(map(e1_data, ids1), since, n1)
                else:
                    new1 = self._e1_difference(np.fromiter(map(e1_count, ids1), float, n1))
            return cnt, occ, halt, new1
        ids2, ids1 = d.e2_ids, d.e1_ids
        e2 = self._conn.lanearea.getAllSubscriptionResults() if n2 else {}
        rows = [e2.get(k, {}) for k in ids2]

        def column(var: int, field: str) -> np.ndarray | None:
            return np.fromiter((r[var] for r in rows), float, n2) if field in f else None

        cnt = column(VAR_INTERVAL_NUMBER, "counts")
        occ = column(LAST_STEP_OCCUPANCY, "occupancy")
        halt = column(LAST_STEP_VEHICLE_HALTING_NUMBER, "queue_veh")
        new1 = None
        if "counts" in f:
            e1 = self._conn.inductionloop.getAllSubscriptionResults() if n1 else {}
            if self._e1_per_step:
                new1 = _entered_since((e1[k][LAST_STEP_VEHICLE_DATA] for k in ids1), since, n1)
            else:
                new1 = self._e1_difference(np.fromiter((e1[k][VAR_INTERVAL_NUMBER] for k in ids1), float, n1))
        return cnt, occ, halt, new1

    def _read_exits(self, stop_halting: np.ndarray | None) -> np.ndarray:
        """``(N, G)`` share of each group's incoming lanes that lead into an exit jammed back to the junction.

        A zone is jammed when a vehicle halts on it and vehicles cover at least
        :data:`~simulation.detectors.EXIT_BLOCKED_OCCUPANCY` of it (less than one
        car's room left after the junction). An incoming lane with a link into a
        jammed exit counts as blocked (first in, first out: one vehicle for that
        exit at its head stops the lane). The share is of the group's standing
        queue (``stop_halting``, its lanes' stop-line zones) where it has one, so
        that ``1 - share`` is the part of the queue that can leave; of its lanes
        where nothing queues. Per tick: one halting read per zone,
        then the occupancy of only the zones where something halts (few, outside
        a jam), so the signal costs about one getter call per exit lane.
        """
        p = self.packed
        if not len(self._ex_src):
            return self._no_exit
        d = self.sumo_detectors
        assert d is not None
        n = len(d.exit_ids)
        if self._in_process:
            ids = self._exit_read_ids
            e2_occ = self._getters[1]
            halt = self._exit_halt.read()
            standing = np.flatnonzero(halt > 0)
            occ = np.zeros(n)
            if standing.size:
                occ[standing] = np.fromiter(map(e2_occ, (ids[k] for k in standing.tolist())), float, standing.size)
        else:
            res = self._conn.lanearea.getAllSubscriptionResults()
            rows = [res.get(k, {}) for k in d.exit_ids]
            halt = np.fromiter((r.get(LAST_STEP_VEHICLE_HALTING_NUMBER, 0.0) for r in rows), float, n)
            occ = np.fromiter((r.get(LAST_STEP_OCCUPANCY, 0.0) for r in rows), float, n)
        jammed = (halt > 0) & (occ >= 100.0 * EXIT_BLOCKED_OCCUPANCY)
        if not jammed.any():
            return self._no_exit
        size = p.n * p.g
        slot_blocked = np.bincount(self._ex_slot, weights=jammed.take(self._ex_src), minlength=self._ex_n_slots) > 0
        blocked = np.bincount(self._ex_slot_flat, weights=slot_blocked, minlength=size)
        share = np.divide(blocked, self._ex_lanes, out=np.zeros(size), where=self._ex_lanes > 0)
        if stop_halting is not None and len(stop_halting):
            queue = np.where(self._ex_slot_e2 >= 0, stop_halting.take(np.maximum(self._ex_slot_e2, 0)), 0.0)
            total = np.bincount(self._ex_slot_flat, weights=queue, minlength=size)
            held = np.bincount(self._ex_slot_flat, weights=queue * slot_blocked, minlength=size)
            share = np.divide(held, total, out=share, where=total > 0)
        return share.reshape(p.n, p.g)

    def _e1_difference(self, cum1: np.ndarray) -> np.ndarray:
        n = _increments(cum1, self._cum1)
        self._cum1 = cum1
        return n

    def read(self) -> Observation:
        self._require_open()
        try:
            obs = self._read()
            return self.observation_filter(obs) if self.observation_filter is not None else obs
        except SimulationError:
            raise
        except Exception as e:
            self._died(e)
            raise  # unreachable: _died raises

    def _died(self, e: BaseException) -> None:
        self._shutdown()
        self.lifecycle = type(self.lifecycle).CLOSED
        raise SimulationError(f"SUMO died at t={self.time_s:g} s: {self._sumo_error(e)}") from None

    def _read(self) -> Observation:
        if self.meso is not None:
            return self._read_meso()
        p = self.packed
        lay = self.detectors
        n_det = len(lay.ids)
        d = self.sumo_detectors
        f = self.read_fields
        halt2 = None
        queue: np.ndarray  # (N, G) halting vehicles per group
        if d is None or not n_det:
            counts, occ, queue = np.zeros(n_det), np.zeros(n_det), np.zeros((p.n, p.g))
        else:
            cnt2, occ2, halt2, new1 = self._read_detectors()
            counts, occ, queue = self._unread
            if cnt2 is not None and new1 is not None:
                counts = np.concatenate([_increments(cnt2, self._cum), new1])[self._m_idx]
                self._cum = cnt2
            if occ2 is not None:
                occ = np.zeros(n_det)
                occ[self._on_e2] = occ2[self._e2_src] / 100.0
            if halt2 is not None:
                self.e2_halting_sum += halt2
                np.maximum(self.e2_halting_max, halt2, out=self.e2_halting_max)
                queue = np.bincount(self._q_flat, weights=halt2.take(self._q_src), minlength=p.n * p.g)
                queue = queue.reshape(p.n, p.g)
        exit_blocked = self._read_exits(halt2) if d is not None and "exit_blocked" in f else self._unread_exit_or_none()
        # Under greenwave's control SUMO shows exactly what was set; read back only when
        # SUMO's own programs run (the `sumo` controller).
        state = self._read_states() if not self.control else self._shown_state
        return self._observation(counts, occ, queue, state, exit_blocked)

    def _observation(
        self,
        counts: np.ndarray,
        occ: np.ndarray,
        queue: np.ndarray,
        state: np.ndarray,
        exit_blocked: np.ndarray | None,
    ) -> Observation:
        """One tick's observation, micro or meso: what both models read alike is filled here."""
        return Observation(
            time_s=self.time_s,
            counts=counts,
            occupancy=occ,
            queue_veh=queue,
            signal_state=state,
            comm_age_s=self._healthy[0],
            fault=self._healthy[1],
            extra=self._read_special() if "extra" in self.read_fields else {},
            exit_blocked=exit_blocked,
        )

    def _read_meso(self) -> Observation:
        """The observation of a meso run: loop counts and estimates (see :mod:`simulation.meso`).

        Every field is filled whatever the policy reads (the estimate needs the counts
        anyway and costs a few array operations); ``exit_blocked`` is NaN, not measured.
        """
        assert self.meso is not None
        state = self._read_states() if not self.control else self._shown_state
        counts, occ, queue, lane_q = self.meso.read(state)
        if len(lane_q) == len(self.e2_halting_sum):
            self.e2_halting_sum += lane_q
            np.maximum(self.e2_halting_max, lane_q, out=self.e2_halting_max)
        return self._observation(counts, occ, queue, state, self._unread_exit_or_none())

    def _unread_exit_or_none(self) -> np.ndarray | None:
        """What an unread ``exit_blocked`` shows: NaN (not measured); None without detectors."""
        return getattr(self, "_unread_exit", None)

    def _read_special(self) -> dict[str, np.ndarray]:
        """Buses and emergency vehicles approaching a controlled intersection.

        The bus record is what the city's bus GPS feed gives: position (as the
        distance to the next signal), speed, and lateness against the schedule
        (the next stop's scheduled arrival where the route has one, otherwise
        the time lost against free flow, SUMO's ``timeLoss``). Cost: two calls
        per tick for departures/arrivals plus a few per tracked vehicle.
        """
        c = self._conn
        veh = c.vehicle
        for vid in c.simulation.getDepartedIDList():
            vclass = veh.getVehicleClass(vid)
            if vclass in ("bus", "coach", "tram"):
                self._special[vid] = "bus"
            elif vclass == "emergency":
                self._special[vid] = "emergency"
        for vid in c.simulation.getArrivedIDList():
            self._untrack(vid)
        rows: dict[str, list[tuple[float, ...]]] = {"bus": [], "emergency": []}
        for vid, kind in list(self._special.items()):
            try:
                hit = self._next_signal(vid)
            except Exception:  # teleported away or already gone
                self._untrack(vid)
                continue
            if hit is None:
                continue
            row, group, dist = hit
            speed = float(veh.getSpeed(vid))
            late = 0.0
            persons = 1.0
            if kind == "bus":
                late = self._lateness_s(vid)
                persons = float(veh.getPersonNumber(vid)) or 1.0
            rows[kind].append((row, group, float(dist), speed, late, persons))
        out: dict[str, np.ndarray] = {}
        for kind, recs in rows.items():
            arr = np.zeros(len(recs), dtype=SPECIAL_DTYPE)
            if recs:
                arr[:] = recs
            out[kind] = arr
        if self._crossings is not None:
            out["ped_calls"] = self._crossings.read(c)
        return out

    def _untrack(self, vid: str) -> None:
        if self._special.pop(vid, None) is not None and self.meso is not None:
            self.meso.forget(vid)

    def _next_signal(self, vid: str) -> tuple[int, int, float] | None:
        """(row, group, distance m) of the next controlled movement ahead of ``vid``, or None.

        Micro asks SUMO for the vehicle's next traffic light and link; meso has no lane
        positions (``getNextTLS`` answers nothing), so the movement comes from the route.
        """
        if self.meso is not None:
            return self.meso.next_signal(self._conn, vid)
        nxt = self._conn.vehicle.getNextTLS(vid)
        if not nxt:
            return None
        tls, link, dist, _state = nxt[0]
        rows = self._rows_of_tls.get(tls)
        if rows is None:
            return None
        owner = self._owner_of_link.get(tls)
        row = rows[0] if owner is None else (owner[link] if 0 <= link < len(owner) else -1)
        if row < 0:
            return None
        group_of = self._link_maps[row]["group_of"]
        if not 0 <= link < len(group_of) or group_of[link] < 0:
            return None
        return row, int(group_of[link]), float(dist)

    def _lateness_s(self, vid: str) -> float:
        veh = self._conn.vehicle
        try:
            stops = veh.getStops(vid, 1)
        except Exception:
            stops = ()
        if stops and getattr(stops[0], "intendedArrival", -1) >= 0:
            return float(self.time_s - stops[0].intendedArrival)
        return float(veh.getTimeLoss(vid))

    def _read_states(self) -> np.ndarray:
        """The states SUMO's own programs show (the ``sumo`` controller): one state string per light (a
        getter call in process, a subscription result over TraCI), then one gather of every group's
        first link character over all the lights' strings (a Python loop per group cost hanoi_city's
        1,059 lights more than meso's own step)."""
        p = self.packed
        out = np.zeros((p.n, p.g), np.int8)
        if self._get_state is not None:
            strings = list(map(self._get_state, self._tls))
        else:
            res = self._conn.trafficlight.getAllSubscriptionResults()
            strings = [res.get(tls, {}).get(TL_RED_YELLOW_GREEN_STATE, "") for tls in self._tls]
        if not strings or not len(self._state_row):
            return out
        lengths = np.fromiter(map(len, strings), np.int64, len(strings))
        chars = np.frombuffer("".join(strings).encode("ascii", "replace"), np.uint8)
        rows = self._state_row
        shown = self._state_link < lengths.take(rows)  # a group whose link the string does not reach stays red
        at = (np.cumsum(lengths) - lengths).take(rows[shown]) + self._state_link[shown]
        out[rows[shown], self._state_col[shown]] = _STATE_OF_CHAR.take(chars.take(at))
        return out

    def apply(self, commands: Commands) -> None:
        self._require_open()
        if not self.control:
            return
        states = commands.states
        changed = np.flatnonzero(any_rows(states != self._shown))
        if changed.size:
            # One call per intersection whose states changed. Each row's state string is
            # cached by the row's bytes: the Python side of a call costs less than SUMO's.
            set_state = self._set_state
            width = states.shape[1] * states.itemsize
            blob = states[changed].tobytes()
            shared: set[str] = set()
            try:
                for i, row in enumerate(changed.tolist()):
                    key = blob[i * width : (i + 1) * width]
                    text = self._string_cache[row].get(key)
                    if text is None:
                        text = self._string_cache[row][key] = self._build_state_string(row, states[row])
                    tls = self._tls[row]
                    if tls in self._owner_of_link:
                        self._row_text[row] = text
                        shared.add(tls)
                    else:
                        set_state(tls, text)
                for tls in sorted(shared):
                    set_state(tls, self._merged_state(tls))
            except Exception as e:
                self._died(e)
        (self._shown,) = read_only(states.copy())
        self._shown_state = self._shown

    def _merged_state(self, tls: str) -> str:
        """One state string for a light driven as several intersections: each link from its row."""
        text = self._row_text
        return "".join(
            text[r][k] if r >= 0 and k < len(text[r]) else "r" for k, r in enumerate(self._owner_of_link[tls])
        )

    def advance(self) -> float:
        self._require_open()
        target = self.time_s + self.dt_s
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            self._conn.simulationStep(target)
        except Exception as e:
            self._died(e)
        self.step_wall_s += time.perf_counter() - t0
        self.step_cpu_s += time.process_time() - c0
        self.time_s = float(self._conn.simulation.getTime())
        self.steps += 1
        return self.time_s

    # ---- run control ---------------------------------------------------------------------
    def pending_depart_delays(self, vtypes: dict[str, tuple[str, float]]) -> dict[str, tuple[str, float]]:
        """Vehicles still waiting to be inserted: id -> (class, delay so far).

        SUMO writes no tripinfo for them, yet their wait is delay the
        controller caused (a full entry lane): counted in the KPIs.
        """
        from simulation.kpi import _class_of

        self._require_open()
        c = self._conn
        out: dict[str, tuple[str, float]] = {}
        for vid in c.simulation.getPendingVehicles():
            vt = c.vehicle.getTypeID(vid)
            cls = vtypes.get(vt, (_class_of(vt, None), 1.0))[0]
            out[vid] = (cls, max(0.0, float(c.vehicle.getDepartDelay(vid))))
        return out

    def vehicles_remaining(self) -> int:
        self._require_open()
        return int(self._conn.simulation.getMinExpectedNumber())
