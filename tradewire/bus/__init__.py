"""Redis Pub/Sub with per-channel offsets, epochs and a bounded history."""
