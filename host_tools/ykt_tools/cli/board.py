"""`ykt board check FILE...` / `ykt board list`: validate board files with the
firmware's own loader (ykt.boardcfg), one line per problem."""
import os
import sys

from ykt_tools import BOARDS, FIRMWARE


def register(sub):
    p = sub.add_parser("board", help="validate or list board files")
    bsub = p.add_subparsers(dest="board_cmd", metavar="ACTION")
    bsub.required = True
    c = bsub.add_parser("check", help="validate board files (default: every file in boards/)")
    c.add_argument("files", nargs="*")
    c.set_defaults(func=check)
    ls = bsub.add_parser("list", help="list the shipped boards")
    ls.set_defaults(func=list_boards)


def _boardcfg():
    if FIRMWARE not in sys.path:
        sys.path.insert(0, FIRMWARE)
    from ykt import boardcfg

    return boardcfg


def check(args):
    bc = _boardcfg()
    files = args.files or sorted(os.path.join(BOARDS, f) for f in os.listdir(BOARDS) if f.endswith(".json"))
    bad = 0
    for f in files:
        try:
            b = bc.load(f)
            print("%s: ok (%s, %s, reader over %s)" % (f, b["name"], b["mcu"], b["reader"]["transport"]))
        except bc.BoardError as e:
            print(str(e), file=sys.stderr)
            bad += 1
    return 1 if bad else 0


def list_boards(args):
    bc = _boardcfg()
    for f in sorted(os.listdir(BOARDS)):
        if f.endswith(".json"):
            b = bc.load(os.path.join(BOARDS, f))
            print("%-18s %s" % (b["name"], b.get("title", "")))
    return 0
