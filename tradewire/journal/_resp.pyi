from collections.abc import Sequence

def pack_commands(
    ops: Sequence[Sequence[bytes | str | int]], head: bytes = b"", tail: bytes = b""
) -> bytes: ...
