"""Tables (SQLAlchemy Core). The alembic migrations in alembic/versions create
exactly these; tests/test_backoffice_store.py checks that they agree."""
from sqlalchemy import (BigInteger, Boolean, Column, ForeignKey, Integer, LargeBinary, MetaData, String, Table,
                        Text, Index)

metadata = MetaData()

# Settings: server-wide secrets generated at first start (token key used to
# tokenize card identities typed by operators; export pseudonym key).
settings = Table(
    "settings", metadata,
    Column("k", String(64), primary_key=True),
    Column("v", LargeBinary, nullable=False),
)

devices = Table(
    "devices", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("entry", Integer, nullable=False, default=0),
    Column("key", LargeBinary, nullable=False),         # per-device HMAC key (random, 32 bytes)
    Column("active", Boolean, nullable=False, default=True),
    Column("created", BigInteger, nullable=False),
    Column("last_seen", BigInteger),
    Column("fw", String(32)),
    Column("dl_ver", BigInteger),
    Column("fare_ver", Integer),
    Column("cat_ver", Integer),
    Column("backlog", Integer),
    Column("reader_faults", Integer),
    Column("status", Text),                               # last heartbeat, JSON
    Column("seq_contig", BigInteger, nullable=False, default=0),   # all seqs <= this are stored
    Column("seq_max", BigInteger, nullable=False, default=0),
    Column("last_nonce", BigInteger, nullable=False, default=0),   # request replay guard
    Column("requests", Integer, nullable=False, server_default="0"),  # heartbeat reply flags (0002)
)

