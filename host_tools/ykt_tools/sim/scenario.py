"""Scenario runner: a fleet of simulated validators (the real firmware on
MicroPython with an ESP32-like heap, one process each) against the back office
on its embedded SQLite, following a script of taps, card-status changes and
faults on one shared virtual timeline. `make run` plays scenarios/day.json.

Devices advance in lock-step chunks; back-office actions happen between
chunks at their scripted time, and the back office's clock follows the
timeline, so "a card reported lost at 10:00 is refused after the next sync" is
literally what is checked. See docs/scenarios.md for the file format."""
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

from ykt_tools import ROOT, SIMHW
from ykt_tools.sim import mp

CHUNK_MS = 10000
SPARE = 16384      # heap every device must have to spare at its high-water mark (docs/design.md, budgets)   # devices run in lock-step slices; the back office's clock is within half a slice


# Every key a scenario file may use, level by level (docs/scenarios.md). An
# unknown key -- a misspelt expectation above all -- stops the run before
# anything starts, so it can never pass silently.
FILE_KEYS = ("name", "about", "epoch", "clock_offset_s", "end", "warmup_s", "sync_interval_s", "catalog", "fares",
             "devices", "cards", "entitlements", "accounts", "events", "traffic", "collect_at_end", "generated",
             "registry", "unregistered")
DEVICE_KEYS = ("name", "profile", "id", "board", "about", "wifi")
CARD_KEYS = ("profile", "ssc", "about")
ENTITLEMENT_KEYS = ("card", "concession", "flags")
ACCOUNT_KEYS = ("card", "acquirer", "mandate")
TRAFFIC_KEYS = ("device", "count", "from", "to", "seed")
EVENT_KEYS = ("at", "device", "label", "expect", "tap", "for_ms", "powercut_after_writes", "tear", "fault", "params",
              "clear_faults", "net", "qr", "qr_replay", "backoffice", "card", "status", "by", "replaced_by", "code",
              "modem")
MODEM_EVENTS = ("drop", "no_sim", "no_registration", "weak_signal", "clear")
EXPECT_KEYS = ("outcome", "reason", "fare", "concession", "flags", "reset", "no_tap")
BO_ACTIONS = ("card_status", "settle", "collect", "return", "pay")
BY = ("card_id", "card_no", "citizen_id", "token")


class ScenarioError(ValueError):
    """A scenario file refused: one line naming the file and the key."""


def validate(sc, name="scenario"):
    """Refuse unknown keys in the file, its devices, cards, traffic and
    every event (and its expectation)."""
    def keys(obj, allowed, where):
        if not isinstance(obj, dict):
            raise ScenarioError("%s: %s must be an object" % (name, where))
        for k in obj:
            if k not in allowed:
                raise ScenarioError("%s: %s: unknown key %r" % (name, where, k))

    keys(sc, FILE_KEYS, "top level")
    for lst, allowed in (("devices", DEVICE_KEYS), ("entitlements", ENTITLEMENT_KEYS), ("accounts", ACCOUNT_KEYS),
                         ("traffic", TRAFFIC_KEYS)):
        for i, x in enumerate(sc.get(lst, [])):
            keys(x, allowed, "%s[%d]" % (lst, i))
    for cname, c in sc.get("cards", {}).items():
        keys(c, CARD_KEYS, "cards.%s" % cname)
    cards = sc.get("cards", {})
    for i, e in enumerate(sc.get("events", [])):
        where = "events[%d]" % i
        keys(e, EVENT_KEYS, where)
        if "expect" in e:
            keys(e["expect"], EXPECT_KEYS, where + ".expect")
        if "backoffice" in e and e["backoffice"] not in BO_ACTIONS:
            raise ScenarioError("%s: %s: unknown back-office action %r" % (name, where, e["backoffice"]))
        if "modem" in e and e["modem"] not in MODEM_EVENTS:
            raise ScenarioError("%s: %s: unknown modem event %r (known: %s)"
                                % (name, where, e["modem"], ", ".join(MODEM_EVENTS)))
        if "by" in e and e["by"] not in BY:
            raise ScenarioError("%s: %s: \"by\" must be one of %s" % (name, where, ", ".join(BY)))
        for k in ("tap", "card", "replaced_by", "qr", "qr_replay"):
            if k in e and e[k] not in cards:
                raise ScenarioError("%s: %s: %s names no card in \"cards\": %r" % (name, where, k, e[k]))


def _fw_import():
    mp.in_process()


def reason_names():
    _fw_import()
    from ykt import taprec

    out = {}
    for k in dir(taprec):
        if k.startswith("R_"):
            out[getattr(taprec, k)] = k[2:].lower()
    return out


def voice_text(track, volume):
    """'老年卡 (2, vol 20)': a prompt the simulated voice module played."""
    _fw_import()
    from ykt.ui.voice import PROMPTS

    text = PROMPTS[track][1] if 0 < track < len(PROMPTS) else "?"
    return "%s (%d, vol %d)" % (text, track, volume)


def outcome_name(o):
    return ("accept", "deny", "error")[o] if 0 <= o < 3 else str(o)


def parse_hms(s):
    """'HH:MM[:SS]' from the scenario start, or a number of seconds -> ms."""
    if isinstance(s, (int, float)):
        return int(s * 1000)
    parts = [int(x) for x in s.split(":")]
    while len(parts) < 3:
        parts.append(0)
    return ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000


