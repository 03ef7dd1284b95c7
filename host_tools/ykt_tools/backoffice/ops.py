"""Operations (admin API, CLI and the scenario runner call these): devices and
their keys, card status events -> deny-list versions and deltas, signed file
publishing (fares, catalog, entitlements, config, keys) and signing-key
rotation. Every change writes an audit row in the same transaction."""
import binascii
import json
import os
import secrets
import struct
import threading

from sqlalchemy import delete, func, select, update

from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.auth import audit
from ykt_tools.backoffice.db import is_sqlite, now, readonly, setting
from ykt_tools.backoffice.errors import OpError
from ykt_tools.backoffice.keys import active_key, publish_keys, signing_keys

from ykt.sec import token as ktoken  # noqa: E402  (firmware package, on sys.path)
from ykt.rules import fares as kfares
from ykt.rules import catalog as kcatalog
from ykt.sec import signed as ksigned

from ykt.rules import dlformat as _dlf  # noqa: E402

# card status -> deny-list entry status (ykt.rules.dlformat ST_*); restored = off the list.
# unpaid: a returned collection item not yet paid (set and cleared by collect.py).
STATUSES = {"lost": _dlf.ST_LOST, "suspended": _dlf.ST_SUSPENDED, "cancelled": _dlf.ST_CANCELLED,
            "replaced": _dlf.ST_REPLACED, "unpaid": _dlf.ST_UNPAID, "restored": 0}
DEVICE_KINDS = ("validator", "gate", "ferry", "handheld")
MAX_DELTA_CHAIN = 64       # further behind than this: send the full image


def key_bits():
    """RSA size for new signing keys ($YKT_RSA_BITS: tests use 2048 for speed)."""
    return int(os.environ.get("YKT_RSA_BITS", "3072"))


def _signing():
    from ykt_tools.build import signing
    return signing


# --- devices -------------------------------------------------------------------

def register_device(eng, name, kind="validator", entry=0, device_id=None, actor="cli"):
    """Create a device with a fresh random 32-byte key. The key is returned
    here once and never again (rekey_device issues a new one)."""
    if kind not in DEVICE_KINDS:
        raise OpError("kind must be one of %s" % ", ".join(DEVICE_KINDS))
    if not name or len(name) > 64:
        raise OpError("device name 1..64 characters")
    if not 0 <= int(entry) <= 0xFFFF:
        raise OpError("entry must be 0..65535")
    key = secrets.token_bytes(32)
    with eng.begin() as c:
        if c.execute(select(S.devices.c.id).where(S.devices.c.name == name)).first():
            raise OpError("device %r exists" % name, 409)
        vals = dict(name=name, kind=kind, entry=int(entry), key=key, active=True, created=now(),
                    seq_contig=0, seq_max=0, last_nonce=0)
        if device_id is not None:
            if not 0 < int(device_id) <= 0x7FFFFFFF:
                raise OpError("device id 1..2^31-1")
            if c.execute(select(S.devices.c.id).where(S.devices.c.id == int(device_id))).first():
                raise OpError("device id %d exists" % device_id, 409)
            vals["id"] = int(device_id)
        did = c.execute(S.devices.insert().values(**vals)).inserted_primary_key[0]
        if device_id is not None and not is_sqlite(eng):
            # keep the sequence ahead of explicit ids
            c.exec_driver_sql("SELECT setval(pg_get_serial_sequence('devices','id'), "
                              "GREATEST((SELECT MAX(id) FROM devices), 1))")
        audit(c, actor, "device.register", "device:%d" % did, name=name, kind=kind, entry=entry)
        tk = setting(c, "token_key")
    ensure_signing_key(eng)
    with eng.connect() as c:
        pubs = [r.kid.hex() for r in c.execute(select(S.signing_keys.c.kid)
                                               .where(S.signing_keys.c.state != "retired"))]
    return {"id": did, "name": name, "kind": kind, "entry": int(entry), "key": key.hex(),
            "token_key": tk.hex(), "signing_kids": pubs}


