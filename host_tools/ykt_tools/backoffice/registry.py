"""The card registry: which cards exist, whose they are, and which card
replaced which, as the SSC service centre's card-management system feeds it
(import file: docs/registry-import.md). A clerk starts from what is printed
on the card (the card number) or from the holder's citizen ID; devices know
only the keyed token of the card identification code. The registry joins the
two without keeping any identifier in plaintext:

    token     = ykt.sec.token.card_token(key, card identification code)  (what devices compute)
    cardno_h  = ykt.sec.token.cardno_token(key, card number)
    person    = citizen_token(key, citizen ID)      (host only; one per holder)

key is the operator token key (settings.token_key), so a registry token is
the token in tap records, deny lists and entitlement lists.

    registry.import_file(eng, text, name="cards.csv")    -> {"rows", "added", "updated", "denied", ...}
    registry.resolve(eng, "card_no", "A12345678")          -> [token, ...] (OpError 404: matches nothing)
    registry.set_status(eng, "lost", "citizen_id", "4501...", replaced_by=None)
"""
import hmac
import hashlib

from sqlalchemy import select, update

from ykt_tools.backoffice import ops
from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.auth import audit
from ykt_tools.backoffice.db import now, readonly, setting
from ykt_tools.backoffice.errors import OpError

from ykt.sec import token as ktoken

BY = ("card_id", "card_no", "citizen_id", "token")
STATES = ("active", "lost", "suspended", "cancelled", "replaced")
COLUMNS = ("card_id", "card_no", "citizen_id", "generation", "issued", "expires", "status", "replaced_by")
MAX_BYTES = 64 << 20          # one import file: about 600,000 rows
MAX_LINE = 256                # a valid row is under 120 characters
_DOMAIN_CITIZEN = b"ykt-citizen-v1\x00"
_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def citizen_token(key, citizen_id):
    """Keyed hash of an 18-character citizen ID: the holder as the registry
    knows them (never sent to a device)."""
    return hmac.new(bytes(key), _DOMAIN_CITIZEN + citizen_id, hashlib.sha256).digest()[:ktoken.TOKEN_LEN]


# --- field checks (shared by the import, the CLI, the admin API and the dashboard) ---

def check_card_id(v):
    v = v.strip()
    try:
        b = bytes.fromhex(v)
    except ValueError:
        b = b""
    if len(b) != 16:
        raise ValueError("card identification code must be 32 hex digits")
    return b


def check_card_no(v):
    b = v.strip().upper().encode("ascii", "replace")
    if len(b) != 9 or not b.isalnum():
        raise ValueError("card number must be 9 letters or digits")
    return b


def check_citizen(v):
    """18 characters, 17 digits and a MOD 11-2 check character (GB 11643)."""
    s = v.strip().upper()
    if len(s) != 18 or not s[:17].isdigit() or not s.isascii():
        raise ValueError("citizen ID must be 17 digits and a check character")
    if "10X98765432"[sum(int(s[i]) * _W[i] for i in range(17)) % 11] != s[17]:
        raise ValueError("citizen ID check character is wrong")
    return s.encode()


