"""Scenario library: small declarative recipes that generate SUMO inputs on demand.

Each scenario is one TOML file in ``scenarios/defs/`` (or a user's own file
anywhere): a network recipe, signal settings, a time-varying demand, SUMO
options and vehicle types. :func:`build_scenario` turns it into a folder::

    <name>.net.xml     network (netgenerate for grids, netconvert for corridors)
    <name>.nod.xml     corridor only: the node/edge description given to netconvert
    <name>.edg.xml
    <name>.rou.xml     vTypes, routes and one <flow> per route, vehicle type and time slice;
                       timetabled buses and emergency vehicles as single <vehicle>s
    <name>.add.xml     only with bus stops: the <busStop>s (listed in the sumocfg)
    <name>.sumocfg     the files above plus the scenario's SUMO options and seed
    <name>.toml        a copy of the definition that was built
    <name>.build.json  what was built (definition hash, seed, SUMO version), for the cache

Nothing large is committed; builds are deterministic (the same definition, seed
and SUMO version give the same bytes) and cached (a folder that already holds
the same build is reused).

Networks
    ``grid``: ``netgenerate --grid``; every inner junction is signalised.
    ``corridor``: a main road through signalised junctions at given
    (irregular) spacings, each crossed by a two-way side street; nodes
    ``W``, ``J1``..``Jn``, ``E`` along the main road (west to east), ``N<i>`` /
    ``S<i>`` at the side-street ends; edges ``<from>_<to>``; the traffic-light ids
    are ``J1``..``Jn`` and :attr:`BuiltScenario.corridor` lists them in order.
    Signals get SUMO's own default fixed-time programs (netconvert's
    ``--tls.*`` options); they are the ``sumo`` baseline controller.

Demand
    The profile is piecewise linear in time (``[[t_s, factor], ...]``,
    factor 1 = the peak rates given); it is sampled at the middle of each
    ``slice_s`` slice and written as one flow per route, vehicle type and
    slice. Arrivals are Poisson (``period="exp(rate)"``) or evenly spaced
    (``vehsPerHour``). Origin-destination rates follow turning shares: on a grid
    each trip goes straight or turns once (left or right at any column or
    row); on a corridor, a main-road vehicle turns off at each junction with the
    given left/right shares, and side-street vehicles cross, or turn onto the
    main road and ride to its end. Each route's rate is scaled by a seeded
    factor in ``[1 - jitter, 1 + jitter]``. Bus lines run the whole corridor at a
    fixed headway with ``personNumber`` passengers (for person delay).

Bus stops and timetables
    A bus line with ``stops_after`` runs as single trips with a timetable
    instead of a flow: a far-side ``<busStop>`` just past each listed junction
    (in ``<name>.add.xml``) and, per trip and stop, ``<stop arrival= duration=
    until=>``. The scheduled arrival is the departure plus the free-flow
    running time (distance at the bus's free speed, plus the time lost
    braking into and accelerating out of each stop) plus the dwells before
    it, so a bus's lateness against the timetable is the delay it has met
    (signals, queues) so far; ``until`` holds a bus that runs early.

Emergency vehicles
    ``[[demand.emergency]]`` inserts single vehicles of an emergency vType on
    one of the demand's routes at given times, optionally with SUMO's
    bluelight device.

Detector faults
    ``[faults]`` is not applied here: it is validated and handed on as
    :attr:`BuiltScenario.faults` for the runner; :func:`detector_faults`
    picks the failing detectors from it.

Extending a definition
    ``extends = "<library name or .toml path>"`` starts from another
    definition: its tables are merged key by key with this file's (this
    file wins; arrays are replaced, not merged); ``name`` and ``description``
    are never inherited.
"""

# The underscored names are not public: scenarios.corpus.generated builds its own networks
# with the same tools and number formatting and imports them from here.
from scenarios.library.build import build_scenario, detector_faults
from scenarios.library.definition import DEFS_DIR, load_scenario_def, scenario_names
from scenarios.library.network import _run as _run
from scenarios.library.network import _strip_timestamp as _strip_timestamp
from scenarios.library.network import _sumo_version as _sumo_version
from scenarios.library.schema import VEHICLE_MIX, BuiltScenario, ScenarioDef
from scenarios.library.schema import SumoSpec as SumoSpec
from scenarios.library.schema import _fmt as _fmt
from scenarios.library.writers import _CFG_SECTIONS as _CFG_SECTIONS
from scenarios.library.writers import _xml_attrs as _xml_attrs
from scenarios.library.writers import iter_flows, write_vtypes

__all__ = [
    "BuiltScenario",
    "ScenarioDef",
    "build_scenario",
    "detector_faults",
    "load_scenario_def",
    "scenario_names",
    "iter_flows",
    "DEFS_DIR",
    "VEHICLE_MIX",
    "write_vtypes",
]
