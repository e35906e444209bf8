"""The special-vehicle (bus GPS / emergency) feed over a real TCP socket on 127.0.0.1."""

from __future__ import annotations

import time

import numpy as np
import pytest

from controller.backend import SPECIAL_DTYPE, BackendState, FakeBackend
from field_io.vehicle_feed import FeedBackend, VehicleFeedClient, VehicleFeedServer, decode_feed, encode_feed
from intersections.errors import InputError


def _records(net) -> dict[str, np.ndarray]:
    bus = np.zeros(2, SPECIAL_DTYPE)
    bus[:] = [(0, 1, 120.0, 8.5, 42.0, 30.0), (0, 3, 15.0, 0.0, -5.0, 12.0)]
    return {"bus": bus, "emergency": np.zeros(0, SPECIAL_DTYPE)}


def test_messages_round_trip_by_id_and_drop_unknown_records(example_net) -> None:
    rec = _records(example_net)
    t, out = decode_feed(encode_feed(12.0, rec, example_net), example_net)
    assert t == 12.0 and out["bus"].tolist() == rec["bus"].tolist() and len(out["emergency"]) == 0
    line = b'{"t": 3, "bus": [["nowhere", "g1", 1, 2, 3, 4], ["J1", "no-group", 1, 2, 3, 4]]}'
    assert len(decode_feed(line, example_net)[1]["bus"]) == 0
    with pytest.raises(InputError, match="malformed vehicle-feed message"):
        decode_feed(b"{not json", example_net)


def test_central_gets_each_ticks_buses_over_tcp(example_net) -> None:
    server = VehicleFeedServer(example_net)
    client = VehicleFeedClient(example_net, server.host, server.port, timeout_s=2.0)
    try:
        plant = FakeBackend(example_net, seed=1)
        backend = FeedBackend(plant, client, lockstep=True)
        assert backend.packed is plant.packed and backend.detectors is plant.detectors  # the same rows
        with backend:
            assert backend.read().extra.get("bus") is None  # before the plant's first step: no message to wait for
            end = time.monotonic() + 5.0
            while not server._clients and time.monotonic() < end:  # the accept thread registers the client
                time.sleep(0.01)
            assert backend.advance() == 1.0  # the plant steps and publishes that tick's records
            server.publish(1.0, _records(example_net))
            obs = backend.read()  # in lockstep, the read waits for the message of its tick
            assert obs.time_s == 1.0
            assert obs.extra["bus"].tolist() == _records(example_net)["bus"].tolist()
            # A malformed message is skipped, not fatal; a lost feed ends the bus data, not control.
            server._clients[0].sendall(b"{not json\n")
            assert client.records(0.0, wait=False)["bus"].tolist() == _records(example_net)["bus"].tolist()
            server.close()
            assert len(client.records(99.0)["bus"]) == 2  # the newest it had; no wait on a closed feed
        assert backend.lifecycle is plant.lifecycle is BackendState.CLOSED
    finally:
        server.close()
