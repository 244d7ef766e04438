"""Journal segments on disk: exact bytes back, and damage or a gap named rather than read past."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tradewire.journal.archive import ArchiveError, read_archive, segments, write_segment


def _entry(n: int, command: bytes) -> tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]:
    entry_id = b"1700000000%03d-%d" % (n, n % 3)
    return entry_id, {b"c": command, b"ts": b"1700000000000", b"who": b"k-1"}, {b"cmd": entry_id, b"e": b"[]"}


def test_segments_give_back_every_field_byte_for_byte_utf8_or_not(tmp_path: Path) -> None:
    first = [_entry(1, b'{"type":"deposit"}'), _entry(2, b"\xff\xfe not utf-8 \x00")]
    second = [_entry(3, '{"user":"zoë"}'.encode())]
    write_segment(tmp_path, first, None)
    write_segment(tmp_path, second, first[-1][0])
    assert list(read_archive(segments(tmp_path))) == first + second


def test_a_missing_segment_is_named(tmp_path: Path) -> None:
    write_segment(tmp_path, [_entry(1, b"a")], None)
    middle = write_segment(tmp_path, [_entry(2, b"b")], _entry(1, b"a")[0])
    write_segment(tmp_path, [_entry(3, b"c")], _entry(2, b"b")[0])
    middle.path.unlink()
    with pytest.raises(ArchiveError, match="a segment is missing"):
        segments(tmp_path)


def test_a_truncated_segment_is_damage_not_a_shorter_journal(tmp_path: Path) -> None:
    segment = write_segment(tmp_path, [_entry(n, b"x" * 200) for n in range(1, 50)], None)
    data = gzip.decompress(segment.path.read_bytes())
    segment.path.write_bytes(gzip.compress(data[: len(data) // 2].rsplit(b"\n", 1)[0] + b"\n"))
    with pytest.raises(ArchiveError, match=r"holds .* entries"):
        list(read_archive(segments(tmp_path)))
    segment.path.write_bytes(segment.path.read_bytes()[:-40])  # cut inside the gzip stream
    with pytest.raises(ArchiveError, match="damaged"):
        list(read_archive(segments(tmp_path)))
