"""The command journal on Redis Streams: the engine service, snapshots and recovery."""
