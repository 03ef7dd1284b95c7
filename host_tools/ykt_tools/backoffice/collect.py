"""The collection loop of account-based ticketing: a settled day's amounts go
to each holder's acquiring bank as a collection file; the bank's return file
says which debits were paid and which came back; a returned item puts the
card on the deny list as `unpaid` (ykt.rules.dlformat.ST_UNPAID: refused at
the next sync), the holder's arrears show on the dashboard, and paying them
restores the card in the next deny-list delta. Every step is audited.

A card's payment account (acquirer code + the debit mandate the bank knows
the account by) is registered per card token (`accounts`); the back office
still never holds an identity. Amounts of tokens without an account are not
collected: they are reported as unassigned.

Collection file (UTF-8, LF line ends, CSV; the first field is the record type):
    H,1,<acquirer>,<service day YYYYMMDD>,<collection id>,<created unix s>
    I,<item id>,<mandate>,<amount fen>,<reference YKT-<collection>-<item>>
    ... one I record per card token with a positive amount, item ids ascending
    T,<item count>,<total fen>
    S,<SHA-256 hex of every byte before this line>
Return file (from the acquirer), the same framing:
    H,1,<acquirer>,<collection id>
    R,<item id>,paid|returned,<amount fen>,<reason code, empty when paid>
    T,<record count>
    S,<SHA-256 hex of every byte before this line>
Reason codes are ISO 20022 return reasons as banks use them (e.g. AM04
insufficient funds, AC04 account closed, MD01 no mandate); any 2..8
letters/digits are accepted and kept."""
import hashlib
import re

from sqlalchemy import func, select, update

from ykt_tools.backoffice import ops, registry
from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.auth import audit
from ykt_tools.backoffice.db import now, readonly
from ykt_tools.backoffice.errors import OpError

VERSION = 1
MAX_FILE = 4 << 20              # a return file larger than this is refused before parsing
_ACQ = re.compile(r"[A-Z0-9][A-Z0-9_-]{1,31}")
_MANDATE = re.compile(r"[A-Za-z0-9_./-]{1,64}")
_CODE = re.compile(r"[A-Z0-9]{2,8}")


def _token(eng, token=None, card_id=None, card_no=None):
    if card_no and not token and not card_id:
        return registry.resolve(eng, "card_no", card_no)[0]
    return ops.parse_token(token) if token else ops.tokenize(eng, card_id)


def set_account(eng, acquirer, mandate, token=None, card_id=None, card_no=None, actor="cli"):
    """Register (or change) the payment account of a card."""
    if not _ACQ.fullmatch(acquirer or ""):
        raise OpError("acquirer code: 2..32 of A-Z 0-9 _ -")
    if not _MANDATE.fullmatch(mandate or ""):
        raise OpError("mandate: 1..64 of letters, digits and _ . / -")
    tok = _token(eng, token, card_id, card_no)
    with eng.begin() as c:
        c.execute(S.accounts.delete().where(S.accounts.c.token == tok))
        c.execute(S.accounts.insert().values(token=tok, acquirer=acquirer, mandate=mandate, created=now()))
        audit(c, actor, "account.set", "token:" + tok.hex(), acquirer=acquirer)
    return {"token": tok.hex(), "acquirer": acquirer}


def _sealed(lines):
    body = "".join(x + "\n" for x in lines)
    h = hashlib.sha256(body.encode()).hexdigest()
    return body + "S,%s\n" % h, h


