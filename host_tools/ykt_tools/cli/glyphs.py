"""`ykt glyphs build [--unifont PATH] [-o OUT]` and `ykt glyphs check`."""
import sys


def register(sub):
    p = sub.add_parser("glyphs", help="build/check the Chinese glyph subset shown on device displays")
    gs = p.add_subparsers(dest="glyphs_cmd", metavar="ACTION")
    gs.required = True
    b = gs.add_parser("build", help="build firmware/ykt/ui/glyphdata.py from GNU Unifont (apt-get install unifont)")
    b.add_argument("--unifont", default=None, help="unifont.hex (default /usr/share/unifont/unifont.hex)")
    b.add_argument("-o", "--output", default=None)
    b.set_defaults(func=_build)
    c = gs.add_parser("check", help="does the committed glyph file cover exactly the firmware's messages?")
    c.set_defaults(func=_check)


def _build(args):
    from ykt_tools.build import glyphs

    try:
        data = glyphs.build(args.unifont or glyphs.UNIFONT)
    except (OSError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        if isinstance(e, FileNotFoundError):
            print("hint: apt-get install -y unifont", file=sys.stderr)
        return 1
    out = args.output or glyphs.OUTPUT
    with open(out, "w") as f:
        f.write(glyphs.module_text(data))
    print("%s: %d glyphs, %d bytes" % (out, len(glyphs.message_chars()), len(data)))
    return 0


def _check(args):
    from ykt_tools.build import glyphs

    want, have = glyphs.message_chars(), glyphs.committed_chars()
    if want != have:
        print("glyphdata.py is stale: missing %s, extra %s; run `ykt glyphs build`"
              % ("".join(map(chr, sorted(set(want) - set(have)))) or "-",
                 "".join(map(chr, sorted(set(have) - set(want)))) or "-"), file=sys.stderr)
        return 1
    print("glyphdata.py covers the %d characters of the messages" % len(want))
    return 0
