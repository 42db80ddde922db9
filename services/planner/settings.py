from pathlib import Path

from shared.settings import ServiceSettings


class PlannerSettings(ServiceSettings):
    http_port: int = 8002
    visit_minutes: int = 25
    travel_speed_kmh: float = 25.0
    road_factor: float = 1.35
    break_minutes: int = 45
    solver: str = "vroom"
    solver_time_limit_s: float = 10.0
    compliance_config: Path | None = None  # a lender's pack selection and overrides (TOML)
    plan_settle_s: float = 1.0
