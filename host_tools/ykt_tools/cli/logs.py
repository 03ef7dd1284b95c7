"""`ykt logs pull --port P --out DIR` copies the taps a device has not
uploaded yet into authenticated batch files (sealed on the device);
`ykt logs upload DIR --backoffice URL` posts them later. Idempotent with the
device's own uploads: the back office stores each (device, seq) once."""
import json
import sys

from ykt_tools.cli.deploy import add_conn_args


def register(sub):
    p = sub.add_parser("logs", help="copy unsent taps off a device (pull) and upload them later (upload)")
    s = p.add_subparsers(dest="logs_cmd", metavar="ACTION")
    s.required = True
    a = s.add_parser("pull", help="copy taps not yet uploaded into batch files")
    add_conn_args(a)
    a.add_argument("--out", required=True, help="folder for the batch files")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=_pull)
    b = s.add_parser("upload", help="post pulled batch files to the back office")
    b.add_argument("dir", help="folder written by ykt logs pull")
    b.add_argument("--backoffice", required=True, help="back office URL")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_upload)


def _pull(args):
    from ykt_tools.device import logs
    from ykt_tools.device.devconn import Device, DeviceError

    try:
        with Device(args.port, args.baud) as dev:
            rep = logs.pull(dev, args.out)
    except DeviceError as e:
        print("ykt logs pull: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        print("device %d: %d taps in %d files -> %s (device keeps them until the back office acknowledges)"
              % (rep["device"], rep["taps"], rep["files"], rep["dir"]))
    return 0


def _upload(args):
    from ykt_tools.device import logs
    from ykt_tools.device.devconn import DeviceError

    try:
        rep = logs.upload(args.dir, args.backoffice)
    except (DeviceError, OSError) as e:
        print("ykt logs upload: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        print("uploaded %d files: %d new taps, %d already there, %d files sent before"
              % (rep["files"], rep["new"], rep["dup"], rep["replayed"]))
        for f in rep["failed"]:
            print("FAILED " + f, file=sys.stderr)
    return 1 if rep["failed"] else 0
