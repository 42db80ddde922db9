from pydantic import Field

from shared.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    http_port: int = 8006
    audit_retention_days: int = Field(
        default=5 * 366 + 1,
        ge=365,
        description="Keep collection records at least this long (cn: 5 years, NIFA 2018).",
    )
