"""The live snapshot's rows: what the dashboard shows of each intersection, built once per tick.

Whole-network arrays first, then one dict per intersection from plain Python values: at city
size (1,000+ rows) per-row numpy calls cost more than their data (benchmarks/bench_api.py
measures the snapshot at 1,024 intersections). What does not change per tick (each row's
groups, its detectors in layout order) is computed once per network and detector layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from api.server.control import ADAPTIVE, Control, ControlKind
from api.server.recent import RecentTicks
from controller.backend import DetectorLayout
from controller.safety import Mode
from intersections.model import SignalState
from intersections.network import Network

__all__ = ["MODE_NAMES", "STATE_BYTES", "SnapshotRows", "status_of"]

GREEN = int(SignalState.GREEN)
STATE_BYTES = np.frombuffer(b"RYGF", np.uint8)  # a signal state's letter as a byte: one decode per snapshot
MODE_NAMES = {int(m): m.name.lower() for m in Mode}
#: The dashboard status (live.STATUS_VALUES) a control shows when the controller itself is healthy.
_STATUS_OF = {ControlKind.ADAPTIVE: "adaptive", ControlKind.FIXED: "fixed", ControlKind.HOLD: "manual"}


def status_of(control: Control | None, mode: int, comm_loss: bool) -> str:
    """The dashboard status of one intersection: its link and supervisor first, then what it runs."""
    if comm_loss:
        return "comm_loss"
    if mode == Mode.FAULT:
        return "fault"
    kind = control.kind if control is not None else ControlKind.ADAPTIVE
    if kind is ControlKind.FLASH or mode in (Mode.CLEARING, Mode.FLASH):
        return "flash"
    return _STATUS_OF[kind]


@dataclass(frozen=True)
class _SnapshotShape:
    """Per network and detector layout: groups per row, and detectors grouped by row."""

    key: tuple[int, int]
    n_groups: list[int]
    group_mask: np.ndarray  # (n, g) True where the column is one of the row's groups
    det_order: np.ndarray  # layout indices sorted by row, layout order within a row
    det_bounds: list[int]  # row r's detectors are det_order[det_bounds[r]:det_bounds[r + 1]]


class SnapshotRows:
    """Builds each intersection's live row of the snapshot from the newest tick of the history."""

    def __init__(self) -> None:
        self._shape: _SnapshotShape | None = None

    def rows(
        self,
        net: Network,
        lay: DetectorLayout,
        history: RecentTicks,
        state_time_s: np.ndarray,
        modes_now: np.ndarray,
        *,
        comm_age_s: np.ndarray,
        comm_loss: np.ndarray,
        link_down: np.ndarray,
        alarms_by_row: np.ndarray,
        controls: Sequence[Control | None],
        timing_of: Callable[[int], dict[str, Any]],
    ) -> dict[str, Any]:
        """``{intersection id: row}``: status, mode, control, stage, signals, detectors, queue, link, alarms, timing.

        ``state_time_s`` and ``modes_now`` are the supervisor's timers and modes as the newest tick of
        ``history`` left them (recorded with it): the live supervisor may already be a tick further on,
        and a row must not mix its signals with the next tick's stage time.
        """
        h = history
        p = h.newest
        states = h.states[p]
        shape = self._shape_of(net, lay, int(h.states.shape[2]))
        ng_max = shape.group_mask.shape[1]
        green = (states[:, :ng_max] == GREEN) & shape.group_mask
        stage_time = np.where(green, state_time_s[:, :ng_max], np.inf).min(axis=1)
        stage_time_l = np.round(np.where(np.isfinite(stage_time), stage_time, 0.0), 1).tolist()
        sig = STATE_BYTES[states[:, :ng_max]].tobytes().decode("ascii")
        det = np.where(h.presence[p][shape.det_order], 49, 48).astype(np.uint8).tobytes().decode("ascii")
        modes = modes_now.tolist()
        comm_l = comm_loss.tolist()
        queue_l = np.round(h.queue[p].astype(float), 1).tolist()
        age_l = np.round(comm_age_s.astype(float), 1).tolist()
        down_l = link_down.tolist()
        alarms_l = alarms_by_row.tolist()
        target_l = h.target[p].tolist()
        b = shape.det_bounds
        out: dict[str, Any] = {}
        for r, inter in enumerate(net.intersections):
            st = target_l[r]
            c = controls[r]
            out[inter.id] = {
                "status": status_of(c, modes[r], comm_l[r]),
                "mode": MODE_NAMES[modes[r]],
                "control": (c or ADAPTIVE).public(),
                "stage": inter.stages[st].id if 0 <= st < len(inter.stages) else None,
                "stage_time_s": stage_time_l[r],
                "signals": sig[r * ng_max : r * ng_max + shape.n_groups[r]],
                "detectors": det[b[r] : b[r + 1]],
                "queue_veh": queue_l[r],
                "comm_age_s": age_l[r],
                "link_down": down_l[r],
                "alarms": alarms_l[r],
                "timing": timing_of(r),
            }
        return out

    def _shape_of(self, net: Network, lay: DetectorLayout, g: int) -> _SnapshotShape:
        """What the rows need of the network and detector layout that does not change per tick."""
        shape = self._shape
        if shape is None or shape.key != (id(net), id(lay)):
            n_groups = np.array([len(i.groups) for i in net.intersections], np.int64)
            row = np.asarray(lay.row)
            # Detectors of each row in layout order (a stable sort keeps the per-row order of flatnonzero).
            order = np.argsort(row, kind="stable")
            bounds = np.searchsorted(row[order], np.arange(len(net) + 1)).tolist()
            shape = _SnapshotShape(
                key=(id(net), id(lay)),
                n_groups=n_groups.tolist(),
                group_mask=np.arange(g)[None, :] < n_groups[:, None],
                det_order=order,
                det_bounds=bounds,
            )
            self._shape = shape
        return shape