def trusted_keys_payload(eng):
    """Payload of the current K_KEYS file (public keys), for provisioning."""
    with eng.connect() as c:
        r = c.execute(select(S.files.c.body).where(S.files.c.kind == "keys")
                      .order_by(S.files.c.version.desc()).limit(1)).first()
    return r.body if r else None


def _device_row(c, ident):
    import re
    q = select(S.devices)
    ident = ident if isinstance(ident, int) else str(ident)[:80]
    if isinstance(ident, int) or re.fullmatch(r"[0-9]{1,10}", ident):
        if not 0 <= int(ident) <= 0x7FFFFFFF:
            raise OpError("no device %s" % ident, 404)
        q = q.where(S.devices.c.id == int(ident))
    else:
        q = q.where(S.devices.c.name == ident)
    r = c.execute(q).first()
    if r is None:
        raise OpError("no device %s" % ident, 404)
    return r


def rekey_device(eng, ident, actor="cli"):
    key = secrets.token_bytes(32)
    with eng.begin() as c:
        d = _device_row(c, ident)
        c.execute(update(S.devices).where(S.devices.c.id == d.id).values(key=key))
        audit(c, actor, "device.rekey", "device:%d" % d.id)
    return {"id": d.id, "key": key.hex()}


def set_device_active(eng, ident, active, actor="cli"):
    with eng.begin() as c:
        d = _device_row(c, ident)
        c.execute(update(S.devices).where(S.devices.c.id == d.id).values(active=bool(active)))
        audit(c, actor, "device.activate" if active else "device.deactivate", "device:%d" % d.id)


REQUESTS = {"sync-now": 0x01, "upload-now": 0x02}   # ykt.net.heartbeat HB_SYNC_NOW, HB_UPLOAD_NOW


def request_device(eng, ident, what, actor="cli"):
    """Ask a device (or every active device: ident "all") to sync or upload
    now; delivered as the value of its next heartbeat reply."""
    flag = REQUESTS[what]
    with eng.begin() as c:
        q = update(S.devices).values(requests=S.devices.c.requests.op("|")(flag))
        if ident == "all":
            n = c.execute(q.where(S.devices.c.active == True)).rowcount  # noqa: E712
        else:
            d = _device_row(c, ident)
            n = c.execute(q.where(S.devices.c.id == d.id)).rowcount
        audit(c, actor, "device." + what, "device:%s" % ident, devices=n)
    return {"devices": n}


def list_devices(eng):
    out = []
    with readonly(eng).connect() as c:
        dl = current_dl_version(c)
        for r in c.execute(select(S.devices).order_by(S.devices.c.id)):
            out.append({"id": r.id, "name": r.name, "kind": r.kind, "entry": r.entry,
                        "active": bool(r.active), "last_seen": r.last_seen, "fw": r.fw,
                        "dl_ver": r.dl_ver, "dl_current": dl,
                        "dl_behind": (dl - r.dl_ver) if r.dl_ver is not None else None,
                        "fare_ver": r.fare_ver, "cat_ver": r.cat_ver, "backlog": r.backlog,
                        "reader_faults": r.reader_faults, "seq_acked": r.seq_contig,
                        "seq_max": r.seq_max})
    return out


def seq_gaps(eng, ident):
    with eng.connect() as c:
        d = _device_row(c, ident)
        return [{"first": r.first, "last": r.last, "at": r.at}
                for r in c.execute(select(S.seq_gaps).where(S.seq_gaps.c.device == d.id)
                                   .order_by(S.seq_gaps.c.first))]


# --- card tokens and status -------------------------------------------------------

def parse_token(text):
    try:
        b = binascii.unhexlify(text.strip())
    except (binascii.Error, ValueError, AttributeError):
        raise OpError("token must be 16 hex digits")
    if len(b) != ktoken.TOKEN_LEN:
        raise OpError("token must be 16 hex digits")
    return b


def tokenize(eng, card_id=None):
    """Card identification code (32 hex digits) -> keyed token, server-side
    with the operator token key; the code is neither stored nor logged. A
    card number or a citizen ID reaches a token only through the card
    registry (registry.resolve)."""
    with readonly(eng).connect() as c:
        key = setting(c, "token_key")
    if card_id is None:
        raise OpError("give a token or a card identification code")
    try:
        cid = binascii.unhexlify(card_id.strip())
    except (binascii.Error, ValueError):
        raise OpError("card identification code must be 32 hex digits")
    if len(cid) != 16:
        raise OpError("card identification code must be 32 hex digits")
    return ktoken.card_token(key, cid)


