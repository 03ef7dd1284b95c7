"""`ykt apicheck`: schemathesis over the back office's OpenAPI (admin and
device API, every phase including the stateful one) against a server it
starts on a loopback port; prints cases and failures (ykt_tools.backoffice.apicheck)."""
import json


def register(sub):
    p = sub.add_parser("apicheck", help="hold the back office to its OpenAPI description (schemathesis)")
    p.add_argument("--max-examples", type=int, default=100, help="cases per operation and phase (default 100)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    p.add_argument("--workdir", default=None, help="where the report and the run's output go (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args):
    from ykt_tools.backoffice import apicheck

    r = apicheck.run(max_examples=args.max_examples, seed=args.seed, db_url=args.db, workdir=args.workdir)
    if args.json:
        print(json.dumps(r, indent=1, sort_keys=True))
    else:
        print("apicheck: %d cases over %d operations, %d unique failures (seed %d); output %s"
              % (r["cases"], r["operations_tested"], r["unique_failures"], r["seed"], r["output"]))
        for k, n in sorted(r["failures"].items()):
            print("  %s: %d" % (k, n))
    return 0 if r["unique_failures"] == 0 and r["exit_code"] == 0 else 1
