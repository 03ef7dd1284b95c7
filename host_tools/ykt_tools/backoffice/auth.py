"""Operator access: scrypt password hashes, opaque session tokens (stored as
SHA-256), roles viewer < operator, and the audit log every change writes to.
Devices never get a session: their per-device HMAC key authenticates only
the /v1 device endpoints, so a device key cannot call /admin."""
import hashlib
import hmac
import json
import secrets
import time

from sqlalchemy import delete, select

from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.db import now, readonly

ROLES = ("viewer", "operator")
SESSION_S = 8 * 3600
_N, _R, _P = 2 ** 14, 8, 1


class AuthError(Exception):
    pass


def hash_password(pw):
    if len(pw) < 8:
        raise ValueError("password must be at least 8 characters")
    salt = secrets.token_bytes(16)
    h = hashlib.scrypt(pw.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "scrypt$%d$%d$%d$%s$%s" % (_N, _R, _P, salt.hex(), h.hex())


def check_password(stored, pw):
    try:
        _, n, r, p, salt, h = stored.split("$")
        got = hashlib.scrypt(pw.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(h) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), h)


def audit(conn, actor, action, obj, **detail):
    conn.execute(S.audit.insert().values(at=now(), actor=actor, action=action, object=str(obj)[:128],
                                         detail=json.dumps(detail, sort_keys=True, default=str)))


def add_operator(eng, name, role, password, actor="cli"):
    if role not in ROLES:
        raise ValueError("role must be one of %s" % ", ".join(ROLES))
    if not name or len(name) > 64:
        raise ValueError("bad operator name")
    pw = hash_password(password)
    with eng.begin() as c:
        if c.execute(select(S.operators.c.id).where(S.operators.c.name == name)).first():
            raise ValueError("operator %r exists" % name)
        c.execute(S.operators.insert().values(name=name, role=role, pw=pw, active=True, created=now()))
        audit(c, actor, "operator.add", name, role=role)


def login(eng, name, password):
    """-> (session_token, operator dict). Raises AuthError."""
    with eng.begin() as c:
        op = c.execute(select(S.operators).where(S.operators.c.name == name)).first()
        if op is None or not op.active or not check_password(op.pw, password):
            audit(c, "anonymous", "login.fail", name)
            raise AuthError("bad name or password")
        tok = secrets.token_urlsafe(32)
        t = int(time.time())   # sessions follow the wall clock even when db.set_clock simulates
        c.execute(delete(S.sessions).where(S.sessions.c.expires < t))
        c.execute(S.sessions.insert().values(h=_h(tok), operator=op.id, expires=t + SESSION_S))
        audit(c, op.name, "login", op.name)
    return tok, {"name": op.name, "role": op.role}


def logout(eng, tok):
    with eng.begin() as c:
        c.execute(delete(S.sessions).where(S.sessions.c.h == _h(tok)))


def session_operator(eng, tok):
    """Operator dict for a session token, or None."""
    if not tok or len(tok) > 200:
        return None
    with readonly(eng).connect() as c:
        r = c.execute(select(S.operators.c.name, S.operators.c.role, S.operators.c.active,
                             S.sessions.c.expires)
                      .select_from(S.sessions.join(S.operators, S.operators.c.id == S.sessions.c.operator))
                      .where(S.sessions.c.h == _h(tok))).first()
    if r is None or not r.active or r.expires < time.time():
        return None
    return {"name": r.name, "role": r.role}


def _h(tok):
    return hashlib.sha256(tok.encode()).hexdigest()
