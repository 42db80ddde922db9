from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    http_port: int = 8001
    max_batch_rows: int = 50_000
    max_batch_bytes: int = 64 * 1024 * 1024
