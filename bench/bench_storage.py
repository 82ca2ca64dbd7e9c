"""Storage benchmark: Log.append_as_leader / Log.read versus raw os.write / os.pread.

Run: ``.venv/bin/python -m bench.bench_storage [--runs 7] [--mib 64] [--dir /tmp]``

Appends the same 16 KiB record batches through ``Log.append_as_leader`` (validation, CRC32C,
offset assignment, indexes, epoch cache, producer state) and through a bare ``os.write`` loop
into a plain file opened with the segment's flags, in the same process and run, alternating
1 MiB chunks and which goes first; then reads the log back with ``Log.read`` +
``FetchSlice.read_bytes`` (1 MiB fetches) against a bare ``os.pread`` loop, alternating which
reads first. Prints a markdown table of medians (and the range of the per-run ratios) and
writes it to docs/bench-storage.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from core.records.batch import build_batch
from core.storage.log import Log

BATCH_BYTES = 16 * 1024
FETCH_BYTES = 1 << 20


def make_batches(total_bytes: int, *, idempotent: bool) -> list[bytes]:
    """Distinct 16 KiB batches (16 records of ~1 KiB), as a producer would send them."""
    batches = []
    seq = 0
    payload = os.urandom(1000)
    while sum(map(len, batches)) < total_bytes:
        records = [(b"key-%d" % (seq + i), payload, []) for i in range(16)]
        kwargs = dict(producer_id=42, producer_epoch=0, base_sequence=seq) if idempotent else {}
        batch = build_batch(records, timestamp_ms=1_700_000_000_000 + seq, **kwargs)
        batches.append(batch)
        seq += 16
    return batches


NOTES_MARKER = "## Notes"
CHUNK_BATCHES = 64  # 1 MiB: raw and Log alternate chunk by chunk so both see the same noise


def interleaved_append(raw_path: Path, directory: Path, batches: list[bytes],
                       run_index: int) -> tuple[float, float, float, float, Log]:
    """Append the batches both ways, alternating 1 MiB chunks; return (raw s, Log s, raw CPU s,
    Log CPU s, log). CPU = this thread's CPU time (user + kernel), which time slices lost to
    other processes on a shared machine do not inflate."""
    # The flags LogSegment opens its file with ("a+b"): read-write, append, create.
    fd = os.open(raw_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    log = Log(directory, {"segment.bytes": 1 << 30})
    append = log.append_as_leader
    write = os.write
    append(batches[0], leader_epoch=0)  # first append writes the epoch checkpoint (fsync)
    write(fd, batches[0])
    os.sync()  # start with no dirty pages pending write-back
    t_raw = t_log = c_raw = c_log = 0.0
    clock, cpu = time.perf_counter, time.thread_time
    for index, start in enumerate(range(1, len(batches), CHUNK_BATCHES)):
        chunk = batches[start:start + CHUNK_BATCHES]
        for which in ((0, 1) if (index + run_index) % 2 else (1, 0)):
            if which == 0:
                began, began_cpu = clock(), cpu()
                for batch in chunk:
                    write(fd, batch)
                t_raw += clock() - began
                c_raw += cpu() - began_cpu
            else:
                began, began_cpu = clock(), cpu()
                for batch in chunk:
                    append(batch, leader_epoch=0)
                t_log += clock() - began
                c_log += cpu() - began_cpu
    os.close(fd)
    return t_raw, t_log, c_raw, c_log, log


def raw_read(path: Path) -> tuple[float, int]:
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    start = time.perf_counter()
    position = 0
    while position < size:
        position += len(os.pread(fd, FETCH_BYTES, position))
    elapsed = time.perf_counter() - start
    os.close(fd)
    return elapsed, position


def log_read(log: Log) -> tuple[float, int]:
    start = time.perf_counter()
    offset = 0
    total = 0
    end = log.log_end_offset
    read = log.read
    while offset < end:
        piece = read(offset, FETCH_BYTES)
        # Like the raw loop: the bytes are dropped at once (holding each 1 MiB result until the
        # next read changes how malloc reuses the buffers, on either side; see the notes).
        total += len(piece.read_bytes())
        offset = piece.next_offset
    elapsed = time.perf_counter() - start
    return elapsed, total


def run(args: argparse.Namespace) -> str:
    total = args.mib << 20
    rows = []
    for idempotent in (False, True):
        batches = make_batches(total, idempotent=idempotent)
        nbytes = sum(map(len, batches))
        results: dict[str, list[float]] = {"raw_w": [], "log_w": [], "raw_r": [], "log_r": [],
                                           "cpu_ratio_w": []}
        for run_index in range(args.runs):
            work = Path(tempfile.mkdtemp(prefix="bench-storage-", dir=args.dir))
            try:
                raw_path = work / "raw.log"
                t_raw, t_log, c_raw, c_log, log = interleaved_append(
                    raw_path, work / "bench-0", batches, run_index)
                timed = nbytes - len(batches[0])
                results["cpu_ratio_w"].append(c_raw / c_log)
                results["raw_w"].append(timed / t_raw)
                results["log_w"].append(timed / t_log)
                if run_index % 2:
                    t_lr, n_lr = log_read(log)
                    t_rr, n_rr = raw_read(raw_path)
                else:
                    t_rr, n_rr = raw_read(raw_path)
                    t_lr, n_lr = log_read(log)
                assert n_rr == nbytes and n_lr == nbytes, (n_rr, n_lr, nbytes)
                results["raw_r"].append(nbytes / t_rr)
                results["log_r"].append(nbytes / t_lr)
                log.close()
            finally:
                shutil.rmtree(work, ignore_errors=True)
        med = {k: statistics.median(v) for k, v in results.items()}
        label = "idempotent producer" if idempotent else "plain producer"
        mib = 1 << 20
        write_ratios = [log / raw for log, raw in zip(results["log_w"], results["raw_w"],
                                                       strict=True)]
        read_ratios = [log / raw for log, raw in zip(results["log_r"], results["raw_r"],
                                                      strict=True)]
        rows.append((f"append 16 KiB batches, {label}", med["log_w"] / mib, med["raw_w"] / mib,
                     med["log_w"] / med["raw_w"], write_ratios, med["cpu_ratio_w"],
                     len(batches) * 16 / (nbytes / med["log_w"])))
        rows.append((f"read 1 MiB fetches, {label}", med["log_r"] / mib, med["raw_r"] / mib,
                     med["log_r"] / med["raw_r"], read_ratios, None, None))
    lines = [
        "| operation | Log MiB/s | raw MiB/s | Log / raw | per-run Log / raw (min-max) "
        "| CPU time raw / Log | records/s via Log |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, log_rate, raw_rate, ratio, ratios, cpu_ratio, rps in rows:
        rps_text = f"{rps:,.0f}" if rps else ""
        cpu_text = f"{cpu_ratio:.0%}" if cpu_ratio else ""
        lines.append(f"| {name} | {log_rate:,.0f} | {raw_rate:,.0f} | {ratio:.0%} "
                     f"| {min(ratios):.0%}-{max(ratios):.0%} | {cpu_text} | {rps_text} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--mib", type=int, default=64, help="MiB appended per run")
    parser.add_argument("--dir", default=None, help="directory for the files (default: tmp)")
    parser.add_argument("--no-write-doc", action="store_true")
    args = parser.parse_args()
    table = run(args)
    print(table)
    if args.no_write_doc:
        return
    command = ".venv/bin/python -m bench.bench_storage " + " ".join(sys.argv[1:])
    doc = Path(__file__).resolve().parent.parent / "docs" / "bench-storage.md"
    # Hand-written analysis below NOTES_MARKER survives a re-run.
    existing = doc.read_text() if doc.exists() else ""
    notes = "\n" + existing[existing.index(NOTES_MARKER):] if NOTES_MARKER in existing else ""
    doc.write_text(
        "# Storage benchmark\n\n"
        f"Command: `{command.strip()}`\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}; "
        f"{args.mib} MiB per run, median of {args.runs} runs, files in "
        f"{args.dir or tempfile.gettempdir()} (page cache, no fsync on either side).\n\n"
        "Log = `Log.append_as_leader` (validate + CRC32C, producer checks, offsets, indexes) "
        "and `Log.read` + `FetchSlice.read_bytes`; raw = bare `os.write` / `os.pread` of the "
        "same bytes in the same run, same file flags. Goal: append >= 80% of raw.\n\n"
        + table + "\n" + notes
    )
    print(f"\nwritten to {doc}")


if __name__ == "__main__":
    main()
