"""The never-command list, enforced in code on every write path central has."""

from __future__ import annotations

import pytest

from field_io.errors import NeverCommandError
from field_io.ntcip.oids import OBJECTS
from field_io.security import CENTRAL_WRITABLE, NEVER_WRITE, SnmpCredentials, check_snmp_set
from intersections.errors import InputError


def oid(name: str, *idx: int) -> tuple[int, ...]:
    o = OBJECTS[name]
    return (*o.oid, 0) if o.scalar else (*o.oid, *(idx or (1,)))


@pytest.mark.parametrize("name", sorted(NEVER_WRITE))
def test_never_written(name: str) -> None:
    with pytest.raises(NeverCommandError, match=name):
        check_snmp_set([(oid(name), 1)])
    with pytest.raises(NeverCommandError):  # not in commissioning either
        check_snmp_set([(oid(name), 1)], commissioning=True)


@pytest.mark.parametrize("value", [254, 255])
def test_flash_and_free_are_never_commanded(value: int) -> None:
    with pytest.raises(NeverCommandError, match="operator actions"):
        check_snmp_set([(oid("systemPatternControl"), value)])


def test_only_requests_are_writable() -> None:
    check_snmp_set([(oid(n), 0) for n in sorted(CENTRAL_WRITABLE)])
    assert not CENTRAL_WRITABLE & set(NEVER_WRITE)
    for unknown in [(1, 3, 6, 1, 2, 1, 1, 5, 0), (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 99, 1)]:
        with pytest.raises(NeverCommandError, match="not an object central may write"):
            check_snmp_set([(unknown, 1)])
    # Every object the MIB marks read-write is either allowed or on the list, with its reason.
    for o in OBJECTS.values():
        if o.access == "read-write" and o.source == "ntcip1202-oids.tsv":
            assert o.name in CENTRAL_WRITABLE or o.name in NEVER_WRITE, o.name


def test_snmpv3_is_auth_priv_only() -> None:
    SnmpCredentials(version=3, user="u", auth_key="12345678", priv_key="abcdefgh")
    with pytest.raises(InputError, match="authPriv"):
        SnmpCredentials(version=3, user="u", auth_key="12345678", priv_key="")
    with pytest.raises(InputError, match="auth protocol"):
        SnmpCredentials(version=3, user="u", auth_key="12345678", priv_key="abcdefgh", auth_protocol="MD5")
