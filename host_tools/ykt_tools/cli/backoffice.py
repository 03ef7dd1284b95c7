"""`ykt backoffice ...`: run and operate the back office. --db takes
sqlite:///path.db (default: $YKT_DB or sqlite:///ykt-backoffice.db) or
postgresql://user@host/db. There are no default credentials: create the first
operator with `ykt backoffice operator add NAME --role operator`."""
import argparse
import getpass
import json
import os
import sys

DEFAULT_DB = "sqlite:///ykt-backoffice.db"


def register(sub):
    p = sub.add_parser("backoffice", help="back office: serve, operators, devices, cards, settle, export")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=os.environ.get("YKT_DB", DEFAULT_DB),
                        help="database URL (default $YKT_DB or %s)" % DEFAULT_DB)
    bs = p.add_subparsers(dest="bo_cmd", metavar="ACTION")
    bs.required = True

    s = bs.add_parser("serve", parents=[common], help="run the HTTP server (device API, admin API, dashboard)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--workers", type=int, default=1,
                   help="worker processes sharing the port (stateless; SQLite writers take turns)")
    s.set_defaults(func=_serve)

    s = bs.add_parser("migrate", parents=[common], help="create/upgrade the schema (alembic) and exit")
    s.set_defaults(func=_migrate)

    s = bs.add_parser("operator", help="operator accounts")
    os_ = s.add_subparsers(dest="op_cmd", metavar="ACTION")
    os_.required = True
    a = os_.add_parser("add", parents=[common], help="add an operator (password from a prompt or --password-file)")
    a.add_argument("name")
    a.add_argument("--role", choices=("viewer", "operator"), required=True)
    a.add_argument("--password-file", help="file whose first line is the password")
    a.set_defaults(func=_op_add)

    s = bs.add_parser("device", help="devices and their keys")
    ds = s.add_subparsers(dest="dev_cmd", metavar="ACTION")
    ds.required = True
    a = ds.add_parser("register", parents=[common], help="register a device; prints its key ONCE")
    a.add_argument("name")
    a.add_argument("--kind", default="validator", choices=("validator", "gate", "ferry", "handheld"))
    a.add_argument("--entry", type=int, default=0, help="catalog entry id the device serves")
    a.add_argument("--id", type=int, help="device id (default: next free)")
    a.add_argument("--out", help="write the provisioning JSON (key included) to this file (mode 0600)")
    a.set_defaults(func=_dev_register)
    a = ds.add_parser("list", parents=[common], help="fleet status")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=_dev_list)
    for act in ("rekey", "deactivate", "activate", "gaps", "sync-now", "upload-now"):
        a = ds.add_parser(act, parents=[common], help="%s a device" % act)
        a.add_argument("device", help="id or name ('all' for sync-now / upload-now)")
        a.set_defaults(func=_dev_action, action=act)

    s = bs.add_parser("card-status", parents=[common], help="report a card lost/suspended/cancelled/replaced/restored")
    s.add_argument("status", choices=("lost", "suspended", "cancelled", "replaced", "restored"))
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--token", help="card token, 16 hex digits")
    g.add_argument("--card-id", help="card identification code, 32 hex digits (tokenized here, not stored)")
    g.add_argument("--card-no", help="card number, 9 characters (found through the card registry)")
    g.add_argument("--citizen-id", help="holder's citizen ID, 18 characters (found through the card registry: "
                   "the holder's cards in use, or for restored the ones on the deny list)")
    s.add_argument("--replaced-by", help="the replacement card: token (16 hex), identification code (32 hex) "
                   "or card number (9 characters)")
    s.add_argument("--note", default="")
    s.add_argument("--json", action="store_true", help="print the result as JSON (the default output too)")
    s.set_defaults(func=_card)

    s = bs.add_parser("registry-import", parents=[common],
                      help="import a card-registry CSV file (docs/registry-import.md): all rows or none")
    s.add_argument("file")
    s.add_argument("--json", action="store_true", help="print the result as JSON (the default output too)")
    s.set_defaults(func=_registry_import)

    s = bs.add_parser("publish", parents=[common], help="validate, sign and publish fares|catalog|config")
    s.add_argument("kind", choices=("fares", "catalog", "config"))
    s.add_argument("file", help="compiled file (fares_compile output) or JSON (config)")
    s.add_argument("--device", type=int, default=0, help="config for one device id (default: all)")
    s.set_defaults(func=_publish)

    s = bs.add_parser("entitlement", parents=[common], help="set an entitlement (then: entitlements-publish)")
    s.add_argument("token")
    s.add_argument("--concession", type=int, required=True, help="ykt.taprec C_* code")
    s.add_argument("--flags", type=int, default=0, help="ykt.rules.fares E_* bits")
    s.add_argument("--from", dest="valid_from", type=int, default=0)
    s.add_argument("--to", dest="valid_to", type=int, default=99991231)
    s.add_argument("--remove", action="store_true")
    s.set_defaults(func=_ent)
    s = bs.add_parser("entitlements-publish", parents=[common], help="compile and publish the entitlement list")
    s.set_defaults(func=_ent_pub)

    s = bs.add_parser("keys", parents=[common],
                      help="signing keys: init | rotate | retire, or add-release --pub PEM (trust a release key)")
    s.add_argument("action", choices=("init", "rotate", "retire", "add-release"))
    s.add_argument("--pub", default=None, help="add-release: the release PUBLIC key PEM (`ykt release keygen`)")
    s.add_argument("--bits", type=int, default=None)
    s.set_defaults(func=_keys)

    s = bs.add_parser("qr-issuer", parents=[common],
                      help="e-SSC ride-code issuer keys the fleet trusts: add --name N --pub PEM | retire --kid K | list "
                           "(production: the national platform's key; docs/qr.md)")
    s.add_argument("action", choices=("add", "retire", "list"))
    s.add_argument("--name", help="add: who issues with this key, e.g. the national e-SSC platform")
    s.add_argument("--pub", help="add: the issuer's RSA-2048 PUBLIC key, PEM")
    s.add_argument("--kid", help="retire: the key id (16 hex digits, see list)")
    s.set_defaults(func=_qr_issuer)

    s = bs.add_parser("settle", parents=[common], help="settle one service day")
    s.add_argument("--day", type=int, required=True, help="YYYYMMDD (UTC+8 service day)")
    s.add_argument("--cap", type=int, help="set the daily cap in fen first (0 = none)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_settle)

    s = bs.add_parser("account", parents=[common], help="register a card's payment account (acquirer, mandate)")
    s.add_argument("--acquirer", required=True, help="the acquiring bank's code, e.g. ICBC-GX")
    s.add_argument("--mandate", required=True, help="the debit mandate the bank knows the account by")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--token")
    g.add_argument("--card-id")
    g.add_argument("--card-no")
    s.set_defaults(func=_account)

    s = bs.add_parser("collect", parents=[common],
                      help="collection files of a settled day, one per acquirer (docs/backoffice.md, Collection)")
    s.add_argument("--day", type=int, required=True)
    s.add_argument("--out-dir", default=".", help="where to write collection-<acquirer>-<day>-<id>.csv")
    s.set_defaults(func=_collect)

    s = bs.add_parser("collect-return", parents=[common],
                      help="import an acquirer's return file: returned items make their cards unpaid")
    s.add_argument("file")
    s.set_defaults(func=_collect_return)

    s = bs.add_parser("arrears", parents=[common], help="cards with returned collection items not yet paid")
    s.add_argument("--token")
    s.set_defaults(func=_arrears)

    s = bs.add_parser("pay", parents=[common], help="the holder paid the arrears: the card is accepted again")
    s.add_argument("--token", required=True)
    s.add_argument("--amount", type=int, required=True, help="fen; must equal the arrears")
    s.add_argument("--ref", required=True, help="payment reference (counter receipt, app order)")
    s.set_defaults(func=_pay)

    s = bs.add_parser("report", parents=[common],
                      help="taps, riders, fares and concession value of settled days, by route|vehicle|shift|"
                           "card-type|concession (the subsidy claim)")
    s.add_argument("--day", type=int, required=True, help="first service day, YYYYMMDD (UTC+8)")
    s.add_argument("--to", type=int, help="last service day (default: --day)")
    s.add_argument("--by", required=True, choices=("route", "vehicle", "shift", "card-type", "concession"))
    s.add_argument("--format", choices=("csv", "parquet", "xlsx"), default="csv")
    s.add_argument("--out", default="-", help="output file ('-' = stdout, csv only)")
    s.set_defaults(func=_report)

    s = bs.add_parser("export", parents=[common], help="export taps or settlements (pseudonymous)")
    s.add_argument("what", choices=("taps", "settlements"))
    s.add_argument("--format", choices=("csv", "parquet"), default="csv")
    s.add_argument("--out", required=True, help="output file ('-' = stdout, csv only)")
    s.add_argument("--from", dest="day_from", type=int, default=0)
    s.add_argument("--to", dest="day_to", type=int, default=99991231)
    s.add_argument("--rekey", action="store_true", help="re-pseudonymize tokens with the export key")
    s.set_defaults(func=_export)


def _eng(args):
    from ykt_tools.backoffice.db import open_db
    return open_db(args.db)


def _actor():
    return "cli:" + (os.environ.get("SUDO_USER") or os.environ.get("USER") or "unknown")


def _fail(msg):
    print("error: %s" % msg, file=sys.stderr)
    return 2


def _serve(args):
    from ykt_tools.backoffice import server
    print("back office on http://%s:%d (dashboard /dashboard/, OpenAPI /openapi.json)" % (args.host, args.port),
          file=sys.stderr)
    if not 1 <= args.workers <= 64:
        return _fail("--workers must be 1..64")
    server.serve(args.db, args.host, args.port, workers=args.workers)
    return 0


def _migrate(args):
    _eng(args)
    print("schema up to date")
    return 0


def _op_add(args):
    from ykt_tools.backoffice import auth
    if args.password_file:
        with open(args.password_file) as f:
            pw = f.readline().rstrip("\r\n")
    else:
        pw = getpass.getpass("password for %s: " % args.name)
        if pw != getpass.getpass("again: "):
            return _fail("passwords differ")
    try:
        auth.add_operator(_eng(args), args.name, args.role, pw, actor=_actor())
    except ValueError as e:
        return _fail(e)
    print("operator %s (%s) added" % (args.name, args.role))
    return 0


def _dev_register(args):
    from ykt_tools.backoffice import ops
    try:
        d = ops.register_device(_eng(args), args.name, args.kind, args.entry, args.id, actor=_actor())
    except ops.OpError as e:
        return _fail(e)
    txt = json.dumps(d, indent=2)
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(txt + "\n")
        print("device %d registered; provisioning file %s (holds the key: keep it secret)" % (d["id"], args.out))
    else:
        print(txt)
        print("# the key is shown once: provision it now", file=sys.stderr)
    return 0


def _dev_list(args):
    from ykt_tools.backoffice import ops
    devs = ops.list_devices(_eng(args))
    if args.json:
        print(json.dumps(devs, indent=2))
        return 0
    print("%5s %-16s %-9s %5s %11s %8s %6s %8s %8s" % ("id", "name", "kind", "entry", "last_seen", "dl_ver",
                                                      "behind", "backlog", "acked"))
    for d in devs:
        print("%5d %-16s %-9s %5d %11s %8s %6s %8s %8d" % (d["id"], d["name"][:16], d["kind"], d["entry"],
                                                          d["last_seen"] or "-", d["dl_ver"], d["dl_behind"],
                                                          d["backlog"], d["seq_acked"]))
    return 0


def _dev_action(args):
    from ykt_tools.backoffice import ops
    eng = _eng(args)
    try:
        if args.action == "rekey":
            print(json.dumps(ops.rekey_device(eng, args.device, actor=_actor())))
        elif args.action == "gaps":
            print(json.dumps(ops.seq_gaps(eng, args.device)))
        elif args.action in ops.REQUESTS:
            print(json.dumps(ops.request_device(eng, args.device, args.action, actor=_actor())))
        else:
            ops.set_device_active(eng, args.device, args.action == "activate", actor=_actor())
    except ops.OpError as e:
        return _fail(e)
    return 0


def _card(args):
    from ykt_tools.backoffice import ops, registry
    by = [k for k in ("token", "card_id", "card_no", "citizen_id") if getattr(args, k)][0]
    try:
        r = registry.set_status(_eng(args), args.status, by, getattr(args, by), replaced_by=args.replaced_by,
                                note=args.note, actor=_actor())
    except ops.OpError as e:
        return _fail(e)
    print(json.dumps(r))
    return 0


def _registry_import(args):
    from ykt_tools.backoffice import ops, registry
    try:
        with open(args.file, "rb") as f:
            data = f.read(registry.MAX_BYTES + 1)
        r = registry.import_file(_eng(args), data, name=os.path.basename(args.file), actor=_actor())
    except OSError as e:
        return _fail("%s: %s" % (args.file, e.strerror))
    except (ops.OpError, ValueError) as e:
        return _fail(e)
    print(json.dumps(r))
    return 0


def _publish(args):
    from ykt_tools.backoffice import ops
    with open(args.file, "rb") as f:
        data = f.read(1 << 20 + 1)
    try:
        print(json.dumps(ops.publish_file(_eng(args), args.kind, data, ident=args.device, actor=_actor())))
    except ops.OpError as e:
        return _fail(e)
    return 0


def _ent(args):
    from ykt_tools.backoffice import ops
    try:
        if args.remove:
            ops.remove_entitlement(_eng(args), args.token, actor=_actor())
        else:
            ops.set_entitlement(_eng(args), args.token, args.concession, args.flags, args.valid_from,
                                args.valid_to, actor=_actor())
    except ops.OpError as e:
        return _fail(e)
    return 0


def _ent_pub(args):
    from ykt_tools.backoffice import ops
    print(json.dumps(ops.publish_entitlements(_eng(args), actor=_actor())))
    return 0


def _keys(args):
    from ykt_tools.backoffice import ops
    eng = _eng(args)
    try:
        if args.action == "init":
            print("created" if ops.ensure_signing_key(eng, args.bits, actor=_actor()) else "a key exists")
        elif args.action == "rotate":
            print(json.dumps(ops.rotate_keys(eng, args.bits, actor=_actor())))
        elif args.action == "add-release":
            from ykt_tools.backoffice import releasekeys
            if not args.pub:
                raise ops.OpError("add-release needs --pub PEM")
            with open(args.pub, "rb") as f:
                ver = releasekeys.add_release_key(eng, f.read(), actor=_actor())
            print("release key trusted; keys file version %d (devices pick it up at their next sync)" % ver)
        else:
            print(json.dumps(ops.retire_keys(eng, actor=_actor())))
    except ops.OpError as e:
        return _fail(e)
    return 0


def _settle(args):
    from ykt_tools.backoffice import settle
    eng = _eng(args)
    if args.cap is not None:
        settle.set_policy(eng, args.cap, actor=_actor())
    r = settle.settle_day(eng, args.day, actor=_actor())
    print(json.dumps(r) if args.json else "day %(day)d: %(cards)d cards, %(taps)d taps, %(amount)d fen "
          "(provisional %(provisional)d)" % r)
    return 0


def _export(args):
    from ykt_tools.backoffice import auth, export
    eng = _eng(args)
    if args.out == "-":
        if args.format != "csv":
            return _fail("parquet needs --out FILE")
        n = export.export(eng, args.what, "csv", sys.stdout.buffer, args.day_from, args.day_to, args.rekey)
    else:
        with open(args.out, "wb") as f:
            n = export.export(eng, args.what, args.format, f, args.day_from, args.day_to, args.rekey)
    with eng.begin() as c:
        auth.audit(c, _actor(), "export." + args.what, args.format, rows=n, rekey=args.rekey)
    print("%d rows" % n, file=sys.stderr)
    return 0


def _report(args):
    from ykt_tools.backoffice import auth, ops, report
    eng = _eng(args)
    try:
        rep = report.build(eng, args.day, args.to or args.day, args.by)
        if args.out == "-":
            if args.format != "csv":
                return _fail("%s needs --out FILE" % args.format)
            report.write(rep, "csv", sys.stdout.buffer)
        else:
            with open(args.out, "wb") as f:
                report.write(rep, args.format, f)
    except ops.OpError as e:
        return _fail(e)
    with eng.begin() as c:
        auth.audit(c, _actor(), "report." + args.by, args.format, day_from=rep["from"], day_to=rep["to"],
                   rows=len(rep["rows"]))
    print("%d groups; fares %d fen, settlement %d fen: %s" % (
        len(rep["rows"]), rep["totals"]["fares"], rep["settlement"],
        "reconciled" if rep["reconciled"] else "NOT RECONCILED"), file=sys.stderr)
    return 0 if rep["reconciled"] else 1


def _account(args):
    from ykt_tools.backoffice import collect, ops
    try:
        print(json.dumps(collect.set_account(_eng(args), args.acquirer, args.mandate, token=args.token,
                                             card_id=args.card_id, card_no=args.card_no, actor=_actor())))
    except ops.OpError as e:
        return _fail(e)
    return 0


def _collect(args):
    from ykt_tools.backoffice import collect, ops
    try:
        r = collect.create(_eng(args), args.day, actor=_actor())
    except ops.OpError as e:
        return _fail(e)
    os.makedirs(args.out_dir, exist_ok=True)
    for f in r["files"]:
        path = os.path.join(args.out_dir, "collection-%s-%d-%d.csv" % (f["acquirer"], r["day"], f["id"]))
        with open(path, "w", newline="") as fh:
            fh.write(f["body"])
        print("%s: %d items, %d fen, sha256 %s" % (path, f["items"], f["amount"], f["sha256"]))
    u = r["unassigned"]
    if u["cards"]:
        print("not collected: %d cards without a payment account, %d fen" % (u["cards"], u["amount"]))
    return 0


def _collect_return(args):
    from ykt_tools.backoffice import collect, ops
    with open(args.file, "rb") as f:
        data = f.read(collect.MAX_FILE + 1)
    try:
        print(json.dumps(collect.import_return(_eng(args), data, actor=_actor())))
    except ops.OpError as e:
        return _fail(e)
    return 0


def _arrears(args):
    from ykt_tools.backoffice import collect, ops
    try:
        print(json.dumps(collect.arrears(_eng(args), args.token), indent=1))
    except ops.OpError as e:
        return _fail(e)
    return 0


def _pay(args):
    from ykt_tools.backoffice import collect, ops
    try:
        print(json.dumps(collect.pay(_eng(args), args.token, args.amount, args.ref, actor=_actor())))
    except ops.OpError as e:
        return _fail(e)
    return 0


def _qr_issuer(args):
    from ykt_tools.backoffice import ops, qrissue
    eng = _eng(args)
    try:
        if args.action == "list":
            print(json.dumps(qrissue.issuers(eng), indent=1))
        elif args.action == "add":
            if not args.name or not args.pub:
                raise ops.OpError("add needs --name and --pub")
            with open(args.pub, "rb") as f:
                r = qrissue.add_issuer(eng, args.name, f.read(8192), actor=_actor())
            print("issuer key %s (%s) trusted; keys file version %d (devices accept its codes after their next "
                  "sync)" % (r["kid"], r["issuer"], r["keys_version"]))
        else:
            if not args.kid:
                raise ops.OpError("retire needs --kid")
            r = qrissue.retire_issuer(eng, args.kid, actor=_actor())
            print("issuer key %s retired; keys file version %d" % (r["kid"], r["keys_version"]))
    except ops.OpError as e:
        return _fail(e)
    return 0
