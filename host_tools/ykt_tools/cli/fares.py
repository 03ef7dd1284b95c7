"""`ykt fares compile SRC -o OUT`, `ykt fares entitlements SRC -o OUT`,
`ykt fares show FILE` and `ykt catalog compile SRC -o OUT`."""
import json
import os
import sys


def register(sub):
    p = sub.add_parser("fares", help="compile fare tables and entitlement lists for the device")
    fs = p.add_subparsers(dest="fares_cmd", metavar="ACTION")
    fs.required = True
    c = fs.add_parser("compile", help="compile a fare source (data/fares/*.txt) to the binary table")
    c.add_argument("src")
    c.add_argument("-o", "--output", required=True)
    c.set_defaults(func=_compile_fares)
    e = fs.add_parser("entitlements", help="compile an entitlement list (token category [flags])")
    e.add_argument("src")
    e.add_argument("-o", "--output", required=True)
    e.set_defaults(func=_compile_ent)
    s = fs.add_parser("show", help="decode a compiled fare table or entitlement list as JSON")
    s.add_argument("file")
    s.set_defaults(func=_show)
    cp = sub.add_parser("catalog", help="compile the application catalog for the device")
    cs = cp.add_subparsers(dest="catalog_cmd", metavar="ACTION")
    cs.required = True
    cc = cs.add_parser("compile", help="compile data/catalog.json to the binary catalog")
    cc.add_argument("src")
    cc.add_argument("-o", "--output", required=True)
    cc.set_defaults(func=_compile_catalog)


def _run(fn, args):
    from ykt_tools.build.fares import CompileError

    try:
        with open(args.src, encoding="utf-8") as f:
            text = f.read()
        out = fn(text, args.src)
    except (OSError, CompileError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    tmp = args.output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, args.output)
    print("%s: %d bytes" % (args.output, len(out)))
    return 0


def _compile_fares(args):
    from ykt_tools.build.fares import compile_fares

    return _run(compile_fares, args)


def _compile_ent(args):
    from ykt_tools.build.fares import compile_entitlements

    return _run(compile_entitlements, args)


def _compile_catalog(args):
    from ykt_tools.build.fares import compile_catalog

    return _run(compile_catalog, args)


def _show(args):
    import ykt_tools.build.fares  # noqa: F401  (puts firmware/ on sys.path)
    from ykt.rules import fares as F

    with open(args.file, "rb") as f:
        buf = f.read()
    try:
        if buf[:4] == b"YKTE":
            e = F.Entitlements(buf)
            d = {"kind": "entitlements", "version": e.version, "entries": e.n}
        else:
            t = F.FareTable(buf)
            d = {"kind": "fares", "entry": t.entry, "version": t.version, "mode": F.MODE_NAMES[t.mode],
                 "fare": t.base, "double_tap_s": t.double_tap_s, "passback_s": t.passback_s,
                 "transfer_s": t.transfer_s, "companion_s": t.companion_s, "daily_free": t.daily_free,
                 "bands": len(t.bands), "ages": len(t.ages), "categories": len(t.cats),
                 "holidays": len(t.hols), "od_pairs": len(t.od)}
    except F.LoadError as e:
        print("error: %s: %s" % (args.file, e), file=sys.stderr)
        return 1
    print(json.dumps(d, indent=2, sort_keys=True))
    return 0
