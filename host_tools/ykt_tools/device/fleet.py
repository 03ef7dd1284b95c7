"""`ykt fleet provision devices.csv`: many devices, one after another, as the
technician plugs them in.

The CSV is checked whole first: any error gives a line-numbered report and
nothing is done. Then for each device not yet done: wait for a serial port
matching --port-glob, deploy (if the row or --board names a board), provision,
record the result in the state file next to the CSV (devices.csv.state.json,
written atomically after every device), and wait for the port to go away (the
technician unplugs it) before the next one. Interrupted runs resume where they
stopped: done devices are skipped.

CSV columns (header required; extra columns are refused): device_id, entry,
stop, direction (none|up|down|entry|exit|0..4), optional name, optional board."""
import csv
import glob
import json
import os
import time

from ykt_tools.device import provision as pv

COLUMNS = ("device_id", "entry", "stop", "direction", "name", "board")
REQUIRED = ("device_id", "entry")


class CsvError(Exception):
    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = problems


def load_csv(path, default_board=None):
    """-> list of row dicts; raises CsvError listing every problem with its line."""
    from ykt_tools.device import deploy

    problems, rows = [], []
    try:
        with open(path, newline="") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise CsvError(["%s: %s" % (path, e.strerror)])
    rd = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(rd)]
    except StopIteration:
        raise CsvError(["line 1: empty file (expected a header: %s)" % ",".join(COLUMNS)])
    for h in header:
        if h not in COLUMNS:
            problems.append("line 1: unknown column %r (columns: %s)" % (h, ", ".join(COLUMNS)))
    for h in REQUIRED:
        if h not in header:
            problems.append("line 1: missing column %r" % h)
    if problems:
        raise CsvError(problems)
    seen_id, seen_name, boards_ok = {}, {}, {}
    for ln, rec in enumerate(rd, 2):
        if not rec or all(not c.strip() for c in rec):
            continue
        if rec[0].lstrip().startswith("#"):
            continue
        if len(rec) != len(header):
            problems.append("line %d: %d fields, expected %d" % (ln, len(rec), len(header)))
            continue
        d = {h: c.strip() for h, c in zip(header, rec)}
        try:
            did, entry, stop, direction, _ = pv.check_params(d.get("device_id"), d.get("entry"), d.get("stop") or 0,
                                                             d.get("direction") or "none", "http://placeholder")
        except pv.ProvisionError as e:
            problems.append("line %d: %s" % (ln, e))
            continue
        name = d.get("name") or "dev-%d" % did
        if len(name) > 32:
            problems.append("line %d: name %r longer than 32 characters" % (ln, name))
        if did in seen_id:
            problems.append("line %d: device id %d already on line %d" % (ln, did, seen_id[did]))
        if name in seen_name:
            problems.append("line %d: name %r already on line %d" % (ln, name, seen_name[name]))
        seen_id.setdefault(did, ln)
        seen_name.setdefault(name, ln)
        board = d.get("board") or default_board
        if board:
            if board not in boards_ok:
                try:
                    deploy.board_file(board)
                    boards_ok[board] = None
                except deploy.DeployError as e:
                    boards_ok[board] = str(e)
            if boards_ok[board]:
                problems.append("line %d: %s" % (ln, boards_ok[board]))
        rows.append({"line": ln, "device_id": did, "entry": entry, "stop": stop, "direction": direction,
                     "name": name, "board": board})
    if not rows and not problems:
        problems.append("no devices in %s" % path)
    if problems:
        raise CsvError(problems)
    return rows


def state_path(csv_path):
    return csv_path + ".state.json"


def load_state(csv_path):
    try:
        with open(state_path(csv_path)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"done": {}, "failed": {}}


def save_state(csv_path, st):
    p = state_path(csv_path)
    with open(p + ".tmp", "w") as f:
        json.dump(st, f, indent=1, sort_keys=True)
    os.replace(p + ".tmp", p)


def wait_port(pattern, timeout_s, exclude=(), poll_s=0.2, stop=None):
    """First existing path matching pattern (not in exclude); None on timeout."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if stop is not None and stop():
            return None
        for p in sorted(glob.glob(pattern)):
            if p not in exclude and os.path.exists(p):
                return p
        time.sleep(poll_s)
    return None


def wait_gone(path, timeout_s, poll_s=0.2):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if not os.path.exists(path):
            return True
        time.sleep(poll_s)
    return False


def provision_all(csv_path, opts, rows, view=None, port_wait_s=600.0, unplug_wait_s=600.0):
    """opts: namespace with backoffice, db, admin_url, operator_file, baud, force,
    wifi_ssid, wifi_key_file, port_glob. view(event, row, detail) reports progress.
    Returns the state dict."""
    from ykt_tools.cli import provision as cli_provision
    from ykt_tools.device import deploy
    from ykt_tools.device.devconn import Device, DeviceError

    view = view or (lambda ev, row, detail: None)
    st = load_state(csv_path)
    for row in rows:
        key = str(row["device_id"])
        if key in st["done"]:
            view("skip", row, "done earlier")
            continue
        view("wait", row, opts.port_glob)
        port = wait_port(opts.port_glob, port_wait_s)
        if port is None:
            view("timeout", row, "no device plugged in")
            break
        view("found", row, port)
        rc, rep = 0, None
        if row["board"]:
            try:
                with Device(port, opts.baud) as dev:
                    d = deploy.deploy(dev, row["board"])
                view("deployed", row, "pushed %d, skipped %d" % (d["pushed"], d["skipped"]))
            except (DeviceError, deploy.DeployError) as e:
                rc, rep = 1, "deploy: %s" % e
        if rc == 0:
            rc, rep = cli_provision.run_one(opts, port, row["device_id"], row["entry"], row["stop"],
                                            row["direction"], row["name"])
        if rc == 0:
            st["done"][key] = {"name": row["name"], "port": port, "at": int(time.time())}
            st["failed"].pop(key, None)
            view("done", row, port)
        else:
            st["failed"][key] = {"line": row["line"], "error": str(rep)[:300]}
            view("failed", row, str(rep))
        save_state(csv_path, st)
        view("unplug", row, port)
        if not wait_gone(port, unplug_wait_s):
            view("timeout", row, "device not unplugged")
            break
    return st
