"""`ykt provision --port P --device-id N --entry E --stop S --direction D
--backoffice URL (--db URL | --admin-url URL --operator-file FILE) [--force]`:
register the device with the back office and write its identity, profile,
trusted keys and secrets (NVS) to it. Secrets are never printed.
Exit 0 done, 1 device/back-office error, 2 bad input, 3 already provisioned."""
import json
import sys

from ykt_tools.cli.deploy import add_conn_args


def add_identity_args(p, required=True):
    p.add_argument("--device-id", type=int, required=required, help="device id (1..2^31-1), unique in the back office")
    p.add_argument("--entry", type=int, required=required, help="catalog entry id (route, ferry line, site)")
    p.add_argument("--stop", type=int, default=0, help="stop / gate number (default 0)")
    p.add_argument("--direction", default="none", help="none|up|down|entry|exit or 0..4 (default none)")
    p.add_argument("--name", default=None, help="device name in the back office (default dev-<id>)")


def add_backoffice_args(p, required=True):
    p.add_argument("--backoffice", required=required, help="back office URL the device uploads to")
    p.add_argument("--db", default=None, help="back-office database URL (register through its Python API)")
    p.add_argument("--admin-url", default=None, help="admin API URL (default: --backoffice) when no --db")
    p.add_argument("--operator-file", default=None,
                   help="operator credentials for the admin API: JSON {name,password} or name:password (chmod 600)")
    p.add_argument("--wifi-ssid", default=None, help="Wi-Fi network the device joins")
    p.add_argument("--wifi-key-file", default=None, help="file holding the Wi-Fi key (never on the command line)")
    p.add_argument("--force", action="store_true", help="re-provision an already provisioned device (new key)")
    p.add_argument("--insecure-dev", action="store_true",
                   help="development board only: provision although flash/NVS encryption is off (secrets in plain NVS)")


def register(sub):
    p = sub.add_parser("provision", help="give a device its identity and keys; register it with the back office")
    add_conn_args(p)
    add_identity_args(p, required=False)
    add_backoffice_args(p, required=False)
    p.add_argument("--no-reset", action="store_true", help="do not soft-reset the device afterwards")
    g = p.add_argument_group("--secure: turn on ESP32 flash encryption and NVS encryption (IRREVERSIBLE eFuses)")
    g.add_argument("--secure", action="store_true", help="run the flash/NVS encryption steps instead of provisioning")
    g.add_argument("--dry-run", action="store_true", help="with --secure: print the commands, run nothing")
    g.add_argument("--board", default="bus_validator", help="board name or board JSON file (partitions)")
    g.add_argument("--key-dir", default=None, help="where this device's keys and encrypted images go (0600)")
    g.add_argument("--firmware-dir", default=None,
                   help="the secure MicroPython build: bootloader.bin, partition-table.bin, micropython.bin")
    g.add_argument("--virt-efuse", default=None, help="run the eFuse steps on espefuse's virtual chip in this file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_run)


def wifi_key(args):
    if not args.wifi_key_file:
        return None
    with open(args.wifi_key_file) as f:
        return f.read().strip()


def run_one(args, port, device_id, entry, stop, direction, name, log=None):
    """Provision the device on `port`; returns (exit code, summary or message)."""
    from ykt_tools.device import provision as pv
    from ykt_tools.device.devconn import Device, DeviceError

    try:
        pv.check_params(device_id, entry, stop, direction, args.backoffice)
        wk = wifi_key(args)
    except (pv.ProvisionError, OSError) as e:
        return 2, str(e)
    admin = None if args.db else (args.admin_url or args.backoffice)
    try:
        with Device(port, args.baud) as dev:
            rep = pv.provision(dev, device_id, entry, stop, direction, args.backoffice, db=args.db,
                               admin_url=admin, creds=args.operator_file, name=name, force=args.force,
                               wifi_ssid=args.wifi_ssid, wifi_key=wk, log=log,
                               insecure_dev=getattr(args, "insecure_dev", False))
            if not getattr(args, "no_reset", True):
                dev.soft_reset()
    except pv.AlreadyProvisioned as e:
        return 3, str(e)
    except (pv.ProvisionError, DeviceError) as e:
        return 1, str(e)
    return 0, rep


def _secure(args):
    import os

    from ykt_tools.device import deploy, secure

    if not (args.port or args.virt_efuse) or not args.key_dir or not args.firmware_dir:
        print("ykt provision --secure: needs --port (or --virt-efuse), --key-dir and --firmware-dir", file=sys.stderr)
        return 2
    path = args.board if os.path.isfile(args.board) else deploy.board_file(args.board)
    with open(path) as f:
        board = json.load(f)
    try:
        steps = secure.plan(board, args.port, args.key_dir, args.firmware_dir, virt_efuse=args.virt_efuse)
    except secure.SecureError as e:
        print("ykt provision --secure: %s" % e, file=sys.stderr)
        return 2
    if args.dry_run:
        if args.json:
            print(json.dumps([{"step": s.n, "what": s.what, "argv": s.argv, "irreversible": s.irreversible}
                              for s in steps], indent=1))
        else:
            print("\n".join(s.line() for s in steps))
        return 0
    os.makedirs(args.key_dir, mode=0o700, exist_ok=True)
    try:
        done = secure.run(steps, virt=bool(args.virt_efuse), log=lambda m: print(m, file=sys.stderr))
    except secure.SecureError as e:
        print("ykt provision --secure: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"steps": done, "key_dir": args.key_dir}, indent=1))
    else:
        print("flash and NVS encryption on (%d steps); keys in %s: keep them offline" % (len(done), args.key_dir))
    return 0


def _run(args):
    if args.secure:
        return _secure(args)
    missing = [o for o, v in (("--device-id", args.device_id), ("--entry", args.entry),
                              ("--backoffice", args.backoffice)) if v is None]
    if missing:
        print("ykt provision: the following arguments are required: %s" % ", ".join(missing), file=sys.stderr)
        return 2
    rc, rep = run_one(args, args.port, args.device_id, args.entry, args.stop, args.direction, args.name,
                      log=lambda m: print(m, file=sys.stderr) if sys.stderr.isatty() else None)
    if rc:
        print("ykt provision: %s" % rep, file=sys.stderr)
        return rc
    if args.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        print("provisioned device %d (%s, entry %d, stop %d, direction %d) -> %s; secrets in NVS: %s"
              % (rep["device_id"], rep["name"], rep["entry"], rep["stop"], rep["direction"], rep["backoffice"],
                 ", ".join(rep["secrets"])))
    return 0