def current_dl_version(c):
    return c.execute(select(func.coalesce(func.max(S.denylist.c.version), 0))).scalar_one()


def set_card_status(eng, status, token=None, card_id=None, replaced_by=None, note="", actor="cli"):
    """Record a card status event for one card given by token or card
    identification code (a card number or citizen ID goes through
    registry.set_status). lost/suspended/cancelled/replaced put the token on
    the deny list, restored takes it off. -> {"token", "dl_ver", ...}"""
    if status not in STATUSES:
        raise OpError("status must be one of %s" % ", ".join(STATUSES))
    tok = parse_token(token) if token else tokenize(eng, card_id)
    rb = parse_token(replaced_by) if replaced_by else None
    r = set_cards_status(eng, [(tok, status, rb)], note=note, actor=actor)
    r["token"] = tok.hex()
    r["status"] = status
    return r


def set_cards_status(eng, items, note="", actor="cli"):
    """items: [(token bytes, status, replaced_by token | None)], each card once.
    One new deny-list version whose delta holds every change; a card already
    in that status (or restored while not listed) refuses the whole call and
    nothing changes. -> {"dl_ver", "entries"}"""
    if not items or len({t for t, _s, _r in items}) != len(items):
        raise OpError("each card once, at least one")
    for _t, status, _r in items:
        if status not in STATUSES:
            raise OpError("status must be one of %s" % ", ".join(STATUSES))
    t = now()
    with eng.begin() as c:
        if not is_sqlite(eng):
            # one deny-list writer at a time across workers: versions are dense
            c.exec_driver_sql("SELECT pg_advisory_xact_lock(7956084)")
        ver = current_dl_version(c) + 1
        ops = []
        for tok, status, rb in items:
            code = STATUSES[status]
            cur = c.execute(select(S.card_status).where(S.card_status.c.token == tok)).first()
            if cur is None and code == 0:
                raise OpError("card %s is not on the deny list" % tok.hex(), 409)
            if cur is not None and cur.status == status:
                raise OpError("card %s is already %s" % (tok.hex(), status), 409)
            if code:
                if cur is None:
                    c.execute(S.card_status.insert().values(token=tok, status=status, since=t, dl_ver=ver))
                else:
                    c.execute(update(S.card_status).where(S.card_status.c.token == tok)
                              .values(status=status, since=t, dl_ver=ver))
            else:
                c.execute(delete(S.card_status).where(S.card_status.c.token == tok))
            c.execute(S.card_events.insert().values(at=t, token=tok, status=status, replaced_by=rb,
                                                    actor=actor, note=note[:500], dl_ver=ver))
            audit(c, actor, "card." + status, "token:" + tok.hex(), dl_ver=ver,
                  replaced_by=rb.hex() if rb else None, note=note[:200])
            ops.append([code, tok.hex()])
        n = c.execute(select(func.count()).select_from(S.card_status)).scalar_one()
        key = active_key(c)
        delta = _signing().sign_file(key, ksigned.K_DENYLIST_DELTA, ver,
                                     denylist_delta_payload(ops, ver - 1, ver, t), base=ver - 1, created=t)
        c.execute(S.denylist.insert().values(version=ver, created=t, entries=n, image=None,
                                             delta=delta, delta_ops=json.dumps(ops)))
    return {"dl_ver": ver, "entries": n}


def card_history(eng, token):
    tok = parse_token(token)
    with eng.connect() as c:
        return [{"at": r.at, "status": r.status, "actor": r.actor, "dl_ver": r.dl_ver, "note": r.note}
                for r in c.execute(select(S.card_events).where(S.card_events.c.token == tok)
                                   .order_by(S.card_events.c.id))]


# Deny-list payloads: the image and delta formats belong to the firmware
# (ykt.rules.dlformat, yktsrv.dlbuild) via host_tools/ykt_tools/build/denylist.py.

