"""The backend protocol: the one seam between the engine and the world.

SUMO (libsumo / TraCI), field controllers (Modbus TCP, NTCIP 1202) and the
in-memory :class:`FakeBackend` all implement :class:`Backend`; the engine
cannot tell them apart, so a plan validated in simulation is the plan that
runs on the street.

Lifecycle (explicit, like httpx transports): ``NEW -> OPEN -> CLOSED``; a
closed backend refuses reuse. Backends are context managers.

Arrays use the network's row order (``network.intersections``) padded to the
largest group count (:mod:`controller.arrays`); detectors are in
:func:`detector_layout` order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np

from controller.arrays import PackedNetwork, pack
from intersections.errors import GreenwaveError
from intersections.model import DetectorKind
from intersections.network import Network
from intersections.plan import TimingPlan

__all__ = [
    "Observation",
    "Commands",
    "Backend",
    "BackendState",
    "BaseBackend",
    "DetectorLayout",
    "detector_layout",
    "FakeBackend",
    "OBSERVATION_FIELDS",
    "fields_read_by",
    "exit_blocked_share",
    "ZONE_COVERED_OCCUPANCY",
    "crossing_calls",
]

# The observation fields a backend may leave unread when nobody uses them
# (time, signal states, communication age and faults are always read).
OBSERVATION_FIELDS = frozenset({"counts", "occupancy", "queue_veh", "extra", "exit_blocked"})


def fields_read_by(consumer: object) -> frozenset[str]:
    """The observation fields a policy (or other consumer) declares it reads: all unless it says ``reads``.

    Each value costs a call into the backend per detector per tick (SUMO: ~0.25-0.5 µs,
    the bulk of the engine's time on a large grid), so a policy that decides from
    queues alone should not pay for counts, occupancy and bus records it never looks at.
    Undeclared means everything: a new policy is never starved of data by default.
    """
    reads = getattr(consumer, "reads", None)
    if reads is None:
        return OBSERVATION_FIELDS
    unknown = set(reads) - OBSERVATION_FIELDS
    if unknown:
        raise ValueError(f"{type(consumer).__name__}.reads names unknown observation fields: {sorted(unknown)}")
    return frozenset(reads)


#: Occupancy from which a lane-area zone counts as covered by vehicles end to end: a jammed lane of
#: cars reads 5 m / 7.5 m = 0.67, a queue over only part of the zone less. The SUMO exit zones use it
#: for a jam reaching back to the junction (simulation.detectors), adaptive for a full stop-line zone.
ZONE_COVERED_OCCUPANCY = 0.5


def exit_blocked_share(obs: Observation | None, shape: tuple[int, int]) -> np.ndarray:
    """``(N, G)`` share of each group's queue held up by an exit jammed back to the junction, 0 where unknown.

    A backend without exit detection (field controllers, the fake) reports None, and an
    unread field is NaN: both mean "not known to be blocked", so control is what it was
    without the signal (Gregoire et al. 2015's capacity-aware back-pressure with unknown
    downstream space falls back to plain back-pressure).
    """
    x = None if obs is None else obs.exit_blocked
    if x is None:
        return np.zeros(shape)
    x = np.asarray(x, float)
    return np.where(np.isfinite(x), np.clip(x, 0.0, 1.0), 0.0)


def crossing_calls(obs: Observation, packed: PackedNetwork) -> np.ndarray | None:
    """(N, G) bool: crossings whose push button has a call waiting; None where the backend has no buttons.

    ``obs.extra["ped_calls"]`` carries them: per intersection a bit mask over its groups from a
    field controller (NTCIP 1202 ``phaseStatusGroupPedCall``, bit k for group k), or an (N, G)
    bool array from SUMO (people waiting at the kerb, :mod:`simulation.pedestrians`). Where it
    is present a crossing is actuated, as on street: served when somebody waits, not on recall.
    """
    raw = obs.extra.get("ped_calls") if obs.extra else None
    if raw is None:
        return None
    arr = np.asarray(raw)
    if arr.ndim == 2:
        calls = np.zeros((packed.n, packed.g), bool)
        calls[:, : arr.shape[1]] = arr[:, : packed.g] != 0
    else:
        bits = (arr.astype(np.int64)[:, None] >> np.arange(packed.g, dtype=np.int64)[None, :]) & 1
        calls = bits.astype(bool)
    out: np.ndarray = calls & packed.is_pedestrian & packed.group_valid
    return out


@dataclass(frozen=True)
class DetectorLayout:
    """Where each detector of the network sits in the engine arrays."""

    ids: tuple[str, ...]
    row: np.ndarray  # (D,) intersection row
    group: np.ndarray  # (D,) group column
    stop_line: np.ndarray  # (D,) bool: stop-line (queue) detector, else advance/other

    def stop_line_groups(self, mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """``(N, G)`` bool: the groups with a stop-line detector in ``mask``.

        The stop-line zone is what measures a group's queue, so these are the
        groups whose queue a detector fault takes away (the fault model, the
        field emulator and the adaptive policy's fallback all ask this).
        """
        out = np.zeros(shape, bool)
        sel = np.asarray(mask, bool) & self.stop_line
        out[self.row[sel], self.group[sel]] = True
        return out


def detector_layout(network: Network) -> DetectorLayout:
    ids, rows, groups, stop = [], [], [], []
    for r, inter in enumerate(network.intersections):
        for d in inter.detectors:
            ids.append(d.id)
            rows.append(r)
            groups.append(inter.group_index(d.group))
            stop.append(d.kind is DetectorKind.STOP_LINE)
    return DetectorLayout(
        ids=tuple(ids),
        row=np.asarray(rows, dtype=np.int64),
        group=np.asarray(groups, dtype=np.int64),
        stop_line=np.asarray(stop, dtype=bool),
    )


#: Records of ``Observation.extra["bus"]`` and ``["emergency"]``: a special vehicle approaching signal group
#: ``group`` of intersection ``row`` (the bus GPS / AVL feed and emergency-vehicle positions).
SPECIAL_DTYPE = np.dtype(
    [("row", "i4"), ("group", "i4"), ("distance_m", "f8"), ("speed_m_s", "f8"), ("lateness_s", "f8"), ("persons", "f8")]
)


@dataclass(frozen=True)
class Observation:
    """What a backend saw since the previous tick (arrays, one row each).

    ``queue_veh`` is NaN where the backend cannot measure it (field
    controllers report counts and occupancy only). A backend told to read
    only some fields (``read_fields``, from the policy's declared ``reads``)
    leaves the others NaN too: not measured, never a made-up zero.
    """

    time_s: float
    counts: np.ndarray  # (D,) vehicles over each detector since the last read
    occupancy: np.ndarray  # (D,) fraction of time occupied since the last read, 0..1 (NaN = fault)
    queue_veh: np.ndarray  # (N, G) vehicles queued per group (NaN unknown)
    signal_state: np.ndarray  # (N, G) int8 SignalState actually shown
    comm_age_s: np.ndarray  # (N,) seconds since the intersection last answered
    fault: np.ndarray  # (N,) bool: backend-reported fault (flash, MMU, local control)
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)  # bus GPS, approach speeds, ...
    # (N, G) share 0..1 of each group's standing queue (of its lanes, where none stands) on lanes that
    # lead into an exit jammed back to the junction (a halting vehicle, the zone mostly covered:
    # simulation.detectors). None or NaN: not measured (field controllers have no exit detection),
    # read as not blocked.
    exit_blocked: np.ndarray | None = None


@dataclass(frozen=True)
class Commands:
    """What the engine sends: safe states and, for field controllers, intents.

    ``states`` come from the safety supervisor; backends that drive heads
    (SUMO, the fake) show exactly these. Field controllers time their own
    intervals and take ``target_stage`` (and ``plans`` to run locally).
    ``active`` is False for intersections the engine must not command
    (state unknown or stale).
    """

    time_s: float
    states: np.ndarray  # (N, G) int8
    target_stage: np.ndarray  # (N,) int, -1 none
    active: np.ndarray  # (N,) bool
    plans: Mapping[str, TimingPlan] | None = None


@runtime_checkable
class Backend(Protocol):
    network: Network
    dt_s: float

    def open(self) -> None: ...
    def close(self) -> None: ...
    def read(self) -> Observation: ...
    def apply(self, commands: Commands) -> None: ...
    def advance(self) -> float: ...


class BackendState(Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class BaseBackend:
    """Lifecycle bookkeeping shared by all backends; a subclass supplies read, apply and advance.

    ``read_fields`` is what a backend reads each tick (the others come back NaN or empty);
    a backend that can skip fields sets it from the policy's declared ``reads``. ``done``
    turns true when the backend's source has ended on its own (emulated field controllers
    whose coupled run finished), so a caller stops without knowing which backend it drives.
    """

    network: Network
    dt_s: float
    read_fields: frozenset[str] = OBSERVATION_FIELDS
    done: bool = False

    def __init__(self, network: Network, *, dt_s: float = 1.0) -> None:
        if dt_s <= 0:
            raise ValueError("dt_s must be > 0")
        self.network = network
        self.dt_s = float(dt_s)
        self.packed: PackedNetwork = pack(network.intersections)
        self.detectors = detector_layout(network)
        self.lifecycle = BackendState.NEW

    def open(self) -> None:
        if self.lifecycle is not BackendState.NEW:
            raise GreenwaveError(f"cannot open a backend that is {self.lifecycle.value}", where=type(self).__name__)
        self._open()
        self.lifecycle = BackendState.OPEN

    def close(self) -> None:
        if self.lifecycle is BackendState.OPEN:
            try:
                self._close()
            finally:
                self.lifecycle = BackendState.CLOSED
        else:
            self.lifecycle = BackendState.CLOSED

    def _require_open(self) -> None:
        if self.lifecycle is not BackendState.OPEN:
            raise GreenwaveError(f"backend is {self.lifecycle.value}, not open", where=type(self).__name__)

    def read(self) -> Observation:  # pragma: no cover - overridden
        raise NotImplementedError

    def apply(self, commands: Commands) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def advance(self) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def _open(self) -> None:  # pragma: no cover - overridden
        pass

    def _close(self) -> None:  # pragma: no cover - overridden
        pass

    def __enter__(self) -> BaseBackend:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class FakeBackend(BaseBackend):
    """An in-memory point-queue model of every intersection, for tests.

    Each signal group has a store-and-forward queue: vehicles arrive at
    ``arrival_rate_veh_s`` (Poisson with ``seed``, or deterministic fluid
    arrivals when ``seed`` is None) and leave at ``saturation_veh_s`` while
    the group shows green (and yellow, the "amber used" of Webster). Stop-line
    detectors count departures and report occupancy as queue presence.
    ``fail(rows)`` / ``heal(rows)`` simulate lost communications. ``shown``
    records every state the engine applied, for safety assertions.
    """

    def __init__(
        self,
        network: Network,
        *,
        arrival_rate_veh_s: np.ndarray | float = 0.1,
        saturation_veh_s: float = 0.5,
        seed: int | None = 0,
        dt_s: float = 1.0,
        record: bool = True,
    ) -> None:
        super().__init__(network, dt_s=dt_s)
        p = self.packed
        self.rate = np.broadcast_to(np.asarray(arrival_rate_veh_s, float), (p.n, p.g)) * p.group_valid
        self.saturation_veh_s = float(saturation_veh_s)
        self.rng = np.random.default_rng(seed) if seed is not None else None
        self.time_s = 0.0
        self.queue = np.zeros((p.n, p.g))
        self.departed = np.zeros((p.n, p.g))
        self.arrived = np.zeros((p.n, p.g))
        self.state = np.zeros((p.n, p.g), np.int8)
        self._last_departures = np.zeros((p.n, p.g))
        self._comm_age = np.zeros(p.n)
        self._lost = np.zeros(p.n, bool)
        self.record = record
        self.shown: list[np.ndarray] = []
        self.applied = 0

    def fail(self, rows: list[int] | np.ndarray) -> None:
        self._lost[np.asarray(rows)] = True

    def heal(self, rows: list[int] | np.ndarray) -> None:
        self._lost[np.asarray(rows)] = False
        self._comm_age[np.asarray(rows)] = 0.0

    def read(self) -> Observation:
        self._require_open()
        d = self.detectors
        counts = self._last_departures[d.row, d.group] if len(d.ids) else np.zeros(0)
        occ = (self.queue[d.row, d.group] > 0.5).astype(float) if len(d.ids) else np.zeros(0)
        return Observation(
            time_s=self.time_s,
            counts=counts,
            occupancy=occ,
            queue_veh=self.queue.copy(),
            signal_state=self.state.copy(),
            comm_age_s=self._comm_age.copy(),
            fault=self._lost.copy(),
        )

    def apply(self, commands: Commands) -> None:
        self._require_open()
        keep = ~commands.active | self._lost
        self.state = np.where(keep[:, None], self.state, commands.states).astype(np.int8)
        self.applied += 1
        if self.record:
            self.shown.append(self.state.copy())

    def advance(self) -> float:
        self._require_open()
        dt = self.dt_s
        if self.rng is None:
            arrivals = self.rate * dt
        else:
            arrivals = self.rng.poisson(self.rate * dt).astype(float)
        self.queue += arrivals
        self.arrived += arrivals
        moving = (self.state == 2) | (self.state == 1)
        out = np.minimum(self.queue, self.saturation_veh_s * dt) * moving
        self.queue -= out
        self.departed += out
        self._last_departures = out
        self._comm_age = np.where(self._lost, self._comm_age + dt, 0.0)
        self.time_s += dt
        return self.time_s