def create(eng, day, actor="cli"):
    """Collection files for a settled day, one per acquirer. -> {"day",
    "files": [{"id", "acquirer", "items", "amount", "sha256", "body"}],
    "unassigned": {"cards", "amount"}}. A day is collected once."""
    with eng.begin() as c:
        if not c.execute(select(S.settlements.c.token).where(S.settlements.c.day == day).limit(1)).first():
            raise OpError("day %d is not settled: run `ykt backoffice settle --day %d` first" % (day, day), 409)
        if c.execute(select(S.collections.c.id).where(S.collections.c.day == day).limit(1)).first():
            raise OpError("day %d is already collected" % day, 409)
        rows = c.execute(select(S.settlements.c.token, S.settlements.c.amount, S.accounts.c.acquirer,
                                S.accounts.c.mandate)
                         .select_from(S.settlements.outerjoin(S.accounts, S.accounts.c.token == S.settlements.c.token))
                         .where(S.settlements.c.day == day, S.settlements.c.amount > 0)
                         .order_by(S.settlements.c.token)).all()
        by = {}
        un = [0, 0]
        for r in rows:
            if r.acquirer is None:
                un[0] += 1
                un[1] += r.amount
                continue
            by.setdefault(r.acquirer, []).append(r)
        t = now()
        files = []
        for acq in sorted(by):
            cid = c.execute(S.collections.insert().values(acquirer=acq, day=day, created=t, items=0, amount=0,
                                                          sha256="", body="")).inserted_primary_key[0]
            lines = ["H,%d,%s,%d,%d,%d" % (VERSION, acq, day, cid, t)]
            total = 0
            for r in by[acq]:
                iid = c.execute(S.collection_items.insert().values(
                    collection=cid, token=bytes(r.token), amount=r.amount, status="sent",
                    updated=t)).inserted_primary_key[0]
                lines.append("I,%d,%s,%d,YKT-%d-%d" % (iid, r.mandate, r.amount, cid, iid))
                total += r.amount
            lines.append("T,%d,%d" % (len(by[acq]), total))
            body, h = _sealed(lines)
            c.execute(update(S.collections).where(S.collections.c.id == cid)
                      .values(items=len(by[acq]), amount=total, sha256=h, body=body))
            audit(c, actor, "collect.file", "collection:%d" % cid, acquirer=acq, day=day, items=len(by[acq]),
                  amount=total, sha256=h)
            files.append({"id": cid, "acquirer": acq, "items": len(by[acq]), "amount": total, "sha256": h,
                          "body": body})
        audit(c, actor, "collect.day", "day:%d" % day, files=len(files), unassigned_cards=un[0],
              unassigned_amount=un[1])
    return {"day": day, "files": files, "unassigned": {"cards": un[0], "amount": un[1]}}


def _lines(text, what):
    """Split a sealed file into its records after checking the seal."""
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise OpError("%s is not UTF-8" % what, 422)
    if len(text) > MAX_FILE:
        raise OpError("%s larger than %d bytes" % (what, MAX_FILE), 413)
    if not text.endswith("\n") or "\r" in text:
        raise OpError("%s: lines must end with LF" % what, 422)
    i = text.rfind("\n", 0, len(text) - 1)
    body, last = text[:i + 1], text[i + 1:-1]
    if not last.startswith("S,"):
        raise OpError("%s: the last record must be S (the seal)" % what, 422)
    if hashlib.sha256(body.encode()).hexdigest() != last[2:]:
        raise OpError("%s: SHA-256 does not match its content" % what, 422)
    return [x.split(",") for x in body[:-1].split("\n")]


def parse_return(text):
    """-> (acquirer, collection id, [(item id, status, amount, code)]); OpError
    422 naming the first problem."""
    recs = _lines(text, "return file")
    h = recs[0]
    if len(h) != 4 or h[0] != "H" or h[1] != str(VERSION) or not _ACQ.fullmatch(h[2]) or not h[3].isdigit():
        raise OpError("return file: bad header record", 422)
    if len(recs) < 2 or recs[-1][0] != "T" or len(recs[-1]) != 2 or recs[-1][1] != str(len(recs) - 2):
        raise OpError("return file: the T record must count the R records", 422)
    out = []
    seen = set()
    for n, r in enumerate(recs[1:-1], 2):
        if len(r) != 5 or r[0] != "R" or not r[1].isdigit() or r[2] not in ("paid", "returned") \
                or not r[3].isdigit() or len(r[1]) > 12 or len(r[3]) > 12:
            raise OpError("return file line %d: expected R,<item>,paid|returned,<amount>,<code>" % n, 422)
        if r[2] == "returned" and not _CODE.fullmatch(r[4]):
            raise OpError("return file line %d: a returned item needs its reason code" % n, 422)
        if r[2] == "paid" and r[4]:
            raise OpError("return file line %d: a paid item has no reason code" % n, 422)
        if r[1] in seen:
            raise OpError("return file line %d: item %s twice" % (n, r[1]), 422)
        seen.add(r[1])
        out.append((int(r[1]), r[2], int(r[3]), r[4] or None))
    return h[2], int(h[3]), out


