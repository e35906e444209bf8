"""Closed sets are enums, and the text that reaches files, screens and the wire is unchanged by them."""

from __future__ import annotations

import json

import pytest

from api.server.live import ADAPTIVE, Control, ControlKind
from field_io.commission import Check, CheckStatus
from field_io.ntcip import ber
from field_io.ntcip.agent import SnmpError
from field_io.ntcip.ber import ErrorStatus


def test_a_control_kind_read_back_as_text_becomes_the_enum() -> None:
    c = Control("flash")  # type: ignore[arg-type]  # as a stored standing mode arrives
    assert c.kind is ControlKind.FLASH
    assert c.public() == {"kind": "flash", "source": "standing"}
    assert json.dumps(ADAPTIVE.public()) == '{"kind": "adaptive", "source": "standing"}'
    with pytest.raises(ValueError):
        Control("blink")  # type: ignore[arg-type]


def test_a_commissioning_check_reports_its_status_as_before() -> None:
    check = Check("identity")
    assert check.status is CheckStatus.SKIP
    assert check.ok("read").to_json()["status"] == "pass"
    assert check.fail("wrong").to_json()["status"] == "fail"
    assert json.dumps(check.to_json()["status"]) == '"fail"'


def test_snmp_error_statuses_keep_their_rfc_names_and_numbers() -> None:
    # RFC 3416 §3: the numbers on the wire, the names in logs and messages.
    assert ber.ERROR_NAMES[17] == "notWritable" and ErrorStatus.NOT_WRITABLE == 17
    assert ber.ERROR_NAMES[13] == "resourceUnavailable" and ErrorStatus.RESOURCE_UNAVAILABLE == 13
    v1 = ["noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr"]
    assert [ber.ERROR_NAMES[k] for k in range(6)] == v1
    e = SnmpError(ErrorStatus.WRONG_VALUE, 2)
    assert (str(e), e.status, type(e.status), e.index) == ("wrongValue", 10, int, 2)
