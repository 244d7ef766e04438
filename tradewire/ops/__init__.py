"""Operations: metrics, audit trail, alerts."""