def return_file(coll_body, outcome=None):
    """What an acquirer answers to a collection file: every item paid unless
    outcome {item id: reason code} returns it (tests and the scripted
    scenarios play the bank with this)."""
    outcome = outcome or {}
    recs = _lines(coll_body, "collection file")
    h = recs[0]
    lines = ["H,%d,%s,%s" % (VERSION, h[2], h[4])]
    for r in recs[1:-1]:
        iid = int(r[1])
        code = outcome.get(iid)
        lines.append("R,%d,%s,%s,%s" % (iid, "returned" if code else "paid", r[3], code or ""))
    lines.append("T,%d" % (len(lines) - 1))
    return _sealed(lines)[0]


def import_return(eng, text, actor="cli"):
    """Apply an acquirer's return file. Returned items make their cards
    `unpaid` (deny list); importing the same file again changes nothing.
    -> {"collection", "paid", "returned", "unpaid_cards": [token hex]}"""
    acq, cid, recs = parse_return(text)
    t = now()
    newly = []
    with eng.begin() as c:
        col = c.execute(select(S.collections).where(S.collections.c.id == cid)).first()
        if col is None or col.acquirer != acq:
            raise OpError("no collection %d for acquirer %s" % (cid, acq), 404)
        items = {r.id: r for r in c.execute(select(S.collection_items)
                                            .where(S.collection_items.c.collection == cid))}
        if sorted(items) != sorted(i for i, _s, _a, _c in recs):
            raise OpError("return file lists other items than collection %d holds" % cid, 422)
        counts = {"paid": 0, "returned": 0}
        for iid, st, amount, code in recs:
            it = items[iid]
            if amount != it.amount:
                raise OpError("item %d: amount %d, the collection sent %d" % (iid, amount, it.amount), 422)
            if it.status != "sent":
                if it.status == st or (it.status == "repaid" and st == "returned"):
                    continue                   # this file was imported before
                raise OpError("item %d is already %s" % (iid, it.status), 409)
            c.execute(update(S.collection_items).where(S.collection_items.c.id == iid)
                      .values(status=st, code=code, updated=t))
            counts[st] += 1
            audit(c, actor, "collect." + st, "item:%d" % iid, collection=cid, token=bytes(it.token).hex(),
                  amount=amount, code=code)
            if st == "returned":
                newly.append(bytes(it.token))
        c.execute(update(S.collections).where(S.collections.c.id == cid).values(returned_at=t))
        audit(c, actor, "collect.return", "collection:%d" % cid, acquirer=acq, **counts)
    unpaid = []
    for tok in sorted(set(newly)):
        if _mark_unpaid(eng, tok, actor):
            unpaid.append(tok.hex())
    return {"collection": cid, "paid": counts["paid"], "returned": counts["returned"], "unpaid_cards": unpaid}


def _card_status(eng, tok):
    with readonly(eng).connect() as c:
        r = c.execute(select(S.card_status.c.status).where(S.card_status.c.token == tok)).first()
    return r.status if r else None


def _mark_unpaid(eng, tok, actor):
    """A card in arrears goes on the deny list as unpaid, unless it is there
    already for another reason (lost, cancelled, ...), which stands."""
    if _card_status(eng, tok) is not None:
        return False
    ops.set_card_status(eng, "unpaid", token=tok.hex(), note="returned collection item", actor=actor)
    return True


