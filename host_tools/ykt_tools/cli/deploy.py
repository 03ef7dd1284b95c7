"""`ykt deploy --port P --board B [--baud N] [--config FILE] [--bundle FILE]`:
push the firmware (only files whose SHA-256 differs), board.json and
optionally config.json to a device running stock MicroPython; verify after.
Ends with `pushed N, skipped M, removed K`. Exit 2 on bad input, 1 on a device error."""
import json
import sys


def add_conn_args(p):
    p.add_argument("--port", "-p", required=True, help="serial port of the device (e.g. /dev/ttyUSB0)")
    p.add_argument("--baud", "-b", type=int, default=115200, help="serial baud rate (default 115200)")


def register(sub):
    p = sub.add_parser("deploy", help="push changed firmware files, board file and config to a device")
    add_conn_args(p)
    p.add_argument("--board", required=True, help="board name (boards/<name>.json)")
    p.add_argument("--config", default=None, help="config.json to push (default: keep the device's)")
    p.add_argument("--bundle", default=None, help="install a signed release bundle (verified by the device) instead of a build")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_run)


def _run(args):
    from ykt_tools.device import deploy
    from ykt_tools.device.devconn import Device, DeviceError

    try:
        deploy.board_file(args.board)
        cfg = None
        if args.config:
            with open(args.config) as f:
                cfg = json.load(f)
    except (deploy.DeployError, OSError, ValueError) as e:
        print("ykt deploy: %s" % e, file=sys.stderr)
        return 2
    try:
        with Device(args.port, args.baud) as dev:
            if args.bundle:
                # A signed release goes through the device's own verification,
                # exactly as an over-the-air download would.
                from ykt_tools.build import release

                try:
                    r = release.install_over_usb(dev, args.bundle)
                except release.ReleaseError as e:
                    print("ykt deploy: bundle refused: %s" % e, file=sys.stderr)
                    return 1
                print(json.dumps(r) if args.json else "installed version %s on trial" % r.get("version"))
                return 0
            rep = deploy.deploy(dev, args.board, config=cfg, bundle=None,
                                progress=deploy._progress(sys.stderr.isatty()))
    except DeviceError as e:
        print("ykt deploy: %s" % e, file=sys.stderr)
        return 1
    except deploy.DeployError as e:
        print("ykt deploy: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        print("pushed %d, skipped %d, removed %d (%d files, %s)"
              % (rep["pushed"], rep["skipped"], rep["removed"], rep["files"], rep["arch"]))
    return 0