def _dlb():
    from ykt_tools.build import denylist as denylist_build
    return denylist_build


def denylist_delta_payload(ops, base, version, created):
    """ops: [[status (0 = remove), token_hex], ...] -> dlformat delta bytes."""
    from ykt.rules import dlformat
    ent = sorted((bytes.fromhex(t), code) for code, t in ops)
    return dlformat.pack_delta(base, version, ent, created)


def denylist_image_payload(entries, version, created):
    """entries: [(token bytes, status)] -> dlformat image bytes."""
    return _dlb().build_image({int.from_bytes(t, "big"): st for t, st in entries}, version, created)


_dl_cache = {}
_dl_lock = threading.Lock()


def denylist_download(eng, have):
    """Signed file bringing a device from `have` to the current version:
    a (merged) delta when it is close, else the full image; None when current."""
    with readonly(eng).connect() as c:
        cur = current_dl_version(c)
        if cur == 0 or have == cur:
            return None
        if 0 < have < cur and cur - have <= MAX_DELTA_CHAIN and _delta_fits(c, have):
            akey = active_key(c)
            # per database and signer: a rotation or another DB never serves a stale body
            ck = (str(eng.url), _signing().key_id(akey), have, cur)
            with _dl_lock:
                if ck in _dl_cache:
                    return _dl_cache[ck]
            if cur == have + 1:
                body = resign_if_retired(c, c.execute(select(S.denylist.c.delta)
                                                      .where(S.denylist.c.version == cur)).scalar_one())
            else:
                merged = {}
                for r in c.execute(select(S.denylist.c.delta_ops).where(S.denylist.c.version > have)
                                   .order_by(S.denylist.c.version)):
                    for code, t in json.loads(r.delta_ops):
                        merged[t] = code
                ops = [[merged[t], t] for t in sorted(merged)]
                t = now()
                body = _signing().sign_file(akey, ksigned.K_DENYLIST_DELTA, cur,
                                            denylist_delta_payload(ops, have, cur, t), base=have, created=t)
            with _dl_lock:
                if len(_dl_cache) > 256:
                    _dl_cache.clear()
                _dl_cache[ck] = body
            return body
        img = c.execute(select(S.denylist.c.image).where(S.denylist.c.version == cur)).scalar_one()
        if img is not None:
            return resign_if_retired(c, img)
        entries = [(bytes(r.token), STATUSES[r.status]) for r in
                   c.execute(select(S.card_status.c.token, S.card_status.c.status)
                             .where(S.card_status.c.dl_ver <= cur).order_by(S.card_status.c.token))]
        key = active_key(c)
    t = now()
    img = _signing().sign_file(key, ksigned.K_DENYLIST, cur, denylist_image_payload(entries, cur, t), created=t)
    with eng.begin() as c:
        c.execute(update(S.denylist).where(S.denylist.c.version == cur).values(image=img))
    return img


def _delta_fits(c, have):
    """A merged delta holds at most dlformat.DELTA_MAX changes (one per event
    here, so counting events bounds it)."""
    n = c.execute(select(func.count()).select_from(S.card_events).where(S.card_events.c.dl_ver > have)).scalar_one()
    return n <= _dlf.DELTA_MAX


# --- signed files ----------------------------------------------------------------

FILE_KINDS = ("fares", "catalog", "entitlements", "config", "keys")


def _validate(kind, data):
    """Parse with the firmware's own loader: what the device would refuse,
    the back office refuses to publish. -> (version, ident)."""
    try:
        if kind == "fares":
            t = kfares.FareTable(data)
            return t.version, t.entry
        if kind == "catalog":
            t = kcatalog.Catalog(data)
            if not t.entries:
                raise OpError("catalog has no entries")
            return t.version, 0
        if kind == "entitlements":
            t = kfares.Entitlements(data)
            return t.version, 0
    except kfares.LoadError as e:
        raise OpError("%s refused: %s" % (kind, e), 422)
    raise OpError("unknown kind %s" % kind)