class DeviceProc:
    def __init__(self, name, runtime, heap, log, reserve=0, on_records=None):
        self.name = name
        self.log = log
        self.on_records = on_records
        # heap is the firmware's budget (the launcher adds the simulated chip's allowance)
        self.p = mp.start(runtime, os.path.join(SIMHW, "devproc.py"), fw_heap=heap, fw_reserve=reserve,
                          stdin=subprocess.PIPE,
                          stderr=subprocess.PIPE, bufsize=1)
        self._err = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.p.stderr:
            self._err.append(line)
            del self._err[:-50]

    def send(self, msg):
        self.p.stdin.write(json.dumps(msg) + "\n")
        self.p.stdin.flush()

    def recv(self):
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("device %s exited (rc %s):\n%s" % (self.name, self.p.poll(), "".join(self._err)))
            line = line.strip()
            if line.startswith("@@J "):
                if self.on_records is not None:
                    self.on_records(self.name, bytes.fromhex(line[4:]))
                continue
            if line.startswith("{"):
                msg = json.loads(line)
                if "error" in msg:
                    raise RuntimeError("device %s: %s\n%s" % (self.name, msg["error"], msg.get("trace", "")))
                return msg
            # firmware log lines (boot report, errors) go to the live view
            if line:
                self.log("  [%s] %s" % (self.name, line))

    def call(self, msg):
        self.send(msg)
        return self.recv()

    def close(self):
        self.quit()
        self.reap()

    def quit(self):
        try:
            self.send({"cmd": "quit"})
        except Exception:
            self.p.kill()

    def reap(self, timeout=10):
        try:
            self.p.wait(timeout)
        except Exception:
            self.p.kill()


BO_NAME = "bo.ykt.test"      # the back office's name on the simulated network
BO_ADDR = "10.77.0.1"


def device_net(base_url):
    """(the URL a simulated device is provisioned with, its init "net"): the
    back office at base_url (http://host:port on this machine), reached over
    the simulated network (vhw/ipnet.py) by name and TLS on the virtual
    clock; the device waits for the real server in real time, never in
    virtual time."""
    rhost, rport = base_url.split("://", 1)[1].rsplit(":", 1)
    return "https://" + BO_NAME, {"hosts": {BO_NAME: BO_ADDR}, "routes": [[BO_ADDR, 443, rhost, int(rport), True]]}


