"""`ykt fleet provision devices.csv --port-glob '/dev/ttyUSB*' --backoffice URL
(--db URL | --admin-url URL --operator-file FILE) [--board B]`: provision many
devices one after another as they are plugged in; progress view and summary
table on a terminal; resumable (state file next to the CSV). A CSV with errors
gives a line-numbered report and nothing is done (exit 2)."""
import sys

from ykt_tools.cli.provision import add_backoffice_args


def register(sub):
    p = sub.add_parser("fleet", help="provision many devices from a CSV as they are plugged in")
    s = p.add_subparsers(dest="fleet_cmd", metavar="ACTION")
    s.required = True
    a = s.add_parser("provision", help="deploy + provision every device listed in a CSV")
    a.add_argument("csv", help="devices.csv: device_id,entry[,stop,direction,name,board]")
    a.add_argument("--port-glob", default="/dev/ttyUSB*", help="where devices appear (default /dev/ttyUSB*)")
    a.add_argument("--baud", type=int, default=115200)
    a.add_argument("--board", default=None, help="board for rows without a board column (deploys first)")
    a.add_argument("--port-wait", type=float, default=600.0, help="seconds to wait for the next device")
    add_backoffice_args(a)
    a.add_argument("--check", action="store_true", help="only check the CSV")
    a.set_defaults(func=_run)


def _view(tty):
    if not tty:
        def plain(ev, row, detail):
            if ev in ("done", "failed", "skip", "timeout"):
                print("%-7s device %d (%s, line %d): %s" % (ev, row["device_id"], row["name"], row["line"], detail))
                sys.stdout.flush()
        return plain, None
    from rich.console import Console

    con = Console(stderr=True)
    msgs = {"wait": "[cyan]plug in[/] device %d (%s) ... waiting for %s",
            "found": "  found on %s", "deployed": "  firmware: %s", "done": "  [green]provisioned[/] (%s): unplug it",
            "failed": "  [red]failed[/]: %s", "skip": "device %d (%s): %s", "timeout": "  [yellow]stopped[/]: %s"}

    def rich_view(ev, row, detail):
        m = msgs.get(ev)
        if m is None:
            return
        if ev in ("wait", "skip"):
            con.print(m % (row["device_id"], row["name"], detail))
        else:
            con.print(m % detail)
    return rich_view, con


def _summary(rows, st, con):
    def status(r):
        k = str(r["device_id"])
        if k in st["done"]:
            return "done", st["done"][k].get("port", "")
        if k in st["failed"]:
            return "failed", st["failed"][k]["error"]
        return "pending", ""
    if con is not None:
        from rich.table import Table

        t = Table(title="fleet provisioning")
        for c in ("line", "device", "name", "entry", "status", "detail"):
            t.add_column(c)
        for r in rows:
            s, d = status(r)
            t.add_row(str(r["line"]), str(r["device_id"]), r["name"], str(r["entry"]),
                      {"done": "[green]done[/]", "failed": "[red]failed[/]"}.get(s, s), d)
        con.print(t)
    else:
        print("line  device      name                  status   detail")
        for r in rows:
            s, d = status(r)
            print("%4d  %-10d  %-20s  %-7s  %s" % (r["line"], r["device_id"], r["name"], s, d))


def _run(args):
    from ykt_tools.device import fleet

    try:
        rows = fleet.load_csv(args.csv, args.board)
    except fleet.CsvError as e:
        print("ykt fleet: %s has errors, nothing was done:" % args.csv, file=sys.stderr)
        for p in e.problems:
            print("  " + p, file=sys.stderr)
        return 2
    if args.check:
        print("%s: %d devices, OK" % (args.csv, len(rows)))
        return 0
    view, con = _view(sys.stderr.isatty())
    try:
        st = fleet.provision_all(args.csv, args, rows, view, port_wait_s=args.port_wait)
    except KeyboardInterrupt:
        print("interrupted: progress is saved in %s; run the same command to resume" % fleet.state_path(args.csv),
              file=sys.stderr)
        return 130
    _summary(rows, st, con)
    pending = [r for r in rows if str(r["device_id"]) not in st["done"]]
    print("%d done, %d failed, %d pending" % (len(st["done"]), len(st["failed"]), len(pending) - len(
        [r for r in pending if str(r["device_id"]) in st["failed"]])))
    return 0 if not pending else 1
