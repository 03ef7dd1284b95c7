"""`ykt diagnose --port P [--json]`: reader self-test (PN532 version, RF
field, test card), versions, clock, journal backlog, last errors, heap; each
problem with what to do about it. Exit 0 healthy, 1 problems found or no device."""
import json
import sys

from ykt_tools.cli.deploy import add_conn_args


def register(sub):
    p = sub.add_parser("diagnose", help="self-test a device and say what to do about each problem")
    add_conn_args(p)
    p.add_argument("--polls", type=int, default=150, help="reader polls while waiting for the test card")
    p.add_argument("--json", action="store_true", help="print the device report and findings as JSON")
    p.set_defaults(func=_run)


def _run(args):
    from ykt_tools.device import diagnose
    from ykt_tools.device.devconn import Device, DeviceError

    try:
        with Device(args.port, args.baud) as dev:
            rep = diagnose.run(dev, args.polls)
    except DeviceError as e:
        print("ykt diagnose: %s" % e, file=sys.stderr)
        return 1
    fs = diagnose.findings(rep)
    bad = [f for f in fs if f[0] == "fail"]
    if args.json:
        print(json.dumps({"device": rep, "findings": [{"severity": s, "problem": p, "action": a} for s, p, a in fs]},
                         sort_keys=True))
        return 1 if bad else 0
    print("ykt-gate %s on %s, device id %s, reset cause %s" % (rep.get("version"), rep.get("board"),
                                                             rep.get("device_id"), rep.get("reset_cause")))
    j = rep.get("journal") or {}
    print("journal: next seq %s, backlog %s; heap free %s; clock %s" % (j.get("next_seq"), j.get("backlog"),
                                                                         rep.get("mem_free"), rep.get("clock")))
    for s, p, a in fs:
        print("%-4s %s%s" % (s.upper(), p, ("\n     -> " + a) if a else ""))
    return 1 if bad else 0
