"""`ykt denylist build|delta|info|lookup`: deny-list images and deltas."""
import json
import sys


def register(sub):
    p = sub.add_parser("denylist", help="build, inspect and query deny-list images and deltas")
    ds = p.add_subparsers(dest="dl_cmd", metavar="ACTION")
    ds.required = True

    b = ds.add_parser("build", help="card status CSV -> deny-list image")
    b.add_argument("--input", required=True, help="status export CSV (token or card_id/card_no, status, since)")
    b.add_argument("--out", required=True, help="image file to write")
    b.add_argument("--version", required=True, type=int, help="list version (1 .. 2^32-1, increasing)")
    b.add_argument("--key-file", help="operator token key (hex or raw), needed for card identity rows")
    b.add_argument("--tokens", choices=("both", "card", "cardno"), default="both",
                   help="tokens to deny for identity rows (default both)")
    b.add_argument("--created", type=int, help="creation time, unix seconds (default now)")
    b.add_argument("--registry", help="card registry tokens (16 hex per line): build the province-scale "
                                      "format 3, exact over the registry (docs/denylist.md)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_build)

    d = ds.add_parser("delta", help="changes since a base image -> delta (<= 512 entries)")
    d.add_argument("--base", required=True, help="the image the devices hold")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="current status export CSV")
    src.add_argument("--new", help="current image")
    d.add_argument("--out", required=True)
    d.add_argument("--version", type=int, help="version after the delta (default: --new image's)")
    d.add_argument("--key-file")
    d.add_argument("--tokens", choices=("both", "card", "cardno"), default="both")
    d.add_argument("--created", type=int)
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_delta)

    i = ds.add_parser("info", help="verify an image or delta and print its header")
    i.add_argument("file")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_info)

    q = ds.add_parser("lookup", help="look tokens up with the firmware reader")
    q.add_argument("image")
    q.add_argument("tokens", nargs="+", help="16 hex digits each")
    q.add_argument("--delta", help="delta file applied on top")
    q.add_argument("--foreign", action="store_true", help="the cards are from another province (format 3)")
    q.set_defaults(func=_lookup)


def _err(msg):
    print("ykt denylist: %s" % msg, file=sys.stderr)
    return 2


def _out(res, as_json):
    if as_json:
        print(json.dumps(res, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        for k, v in res.items():
            print("%s: %s" % (k, v))


def _entries(args):
    from ykt_tools.build import denylist as B

    key = B.read_key(args.key_file) if args.key_file else None
    return B.load_status_csv(args.input, key, args.tokens)


def _build(args):
    from ykt_tools.build import denylist as B
    from ykt.rules.dlformat import DenyListError

    try:
        ents, summ = _entries(args)
        if args.registry:
            img = B.build_filter_image(ents, B.load_registry(args.registry), args.version, args.created)
        else:
            img = B.build_image(ents, args.version, args.created)
    except (B.InputError, OSError, ValueError, DenyListError) as e:
        return _err(str(e))
    with open(args.out, "wb") as f:
        f.write(img)
    res = B.describe(img)
    res["input"] = summ
    res["out"] = args.out
    _out(res, args.json)
    return 0


def _delta(args):
    from ykt_tools.build import denylist as B
    from ykt.rules.dlformat import DenyListError, parse_header

    try:
        with open(args.base, "rb") as f:
            base = f.read()
        if args.new:
            with open(args.new, "rb") as f:
                new = f.read()
            ents = B.image_entries(new)
            ver = args.version or parse_header(new).version
        else:
            ents, _s = _entries(args)
            ver = args.version
        if not ver:
            return _err("--version is required with --input")
        data = B.make_delta(base, ents, ver, args.created)
    except (B.InputError, OSError, ValueError, DenyListError) as e:
        return _err(getattr(e, "code", "") + " " + str(e) if hasattr(e, "code") else str(e))
    with open(args.out, "wb") as f:
        f.write(data)
    res = B.describe(data)
    res["out"] = args.out
    _out(res, args.json)
    return 0


def _info(args):
    from ykt_tools.build import denylist as B
    from ykt.rules.dlformat import DenyListError

    try:
        with open(args.file, "rb") as f:
            data = f.read()
        res = B.describe(data)
    except DenyListError as e:
        res = {"valid": False, "reason": e.code, "detail": e.msg}
        _out(res, args.json)
        return 1
    except OSError as e:
        return _err(str(e))
    res["valid"] = True
    _out(res, args.json)
    return 0


def _lookup(args):
    from ykt_tools.build import denylist  # noqa: F401  (puts firmware/ on the path)
    from yktsrv.dlbuild import FileDev, BlankDev
    from ykt.rules.denylist import DenyList
    from ykt.rules.dlformat import DenyListError, STATUS_NAMES

    try:
        dl = DenyList(FileDev(args.image), BlankDev())
        if dl.slot < 0:
            return _err("%s: not a valid image (%s)" % (args.image, dl.boot_reasons[0]))
        if args.delta:
            with open(args.delta, "rb") as f:
                dl.apply_delta(f.read())
        print("version %d (image %d, delta entries %d)" % (dl.version, dl.image_version, dl.delta_count))
        for t in args.tokens:
            s = dl.lookup(bytes.fromhex(t), 0, args.foreign)
            print("%s %s" % (t.lower(), STATUS_NAMES[s]))
    except (DenyListError, ValueError, OSError) as e:
        return _err("%s %s" % (getattr(e, "code", ""), e))
    return 0
