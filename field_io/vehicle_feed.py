"""The special-vehicle feed: bus GPS (AVL) and emergency-vehicle positions, beside the controllers.

Field controllers report lamps, detectors and queues; they do not know where
the city's buses are. Hanoi tracks its buses by GPS, so in the field the bus
positions, speeds and schedule deviations reach central from the AVL system,
not through Modbus or NTCIP. Software in the loop has to carry that feed too,
or transit priority would silently switch off on the field path (the
difference the SIL check exposed: TSP decisions changed arterial delay by
about 10 %).

Wire format: newline-delimited JSON over TCP, one message per published
tick, ``{"t": seconds, "bus": [[intersection, group, dist_m, speed_m_s,
late_s, persons], ...], "emergency": [...]}``. Intersections and groups are
named by id, not row, so the two sides need not share array layouts. The
records are those of :data:`controller.backend.SPECIAL_DTYPE`, the
shape the policies read from ``Observation.extra``.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from controller.backend import SPECIAL_DTYPE, BaseBackend, Commands, Observation
from intersections.errors import InputError
from intersections.network import Network

__all__ = ["SPECIAL_KINDS", "VehicleFeedServer", "VehicleFeedClient", "FeedBackend", "encode_feed", "decode_feed"]

log = logging.getLogger("greenwave.field.feed")
SPECIAL_KINDS = ("bus", "emergency")
_FIELDS = ("distance_m", "speed_m_s", "lateness_s", "persons")


def encode_feed(time_s: float, extra: Mapping[str, np.ndarray], network: Network) -> bytes:
    """One feed message (a JSON line) from an observation's special-vehicle arrays."""
    inters = network.intersections
    msg: dict[str, Any] = {"t": float(time_s)}
    for kind in SPECIAL_KINDS:
        arr = extra.get(kind)
        recs = []
        if arr is not None:
            for r in arr:
                inter = inters[int(r["row"])]
                recs.append([inter.id, inter.groups[int(r["group"])].id, *(float(r[f]) for f in _FIELDS)])
        msg[kind] = recs
    return (json.dumps(msg, separators=(",", ":")) + "\n").encode()


def decode_feed(
    line: bytes | str, network: Network, rows: Mapping[str, int] | None = None
) -> tuple[float, dict[str, np.ndarray]]:
    """(time, special-vehicle arrays) from one message; records for unknown intersections or groups are dropped.

    ``rows`` (intersection id -> row) may be passed in by a caller decoding every tick.
    """
    try:
        msg = json.loads(line)
        t = float(msg["t"])
    except (ValueError, KeyError, TypeError) as e:
        msg_ = f"malformed vehicle-feed message ({e.__class__.__name__}: {e})"
        raise InputError(msg_, where="vehicle feed") from None
    if rows is None:
        rows = {inter.id: k for k, inter in enumerate(network.intersections)}
    out: dict[str, np.ndarray] = {}
    for kind in SPECIAL_KINDS:
        recs = []
        for rec in msg.get(kind) or ():
            try:
                iid, gid, *vals = rec
                row = rows[iid]
                g = network.intersections[row].group_index(gid)
                recs.append((row, g, *(float(v) for v in vals[: len(_FIELDS)])))
            except (KeyError, ValueError, TypeError, InputError):
                log.debug("vehicle feed: dropped record %r", rec)
        arr = np.zeros(len(recs), dtype=SPECIAL_DTYPE)
        if recs:
            arr[:] = recs
        out[kind] = arr
    return t, out