class Runner:
    def __init__(self, sc, runtime="micropython", heap="256K", workdir=None, out=sys.stdout, quiet=False,
                 reserve=0, net_faults=0, fault_kinds=None, fault_seed=1):
        validate(sc)
        self.sc = sc
        self.net_faults = net_faults
        self.fault_kinds = fault_kinds
        self.fault_seed = fault_seed
        self.journals = {}        # device name -> {seq: tap record read back from its flash}
        self.acked_new = {}       # device id -> {seq: times the back office acknowledged it as new}
        self.journal_faults = []  # a record read back twice with different bytes
        self.runtime = runtime
        self.heap = heap
        self.reserve = reserve
        self.out = out
        self.quiet = quiet
        self.workdir = workdir or tempfile.mkdtemp(prefix="ykt-run-")
        self.db = "sqlite:///" + os.path.join(self.workdir, "backoffice.db")
        self.epoch = int(sc.get("epoch", 1795644000))   # 2026-11-26 06:00 +08:00 by default
        # Devices power up warmup_s before the timeline starts: they sync
        # their tables and time first, as a fleet does before service.
        self.warmup_ms = int(sc.get("warmup_s", 600)) * 1000
        self.now_ms = -self.warmup_ms
        self.devices = {}
        self.cards = {}
        self.taps = []
        self.failures = []
        self.expect_n = 0
        self.reasons = reason_names()
        self.resets = []
        self.qr_texts = {}
        self.collections = {}

    def log(self, s):
        if not self.quiet:
            print(s, file=self.out, flush=True)

    def clock(self):
        # Devices are somewhere inside the current slice: the middle is the
        # best single answer for the time the back office tells them.
        return self.epoch + (self.now_ms + CHUNK_MS // 2) // 1000

    # --- setup --------------------------------------------------------------
    def card_identity(self, name):
        """card_id hex of a scripted card (profile or generated)."""
        spec = self.sc["cards"][name]
        _fw_import()
        from vhw import rfcards

        if "profile" in spec:
            c = rfcards.load(spec["profile"])
        else:
            c = rfcards.make_ssc(**spec["ssc"])
        cid = getattr(c, "card_id", None)
        if cid is None:
            return None
        return cid.hex() if isinstance(cid, (bytes, bytearray)) else cid

    def card_object(self, name):
        spec = self.sc["cards"][name]
        _fw_import()
        from vhw import rfcards

        return rfcards.load(spec["profile"]) if "profile" in spec else rfcards.make_ssc(**spec["ssc"])

    def card_value(self, name, by):
        """What a clerk would type for the scripted card `name`: its card
        identification code, card number, holder's citizen ID or token."""
        if by == "token":
            from ykt_tools.backoffice import ops
            return ops.tokenize(self.api.engine(self.db), card_id=self.card_identity(name)).hex()
        if by == "card_id":
            return self.card_identity(name)
        c = self.card_object(name)
        v = c.card_no if by == "card_no" else c.citizen
        return v.decode() if isinstance(v, (bytes, bytearray)) else v

    def registry_csv(self):
        """The scripted cards as the SSC centre's registry file: every
        social security card of "cards" (or the names in "registry") that
        has a card identification code, except those in "unregistered"
        (issued after the centre's last export)."""
        from ykt_tools.backoffice import registry

        names = [n for n in self.sc.get("registry", sorted(self.sc.get("cards", {})))
                 if n not in self.sc.get("unregistered", ())]
        lines = [",".join(registry.COLUMNS)]
        for n in names:
            c = self.card_object(n)
            cid = getattr(c, "card_id", None)
            if cid is None or not hasattr(c, "citizen"):
                continue
            row = [bytes(cid).hex(), c.card_no.decode() if isinstance(c.card_no, bytes) else c.card_no, c.citizen,
                   str(getattr(c, "generation", 3) or 3), "%08d" % c.issue, "%08d" % c.expiry, "active", ""]
            try:
                registry.parse(lines[0] + "\n" + ",".join(row))
            except ValueError:
                continue   # a hostile or foreign test card: not in this registry
            lines.append(",".join(row))
        return "\n".join(lines) + "\n"

    def card_event(self, name):
        spec = self.sc["cards"][name]
        return spec["profile"] if "profile" in spec else {"ssc": spec["ssc"]}

    def _records(self, name, data):
        """Journal records a device read back from its flash (devproc.journal_records)."""
        import struct

        _fw_import()
        from ykt.taprec import SIZE

        got = self.journals.setdefault(name, {})
        for off in range(0, len(data) - SIZE + 1, SIZE):
            rec = data[off:off + SIZE]
            seq = struct.unpack_from("<I", rec)[0]
            if seq in got and got[seq] != rec:
                self.journal_faults.append("%s: seq %d read back with other bytes" % (name, seq))
            got[seq] = rec

    def _acked_new(self, dev, seqs):
        """The back office's writer: these seqs were committed as new (ingest.on_new)."""
        d = self.acked_new.setdefault(dev, {})
        for s in seqs:
            d[s] = d.get(s, 0) + 1

    def setup(self):
        from ykt_tools.backoffice import api
        from ykt_tools.backoffice.app import create_app
        from ykt_tools.backoffice.server import run_in_thread
        from ykt_tools.build import fares as fares_compile

        self.api = api
        api.use_clock(self.clock)
        app = create_app(self.db)
        app.state.ingestor.on_new = self._acked_new
        self.base_url, self.stop_bo = run_in_thread(self.db, app=app)
        self.dev_url, self.dev_net = device_net(self.base_url)
        self.log("back office on %s (SQLite %s)" % (self.base_url, os.path.join(self.workdir, "backoffice.db")))
        with open(os.path.join(ROOT, self.sc.get("catalog", "data/catalog.json"))) as f:
            api.publish(self.db, "catalog", fares_compile.compile_catalog(f.read()))
        for src in self.sc.get("fares", []):
            with open(os.path.join(ROOT, src)) as f:
                api.publish(self.db, "fares", fares_compile.compile_fares(f.read(), src))
        from ykt_tools.backoffice import ops

        eng = api.engine(self.db)
        r = api.import_registry(self.db, self.registry_csv(), name="scenario-cards.csv", actor="scenario")
        self.log("card registry: %d cards imported" % r["rows"])
        for ent in self.sc.get("entitlements", []):
            tok = ops.tokenize(eng, card_id=self.card_identity(ent["card"])).hex()
            ops.set_entitlement(eng, tok, ent["concession"], ent.get("flags", 0), actor="scenario")
        if self.sc.get("entitlements"):
            ops.publish_entitlements(eng, actor="scenario")
        from ykt_tools.backoffice import collect

        self.sc["accounts_by_card"] = {}
        for acc in self.sc.get("accounts", []):
            collect.set_account(eng, acc["acquirer"], acc["mandate"], card_id=self.card_identity(acc["card"]),
                                actor="scenario")
            self.sc["accounts_by_card"][acc["card"]] = acc["acquirer"]
        for i, d in enumerate(self.sc["devices"]):
            with open(os.path.join(ROOT, d["profile"])) as f:
                prof = json.load(f)
            kind = {"turnstile": "gate", "ferry_validator": "ferry"}.get(prof.get("board"), "validator")
            reg = api.provision_device(self.db, d["name"], kind=kind,
                                       entry=prof["entry"], device_id=d.get("id", 1001 + i))
            proc = DeviceProc(d["name"], self.runtime, self.heap, self.log, self.reserve, self._records)
            init = {"cmd": "init", "board": d.get("board", prof["board"]), "device_id": reg["id"],
                             # in this run's own folder: runs side by side never share a flash
                             "flash_path": os.path.join(self.workdir, "flash-%d.img" % reg["id"]),
                             "backoffice": self.dev_url, "net": self._net(i),
                             "dev_key": reg["key"], "tok_key": reg["token_key"],
                             "keyring": reg["keyring"].hex() if isinstance(reg["keyring"], (bytes, bytearray))
                             else reg["keyring"], "profile": prof, "epoch": self.epoch,
                             "uid": "240ac4%06x" % (0x100 + i), "sync_interval_s": self.sc.get("sync_interval_s", 60),
                             "heartbeat_s": 300, "batch_age_s": 30}
            if d.get("wifi") is False:   # on the road: no access point, only the board's modem
                init["config"] = {"wifi": None}
            rep = proc.call(init)
            self.devices[d["name"]] = {"proc": proc, "id": reg["id"], "spec": d, "status": None, "init": init}
            self.log("device %-10s id %d %-16s found: %s" % (d["name"], reg["id"], d.get("board", prof["board"]),
                                                              ", ".join(sorted(rep["report"]["found"]))))

    def _net(self, i):
        """The simulated network of device i: the back office by name over
        (modeled) TLS, and its share of the run's network faults, spread over
        the timeline (not the warm-up, not the final upload)."""
        net = dict(self.dev_net)
        n = len(self.sc["devices"])
        share = self.net_faults // n + (1 if i < self.net_faults % n else 0)
        if share:
            end = parse_hms(self.sc.get("end", "16:00"))
            net["faults"] = {"count": share, "start_ms": self.warmup_ms, "end_ms": self.warmup_ms + end,
                             "seed": self.fault_seed * 7919 + i, "kinds": self.fault_kinds}
        return net

    # --- timeline -----------------------------------------------------------
    def _traffic(self):
        """Ordinary riders spread over a span: {"device", "count", "from", "to", "seed"}."""
        out = []
        for n, tr in enumerate(self.sc.get("traffic", [])):
            rnd = random.Random(tr.get("seed", 1))
            t0, t1 = parse_hms(tr["from"]), parse_hms(tr["to"])
            for r in range(tr["count"]):
                name = "%s-%03d" % (tr["device"], r)
                self.sc["cards"][name] = {"ssc": {
                    "region": 450100, "card_id": "450100d15600000520250101%02x%06x" % (n, r),
                    "card_no": "T%02d%06d" % (n, r), "birth": 19700101 + rnd.randrange(0, 30) * 10000,
                    "uid": "7%01x%06x" % (n, r)}}
                out.append({"at": (t0 + rnd.randrange(0, max(1, t1 - t0))) // 1000, "device": tr["device"],
                            "tap": name, "label": "rider " + name, "expect": {"outcome": "accept"}})
        return out

    def _events(self):
        evs = []
        for i, e in enumerate(self.sc["events"] + self._traffic()):
            e = dict(e)
            e["_i"] = i
            e["_t"] = parse_hms(e["at"])
            evs.append(e)
        for e in self.sc.get("generated", []):
            evs.append(e)
        evs.sort(key=lambda e: (e["_t"], e["_i"]))
        return evs

    def _bo_action(self, e):
        from ykt_tools.backoffice import collect, ops

        a = e["backoffice"]
        eng = self.api.engine(self.db)
        day = int(time.strftime("%Y%m%d", time.gmtime(self.clock() + 8 * 3600)))
        if a == "card_status":
            by = e.get("by", "card_id")
            rb = self.card_identity(e["replaced_by"]) if e.get("replaced_by") else None
            r = self.api.set_card_status(self.db, e["status"], note="scenario", replaced_by=rb,
                                         **{by: self.card_value(e["card"], by)})
            self.log("%s  back office: card %s reported %s by %s%s (deny list v%d%s)"
                     % (self.hms(), e["card"], e["status"], by,
                        ", replaced by " + e["replaced_by"] if rb else "", r["dl_ver"],
                        ", entitlements v%d" % r["entitlements_ver"] if "entitlements_ver" in r else ""))
        elif a == "settle":
            r = self.api.settle(self.db, day, actor="scenario")
            self.log("%s  back office: day %d settled, %d cards, %d fen" % (self.hms(), day, r["cards"], r["amount"]))
        elif a == "collect":
            r = collect.create(eng, day, actor="scenario")
            self.collections = {f["acquirer"]: f for f in r["files"]}
            for f in r["files"]:
                self.log("%s  back office: collection file %d to %s: %d items, %d fen, sha256 %s..."
                         % (self.hms(), f["id"], f["acquirer"], f["items"], f["amount"], f["sha256"][:12]))
        elif a == "return":
            # the acquirer answers: every debit paid except this card's (returned with e["code"])
            tok = ops.tokenize(eng, card_id=self.card_identity(e["card"]))
            acq = self.sc["accounts_by_card"][e["card"]]
            f = self.collections[acq]
            from sqlalchemy import select
            from ykt_tools.backoffice import schema as S
            with eng.connect() as c:
                iid = c.execute(select(S.collection_items.c.id).where(S.collection_items.c.collection == f["id"],
                                                                      S.collection_items.c.token == tok)).scalar_one()
            r = collect.import_return(eng, collect.return_file(f["body"], {iid: e.get("code", "AM04")}),
                                      actor="scenario")
            self.log("%s  back office: %s returned %d items, paid %d; unpaid cards: %s"
                     % (self.hms(), acq, r["returned"], r["paid"], ", ".join(r["unpaid_cards"]) or "-"))
        elif a == "pay":
            tok = ops.tokenize(eng, card_id=self.card_identity(e["card"])).hex()
            due = collect.arrears(eng, tok)[0]["amount"]
            r = collect.pay(eng, tok, due, "counter-%s" % e["card"], actor="scenario")
            self.log("%s  back office: card %s paid its arrears, %d fen (deny list v%s)"
                     % (self.hms(), e["card"], r["amount"], r["dl_ver"]))
        else:
            raise ValueError("unknown back-office action %r" % a)

    def hms(self, ms=None):
        ms = self.now_ms if ms is None else ms
        s = ms // 1000 + int(self.sc.get("clock_offset_s", 6 * 3600))
        return "%02d:%02d:%02d" % (s // 3600 % 24, s // 60 % 60, s % 60)

    def _device_event(self, e):
        """Scenario event -> device process event(s) at the same instant."""
        t = e["_t"]
        out = []
        if "powercut_after_writes" in e:
            out.append({"at": t, "powercut": e["powercut_after_writes"], "tear": e.get("tear", "middle")})
        if "tap" in e:
            out.append({"at": t, "card": self.card_event(e["tap"]), "for_ms": e.get("for_ms", 600)})
        if "fault" in e:
            out.append({"at": t, "fault": e["fault"], "params": e.get("params", {})})
        if "clear_faults" in e:
            out.append({"at": t, "clear_faults": True})
        if "net" in e:
            out.append({"at": t, "net": e["net"] == "up"})
        if "modem" in e:
            out.append({"at": t, "modem": e["modem"]})
        if "qr" in e:
            out.append({"at": t, "qr": self._mint_qr(e["qr"], t)})
        if "qr_replay" in e:
            out.append({"at": t, "qr": self.qr_texts[e["qr_replay"]]})
        return out

    def _mint_qr(self, card, t_ms):
        """The app's part: a fresh signed code for the holder of `card`,
        issued by the back office at the scripted instant."""
        from ykt_tools.backoffice import ops, qrissue

        eng = self.api.engine(self.db)
        tok = ops.tokenize(eng, card_id=self.card_identity(card))
        q = qrissue.issue(eng, tok, region=int(self.card_identity(card)[:6]), iat=self.epoch + t_ms // 1000)
        self.qr_texts[card] = q["text"]
        return q["text"]

    def run(self):
        evs = self._events()
        end = parse_hms(self.sc.get("end", "16:00"))
        pending = {}      # device -> list of device events in the current chunk
        expects = []      # (device, t, expect, label)
        i = 0
        while self.now_ms < end:
            # back-office actions due now happen before devices move on
            while i < len(evs) and evs[i]["_t"] <= self.now_ms and "backoffice" in evs[i]:
                self._bo_action(evs[i])
                i += 1
            nxt = min(end, self.now_ms + CHUNK_MS)
            j = i
            while j < len(evs) and evs[j]["_t"] < nxt:
                e = evs[j]
                if "backoffice" in e:
                    nxt = max(e["_t"], self.now_ms + 1)
                    break
                pending.setdefault(e["device"], []).extend(self._device_event(e))
                if "expect" in e:
                    expects.append((e["device"], e["_t"], e["expect"], e.get("label", e.get("tap", ""))))
                    self.expect_n += 1
                j += 1
            i = j
            for name, d in self.devices.items():
                dev_evs = pending.get(name, [])
                for ev in dev_evs:
                    ev["at"] += self.warmup_ms
                d["proc"].send({"cmd": "run", "until": nxt + self.warmup_ms, "events": dev_evs})
            for name, d in self.devices.items():
                r = self._recv_run(d)
                if os.getenv("YKT_DEBUG"):
                    self.log("%s  %-8s mem_free %s events %s" % (self.hms(r["t"]), name, r.get("mem_free"), r.get("events_q")))
                for tap in r["taps"]:
                    tap["device"] = name
                    tap["at"] -= self.warmup_ms
                    self.taps.append(tap)
                    self._show(tap)
                for rs in r["resets"]:
                    rs["device"] = name
                    rs["at"] -= self.warmup_ms
                    self.resets.append(rs)
                    self.log("%s  %-8s reset: %s %s" % (self.hms(rs["at"]), name, rs["cause"], rs.get("detail", "")))
            pending = {}
            self.now_ms = nxt
        self._check(expects)

    def _recv_run(self, d):
        """A run reply; if the device reset, start its next interpreter on the
        same flash and chip state and let it finish the slice."""
        r = d["proc"].recv()
        while "restart" in r:
            d["proc"].close()
            proc = DeviceProc(d["spec"]["name"], self.runtime, self.heap, self.log, self.reserve, self._records)
            msg = dict(d["init"])
            msg["resume"] = r["restart"]
            proc.call(msg)
            d["proc"] = proc
            proc.send({"cmd": "run", "until": r["until"], "events": r["rest"]})
            r2 = proc.recv()
            r2["taps"] = r["taps"] + r2["taps"]
            r2["resets"] = r["resets"] + r2["resets"]
            r = r2
        return r

    def _show(self, tap):
        txt = "%s  %-8s seq %-5d %-6s %-16s fare %5.2f%s" % (
            self.hms(tap["at"]), tap["device"], tap["seq"], outcome_name(tap["outcome"]),
            self.reasons.get(tap["reason"], str(tap["reason"])), tap["fare"] / 100.0,
            "  (" + tap["text"] + ")" if tap.get("text") else "")
        if tap.get("shift"):
            txt += "  shift %d" % tap["shift"]
        if "voice" in tap:    # a board with a voice module: what the rider heard
            txt += "  voice: " + (", ".join(voice_text(t, v) for t, v in tap["voice"]) or "-")
        self.log(txt)

    def _check(self, expects):
        by_dev = {}
        for t in self.taps:
            by_dev.setdefault(t["device"], []).append(t)
        used = set()
        for dev, t, exp, label in expects:
            if exp.get("reset"):
                if not [r for r in self.resets if r["device"] == dev and r["cause"] == exp["reset"]
                        and t <= r["at"] <= t + 5000]:
                    self.failures.append("%s %s at %s: expected a %s reset" % (dev, label, self.hms(t), exp["reset"]))
                continue
            cand = [x for x in by_dev.get(dev, []) if t <= x["at"] <= t + 5000 and id(x) not in used]
            if exp.get("no_tap"):
                if cand:
                    self.failures.append("%s %s at %s: expected no recorded tap, got %s"
                                         % (dev, label, self.hms(t), self.reasons.get(cand[0]["reason"])))
                continue
            if not cand:
                self.failures.append("%s %s at %s: no tap recorded" % (dev, label, self.hms(t)))
                continue
            x = cand[0]
            used.add(id(x))
            want_r = exp.get("reason")
            got_r = self.reasons.get(x["reason"], str(x["reason"]))
            bad = []
            if want_r and want_r != got_r:
                bad.append("reason %s != %s" % (got_r, want_r))
            if "outcome" in exp and exp["outcome"] != outcome_name(x["outcome"]):
                bad.append("outcome %s != %s" % (outcome_name(x["outcome"]), exp["outcome"]))
            if "fare" in exp and exp["fare"] != x["fare"]:
                bad.append("fare %d != %d" % (x["fare"], exp["fare"]))
            if "concession" in exp and exp["concession"] != x["concession"]:
                bad.append("concession %d != %d" % (x["concession"], exp["concession"]))
            if "flags" in exp and (x["flags"] & exp["flags"]) != exp["flags"]:
                bad.append("flags %#x lacks %#x" % (x["flags"], exp["flags"]))
            if bad:
                self.failures.append("%s %s at %s: %s" % (dev, label, self.hms(t), "; ".join(bad)))

    # --- the end ------------------------------------------------------------
    def play(self):
        """The whole run: devices up, the timeline, the final upload, the
        report. The caller closes (or serves, then closes)."""
        self.setup()
        self.run()
        self.drain()
        return self.report()

    def drain(self, max_ms=15 * 60000):
        """Let devices upload what they journaled (network up, uplink ages out)."""
        t_end = self.now_ms + max_ms
        while self.now_ms < t_end:
            nxt = self.now_ms + CHUNK_MS
            for d in self.devices.values():
                d["proc"].send({"cmd": "run", "until": nxt + self.warmup_ms,
                                "events": [{"at": self.now_ms + self.warmup_ms, "net": True}]})
            for d in self.devices.values():
                self._recv_run(d)
            self.now_ms = nxt
            if all(self._status(d)["backlog"] == 0 for d in self.devices.values()):
                break

    def _status(self, d):
        d["status"] = d["proc"].call({"cmd": "status"})
        return d["status"]

    def _stored(self):
        """Every tap row of the back office as the tap record it came
        from: {device id: {seq: bytes}}."""
        from sqlalchemy import text

        _fw_import()
        from ykt import taprec

        out = {}
        t = taprec.Tap()
        with self.api.engine(self.db).connect() as c:
            for r in c.execute(text(
                    "SELECT device, seq, t, token, outcome, reason, fare, concession, flags, entry, stop, "
                    "direction, stage, dl_ver, fare_ver, cat_ver, shift FROM taps")):
                (t.seq, t.time, tok, t.outcome, t.reason, t.fare, t.concession, t.flags, t.entry, t.stop,
                 t.direction, t.stage, t.dl_ver, t.fare_ver, t.cat_ver, t.shift) = r[1:]
                t.token[:] = bytes(tok)
                out.setdefault(r[0], {}).setdefault(r[1], []).append(taprec.pack(t))
        return out

    def compare(self, name, dev_id, stored):
        """One device's journal, record by record, against the back office:
        -> {journaled, compared (byte-equal), lost (missing or different),
        unknown (rows with no journal record), duplicates (acknowledged as new
        more than once, or stored twice)}."""
        jr = self.journals.get(name, {})
        rows = stored.get(dev_id, {})
        res = {"journaled": len(jr), "compared": 0, "lost": 0, "unknown": 0, "duplicates": 0, "examples": []}
        for seq in sorted(jr):
            got = rows.get(seq)
            if got and got[0] == jr[seq]:
                res["compared"] += 1
            else:
                res["lost"] += 1
                if len(res["examples"]) < 5:
                    res["examples"].append("seq %d %s" % (seq, "differs in the back office" if got
                                                           else "missing from the back office"))
        for seq, recs in rows.items():
            if seq not in jr:
                res["unknown"] += 1
            res["duplicates"] += len(recs) - 1
        res["duplicates"] += sum(1 for n in self.acked_new.get(dev_id, {}).values() if n > 1)
        return res

    def report(self):
        out = {"devices": {}, "taps_journaled": 0, "taps_committed": 0, "records_compared": 0, "lost": 0,
               "duplicates": 0, "unknown_rows": 0, "memory_errors": 0, "heap_peak_bytes": 0,
               "expectations": self.expect_n, "failures": self.failures, "resets": len(self.resets),
               "network_faults": {}, "network": {}}
        eng = self.api.engine(self.db)
        stored = self._stored()
        by_outcome = {}
        for t in self.taps:
            k = (t["device"], outcome_name(t["outcome"]), self.reasons.get(t["reason"], str(t["reason"])))
            by_outcome[k] = by_outcome.get(k, 0) + 1
        for name, d in self.devices.items():
            st = self._status(d)
            cmp = self.compare(name, d["id"], stored)
            n = sum(len(v) for v in stored.get(d["id"], {}).values())
            out["devices"][name] = {"journaled": cmp["journaled"], "committed": n, "compared": cmp["compared"],
                                    "next_seq": st["next_seq"], "backlog": st["backlog"],
                                    "memory_errors": st["memory_errors"],
                                    "versions": st["versions"], "errors": st["errors"],
                                    "sync_errors": st.get("sync_errors", []), "network": st.get("net", {}),
                                    "link": st.get("link"), "modem": st.get("modem")}
            for k in st:
                if k.startswith("heap_") or k.startswith("gc_") or k == "psram":
                    out["devices"][name][k] = st[k]
            dv = out["devices"][name]
            if (mp.is_frozen(self.runtime) and dv["heap_budget_bytes"] > 0
                    and dv["heap_peak_bytes"] > dv["heap_budget_bytes"] - SPARE):
                self.failures.append("%s: heap peak %d B leaves less than %d B of its %d B budget"
                                     % (name, dv["heap_peak_bytes"], SPARE, dv["heap_budget_bytes"]))
            if cmp["lost"] or cmp["duplicates"] or cmp["unknown"]:
                self.failures.append("%s: %d of %d journal records lost, %d duplicated, %d rows no journal holds%s"
                                     % (name, cmp["lost"], cmp["journaled"], cmp["duplicates"], cmp["unknown"],
                                        (": " + "; ".join(cmp["examples"])) if cmp["examples"] else ""))
            if st["next_seq"] - 1 > cmp["journaled"] + 1:
                # a seq may be given out twice only for an append a power cut interrupted
                self.failures.append("%s: next seq %d but %d records read back from its journal"
                                     % (name, st["next_seq"], cmp["journaled"]))
            net = st.get("net", {})
            for k, v in net.get("faults", {}).get("faults", {}).items():
                out["network_faults"][k] = out["network_faults"].get(k, 0) + v
            k = "retry_after_ignored"
            out["network"][k] = out["network"].get(k, 0) + net.get("faults", {}).get(k, 0)
            for k, v in net.get("stats", {}).items():
                out["network"][k] = out["network"].get(k, 0) + v
            for k, v in net.get("used", {}).items():
                out["network"]["link_" + k] = out["network"].get("link_" + k, 0) + v
            out["taps_journaled"] += cmp["journaled"]
            out["taps_committed"] += n
            out["records_compared"] += cmp["compared"]
            out["lost"] += cmp["lost"]
            out["duplicates"] += cmp["duplicates"]
            out["unknown_rows"] += cmp["unknown"]
            out["memory_errors"] += st["memory_errors"]
            out["heap_peak_bytes"] = max(out["heap_peak_bytes"], st["heap_peak_bytes"])
        out["network_faults_total"] = sum(out["network_faults"].values())
        self.failures.extend(self.journal_faults)
        if out["network"].get("retry_after_ignored"):
            self.failures.append("%d requests sent before a Retry-After had passed" % out["network"]["retry_after_ignored"])
        if out["network"].get("stalled"):
            self.failures.append("the back office did not answer %d requests within %d s (real time)"
                                 % (out["network"]["stalled"], 60))
        out["by_outcome"] = {"%s/%s/%s" % k: v for k, v in sorted(by_outcome.items())}
        day = int(time.strftime("%Y%m%d", time.gmtime(self.epoch + 8 * 3600)))
        from ykt_tools.backoffice import collect, settle
        from ykt_tools.backoffice.errors import OpError

        try:
            out["settlement"] = self.api.settle(self.db, day)
        except OpError as e:
            if e.status != 409:
                raise
            # collected during the day (a collection scenario): that settlement stands
            rows = settle.settlements(eng, day)
            out["settlement"] = {"day": day, "cards": len(rows), "amount": sum(x["amount"] for x in rows),
                                 "note": str(e)}
        except Exception as e:  # settlement problems are reported, not hidden
            out["settlement"] = {"error": str(e)}
            self.failures.append("settlement failed: %s" % e)
        if self.sc.get("collect_at_end") and "error" not in out["settlement"] and "note" not in out["settlement"]:
            c = collect.create(eng, day, actor="scenario")
            out["collection"] = {"files": [{k: f[k] for k in ("id", "acquirer", "items", "amount", "sha256")}
                                           for f in c["files"]], "unassigned": c["unassigned"]}
        if out["memory_errors"]:
            where = sorted(set("%s: %s" % (r["device"], r["detail"]) for r in self.resets
                               if r.get("detail", "").startswith("MemoryError")))
            self.failures.append("%d MemoryError(s) on the devices%s" % (out["memory_errors"],
                                                                         (" (" + "; ".join(where[:4]) + ")") if where else ""))
        out["ok"] = not self.failures
        out["dashboard"] = self.base_url + "/"
        return out

    def close_devices(self):
        # every device is told first, then each is waited for: a stop takes
        # the slowest device's time, not the sum (Ctrl-C on `ykt run`)
        procs = [d["proc"] for d in self.devices.values()]
        for pr in procs:
            pr.quit()
        for pr in procs:
            pr.reap()
        self.devices = {}

    def close(self):
        self.close_devices()
        if getattr(self, "stop_bo", None):
            self.stop_bo()
            self.stop_bo = None

    def serve(self, out=sys.stdout):
        """Keep the back office serving the day until Ctrl-C, with a demo
        operator whose password is made for this run and printed once; the
        operator is deactivated when the run stops. The server's clock stays
        at the end of the simulated day, so devices read as they were then."""
        import secrets

        from ykt_tools.backoffice import auth

        eng = self.api.engine(self.db)
        name = "demo"
        pw = secrets.token_urlsafe(12)
        auth.add_operator(eng, name, "operator", pw, actor="ykt-run")
        print("", file=out)
        print("== the back office keeps serving the day until Ctrl-C", file=out)
        print("   dashboard: %s/" % self.base_url, file=out)
        print("   operator:  %s" % name, file=out)
        print("   password:  %s   (made for this run; the operator is disabled when it stops)" % pw, file=out)
        out.flush()
        import signal

        # Ctrl-C must stop it even when started with SIGINT ignored (a job
        # started in the background, a test runner's worker inherits that)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            print("stopping: disabling the demo operator", file=out)
            out.flush()
            from sqlalchemy import update

            from ykt_tools.backoffice import schema as S
            with eng.begin() as c:
                c.execute(update(S.operators).where(S.operators.c.name == name).values(active=False))
                auth.audit(c, "ykt-run", "operator.disable", name)
            print("stopping: the back office", file=out)
            out.flush()
            self.close()
        print("back office stopped", file=out)
        out.flush()


def load(path):
    with open(path) as f:
        return json.load(f)


def random_riders(sc, riders, hours, seed):
    """Randomized traffic for a soak run: riders tapping on the scenario's
    devices across the service day, some twice, each ride on a device drawn
    at random."""
    rnd = random.Random(seed)
    devs = [d["name"] for d in sc["devices"]]
    sc.setdefault("cards", {})
    evs = sc.setdefault("events", [])
    span = int(hours * 3600)
    for r in range(riders):
        name = "r%05d" % r
        sc["cards"][name] = {"ssc": {"region": 450100, "card_id": "450100d1560000%018x" % (r + 1),
                                     "card_no": "R%08d" % r, "birth": 19600101 + rnd.randrange(0, 45) * 10000}}
        for _ in range(1 + (rnd.random() < 0.3)):
            evs.append({"at": rnd.randrange(60, span - 60), "device": devs[rnd.randrange(len(devs))], "tap": name,
                        "for_ms": 500})
    sc["end"] = span
    return sc


def cli(args):
    path = args.scenario or os.path.join(ROOT, "scenarios", "soak.json")
    try:
        sc = load(path)
        validate(sc, path)
    except (OSError, ValueError) as e:
        print("error: %s" % (e if isinstance(e, ScenarioError) else "%s: %s" % (path, e)), file=sys.stderr)
        return 2
    if args.riders:
        sc = random_riders(sc, args.riders, args.hours or 24, args.seed)
    kinds = getattr(args, "net_fault_kinds", None)
    r = Runner(sc, runtime=args.runtime, heap=args.heap, quiet=args.json, reserve=args.reserve,
               workdir=getattr(args, "workdir", None),
               net_faults=getattr(args, "net_faults", 0) or 0, fault_kinds=kinds.split(",") if kinds else None,
               fault_seed=args.seed)
    # `ykt run` on a terminal keeps the back office serving the day (--serve)
    mode = getattr(args, "serve", "never")
    serve = not args.json and (mode == "always" or (mode == "auto" and sys.stdout.isatty()))
    t0 = time.time()
    done = False
    try:
        rep = r.play()
        done = True
    finally:
        if serve and done:
            r.close_devices()
        else:
            r.close()
    rep["wall_s"] = round(time.time() - t0, 1)
    if args.json:
        keys = ("taps_journaled", "taps_committed", "records_compared", "lost", "duplicates", "unknown_rows",
                "network_faults", "network_faults_total", "network", "memory_errors", "heap_peak_bytes",
                "expectations", "failures", "ok", "wall_s", "resets")
        print(json.dumps({k: rep[k] for k in keys} | {"devices": rep["devices"]}, indent=2))
    else:
        print_report(r, rep)
    if serve:
        r.serve()
    return 0 if rep["ok"] else 1


def print_report(r, rep):
    p = r.log
    p("")
    p("== taps by device and outcome")
    for k, v in rep["by_outcome"].items():
        p("  %-40s %5d" % (k, v))
    p("== journaled vs committed")
    for name, d in rep["devices"].items():
        p("  %-10s journaled %5d  committed %5d  backlog %d  uplink %s  heap peak %d of %d B (%s)  memory errors %d"
          % (name, d["journaled"], d["committed"], d["backlog"], d.get("link") or "-", d["heap_peak_bytes"],
             d.get("heap_budget_bytes", -1), d.get("heap_accounting", "?"), d["memory_errors"]))
    for name, d in rep["devices"].items():
        if d.get("heap_census"):
            from ykt_tools.sim.census import format_census

            format_census(name, d["heap_census"], p)
    p("  total      journaled %5d  committed %5d  compared byte for byte %d  lost %d  duplicates %d"
      % (rep["taps_journaled"], rep["taps_committed"], rep["records_compared"], rep["lost"], rep["duplicates"]))
    if rep["network_faults_total"]:
        p("== network faults: %d (%s)" % (rep["network_faults_total"], ", ".join(
            "%s %d" % kv for kv in sorted(rep["network_faults"].items()))))
    p("== settlement for the day")
    p("  %s" % json.dumps(rep["settlement"])[:600])
    p("== dashboard: %s (while the back office runs: `ykt backoffice serve --db %s`)" % (rep["dashboard"], r.db))
    p("== expectations: %d checked, %d failed" % (rep["expectations"], len(rep["failures"])))
    for f in rep["failures"]:
        p("  FAIL " + f)
    p("RESULT: %s" % ("ok" if rep["ok"] else "FAILED"))
