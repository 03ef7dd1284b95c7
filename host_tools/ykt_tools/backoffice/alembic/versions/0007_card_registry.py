"""card registry: cards by keyed token, with keyed card-number and person
hashes (backoffice/registry.py)

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "cards",
        sa.Column("token", sa.LargeBinary, primary_key=True),
        sa.Column("cardno_h", sa.LargeBinary),
        sa.Column("person", sa.LargeBinary, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("issued", sa.Integer, nullable=False),
        sa.Column("expires", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("replaced_by", sa.LargeBinary),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_cards_cardno_h", "cards", ["cardno_h"])
    op.create_index("ix_cards_person", "cards", ["person"])


def downgrade():
    op.drop_table("cards")