class VehicleFeedServer:
    """Publishes feed messages to every connected client (the emulator side: SUMO's buses as the AVL sees them)."""

    def __init__(self, network: Network, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.network = network
        self._sock = socket.create_server((host, port))
        self.host, self.port = host, int(self._sock.getsockname()[1])
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="greenwave-vehicle-feed", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._clients.append(conn)

    def publish(self, time_s: float, extra: Mapping[str, np.ndarray]) -> None:
        if not self._clients:
            return
        data = encode_feed(time_s, extra, self.network)
        with self._lock:
            for c in list(self._clients):
                try:
                    c.sendall(data)
                except OSError:
                    self._clients.remove(c)
                    c.close()

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        with self._lock:
            for c in self._clients:
                c.close()
            self._clients.clear()


class VehicleFeedClient:
    """Central's side: the latest special-vehicle records for a tick's time."""

    def __init__(self, network: Network, host: str, port: int, *, timeout_s: float = 2.0) -> None:
        self.network = network
        self.timeout_s = timeout_s
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._rows = {inter.id: k for k, inter in enumerate(network.intersections)}
        self._buf = b""
        self._latest: tuple[float, dict[str, np.ndarray]] | None = None
        self._open = True
        self.messages = 0

    def _take(self, block: bool) -> None:
        """Read what has arrived and keep the newest message.

        A malformed message is logged and skipped, and a closed feed only
        ends the bus data: central's control must not fall over with its
        passengers' feed.
        """
        if not self._open:
            return
        self._sock.settimeout(self.timeout_s if block else 0.0)
        try:
            chunk = self._sock.recv(1 << 16)
        except (BlockingIOError, TimeoutError):
            return
        except OSError as e:
            chunk, reason = b"", str(e)
        else:
            reason = "closed by the sender"
        if not chunk:
            self._open = False
            log.warning("vehicle feed lost (%s): no bus or emergency data from now on", reason)
            return
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for ln in lines:
            if not ln.strip():
                continue
            try:
                self._latest = decode_feed(ln, self.network, self._rows)
                self.messages += 1
            except InputError as e:
                log.warning("%s; skipped", e)

    def records(self, time_s: float, *, wait: bool = True) -> dict[str, np.ndarray]:
        """The newest records, waiting (up to the timeout) for the message of ``time_s`` when ``wait``.

        Central does not wait before the plant has stepped (the controllers'
        first status): no message exists yet.
        """
        deadline = time.monotonic() + self.timeout_s
        self._take(block=False)
        while wait and self._open and (self._latest is None or self._latest[0] < time_s - 1e-9):
            if time.monotonic() >= deadline:
                log.warning("vehicle feed: no message for t=%g s within %g s", time_s, self.timeout_s)
                break
            self._take(block=True)
        return {} if self._latest is None else self._latest[1]

    def close(self) -> None:
        self._sock.close()


class FeedBackend(BaseBackend):
    """A backend whose observations also carry the special-vehicle feed (controllers + AVL, as in the field).

    It is a backend like the one it wraps (same network, packed rows and detector layout, so the
    engine and the controllers index the same rows) and adds the feed's records to each
    observation's ``extra``. ``lockstep``: the plant steps with central (software in the loop),
    so once it has stepped, each read waits for the plant's message of that tick; in real time
    (a digital twin) the newest message is taken as it is. Before the plant's first step no
    message exists yet and nothing is waited for.
    """

    def __init__(self, inner: BaseBackend, feed: VehicleFeedClient, *, lockstep: bool = False) -> None:
        # Not BaseBackend.__init__: the wrapper shares the inner backend's packed network and
        # detector layout instead of packing the network a second time.
        self.inner = inner
        self.feed = feed
        self.lockstep = lockstep
        self.network = inner.network
        self.dt_s = inner.dt_s
        self.packed = inner.packed
        self.detectors = inner.detectors
        self.read_fields = inner.read_fields
        self.lifecycle = inner.lifecycle
        self.done = inner.done
        self.steps = 0  # advances so far

    def _open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        """Close the backend and the feed in any state: the feed's socket exists from the start."""
        try:
            self.inner.close()
        finally:
            self.lifecycle = self.inner.lifecycle
            self.feed.close()

    def read(self) -> Observation:
        obs = self.inner.read()
        self.done = self.inner.done
        special = self.feed.records(obs.time_s, wait=self.lockstep and self.steps > 0)
        return replace(obs, extra={**obs.extra, **special}) if special else obs

    def apply(self, commands: Commands) -> None:
        self.inner.apply(commands)

    def advance(self) -> float:
        t = self.inner.advance()
        self.steps += 1
        self.done = self.inner.done
        return t