def _date(v, what):
    s = v.strip()
    if len(s) != 8 or not s.isdigit():
        raise ValueError("%s must be a date YYYYMMDD" % what)
    n = int(s)
    if not (1 <= n // 100 % 100 <= 12 and 1 <= n % 100 <= 31 and 1900 <= n // 10000 <= 2200):
        raise ValueError("%s must be a date YYYYMMDD" % what)
    return n


def _key(eng):
    with readonly(eng).connect() as c:
        return setting(c, "token_key")


# --- import ---------------------------------------------------------------------------

def parse(text, name="cards.csv"):
    """Registry CSV -> list of row dicts with plaintext fields checked (not yet
    tokenized). Raises ValueError with one line naming the file, the line and
    the field. Bounded: MAX_BYTES, MAX_LINE; the whole file or nothing."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > MAX_BYTES:
            raise ValueError("%s: larger than %d bytes" % (name, MAX_BYTES))
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError("%s: not UTF-8 (byte %d)" % (name, e.start))
    if len(text) > MAX_BYTES:
        raise ValueError("%s: larger than %d bytes" % (name, MAX_BYTES))
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    out = []
    seen = {}
    header = None
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if len(line) > MAX_LINE:
            raise ValueError("%s line %d: longer than %d characters" % (name, n, MAX_LINE))
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [x.strip() for x in line.split(",")]
        if header is None:
            if tuple(cells) != COLUMNS:
                raise ValueError("%s line %d: header must be %s" % (name, n, ",".join(COLUMNS)))
            header = cells
            continue
        if len(cells) != len(COLUMNS):
            raise ValueError("%s line %d: %d fields, expected %d" % (name, n, len(cells), len(COLUMNS)))
        f = dict(zip(COLUMNS, cells))
        field = "card_id"
        try:
            r = {"card_id": check_card_id(f["card_id"])}
            field = "card_no"
            r["card_no"] = check_card_no(f["card_no"])
            field = "citizen_id"
            r["citizen_id"] = check_citizen(f["citizen_id"])
            field = "generation"
            if f["generation"] not in ("1", "2", "3"):
                raise ValueError("generation must be 1, 2 or 3")
            r["generation"] = int(f["generation"])
            field = "issued"
            r["issued"] = _date(f["issued"], "issued")
            field = "expires"
            r["expires"] = _date(f["expires"], "expires")
            if r["expires"] < r["issued"]:
                raise ValueError("expires before issued")
            field = "status"
            if f["status"] not in STATES:
                raise ValueError("status must be one of %s" % ", ".join(STATES))
            r["status"] = f["status"]
            field = "replaced_by"
            r["replaced_by"] = check_card_id(f["replaced_by"]) if f["replaced_by"] else None
            if r["replaced_by"] is not None and r["status"] != "replaced":
                raise ValueError("replaced_by is for a card whose status is replaced")
            if r["replaced_by"] == r["card_id"]:
                raise ValueError("a card cannot replace itself")
        except ValueError as e:
            raise ValueError("%s line %d: field %s: %s" % (name, n, field, e))
        if r["card_id"] in seen:
            raise ValueError("%s line %d: field card_id: the same card as line %d" % (name, n, seen[r["card_id"]]))
        seen[r["card_id"]] = n
        out.append(r)
    if header is None:
        raise ValueError("%s: no header line (%s)" % (name, ",".join(COLUMNS)))
    return out


def import_file(eng, text, name="cards.csv", actor="cli"):
    """Parse, tokenize and upsert a registry file. Cards the file reports
    lost/suspended/cancelled/replaced go on the deny list (one new version
    for the file); nothing is taken off it (restoring a card is the
    operator's act). A refused file changes nothing."""
    rows = parse(text, name)
    key = _key(eng)
    t = now()
    added = updated = 0
    deny = []
    recs = []
    for r in rows:
        tok = ktoken.card_token(key, r["card_id"])
        recs.append({"token": tok, "cardno_h": ktoken.cardno_token(key, r["card_no"]),
                     "person": citizen_token(key, r["citizen_id"]), "generation": r["generation"],
                     "issued": r["issued"], "expires": r["expires"], "status": r["status"],
                     "replaced_by": ktoken.card_token(key, r["replaced_by"]) if r["replaced_by"] else None,
                     "updated": t})
    with eng.begin() as c:
        have = {bytes(x.token) for x in c.execute(select(S.cards.c.token))}
        listed = {bytes(x.token): x.status for x in c.execute(select(S.card_status.c.token, S.card_status.c.status))}
        for rec in recs:
            if rec["token"] in have:
                c.execute(update(S.cards).where(S.cards.c.token == rec["token"]).values(**rec))
                updated += 1
            else:
                c.execute(S.cards.insert().values(**rec))
                added += 1
            if rec["status"] != "active" and listed.get(rec["token"]) != rec["status"]:
                deny.append((rec["token"], rec["status"], rec["replaced_by"]))
        audit(c, actor, "registry.import", name, rows=len(recs), added=added, updated=updated, denied=len(deny))
    ver = None
    if deny:
        ver = ops.set_cards_status(eng, deny, note="registry import " + name[:100], actor=actor)["dl_ver"]
    return {"file": name, "rows": len(recs), "added": added, "updated": updated, "denied": len(deny),
            "dl_ver": ver}


# --- resolving what a clerk types --------------------------------------------------------

def resolve(eng, by, value, status=None, every=False):
    """-> [card token, ...] the identifier designates. card_id and token need
    no registry (the token is what devices compute); a card number or a citizen
    ID must match a registered card (OpError 404 when it matches nothing).
    A citizen ID designates the holder's cards that are still in use (for
    status "restored": the ones on the deny list; every=True: all of them,
    newest first)."""
    if by not in BY:
        raise OpError("by must be one of %s" % ", ".join(BY))
    if value is None or not str(value).strip():
        raise OpError("give the %s" % by.replace("_", " "))
    try:
        if by == "token":
            return [ops.parse_token(value)]
        if by == "card_id":
            return [ktoken.card_token(_key(eng), check_card_id(value))]
        if by == "card_no":
            h = ktoken.cardno_token(_key(eng), check_card_no(value))
            col, what = S.cards.c.cardno_h, "card number"
        else:
            h = citizen_token(_key(eng), check_citizen(value))
            col, what = S.cards.c.person, "citizen ID"
    except ValueError as e:
        raise OpError(str(e))
    with readonly(eng).connect() as c:
        rows = c.execute(select(S.cards.c.token, S.cards.c.status).where(col == h)
                         .order_by(S.cards.c.issued.desc())).all()
        listed = {bytes(x.token): x.status for x in c.execute(
            select(S.card_status.c.token, S.card_status.c.status)
            .where(S.card_status.c.token.in_([bytes(r.token) for r in rows])))} if rows else {}
    if not rows:
        raise OpError("no registered card has this %s" % what, 404)
    toks = [bytes(r.token) for r in rows]
    if by == "citizen_id" and not every:
        if status == "restored":
            toks = [t for t in toks if t in listed]
        else:
            toks = [bytes(r.token) for r in rows if r.status == "active" and bytes(r.token) not in listed]
        if not toks:
            raise OpError("the holder with this citizen ID has no card %s"
                          % ("on the deny list" if status == "restored" else "in use"), 409)
    return toks


def _successor(eng, value):
    """replaced_by as typed: a token (16 hex), a card identification code
    (32 hex) or a card number (9 characters)."""
    v = (value or "").strip()
    if len(v) == 16:
        return resolve(eng, "token", v)[0]
    if len(v) == 32:
        return resolve(eng, "card_id", v)[0]
    if len(v) == 9:
        return resolve(eng, "card_no", v)[0]
    raise OpError("replaced_by must be a token (16 hex), a card identification code (32 hex) "
                  "or a card number (9 characters)")


def set_status(eng, status, by, value, replaced_by=None, note="", actor="cli"):
    """Report a card by any identifier: resolve it, then one deny-list
    version for every card it designates. A replacement links the successor
    to the same holder, and the holder's entitlements are republished so
    the new card carries them after the devices' next sync."""
    if status not in ops.STATUSES or status == "unpaid":
        raise OpError("status must be one of lost, suspended, cancelled, replaced, restored")
    toks = resolve(eng, by, value, status)
    succ = _successor(eng, replaced_by) if replaced_by else None
    if succ is not None and status != "replaced":
        raise OpError("replaced_by goes with status replaced")
    if succ is not None and succ in toks:
        raise OpError("a card cannot replace itself")
    if succ is not None:
        with readonly(eng).connect() as c:
            s = c.execute(select(S.cards.c.person).where(S.cards.c.token == succ)).first()
            mine = {bytes(x.person) for x in c.execute(select(S.cards.c.person).where(S.cards.c.token.in_(toks)))}
        if s is not None and mine and mine != {bytes(s.person)}:
            raise OpError("the replacement card belongs to another holder", 409)
    r = ops.set_cards_status(eng, [(t, status, succ) for t in toks], note=note, actor=actor)
    t = now()
    republish = False
    with eng.begin() as c:
        reg = status if status != "restored" else "active"
        for tok in toks:
            row = c.execute(select(S.cards).where(S.cards.c.token == tok)).first()
            if row is None:
                continue
            c.execute(update(S.cards).where(S.cards.c.token == tok)
                      .values(status=reg, updated=t, **({"replaced_by": succ} if succ else {})))
            if succ is not None:
                s = c.execute(select(S.cards).where(S.cards.c.token == succ)).first()
                if s is None:
                    # known only by its code so far: the registry's next import fills in the rest
                    c.execute(S.cards.insert().values(token=succ, cardno_h=None, person=row.person,
                                                      generation=row.generation, issued=0, expires=99991231,
                                                      status="active", replaced_by=None, updated=t))
                republish = republish or _has_entitlement(c, row.person)
    r["cards"] = [x.hex() for x in toks]
    r["token"] = toks[0].hex()         # the first (for one card: the) card acted on
    r["status"] = status
    r["resolved_by"] = by
    if succ is not None:
        r["replaced_by"] = succ.hex()
        if republish:
            r["entitlements_ver"] = ops.publish_entitlements(eng, actor=actor)["version"]
    return r


def _has_entitlement(c, person):
    toks = [bytes(x.token) for x in c.execute(select(S.cards.c.token).where(S.cards.c.person == person))]
    return bool(toks) and c.execute(select(S.entitlements.c.token)
                                    .where(S.entitlements.c.token.in_(toks))).first() is not None


def card(eng, token):
    """A registered card's registry fields (tokens and dates only), or None."""
    with readonly(eng).connect() as c:
        r = c.execute(select(S.cards).where(S.cards.c.token == token)).first()
    if r is None:
        return None
    return {"generation": r.generation, "issued": r.issued, "expires": r.expires, "status": r.status,
            "replaced_by": bytes(r.replaced_by).hex() if r.replaced_by else None}
