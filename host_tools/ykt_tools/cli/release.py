"""`ykt release build|inspect|keygen` (application bundles and firmware images
for over-the-air updates, docs/operations.md) and `ykt ota-powercut [--full]` (power cuts
during an update on the real MicroPython + littlefs). Exit 2 on bad input,
1 when a bundle is refused or the sweep finds a violation."""
import json
import sys


def register(sub):
    p = sub.add_parser("release", help="build, inspect and sign application bundles and firmware images for OTA")
    rs = p.add_subparsers(dest="release_cmd", required=True)
    b = rs.add_parser("build", help="compile the firmware and write a signed bundle (or sign a firmware image)")
    b.add_argument("--version", required=True, help="MAJOR.MINOR.PATCH, higher than what devices run")
    b.add_argument("--out", required=True, help="file to write (e.g. ykt-1.4.2.ykb)")
    b.add_argument("--image", default=None, metavar="FILE",
                   help="sign this ESP32 firmware image (.bin with the application frozen in) instead of "
                        "building a bundle: a full update for boards without PSRAM")
    b.add_argument("--key", required=True, help="release private key (PEM, from `ykt release keygen`)")
    b.add_argument("--key-password-env", default=None, help="environment variable holding the PEM password")
    b.add_argument("--min-interp", default="1.22", help="minimum MicroPython version (default 1.22)")
    b.add_argument("--boards", default="", help="comma-separated board names (default: any board)")
    b.add_argument("--march", default="xtensawin", help="mpy-cross -march (default xtensawin: ESP32)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_build)
    i = rs.add_parser("inspect", help="check a bundle or firmware image as a device would and list it")
    i.add_argument("bundle", help="the signed release file (bundle or image)")
    i.add_argument("--key", action="append", default=[],
                   help="release key (PEM, private or public) to verify against; repeatable")
    i.add_argument("--board", default=None)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_inspect)
    k = rs.add_parser("keygen", help="make a release signing key (keep it offline)")
    k.add_argument("--out", required=True, help="private key PEM to write (mode 0600)")
    k.add_argument("--bits", type=int, default=3072)
    k.add_argument("--password-env", default=None, help="environment variable holding a password")
    k.set_defaults(func=_keygen)

    q = sub.add_parser("ota-powercut", help="cut power during an OTA update at flash writes; check the device recovers")
    q.add_argument("--full", action="store_true", help="every flash write of the update (hours)")
    q.add_argument("--sample", type=int, default=24, help="cut points when not --full (default 24)")
    q.add_argument("--jobs", type=int, default=2, help="MicroPython processes (default 2)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_powercut)


def _pw(env):
    import os

    if not env:
        return None
    v = os.environ.get(env)
    if v is None:
        raise ValueError("environment variable %s is not set" % env)
    return v.encode()


def _build(args):
    from ykt_tools.build import release
    from ykt_tools.build import signing

    try:
        key = signing.load_private(args.key, _pw(args.key_password_env))
        boards = [b.strip() for b in args.boards.split(",") if b.strip()]
        if args.image:
            if boards:
                raise release.ReleaseError("--boards does not apply to an image: target the roll-out "
                                           "at a board (board:<name>) instead")
            rep = release.build_image(args.version, args.image, args.out, key)
        else:
            rep = release.build_bundle(args.version, args.out, key, args.min_interp, boards, args.march)
    except (release.ReleaseError, ValueError, OSError, TypeError) as e:
        print("ykt release build: %s" % e, file=sys.stderr)
        return 2
    except RuntimeError as e:   # mpy-cross failed
        print("ykt release build: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rep, sort_keys=True))
    elif rep["kind"] == "image":
        print("%s: firmware image version %s for %s, %d bytes (image %d), key %s"
              % (args.out, rep["version"], rep["chip"], rep["bytes"], rep["payload"], rep["key"]))
    else:
        print("%s: version %s, %d files, %d bytes, key %s, min MicroPython %s, boards %s"
              % (args.out, rep["version"], rep["files"], rep["bytes"], rep["key"], rep["min_interp"],
                 ",".join(rep["boards"]) or "any"))
    return 0


def _load_pub(path):
    from cryptography.hazmat.primitives import serialization

    with open(path, "rb") as f:
        data = f.read()
    try:
        return serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError):
        return serialization.load_pem_public_key(data)


def _inspect(args):
    from ykt_tools.build import release

    try:
        ring = release.release_keyring([_load_pub(p) for p in args.key]) if args.key else None
        info = release.inspect_release(args.bundle, ring, board=args.board)
    except release.ReleaseError as e:
        print("ykt release inspect: %s" % e, file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print("ykt release inspect: %s" % e, file=sys.stderr)
        return 2
    info["verified"] = ring is not None
    if info["kind"] == "image":
        if args.json:
            print(json.dumps(info, sort_keys=True))
        else:
            print("firmware image version %s for %s (chip id %d), %d bytes, image sha256 %s, key %s, signature %s"
                  % (info["version"], info["chip"], info["chip_id"], info["bytes"], info["sha256"], info["kid"],
                     "verified" if ring is not None else "NOT checked (no --key)"))
        return 0
    files = info.pop("files")
    info["files"] = [[dp, len(d)] for dp, d in files]
    if args.json:
        print(json.dumps(info, sort_keys=True))
    else:
        print("version %s, %d files, %d bytes, key %s, boards %s, min interpreter %d, signature %s"
              % (info["version"], len(files), info["bytes"], info["kid"], ",".join(info["boards"]) or "any",
                 info["min_interp"], "verified" if ring is not None else "NOT checked (no --key)"))
    return 0


def _keygen(args):
    from ykt_tools.build import signing

    try:
        k = signing.generate_key(args.bits)
        signing.save_private(k, args.out, _pw(args.password_env))
        from cryptography.hazmat.primitives import serialization

        pub = args.out.rsplit(".", 1)[0] + ".pub.pem"
        with open(pub, "wb") as f:     # for `ykt backoffice keys add-release --pub`
            f.write(k.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    except (ValueError, OSError) as e:
        print("ykt release keygen: %s" % e, file=sys.stderr)
        return 2
    from ykt.sec import sigverify

    print("release key %s written to %s (public half: %s; trust it with `ykt backoffice keys add-release --pub %s`)"
          % (signing.keyid_hex(k), args.out, pub, pub))
    return 0


def _powercut(args):
    from ykt_tools.powercut import ota as ota_powercut

    res = ota_powercut.run_sweep(sample=0 if args.full else args.sample, jobs=args.jobs)
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        for d in res["details"][:20]:
            print("VIOLATION %s" % json.dumps(d))
        print("update: %d flash writes; cut points by phase: %s"
              % (res["writes"], ", ".join("%s %d" % kv for kv in sorted(res["phases"].items()))))
    print("cut points: %d, violations: %d" % (res["cut_points"], res["violations"]))
    return 1 if res["violations"] else 0
