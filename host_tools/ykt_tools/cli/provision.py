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


def add_backoffice_args(p):
    p.add_argument("--backoffice", required=True, help="back office URL the device uploads to")
    p.add_argument("--db", default=None, help="back-office database URL (register through its Python API)")
    p.add_argument("--admin-url", default=None, help="admin API URL (default: --backoffice) when no --db")
    p.add_argument("--operator-file", default=None,
                   help="operator credentials for the admin API: JSON {name,password} or name:password (chmod 600)")
    p.add_argument("--wifi-ssid", default=None, help="Wi-Fi network the device joins")
    p.add_argument("--wifi-key-file", default=None, help="file holding the Wi-Fi key (never on the command line)")
    p.add_argument("--force", action="store_true", help="re-provision an already provisioned device (new key)")


def register(sub):
    p = sub.add_parser("provision", help="give a device its identity and keys; register it with the back office")
    add_conn_args(p)
    add_identity_args(p)
    add_backoffice_args(p)
    p.add_argument("--no-reset", action="store_true", help="do not soft-reset the device afterwards")
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
                               wifi_ssid=args.wifi_ssid, wifi_key=wk, log=log)
            if not getattr(args, "no_reset", True):
                dev.soft_reset()
    except pv.AlreadyProvisioned as e:
        return 3, str(e)
    except (pv.ProvisionError, DeviceError) as e:
        return 1, str(e)
    return 0, rep


def _run(args):
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
