"""`ykt qr keygen|issue|show`: e-SSC QR tokens (docs/qr.md).

  ykt qr keygen -o qr.pem [--keys-out keys.bin]    a QR signing key (RSA-2048, usage QR)
  ykt qr issue --key qr.pem --token HEX --category N --valid 30 [--png out.png] [--json]   (a TEST issuer)
  ykt qr issue --db URL --token HEX ...            the back office's QR key (backoffice/qrissue)
  ykt qr show TEXT [--keys keys.bin] [--now T]     decode, and verify against trusted keys"""
import json
import sys


def register(sub):
    p = sub.add_parser("qr", help="mint, render and inspect e-SSC QR tokens")
    qs = p.add_subparsers(dest="qr_cmd", metavar="ACTION")
    qs.required = True
    k = qs.add_parser("keygen", help="new QR signing key (PEM, mode 600)")
    k.add_argument("-o", "--output", required=True)
    k.add_argument("--bits", type=int, default=2048, choices=(2048, 3072, 4096))
    k.add_argument("--keys-out", help="also write a trusted-keys payload holding its public key (U_QR)")
    k.set_defaults(func=_keygen)
    i = qs.add_parser("issue", help="mint a token as a TEST issuer (plays the holder's app; in production the "
                                    "national e-SSC platform issues codes: docs/qr.md)")
    src = i.add_mutually_exclusive_group(required=True)
    src.add_argument("--key", help="QR signing key, PEM")
    src.add_argument("--db", help="back-office database URL: use its QR key")
    i.add_argument("--token", required=True, help="holder's card token, 16 hex digits")
    i.add_argument("--category", type=int, default=0, help="concession category (taprec C_*)")
    i.add_argument("--flags", type=int, default=0, help="entitlement flags (fares E_*)")
    i.add_argument("--region", type=int, default=450100, help="GB/T 2260 region of the card")
    i.add_argument("--valid", type=int, default=30, help="validity in seconds, 1..60")
    i.add_argument("--iat", type=int, help="issue time, unix seconds (default now)")
    i.add_argument("--png", help="render the QR code to this PNG")
    i.add_argument("--scale", type=int, default=4)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_issue)
    s = qs.add_parser("show", help="decode a token's text; verify it with --keys")
    s.add_argument("text")
    s.add_argument("--keys", help="trusted-keys payload (data/keys.bin)")
    s.add_argument("--now", type=int, help="device time, unix seconds (default now)")
    s.set_defaults(func=_show)


def _err(msg):
    print("error: %s" % msg, file=sys.stderr)
    return 2


def _keygen(args):
    from ykt_tools.build import qr
    from ykt_tools.build import signing

    k = qr.new_key(args.bits)
    signing.save_private(k, args.output)
    out = {"kid": signing.keyid_hex(k), "bits": args.bits, "key": args.output}
    if args.keys_out:
        with open(args.keys_out, "wb") as f:
            f.write(qr.keys_payload([k]))
        out["keys"] = args.keys_out
    print(json.dumps(out))
    return 0


def _issue(args):
    from ykt_tools.build import qr
    from ykt_tools.build import signing

    try:
        if args.db:
            from ykt_tools.backoffice import api, qrissue

            text = qrissue.issue(api.engine(args.db), args.token, category=args.category,
                                 ent_flags=args.flags, region=args.region, valid_s=args.valid,
                                 iat=args.iat)["text"]
            tok = qr.from_text(text)
        else:
            try:
                key = signing.load_private(args.key)
            except (OSError, ValueError, TypeError) as e:
                return _err("cannot load key %s: %s" % (args.key, e))
            tok = qr.mint(key, args.token, args.category, args.flags, args.region, args.valid, args.iat)
            text = qr.to_text(tok)
    except ValueError as e:   # QRError, OpError
        return _err(e)
    out = qr.fields(tok)
    out["text"] = text
    out["issuer"] = "test"
    # Art. 8: codes are the national platform's; this one is for tests and demos
    print("TEST ISSUER: this code is signed by a test key (in production the national e-SSC platform issues "
          "ride codes; the back office only trusts its key: `ykt backoffice qr-issuer add`)", file=sys.stderr)
    if args.png:
        out.update(qr.render_png(text, args.png, args.scale))
        out["png"] = args.png
    else:
        out.update(qr.qr_info(text))
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        print(text)
        print("%d bytes, %d characters, QR version %d (%dx%d modules, ECC %s), valid %d s from %d"
              % (out["token_bytes"], len(text), out["qr_version"], out["qr_modules"], out["qr_modules"],
                 out["qr_error"], out["valid_s"], out["iat"]), file=sys.stderr)
    return 0


def _show(args):
    import time

    from ykt_tools.build import qr
    from ykt import taprec
    from ykt.sec import sigverify

    try:
        tok = qr.from_text(args.text)
        out = qr.fields(tok)
    except ValueError as e:
        return _err(e)
    if args.keys:
        with open(args.keys, "rb") as f:
            ring = sigverify.parse_keys(f.read())
        r, _ = qr.verify(args.text, ring, args.now if args.now is not None else int(time.time()))
        names = {v: k for k, v in vars(taprec).items() if k.startswith("R_")}
        out["verdict"] = "ok" if r == 0 else names.get(r, str(r))
    print(json.dumps(out, sort_keys=True))
    return 0 if out.get("verdict", "ok") == "ok" else 1
