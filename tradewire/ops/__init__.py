"""Operations: metrics, structured logs, the health and metrics HTTP endpoints."""
