"""The REST + WebSocket gateway, Binance-compatible, with gap-free streams."""
