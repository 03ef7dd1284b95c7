"""PostgreSQL: taps.day indexed with BRIN instead of a B-tree

Taps arrive in roughly day order, so a block-range index finds a day's rows
for settlement and exports while costing almost nothing per insert; the
B-tree was half of PostgreSQL's CPU per ingested tap (docs/performance.md).
SQLite has no BRIN and keeps its B-tree.

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_taps_day", table_name="taps")
    op.create_index("ix_taps_day", "taps", ["day"], postgresql_using="brin")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_taps_day", table_name="taps")
    op.create_index("ix_taps_day", "taps", ["day"])
