"""Tailing an op's output: only appended bytes are read, every line comes out once, and files
read whole come out in the order earlier versions gave (a sort by timestamp)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.jobs.output import OpOutput
from daemon.jobs.tail import LogLine, LogTail

STREAMS = ("stdout", "stderr")


def _stamp(n: int) -> str:
    return f"2025-11-30T23:{n // 10**9 // 60 % 60:02d}:{n // 10**9 % 60:02d}.{n % 10**9:09d}Z"


def _earlier_read(paths: dict[str, Path]) -> list[LogLine]:
    """How the files were read before tails: whole, split by bytes.splitlines, sorted."""
    lines = []
    for stream, path in paths.items():
        if not path.exists():
            continue
        for raw in path.read_bytes().splitlines():
            stamp, _, text = raw.partition(b" ")
            lines.append(LogLine(stamp.decode(errors="replace"), stream, text.decode()))
    lines.sort(key=lambda line: line.stamp)
    return lines


def _read_all(tail: LogTail) -> list[LogLine]:
    lines: list[LogLine] = []
    while True:
        lines += tail.read_now(to_end=True)
        if tail.caught_up:
            return lines


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def test_a_followed_log_is_read_once_however_large(tmp_path: Path) -> None:
    output = OpOutput(tmp_path)
    out, err = output.path("job", "op", "stdout"), output.path("job", "op", "stderr")
    out.parent.mkdir(parents=True)
    payload = "x" * 100
    # 12 MiB of stdout and 3 of stderr, interleaved in time, before the tail starts.
    out.write_bytes(b"".join(f"{_stamp(2 * i)} {i} {payload}\n".encode() for i in range(120_000)))
    err.write_bytes(b"".join(f"{_stamp(8 * i + 1)} e{i}\n".encode() for i in range(30_000)))
    tail = output.tail("job", "op")
    backlog = _read_all(tail)
    assert len(backlog) == 150_000
    assert [line.stamp for line in backlog] == sorted(line.stamp for line in backlog)
    size = out.stat().st_size + err.stat().st_size
    assert tail.bytes_read == size
    # Followed for a while: polls with nothing new read nothing; each append is read once.
    for step in range(50):
        assert tail.read_now() == []
        assert tail.bytes_read == size
        added = f"{_stamp(10**7 + 2 * step)} more {step}\n".encode()
        failed = f"{_stamp(10**7 + 2 * step + 1)} oops {step}\n".encode()
        _append(out, added)
        _append(err, failed)
        size += len(added) + len(failed)
        assert [line.text for line in tail.read_now()] == [f"more {step}", f"oops {step}"]
        assert tail.caught_up
        assert tail.bytes_read == size  # not 50 times the 15 MiB


def test_an_unfinished_line_waits_for_its_end(tmp_path: Path) -> None:
    path = tmp_path / "op.stdout.log"
    tail = LogTail({"stdout": path})
    assert tail.read_now() == []  # nothing written yet
    _append(path, f"{_stamp(1)} hel".encode())
    assert tail.read_now() == []
    assert tail.caught_up
    _append(path, f"lo\n{_stamp(2)} last, without a newline".encode())
    assert [line.text for line in tail.read_now()] == ["hello"]
    assert [line.text for line in tail.read_now(to_end=True)] == ["last, without a newline"]
    assert tail.read_now(to_end=True) == []


def test_odd_bytes_read_as_before(tmp_path: Path) -> None:
    """A progress bar's lone \\r splits its line (into pieces without a timestamp), as it did;
    \\r\\n, empty lines and a last line without a newline too."""
    paths = {"stdout": tmp_path / "out.log", "stderr": tmp_path / "err.log"}
    paths["stdout"].write_bytes(
        f"{_stamp(3)} progress 10%\r20%\r30%\n{_stamp(7)} \n{_stamp(9)} end".encode()
    )
    paths["stderr"].write_bytes(f"{_stamp(4)} caf\xc3\xa9\r\n\n{_stamp(8)} x\n".encode("latin-1"))
    assert _read_all(LogTail(paths)) == _earlier_read(paths)


Line = st.tuples(
    st.integers(0, 10**6), st.text(st.characters(codec="utf-8", exclude_characters="\r\n"))
)


@settings(max_examples=150, deadline=None)
@given(
    stdout=st.lists(Line, max_size=40),
    stderr=st.lists(Line, max_size=40),
    chunk=st.integers(1, 200),
)
def test_files_read_whole_in_small_chunks_come_out_sorted(
    tmp_path_factory: pytest.TempPathFactory,
    stdout: list[tuple[int, str]],
    stderr: list[tuple[int, str]],
    chunk: int,
) -> None:
    root = tmp_path_factory.mktemp("whole")
    paths = _write({"stdout": stdout, "stderr": stderr}, root)
    assert _read_all(LogTail(paths, chunk=chunk)) == _earlier_read(paths)


@settings(max_examples=150, deadline=None)
@given(
    stdout=st.lists(Line, max_size=40),
    stderr=st.lists(Line, max_size=40),
    chunk=st.integers(1, 200),
    cuts=st.lists(st.tuples(st.sampled_from(STREAMS), st.integers(1, 300)), max_size=30),
)
def test_lines_appended_while_followed_come_out_once_each(
    tmp_path_factory: pytest.TempPathFactory,
    stdout: list[tuple[int, str]],
    stderr: list[tuple[int, str]],
    chunk: int,
    cuts: list[tuple[str, int]],
) -> None:
    root = tmp_path_factory.mktemp("follow")
    whole = _write({"stdout": stdout, "stderr": stderr}, root / "whole")
    data = {stream: path.read_bytes() for stream, path in whole.items()}
    paths = {stream: root / f"{stream}.log" for stream in STREAMS}
    tail = LogTail(paths, chunk=chunk)
    seen: list[LogLine] = []
    written = dict.fromkeys(STREAMS, 0)
    for stream, size in cuts:  # appends cut anywhere, even mid-line, between reads
        _append(paths[stream], data[stream][written[stream] : written[stream] + size])
        written[stream] += size
        seen += tail.read_now()
    for stream in STREAMS:
        _append(paths[stream], data[stream][written[stream] :])
    seen += _read_all(tail)
    expected = _earlier_read(whole)
    assert sorted(seen) == sorted(expected)
    for stream in STREAMS:
        assert [x for x in seen if x.stream == stream] == [
            x for x in expected if x.stream == stream
        ]
    assert tail.bytes_read == sum(len(d) for d in data.values())


def _write(lines: dict[str, list[tuple[int, str]]], root: Path) -> dict[str, Path]:
    """Each stream's lines in time order, as Docker gives them, one file per stream."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stream, items in lines.items():
        path = paths[stream] = root / f"{stream}.log"
        path.write_bytes(b"".join(f"{_stamp(n)} {text}\n".encode() for n, text in sorted(items)))
    return paths
