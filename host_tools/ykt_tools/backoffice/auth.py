"""Operator access: scrypt password hashes, opaque session tokens (stored as
SHA-256), roles viewer < operator, and the audit log every change writes to.
Devices never get a session: their per-device HMAC key authenticates only
the /v1 device endpoints, so a device key cannot call /admin."""
import hashlib
import hmac
import json
import secrets
import time

from sqlalchemy import delete, func, select

from ykt_tools.backoffice import schema as S
from ykt_tools.backoffice.db import now, readonly

ROLES = ("viewer", "operator")
SESSION_S = 8 * 3600
_N, _R, _P = 2 ** 14, 8, 1


# Throttling (docs/backoffice.md, "Operator access"). Failures are counted
# from the audit log itself (login.fail rows), so every worker sees the same
# count and the lockout is audited by construction; time is db.now(), the
# injectable clock. A lock refuses even the right password (429) and is not
# itself a failure, so it ends LOCK_S after the failure that set it.
WINDOW_S = 15 * 60
ACCOUNT_FAILS = 20          # wrong passwords for one account within WINDOW_S -> locked
SOURCE_FAILS = 50           # failures from one address (any names) within WINDOW_S -> locked
LOCK_S = 15 * 60
PW_MIN, PW_MAX = 12, 256
_COMMON = {"password1234", "123456789012", "qwertyuiopas", "administrator", "passwordpassword",
           "changemechangeme", "letmeinletmein", "welcome12345"}


class AuthError(Exception):
    pass


class Locked(AuthError):
    """Too many failures: retry_after seconds until the lock ends."""

    def __init__(self, scope, retry_after):
        super().__init__("too many failed logins for this %s; retry after %d s" % (scope, retry_after))
        self.scope = scope
        self.retry_after = retry_after


def password_problem(pw, name=""):
    """The password policy (docs/backoffice.md): None when pw is acceptable,
    else what is wrong with it, in one line."""
    if not isinstance(pw, str) or not PW_MIN <= len(pw) <= PW_MAX:
        return "password must be %d..%d characters" % (PW_MIN, PW_MAX)
    if len(set(pw)) < 6:
        return "password needs at least 6 different characters"
    low = pw.lower()
    if name and name.lower() in low:
        return "password must not contain the account name"
    if low in _COMMON or low.strip("0123456789!") in _COMMON:
        return "password is a common one"
    return None


def hash_password(pw):
    if not isinstance(pw, str) or not 1 <= len(pw) <= PW_MAX:
        raise ValueError("password must be 1..%d characters" % PW_MAX)
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
    problem = password_problem(password, name)
    if problem:
        raise ValueError(problem)
    pw = hash_password(password)
    with eng.begin() as c:
        if c.execute(select(S.operators.c.id).where(S.operators.c.name == name)).first():
            raise ValueError("operator %r exists" % name)
        c.execute(S.operators.insert().values(name=name, role=role, pw=pw, active=True, created=now()))
        audit(c, actor, "operator.add", name, role=role)


def _source_actor(source):
    return ("anon@%s" % source)[:80] if source else "anonymous"


def _lock(c, t, floor, **where):
    """Seconds left of a lock for the failures matching where, or 0: the
    latest failure after floor, if LOCK_S has not passed since it, and the
    window before it holds the limit's worth of failures."""
    fail = (S.audit.c.action == "login.fail",) + tuple(getattr(S.audit.c, k) == v for k, v in where.items())
    last = c.execute(select(func.max(S.audit.c.at)).where(S.audit.c.at > floor, *fail)).scalar()
    if last is None or last + LOCK_S <= t:
        return 0, last
    n = c.execute(select(func.count()).where(S.audit.c.at > max(floor, last - WINDOW_S), *fail)).scalar()
    return n, last + LOCK_S - t


def _lock_left(c, name, source, t):
    """-> (scope, seconds left) of a lock in force, or None. An account's
    count starts again after a successful login."""
    last_ok = c.execute(select(func.max(S.audit.c.at)).where(S.audit.c.action == "login",
                                                               S.audit.c.object == name[:128])).scalar()
    n, left = _lock(c, t, -1 if last_ok is None else last_ok - 1, object=name[:128])
    if n >= ACCOUNT_FAILS:
        return "account", left
    if source:
        n, left = _lock(c, t, t - WINDOW_S - LOCK_S, actor=_source_actor(source))
        if n >= SOURCE_FAILS:
            return "address", left
    return None


def login(eng, name, password, source=None):
    """-> (session_token, operator dict). Raises AuthError, or Locked after
    ACCOUNT_FAILS wrong passwords for the account (SOURCE_FAILS from the
    address) within WINDOW_S; source is the client address."""
    t0 = now()
    with eng.begin() as c:
        lock = _lock_left(c, name, source, t0)
        if lock:         # refused before the password is looked at; not a failure
            raise Locked(*lock)
        op = c.execute(select(S.operators).where(S.operators.c.name == name)).first()
        failed = op is None or not op.active or not check_password(op.pw, password)
        if failed:       # committed before raising: the count lives in the audit log
            audit(c, _source_actor(source), "login.fail", name)
            lock = _lock_left(c, name, source, t0)
            if lock:     # this failure set the lock: logged once, with its end
                audit(c, _source_actor(source), "login.lockout", name, scope=lock[0], until=t0 + lock[1],
                          window_s=WINDOW_S)
    if failed:
        raise AuthError("bad name or password")
    with eng.begin() as c:
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
