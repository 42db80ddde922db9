from shared.settings import ServiceSettings


class PlannerSettings(ServiceSettings):
    http_port: int = 8002
