"""initial schema

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # rowid alias on SQLite


def upgrade():
    op.create_table("settings", sa.Column("k", sa.String(64), primary_key=True),
                    sa.Column("v", sa.LargeBinary, nullable=False))
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("entry", sa.Integer, nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger),
        sa.Column("fw", sa.String(32)),
        sa.Column("dl_ver", sa.BigInteger),
        sa.Column("fare_ver", sa.Integer),
        sa.Column("cat_ver", sa.Integer),
        sa.Column("backlog", sa.Integer),
        sa.Column("reader_faults", sa.Integer),
        sa.Column("status", sa.Text),
        sa.Column("seq_contig", sa.BigInteger, nullable=False),
        sa.Column("seq_max", sa.BigInteger, nullable=False),
        sa.Column("last_nonce", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "taps",
        sa.Column("device", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("t", sa.BigInteger, nullable=False),
        sa.Column("token", sa.LargeBinary, nullable=False),
        sa.Column("outcome", sa.Integer, nullable=False),
        sa.Column("reason", sa.Integer, nullable=False),
        sa.Column("fare", sa.Integer, nullable=False),
        sa.Column("concession", sa.Integer, nullable=False),
        sa.Column("flags", sa.Integer, nullable=False),
        sa.Column("entry", sa.Integer, nullable=False),
        sa.Column("stop", sa.Integer, nullable=False),
        sa.Column("direction", sa.Integer, nullable=False),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("dl_ver", sa.BigInteger, nullable=False),
        sa.Column("fare_ver", sa.Integer, nullable=False),
        sa.Column("cat_ver", sa.Integer, nullable=False),
        sa.Column("rx", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_taps_day", "taps", ["day"])
    op.create_table(
        "nonces",
        sa.Column("device", sa.Integer, primary_key=True),
        sa.Column("nonce", sa.LargeBinary, primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "seq_gaps",
        sa.Column("device", sa.Integer, primary_key=True),
        sa.Column("first", sa.BigInteger, primary_key=True),
        sa.Column("last", sa.BigInteger, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "heartbeats",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("device", sa.Integer, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_heartbeats_device", "heartbeats", ["device"])
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("pw", sa.String(256), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("h", sa.String(64), primary_key=True),
        sa.Column("operator", sa.Integer, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object", sa.String(128), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "card_status",
        sa.Column("token", sa.LargeBinary, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("since", sa.BigInteger, nullable=False),
        sa.Column("dl_ver", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "card_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("token", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("replaced_by", sa.LargeBinary),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("dl_ver", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_card_events_token", "card_events", ["token"])
    op.create_table(
        "denylist",
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("image", sa.LargeBinary),
        sa.Column("delta", sa.LargeBinary, nullable=False),
        sa.Column("delta_ops", sa.Text, nullable=False),
    )
    op.create_table(
        "files",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("ident", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "entitlements",
        sa.Column("token", sa.LargeBinary, primary_key=True),
        sa.Column("concession", sa.Integer, nullable=False),
        sa.Column("valid_from", sa.Integer, nullable=False),
        sa.Column("valid_to", sa.Integer, nullable=False),
        sa.Column("flags", sa.Integer, nullable=False),
    )
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kid", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("private", sa.LargeBinary, nullable=False),
        sa.Column("public", sa.LargeBinary, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
    )
    op.create_table(
        "settlements",
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("token", sa.LargeBinary, primary_key=True),
        sa.Column("taps", sa.Integer, nullable=False),
        sa.Column("provisional", sa.Integer, nullable=False),
        sa.Column("amount", sa.Integer, nullable=False),
        sa.Column("fare_ver", sa.Integer, nullable=False),
        sa.Column("settled_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "charges",
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("device", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("token", sa.LargeBinary, nullable=False),
        sa.Column("provisional", sa.Integer, nullable=False),
        sa.Column("charged", sa.Integer, nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
    )
    op.create_index("ix_charges_day_token", "charges", ["day", "token"])


def downgrade():
    for t in ("charges", "settlements", "signing_keys", "entitlements", "files", "denylist",
              "card_events", "card_status", "audit", "sessions", "operators", "heartbeats",
              "seq_gaps", "nonces", "taps", "devices", "settings"):
        op.drop_table(t)
