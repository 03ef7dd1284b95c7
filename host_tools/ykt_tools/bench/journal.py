"""Tap journal on littlefs: flash bytes, writes and erases per tap, capacity on a 4 MB board, wear.

Runs the real journal (firmware/ykt/journal.py) under the MicroPython unix port
on real littlefs (vfs.VfsLfs2) over a simulated 2 MB NOR flash (4 KiB blocks),
with `--other-kb` of other files (firmware .mpy, config) on the filesystem.
Firmware CPU (journal Python + littlefs C, the simulated flash's own time
subtracted) is unix-port time x 45. Flash latency is modeled with typical SPI NOR figures (4 KiB sector erase
45 ms, 256-byte page program 0.7 ms: W25Q32JV / GD25Q32 datasheets)."""
from ykt_tools.powercut import journal as powercut
from ykt_tools.sim import mp

TAPS_PER_DAY = 1500
ERASE_CYCLES = 100000
ERASE_MS = 45.0
PAGE_MS = 0.7
ESP32_FACTOR = 45


def add_args(p):
    p.add_argument("--taps", type=int, default=2000, help="taps appended on the simulated flash (default 2000)")
    p.add_argument("--fs-kb", type=int, default=2048, help="littlefs size in KiB (4 MB board: 2048)")
    p.add_argument("--other-kb", type=int, default=256, help="KiB of other files on the filesystem (default 256)")
    p.add_argument("--fill", action="store_true", help="append until the journal is full to count capacity exactly (slow)")


def run(args):
    # the power-cut sweep's worker measures the journal in its bench mode
    raw = mp.run("micropython", powercut.WORKER, ["bench", args.taps, args.fs_kb // 4, args.other_kb,
                                                  1 if args.fill else 0],
                 heap="64M", timeout=3600).require("journal bench")
    n = raw["taps"]
    bpt = raw["used_bytes"] / n
    erases_pt = raw["erases"] / n
    usable = (raw["fs_blocks_free_at_start"] - 8) * 4096  # the journal keeps 8 blocks in reserve
    taps_cap = raw.get("taps_until_full") or int(usable / bpt)
    erases_day = erases_pt * TAPS_PER_DAY
    # littlefs levels wear dynamically over the blocks it allocates: every
    # block not held by static files. Worst block: measured hottest block.
    rotating = raw["fs_blocks_free_at_start"]
    per_block_day = erases_day / rotating
    worst_day = raw["max_block_erases"] / n * TAPS_PER_DAY
    flash_ms = erases_pt * ERASE_MS + raw["prog_bytes"] / n / 256.0 * PAGE_MS
    cpu_ms = raw["cpu_append_us_unix"] * ESP32_FACTOR / 1000.0
    return {
        "flash_bytes_per_tap": round(bpt, 2),
        "record_bytes_per_tap": 40,
        "taps_per_4mb": taps_cap,
        "taps_per_4mb_measured": bool(raw.get("taps_until_full")),
        "days_at_1500_taps": round(taps_cap / TAPS_PER_DAY, 1),
        "writes_per_tap": round(raw["writes"] / n, 2),
        "progs_per_tap": round(raw["progs"] / n, 2),
        "prog_bytes_per_tap": round(raw["prog_bytes"] / n, 1),
        "erases_per_tap": round(erases_pt, 3),
        "erases_per_day": round(erases_day, 1),
        "erases_per_block_per_day_levelled": round(per_block_day, 2),
        "erases_per_block_per_day_worst_measured": round(worst_day, 2),
        "years_to_wear_out": round(ERASE_CYCLES / per_block_day / 365.0, 1),
        "years_to_wear_out_worst_block": round(ERASE_CYCLES / worst_day / 365.0, 1) if worst_day else None,
        "wear_10y_fraction_worst_block": round(worst_day * 3652 / ERASE_CYCLES, 3),
        "cpu_encode_us_unix": round(raw["cpu_encode_us_unix"], 1),
        "cpu_encode_ms_esp32": round(raw["cpu_encode_us_unix"] * ESP32_FACTOR / 1000.0, 2),
        "cpu_append_us_unix": round(raw["cpu_append_us_unix"], 1),
        "cpu_append_us_unix_min": round(raw["cpu_append_us_unix_min"], 1),
        "cpu_append_ms_esp32": round(cpu_ms, 2),
        "flash_sync_ms_modeled": round(flash_ms, 1),
        "append_to_durable_ms_esp32_modeled": round(cpu_ms + flash_ms, 1),
        "pending_100_ms_esp32": round(raw["cpu_pending100_us_unix"] * ESP32_FACTOR / 1000.0, 1),
        "pending_100_records": raw["pending_got"],
        "taps_measured": n,
        "fs_kb": args.fs_kb,
        "other_kb": args.other_kb,
    }
