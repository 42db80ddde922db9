from shared.settings import ServiceSettings


class VisitsSettings(ServiceSettings):
    http_port: int = 8003
