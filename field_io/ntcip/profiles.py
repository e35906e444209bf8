"""Per-vendor NTCIP profiles: which objects a controller answers, at which instance, in which units.

Vendors differ (``../shared/reference/field-io.md`` §1.1, §1.3): MMITSS talks
to some controllers with scalar objects at instance ``.1`` instead of ``.0``
and strips it for others; units of timing columns are a classic bug source;
occupancy is specified in 0.5 % steps (0-200) but not every device follows.
A :class:`VendorProfile` absorbs such quirks as data, and the emulator can
play any profile (``greenwave emulate --vendor``) so each is integration
tested.
"""

from __future__ import annotations

from dataclasses import dataclass

from intersections.errors import InputError

__all__ = ["VendorProfile", "PROFILES", "vendor_profile"]


@dataclass(frozen=True)
class VendorProfile:
    """Quirks of one controller family.

    ``scalar_instance``: instance number of scalar objects (NTCIP: 0).
    ``occupancy_full_scale``: ``detectorOccupancy`` value that means 100 %
    (NTCIP 1202: 200, i.e. 0.5 % steps; values above are fault codes).
    ``greenwave_extension``: answers the greenwave objects (mode, accepted /
    rejected sequence and reason, lockstep). ``central_pattern``: the spare
    pattern row central writes its plans into; ``fallback_pattern``: the row
    the local time-of-day schedule runs (written only in commissioning).
    """

    name: str
    description: str
    scalar_instance: int = 0
    occupancy_full_scale: int = 200
    greenwave_extension: bool = False
    central_pattern: int = 2
    fallback_pattern: int = 1
    base_standard: str = "NTCIP 1202 v02"

    def scalar(self, oid: tuple[int, ...]) -> tuple[int, ...]:
        return (*oid, self.scalar_instance)


PROFILES: dict[str, VendorProfile] = {
    p.name: p
    for p in (
        VendorProfile(
            "greenwave",
            "NTCIP 1202 v02 objects plus the greenwave extension (reject reasons, mode, lockstep); "
            "greenwave's own emulator and controllers that adopt the profile",
            greenwave_extension=True,
        ),
        VendorProfile("ntcip1202-v02", "plain NTCIP 1202 v02: status from unitControlStatus / unitFlashStatus"),
        VendorProfile(
            "legacy-instance1",
            "a legacy family with scalars at instance .1 (as MMITSS addresses them for non-MaxTime controllers) "
            "and detectorOccupancy in whole percent (0-100)",
            scalar_instance=1,
            occupancy_full_scale=100,
        ),
    )
}


def vendor_profile(name: str) -> VendorProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise InputError(f"unknown NTCIP vendor profile {name!r} (known: {', '.join(PROFILES)})") from None