def publish_file(eng, kind, data, ident=0, actor="cli"):
    """Validate and sign a compiled file; config takes a JSON object (scope =
    one device id, 0 for all). Versions must increase (devices refuse rollback)."""
    if kind not in FILE_KINDS or kind == "keys":
        raise OpError("publishable kinds: fares, catalog, entitlements, config")
    data = bytes(data)
    if kind == "config":
        if len(data) > 4096:
            raise OpError("config larger than 4096 bytes", 413)
        try:
            doc = json.loads(data)
        except ValueError:
            raise OpError("config must be a JSON object", 422)
        if not isinstance(doc, dict) or not all(isinstance(k, str) for k in doc):
            raise OpError("config must be a JSON object", 422)
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        version = None
    else:
        version, ident = _validate(kind, data)
    with eng.begin() as c:
        last = c.execute(select(func.coalesce(func.max(S.files.c.version), 0))
                         .where(S.files.c.kind == kind, S.files.c.ident == ident)).scalar_one()
        if version is None:
            version = last + 1
        if version <= last:
            raise OpError("%s version %d is not above the published %d" % (kind, version, last), 409)
        body = _signing().sign_file(active_key(c), kind, version, data, created=now(),
                                    scope=ident if kind == "config" else 0)
        c.execute(S.files.insert().values(kind=kind, ident=ident, version=version, created=now(),
                                          actor=actor, doc=data.hex() if kind != "config" else data.decode(),
                                          body=body))
        audit(c, actor, "publish." + kind, "%s:%d" % (kind, ident), version=version, bytes=len(data))
    return {"kind": kind, "ident": ident, "version": version, "bytes": len(body)}


def latest_file(eng, kind, ident=0):
    with readonly(eng).connect() as c:
        r = c.execute(select(S.files.c.version, S.files.c.body)
                      .where(S.files.c.kind == kind, S.files.c.ident == ident)
                      .order_by(S.files.c.version.desc()).limit(1)).first()
        return (r.version, resign_if_retired(c, bytes(r.body))) if r else (0, None)


def resign_if_retired(c, body):
    """A stored file signed by a key since retired is re-signed (same header
    fields and payload) by the active key, so devices that dropped the old
    key can still fetch it."""
    body = bytes(body)
    h = ksigned.parse_header(body)
    st = c.execute(select(S.signing_keys.c.state).where(S.signing_keys.c.kid == h.kid)).first()
    if st is not None and st.state != "retired":
        return body
    payload = body[ksigned.HDR_SIZE:ksigned.HDR_SIZE + h.length]
    return _signing().sign_file(active_key(c), h.kind, h.version, payload, base=h.base,
                                created=h.created, scope=h.scope)


def fare_table(conn, entry, version):
    """The published FareTable of an entry at a version (settlement), or None."""
    r = conn.execute(select(S.files.c.doc).where(S.files.c.kind == "fares", S.files.c.ident == entry,
                                                 S.files.c.version == version)).first()
    return kfares.FareTable(bytes.fromhex(r.doc)) if r else None


# --- entitlements -------------------------------------------------------------------

def set_entitlement(eng, token, concession, flags=0, valid_from=0, valid_to=99991231, actor="cli"):
    tok = parse_token(token)
    if not 0 <= int(concession) <= 255 or not 0 <= int(flags) <= 255:
        raise OpError("concession and flags are bytes")
    with eng.begin() as c:
        c.execute(delete(S.entitlements).where(S.entitlements.c.token == tok))
        c.execute(S.entitlements.insert().values(token=tok, concession=int(concession), flags=int(flags),
                                                 valid_from=int(valid_from), valid_to=int(valid_to)))
        audit(c, actor, "entitlement.set", "token:" + tok.hex(), concession=concession, flags=flags)


def remove_entitlement(eng, token, actor="cli"):
    tok = parse_token(token)
    with eng.begin() as c:
        c.execute(delete(S.entitlements).where(S.entitlements.c.token == tok))
        audit(c, actor, "entitlement.remove", "token:" + tok.hex())