def arrears(eng, token=None):
    """Cards with returned items not yet paid: [{"token", "amount", "items",
    "since", "status"}] (one card when token is given)."""
    q = (select(S.collection_items.c.token, func.sum(S.collection_items.c.amount).label("amount"),
                func.count().label("items"), func.min(S.collection_items.c.updated).label("since"))
         .where(S.collection_items.c.status == "returned").group_by(S.collection_items.c.token))
    if token is not None:
        q = q.where(S.collection_items.c.token == ops.parse_token(token))
    with readonly(eng).connect() as c:
        rows = c.execute(q.order_by(S.collection_items.c.token)).all()
        st = {bytes(r.token): r.status for r in c.execute(select(S.card_status.c.token, S.card_status.c.status))}
    return [{"token": bytes(r.token).hex(), "amount": int(r.amount), "items": r._mapping["items"], "since": r.since,
             "status": st.get(bytes(r.token))} for r in rows]


def pay(eng, token, amount, ref, actor="cli"):
    """The holder paid the arrears (at a counter, in the app): every returned
    item of the card is cleared; amount must be their total. An `unpaid` card
    is restored (off the deny list at the next delta). -> {"token", "amount",
    "items", "dl_ver" or None}"""
    tok = ops.parse_token(token)
    if not _MANDATE.fullmatch(ref or ""):
        raise OpError("payment reference: 1..64 of letters, digits and _ . / -")
    t = now()
    with eng.begin() as c:
        items = c.execute(select(S.collection_items.c.id, S.collection_items.c.amount)
                          .where(S.collection_items.c.token == tok, S.collection_items.c.status == "returned")).all()
        if not items:
            raise OpError("card %s has no arrears" % tok.hex(), 404)
        due = sum(r.amount for r in items)
        if int(amount) != due:
            raise OpError("card %s owes %d fen, not %d" % (tok.hex(), due, int(amount)), 409)
        c.execute(update(S.collection_items).where(S.collection_items.c.id.in_([r.id for r in items]))
                  .values(status="repaid", payment=ref, updated=t))
        audit(c, actor, "collect.paid", "token:" + tok.hex(), amount=due, items=len(items), ref=ref)
    ver = None
    if _card_status(eng, tok) == "unpaid":
        ver = ops.set_card_status(eng, "restored", token=tok.hex(), note="arrears paid: " + ref, actor=actor)["dl_ver"]
    return {"token": tok.hex(), "amount": due, "items": len(items), "dl_ver": ver}


def status(eng, day_from=0, day_to=99991231):
    """Collection files with their items by status (the dashboard)."""
    with readonly(eng).connect() as c:
        cols = c.execute(select(S.collections.c.id, S.collections.c.acquirer, S.collections.c.day,
                                S.collections.c.created, S.collections.c["items"], S.collections.c.amount,
                                S.collections.c.sha256, S.collections.c.returned_at)
                         .where(S.collections.c.day >= day_from, S.collections.c.day <= day_to)
                         .order_by(S.collections.c.day.desc(), S.collections.c.acquirer)).all()
        by = {}
        for r in c.execute(select(S.collection_items.c.collection, S.collection_items.c.status,
                                  func.count().label("n"), func.sum(S.collection_items.c.amount).label("amount"))
                           .group_by(S.collection_items.c.collection, S.collection_items.c.status)):
            by.setdefault(r.collection, {})[r.status] = {"items": r.n, "amount": int(r.amount)}
    return [{"id": r.id, "acquirer": r.acquirer, "day": r.day, "created": r.created, "items": r._mapping["items"],
             "amount": r.amount, "sha256": r.sha256, "returned_at": r.returned_at,
             "by_status": by.get(r.id, {})} for r in cols]


def body(eng, cid):
    with readonly(eng).connect() as c:
        r = c.execute(select(S.collections.c.body, S.collections.c.acquirer, S.collections.c.day)
                      .where(S.collections.c.id == int(cid))).first()
    if r is None:
        raise OpError("no collection %s" % cid, 404)
    return r.body, "collection-%s-%d-%s.csv" % (r.acquirer, r.day, cid)
