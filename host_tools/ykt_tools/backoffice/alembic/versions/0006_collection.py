"""collection: payment accounts, collection files per acquirer and day, their
items (sent, paid, returned, repaid) (backoffice/collect.py)

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "accounts",
        sa.Column("token", sa.LargeBinary, primary_key=True),
        sa.Column("acquirer", sa.String(32), nullable=False),
        sa.Column("mandate", sa.String(64), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("acquirer", sa.String(32), nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("returned_at", sa.BigInteger),
    )
    op.create_index("ix_collections_day_acquirer", "collections", ["day", "acquirer"], unique=True)
    op.create_table(
        "collection_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("collection", sa.Integer, sa.ForeignKey("collections.id"), nullable=False),
        sa.Column("token", sa.LargeBinary, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("code", sa.String(8)),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("payment", sa.String(64)),
    )
    op.create_index("ix_collection_items_token", "collection_items", ["token"])


def downgrade():
    op.drop_table("collection_items")
    op.drop_table("collections")
    op.drop_table("accounts")
