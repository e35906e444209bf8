"""NTCIP encodings: the BER codec against pysnmp, OIDs against the reference MIB table, bit masks, units."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from field_io.emulator.plans import default_fallback_plan
from field_io.mapping import field_map
from field_io.ntcip import ber
from field_io.ntcip.codec import (
    masks_to_phases,
    occupancy_from_ntcip,
    occupancy_to_ntcip,
    pattern_to_plan,
    phase_control_block,
    phases_to_masks,
    plan_to_pattern,
    stage_phase_control,
)
from field_io.ntcip.oids import OBJECTS, oid_str

from .conftest import ROOT

ASC = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1)
REFERENCE = ROOT.parent / "shared" / "reference" / "ntcip1202-oids.tsv"


def _pysnmp_get(oids, rid=4242, community="public"):
    from pyasn1.codec.ber import encoder
    from pysnmp.proto import api

    m = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
    pdu = m.GetRequestPDU()
    m.apiPDU.set_defaults(pdu)
    m.apiPDU.set_request_id(pdu, rid)
    m.apiPDU.set_varbinds(pdu, [(o, m.Null("")) for o in oids])
    msg = m.Message()
    m.apiMessage.set_defaults(msg)
    m.apiMessage.set_community(msg, community)
    m.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


OIDS = [(*ASC, 1, 4, 1, c, 1) for c in range(2, 12)] + [(*ASC, 2, 5, 4, 1, k, d) for d in (1, 2, 300) for k in (1, 2)]


def test_ber_encodes_byte_identical_to_pysnmp() -> None:
    ours = ber.encode_message(
        ber.Message(0, b"public", ber.GET, 4242, 0, 0, tuple((o, (ber.NULL, None)) for o in OIDS))
    )
    assert ours == _pysnmp_get(OIDS)


def test_pysnmp_decodes_our_response_and_we_decode_its_request() -> None:
    from pyasn1.codec.ber import decoder
    from pysnmp.proto import api

    m = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
    values = [(ber.INTEGER, -5), (ber.INTEGER, 2**31 - 1), (ber.OCTET_STRING, b"J1"), (ber.TIMETICKS, 123456)]
    vbs = tuple(zip(OIDS[:4], values, strict=True))
    wire = ber.encode_message(ber.Message(0, b"public", ber.RESPONSE, 7, 0, 0, vbs))
    msg, _ = decoder.decode(wire, asn1Spec=m.Message())
    got = m.apiPDU.get_varbinds(m.apiMessage.get_pdu(msg))
    assert [int(got[0][1]), int(got[1][1]), bytes(got[2][1]), int(got[3][1])] == [-5, 2**31 - 1, b"J1", 123456]
    back = ber.decode_message(_pysnmp_get(OIDS, rid=99))
    assert back.request_id == 99 and [o for o, _ in back.varbinds] == OIDS


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_ber_decoder_never_fails_with_anything_but_bererror(data: bytes) -> None:
    try:
        ber.decode_message(data)
    except ber.BerError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(0, 2**31), min_size=1, max_size=12),
            st.one_of(
                st.integers(-(2**31), 2**31 - 1).map(lambda v: (ber.INTEGER, v)),
                st.binary(max_size=40).map(lambda b: (ber.OCTET_STRING, b)),
                st.integers(0, 2**32 - 1).map(lambda v: (ber.COUNTER32, v)),
                st.just((ber.NULL, None)),
                st.just((ber.NO_SUCH_INSTANCE, None)),
            ),
        ),
        max_size=20,
    ),
    st.integers(0, 2**31 - 1),
)
def test_ber_round_trip(vbs: list, rid: int) -> None:
    items = tuple(((1, 3, *tail), v) for tail, v in vbs)
    m = ber.Message(1, b"private", ber.SET, rid, 0, 0, items)
    assert ber.decode_message(ber.encode_message(m)) == m


def test_every_ntcip1202_oid_matches_the_reference_table() -> None:
    if not REFERENCE.exists():
        pytest.skip(f"reference table not found at {REFERENCE}")
    ref = {}
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            ref[parts[1]] = parts[0]
    checked = 0
    for o in OBJECTS.values():
        if o.source != "ntcip1202-oids.tsv":
            continue
        assert o.name in ref, f"{o.name} is not in the reference table"
        assert oid_str(o.oid) == ref[o.name], f"{o.name}: {oid_str(o.oid)} != reference {ref[o.name]}"
        checked += 1
    assert checked > 80


def test_phase_group_bit_mapping() -> None:
    # bit 0 = phase 8g-7 ... bit 7 = phase 8g (NTCIP 1202 status/control groups)
    assert phases_to_masks([1, 8, 9, 16], 2) == [0b10000001, 0b10000001]
    assert masks_to_phases([0b00000110, 0b1]) == frozenset({2, 3, 9})


def test_occupancy_units_and_fault_codes() -> None:
    assert occupancy_to_ntcip(np.array([0.0, 0.001, 0.5, 1.0])).tolist() == [0, 1, 100, 200]
    back = occupancy_from_ntcip(np.array([0, 100, 200, 210, 217]))
    assert back[:3].tolist() == [0.0, 0.5, 1.0] and np.isnan(back[3:]).all()  # faults never reach the optimiser


def test_stage_phase_control_inverts(example_net) -> None:
    fmap = field_map(example_net.intersections[0])
    for target in range(fmap.n_stages):
        hold, force, call = stage_phase_control(fmap, target)
        block = phase_control_block(fmap, 1, masks_to_phases(hold), masks_to_phases(force), masks_to_phases(call))
        assert block.target_stage == target
        assert block.hold == block.call == 1 << target
        assert block.force_off == ((1 << fmap.n_stages) - 1) & ~(1 << target)


def test_plan_pattern_round_trip(example_net) -> None:
    inter = example_net.intersections[0]
    fmap = field_map(inter)
    plan = default_fallback_plan(inter)
    cycle, offset, splits = plan_to_pattern(plan, fmap)
    assert cycle == 86 and splits[1] == splits[5] == 21  # split includes yellow + all-red
    back = pattern_to_plan(cycle, offset, splits, fmap)
    assert back is not None and back.cycle_s == plan.cycle_s
    assert [s.green_s + s.intergreen_s for s in back.stages] == [s.green_s + s.intergreen_s for s in plan.stages]
    bad = dict(splits)
    bad[5] = 30  # phases of one stage disagree
    assert pattern_to_plan(cycle, offset, bad, fmap) is None
    assert pattern_to_plan(cycle + 1, offset, splits, fmap) is None  # splits do not sum to the cycle