taps = Table(
    "taps", metadata,
    Column("device", Integer, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("day", Integer, nullable=False),               # service day YYYYMMDD (UTC+8)
    Column("t", BigInteger, nullable=False),
    Column("token", LargeBinary, nullable=False),
    Column("outcome", Integer, nullable=False),
    Column("reason", Integer, nullable=False),
    Column("fare", Integer, nullable=False),
    Column("concession", Integer, nullable=False),
    Column("flags", Integer, nullable=False),
    Column("entry", Integer, nullable=False),
    Column("stop", Integer, nullable=False),
    Column("direction", Integer, nullable=False),
    Column("stage", Integer, nullable=False),
    Column("dl_ver", BigInteger, nullable=False),
    Column("fare_ver", Integer, nullable=False),
    Column("cat_ver", Integer, nullable=False),
    Column("rx", BigInteger, nullable=False),             # server receive time
    Column("shift", BigInteger, nullable=False, server_default="0"),  # seq of the shift's sign-on tap (0005)
)
# Settlement scans a day. PostgreSQL: BRIN (taps arrive in day order; a
# B-tree cost half the database's CPU per ingested tap). No token index.
Index("ix_taps_day", taps.c.day, postgresql_using="brin")

nonces = Table(                                           # request replay guard (pruned after days)
    "nonces", metadata,
    Column("device", Integer, primary_key=True),
    Column("nonce", LargeBinary, primary_key=True),
    Column("at", BigInteger, nullable=False),
)

seq_gaps = Table(                                         # seqs a device skipped between batches
    "seq_gaps", metadata,
    Column("device", Integer, primary_key=True),
    Column("first", BigInteger, primary_key=True),
    Column("last", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
)

heartbeats = Table(
    "heartbeats", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("device", Integer, nullable=False, index=True),
    Column("at", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
)

operators = Table(
    "operators", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("pw", String(256), nullable=False),            # scrypt$n$r$p$salt$hash
    Column("active", Boolean, nullable=False, default=True),
    Column("created", BigInteger, nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("h", String(64), primary_key=True),            # sha256 of the session token
    Column("operator", Integer, nullable=False),
    Column("expires", BigInteger, nullable=False),
)

audit = Table(
    "audit", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(80), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object", String(128), nullable=False),
    Column("detail", Text, nullable=False),
)

card_status = Table(                                      # current status per card token
    "card_status", metadata,
    Column("token", LargeBinary, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("since", BigInteger, nullable=False),
    Column("dl_ver", BigInteger, nullable=False),
)

card_events = Table(
    "card_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("token", LargeBinary, nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("replaced_by", LargeBinary),
    Column("actor", String(80), nullable=False),
    Column("note", Text, nullable=False),
    Column("dl_ver", BigInteger, nullable=False),
)

# The card registry (registry.py), as the SSC service centre's card-management
# system feeds it. Identifiers only as keyed tokens (the operator token key):
# token = ykt.sec.token.card_token of the card identification code (what
# devices compute), cardno_h = cardno_token of the printed card number,
# person = registry.citizen_token of the holder's citizen ID (never on a device).
cards = Table(
    "cards", metadata,
    Column("token", LargeBinary, primary_key=True),
    Column("cardno_h", LargeBinary, index=True),           # NULL: a successor known only by its code
    Column("person", LargeBinary, nullable=False, index=True),
    Column("generation", Integer, nullable=False),         # 1, 2, 3 (SSC card generation)
    Column("issued", Integer, nullable=False),             # YYYYMMDD
    Column("expires", Integer, nullable=False),            # YYYYMMDD
    Column("status", String(16), nullable=False),          # active lost suspended cancelled replaced
    Column("replaced_by", LargeBinary),                    # token of the successor card
    Column("updated", BigInteger, nullable=False),
)

denylist = Table(                                         # one row per deny-list version
    "denylist", metadata,
    Column("version", BigInteger, primary_key=True),
    Column("created", BigInteger, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("image", LargeBinary),                          # signed image (denylist_build) or NULL
    Column("delta", LargeBinary, nullable=False),          # signed delta from version-1
    Column("delta_ops", Text, nullable=False),             # JSON [[op, token_hex, status], ...]
)

files = Table(                                            # published signed files
    "files", metadata,
    Column("kind", String(16), primary_key=True),          # fares, catalog, entitlements, config, keys
    Column("ident", Integer, primary_key=True),            # fares: catalog entry; config: device (0 all)
    Column("version", Integer, primary_key=True),
    Column("created", BigInteger, nullable=False),
    Column("actor", String(80), nullable=False),
    Column("doc", Text, nullable=False),                   # JSON source as validated
    Column("body", LargeBinary, nullable=False),           # signed envelope served to devices
)

entitlements = Table(
    "entitlements", metadata,
    Column("token", LargeBinary, primary_key=True),
    Column("concession", Integer, nullable=False),
    Column("valid_from", Integer, nullable=False),         # YYYYMMDD
    Column("valid_to", Integer, nullable=False),
    Column("flags", Integer, nullable=False),             # ykt.rules.fares E_* bits
)

signing_keys = Table(
    "signing_keys", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kid", LargeBinary, nullable=False, unique=True),   # sigverify.key_id (8 bytes)
    Column("private", LargeBinary, nullable=False),
    Column("public", LargeBinary, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),           # active, retiring, retired
)

settlements = Table(
    "settlements", metadata,
    Column("day", Integer, primary_key=True),
    Column("token", LargeBinary, primary_key=True),
    Column("taps", Integer, nullable=False),
    Column("provisional", Integer, nullable=False),
    Column("amount", Integer, nullable=False),
    Column("fare_ver", Integer, nullable=False),
    Column("settled_at", BigInteger, nullable=False),
)

charges = Table(                                          # audit trail: one row per tap counted
    "charges", metadata,
    Column("day", Integer, primary_key=True),
    Column("device", Integer, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("token", LargeBinary, nullable=False),
    Column("provisional", Integer, nullable=False),
    Column("charged", Integer, nullable=False),
    Column("rule", String(32), nullable=False),
)
Index("ix_charges_day_token", charges.c.day, charges.c.token)

# --- OTA releases and staged roll-outs (rollout.py) -----------------------------
releases = Table(
    "releases", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version", String(16), nullable=False, unique=True),
    Column("vint", BigInteger, nullable=False),
    Column("boards", Text, nullable=False),                # JSON list, [] = any
    Column("min_interp", Integer, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("blob", LargeBinary, nullable=False),
    Column("created", BigInteger, nullable=False),
)
rollouts = Table(
    "rollouts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("release", Integer, ForeignKey("releases.id"), nullable=False),
    Column("target", String(80), nullable=False),          # all | entry:N | board:NAME
    Column("stage", String(12), nullable=False),           # canary | percent | all | halted
    Column("percent", Integer, nullable=False),
    Column("canary", Text, nullable=False),                # JSON list of device ids
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("note", Text),
)
rollout_devices = Table(
    "rollout_devices", metadata,
    Column("rollout", Integer, ForeignKey("rollouts.id"), primary_key=True),
    Column("device", Integer, primary_key=True),
    Column("state", String(12), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("board", String(64)),
    Column("running", String(16)),
    Column("updated", BigInteger, nullable=False),
)


# --- collection: settlement -> acquirers -> returned items -> arrears (collect.py) ----
accounts = Table(                                         # a card token's payment account (0006)
    "accounts", metadata,
    Column("token", LargeBinary, primary_key=True),
    Column("acquirer", String(32), nullable=False),        # the acquiring bank's code
    Column("mandate", String(64), nullable=False),         # the debit mandate the bank knows the account by
    Column("created", BigInteger, nullable=False),
)
collections = Table(                                      # one collection file per acquirer and day
    "collections", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("acquirer", String(32), nullable=False),
    Column("day", Integer, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("items", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("body", Text, nullable=False),                  # the file as sent
    Column("returned_at", BigInteger),                     # the acquirer's return file imported
)
Index("ix_collections_day_acquirer", collections.c.day, collections.c.acquirer, unique=True)
collection_items = Table(
    "collection_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("collection", Integer, ForeignKey("collections.id"), nullable=False),
    Column("token", LargeBinary, nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(12), nullable=False),          # sent | paid | returned | repaid
    Column("code", String(8)),                             # the acquirer's return reason
    Column("updated", BigInteger, nullable=False),
    Column("payment", String(64)),                         # the reference of the payment that cleared it
)