def publish_entitlements(eng, day=None, actor="cli"):
    """Compile the entitlements valid on `day` (YYYYMMDD, default all) into the
    firmware's YKTE file (ykt.rules.fares.Entitlements) and publish it."""
    import binascii as _b
    with eng.connect() as c:
        q = select(S.entitlements).order_by(S.entitlements.c.token)
        if day:
            q = q.where(S.entitlements.c.valid_from <= day, S.entitlements.c.valid_to >= day)
        rows = list(c.execute(q))
        # Entitlements belong to the holder: one set on any of their cards
        # reaches every card of theirs the card registry knows that is still
        # in use (a replacement card carries it after the next sync).
        person = {bytes(r.token): bytes(r.person) for r in c.execute(select(S.cards.c.token, S.cards.c.person))}
        in_use = {}
        listed = {bytes(r.token) for r in c.execute(select(S.card_status.c.token))}
        for r in c.execute(select(S.cards.c.token, S.cards.c.person).where(S.cards.c.status == "active")):
            if bytes(r.token) not in listed:
                in_use.setdefault(bytes(r.person), []).append(bytes(r.token))
        last = c.execute(select(func.coalesce(func.max(S.files.c.version), 0))
                         .where(S.files.c.kind == "entitlements")).scalar_one()
    ents = {}
    for r in rows:
        tok = bytes(r.token)
        ents[tok] = (r.concession, r.flags)       # the card's own entitlement wins over its holder's
    for r in rows:
        for t in in_use.get(person.get(bytes(r.token)), ()):
            ents.setdefault(t, (r.concession, r.flags))
    body = b"".join(t + bytes(ents[t]) for t in sorted(ents))
    ver = last + 1
    if ver > 0xFFFF:
        raise OpError("entitlements version space exhausted")
    hdr = struct.pack(kfares.HDR_FMT, b"YKTE", kfares.FORMAT_VERSION, 0, ver, 0, 0, len(body),
                      _b.crc32(body) & 0xFFFFFFFF)
    return publish_file(eng, "entitlements", hdr + body, actor=actor)


# --- signing keys (the keyring and the keys file: backoffice/keys.py) -------------------

def _new_key_row(c, bits, state):
    sg = _signing()
    from cryptography.hazmat.primitives import serialization
    k = sg.generate_key(bits)
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    c.execute(S.signing_keys.insert().values(kid=sg.key_id(k), private=pem, public=sg.public_record(k),
                                             created=now(), state=state))
    return k


def ensure_signing_key(eng, bits=None, actor="system"):
    """Create the first signing key (and keys file) if there is none."""
    with eng.begin() as c:
        if not is_sqlite(eng):
            c.exec_driver_sql("SELECT pg_advisory_xact_lock(7956085)")
        if c.execute(select(S.signing_keys.c.id).where(S.signing_keys.c.state == "active")).first():
            return False
        k = _new_key_row(c, bits or key_bits(), "active")
        audit(c, actor, "keys.init", "keys", kid=_signing().keyid_hex(k))
        publish_keys(c, k, actor)
    return True


def rotate_keys(eng, bits=None, actor="cli"):
    """Rotation step 1: a new key becomes the signer; the keys file (signed by
    the OLD key, which devices trust) lists both. Step 2 (retire_keys), once
    the fleet has that keys file: drop the old key."""
    with eng.begin() as c:
        old = active_key(c)
        c.execute(update(S.signing_keys).where(S.signing_keys.c.state == "active")
                  .values(state="retiring"))
        k = _new_key_row(c, bits or key_bits(), "active")
        v = publish_keys(c, old, actor)
        audit(c, actor, "keys.rotate", "keys", new=_signing().keyid_hex(k), keys_version=v)
    return {"kid": _signing().keyid_hex(k), "keys_version": v}


def retire_keys(eng, actor="cli"):
    with eng.begin() as c:
        n = c.execute(update(S.signing_keys).where(S.signing_keys.c.state == "retiring")
                      .values(state="retired")).rowcount
        v = publish_keys(c, active_key(c), actor)
        audit(c, actor, "keys.retire", "keys", retired=n, keys_version=v)
    return {"retired": n, "keys_version": v}


def signing_public_keys(eng):
    with eng.connect() as c:
        return [k.public_key() for k in signing_keys(c)]
