"""Control-centre settings: one TOML file plus ``GREENWAVE_*`` environment variables.

Precedence, highest first: values given in code or on the command line, the
environment (``GREENWAVE_PORT=8080``), the settings file (``--config FILE`` or
``GREENWAVE_CONFIG``), the defaults below. Example file::

    demo = false
    secret_key = "a long random string"
    database_url = "postgresql+psycopg://gw:...@db/greenwave"
    backend = "modbus"        # modbus (default) | sumo | fake
    scenario = "demo"
    map_tiles_dir = "/srv/tiles"   # optional base layer: z/x/y.png tiles, with map_origin = [21.0285, 105.8542]
    speed = 1.0               # simulated seconds per wall-clock second (0: as fast as possible)

Demo mode (the default) runs the embedded digital twin with well-known demo
users; outside demo mode the service refuses to start while a secret still
has its default value (:meth:`Settings.startup_problems`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from intersections.errors import InputError

__all__ = [
    "BackendKind",
    "Settings",
    "load_settings",
    "default_data_dir",
    "is_loopback",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_DEMO_PASSWORD",
    "CITY_TWIN",
]

DEFAULT_SECRET_KEY = "greenwave-demo-secret-change-me"
DEFAULT_DEMO_PASSWORD = "greenwave"


class BackendKind(StrEnum):
    """What the engine drives."""

    SUMO = "sumo"  # the SUMO digital twin of a scenario, in process (libsumo)
    FAKE = "fake"  # the in-memory point-queue model over the scenario's network (tests)
    MODBUS = "modbus"  # the SUMO twin through emulated controllers over Modbus TCP (needs field_io)


#: The twin of a city scenario (``scenarios/defs/city``) where the settings do not say otherwise.
CITY_TWIN: dict[str, Any] = {"backend": BackendKind.SUMO, "model": "meso", "speed": 10.0, "live_max_hz": 1.0}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GREENWAVE_", extra="forbid", validate_default=True)

    _toml_file: ClassVar[Path | None] = None

    demo: bool = Field(True, description="demo mode: demo users and default secrets allowed")
    secret_key: SecretStr = Field(SecretStr(DEFAULT_SECRET_KEY), description="key for token digests")
    demo_password: SecretStr = Field(SecretStr(DEFAULT_DEMO_PASSWORD), description="password of the demo users")
    host: str = "127.0.0.1"
    allow_remote_demo: bool = Field(
        False, description="demo mode may bind a non-loopback address (its users and password are public)"
    )
    metrics_token: SecretStr | None = Field(
        None, description="bearer token a Prometheus scraper sends to /metrics (user tokens work too)"
    )
    max_cycle_s: float = Field(240.0, gt=0, le=3600, description="longest plan cycle check_plan accepts")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="largest request body (413 above)")
    login_max_failures: int = Field(5, ge=1, description="failed logins (per account or client) before a lock")
    login_lock_s: float = Field(30.0, gt=0, description="first lock; doubles with each further lock")
    login_lock_max_s: float = Field(900.0, gt=0, description="longest lock")
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(), description="database, scenario build and logs"
    )
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite in data_dir")
    # The embedded default: the SUMO twin driven through emulated field controllers over Modbus TCP, the
    # path the real cabinets take (issue: the control centre uses the field adapters once they land).
    backend: BackendKind = BackendKind.MODBUS
    scenario: str = Field("demo", description="library scenario name or scenario TOML file")
    net_file: Path | None = Field(None, description="a SUMO .net.xml instead of a scenario (fake backend)")
    seed: int = Field(42, ge=0)
    controller: str = Field("auto", description="policy name; auto = adaptive when available, else actuated")
    model: Literal["micro", "meso"] = Field(
        "micro", description="SUMO's traffic model for backend sumo: micro, or meso (city scale, queues estimated)"
    )
    speed: float = Field(
        5.0, ge=0, le=1000, description="simulated s per wall s; 0 = as fast as possible (sumo/fake; modbus: real time)"
    )
    tick_s: float = Field(1.0, gt=0, le=10)
    live_max_hz: float | None = Field(
        None,
        gt=0,
        le=100,
        description="publish the live state (snapshot, stream) at most this often per wall second; "
        "none: every tick (an accelerated city twin ticks faster than a screen or 200 clients need)",
    )
    comm_timeout_s: float | None = Field(None, gt=0, description="stale-data limit; default two ticks")
    loop_scenario: bool = Field(True, description="restart the twin when the scenario's horizon ends")
    token_ttl_s: int = Field(8 * 3600, gt=0)
    max_command_s: float = Field(24 * 3600, gt=0, description="longest expiry of any command")
    max_hold_s: float = Field(900, gt=0, description="longest manual stage hold (no open-ended holds)")
    max_flash_s: float = Field(8 * 3600, gt=0, description="longest operator flash")
    event_flush_s: float = Field(5.0, gt=0, description="wall seconds between writes of hi-res event chunks")
    two_person_rule: bool = Field(
        True, description="activating a plan or a schedule needs a second engineer's approval (admins may override)"
    )
    alarm_escalate_s: float = Field(900, gt=0, description="an alarm unacknowledged this long is escalated")
    history_days: float = Field(8, ge=7, description="events and KPI samples kept this long (at least 7 days)")
    modbus_port: int = Field(
        0, ge=0, le=65535, description="loopback port of the emulated controllers (backend=modbus; 0: any free)"
    )
    inventory_file: Path | None = Field(
        None,
        description="a field inventory (TOML/YAML, docs/inventory.md) instead of a scenario (fake backend): "
        "the map is drawn from its coordinates",
    )
    map_tiles_dir: Path | None = Field(
        None,
        description="directory of z/x/y.png Web-Mercator map tiles, served at /tiles/ as the map's base layer "
        "(needs map_origin); nothing is loaded from the internet",
    )
    map_origin: tuple[float, float] | None = Field(
        None, description="latitude, longitude (WGS84 degrees) of the network's local x = y = 0"
    )
    map_attribution: str = Field("", max_length=300, description="credit line shown under the base layer")

    @field_validator("map_tiles_dir", "inventory_file")
    @classmethod
    def _exists(cls, v: Path | None, info: Any) -> Path | None:
        if v is None:
            return v
        ok = v.is_dir() if info.field_name == "map_tiles_dir" else v.is_file()
        if not ok:
            raise ValueError(f"{'directory' if info.field_name == 'map_tiles_dir' else 'file'} not found: {v}")
        return v.resolve()

    @field_validator("map_origin")
    @classmethod
    def _on_earth(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        # Web Mercator stops at +-85.05 degrees of latitude.
        if v is not None and not (-85.0 <= v[0] <= 85.0 and -180.0 <= v[1] <= 180.0):
            raise ValueError(f"latitude must be within +-85 and longitude within +-180 degrees, got {list(v)}")
        return v

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, v: str) -> str:
        """A library scenario name or an existing scenario file (a typo must not start a failing engine)."""
        from scenarios.library import scenario_names
        from scenarios.library.definition import city_names

        names = [*scenario_names(), *city_names()]
        if v in names or Path(v).is_file():
            return v
        raise ValueError(f"unknown scenario {v!r}: not a library scenario ({', '.join(names)}) nor an existing file")

    @model_validator(mode="after")
    def _city_defaults(self) -> Settings:
        """A city scenario runs as a city twin unless told otherwise: SUMO's mesoscopic model, accelerated.

        A thousand emulated Modbus cabinets in real time (the default twin) is not a city
        control room's twin; meso runs a city hour in seconds (issue #18). Only what the
        settings leave unset changes (``model_fields_set``: flags, environment and file count
        as set), so ``--backend modbus`` or ``--model micro`` still mean what they say.
        """
        from scenarios.library.definition import city_names

        if self.inventory_file is None and self.net_file is None and self.scenario in city_names():
            for name, value in CITY_TWIN.items():
                if name not in self.model_fields_set:
                    setattr(self, name, value)
        return self

    @field_validator("controller")
    @classmethod
    def _known_controller(cls, v: str) -> str:
        if v == "auto":
            return v
        from controller.policies import policy_names

        if v not in policy_names():
            raise ValueError(f"unknown controller {v!r} (known: auto, {', '.join(policy_names())})")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_file))
        return tuple(sources)

    # ------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'greenwave.db').resolve()}"

    @property
    def policy_name(self) -> str:
        """The policy the engine runs when an intersection is adaptive."""
        if self.controller != "auto":
            return self.controller
        from controller.policies import policy_names

        return "adaptive" if "adaptive" in policy_names() else "actuated"

    def startup_problems(self) -> list[str]:
        """Why the service must not start with these settings (empty: fine)."""
        out: list[str] = []
        if self.demo and not self.allow_remote_demo and not is_loopback(self.host):
            out.append(
                f"host: demo mode (public demo users and password) will not bind {self.host!r}; use 127.0.0.1, "
                "or set allow_remote_demo (--allow-remote-demo) if you mean it"
            )
        if not self.demo:
            if self.secret_key.get_secret_value() == DEFAULT_SECRET_KEY:
                out.append("secret_key: still the default; set GREENWAVE_SECRET_KEY or secret_key in the settings file")
            if len(self.secret_key.get_secret_value()) < 16:
                out.append("secret_key: use at least 16 characters")
            if self.demo_password.get_secret_value() == DEFAULT_DEMO_PASSWORD:
                out.append("demo_password: still the default (unused outside demo mode, but must not stay default)")
        if self.map_tiles_dir is not None and self.map_origin is None:
            out.append("map_origin: map_tiles_dir needs the latitude, longitude of the network's x = y = 0")
        if self.model == "meso" and self.backend is not BackendKind.SUMO:
            out.append(
                f"model: meso runs the twin on backend 'sumo' only (backend {self.backend.value!r} drives it from "
                "lane-area detectors, which the mesoscopic model lacks)"
            )
        if self.inventory_file is not None and self.backend is not BackendKind.FAKE:
            out.append(
                f"inventory_file: backend {self.backend.value!r} needs a SUMO twin; an inventory runs on backend 'fake'"
            )
        from controller.policies import make_policy
        from controller.policies.base import declared

        if self.controller != "auto" and declared(make_policy(self.controller), "passive"):
            out.append(f"controller: {self.controller!r} is passive (runs SUMO's own programs) and takes no commands")
        return out


def default_data_dir() -> Path:
    """Where the service keeps its database by default, wherever it is started from:
    ``$GREENWAVE_DATA_HOME``, else ``$XDG_DATA_HOME/greenwave/control-centre``, else
    ``~/.local/share/greenwave/control-centre`` (the XDG Base Directory default)."""
    import os

    if os.environ.get("GREENWAVE_DATA_HOME"):
        return Path(os.environ["GREENWAVE_DATA_HOME"]).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "greenwave" / "control-centre"


def is_loopback(host: str) -> bool:
    """True for a loopback address or ``localhost`` (an unresolvable or wildcard address is not)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config`` (or ``$GREENWAVE_CONFIG``), the environment and ``overrides``.

    ``None`` values in ``overrides`` are ignored (unset command-line flags).
    """
    import os

    env = os.environ.get("GREENWAVE_CONFIG")
    path = Path(config) if config else (Path(env) if env else None)
    if path is not None and not path.is_file():
        raise InputError("settings file not found", where=str(path))
    if path is not None:
        import tomllib

        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"not valid TOML: {e}", where=str(path)) from None
    Settings._toml_file = path
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "settings"
        more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        raise InputError(f"{field}: {err['msg']}{more}", where=str(path) if path else "settings") from None
    finally:
        Settings._toml_file = None
