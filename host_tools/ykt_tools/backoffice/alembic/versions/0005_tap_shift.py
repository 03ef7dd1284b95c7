"""taps.shift: the driver shift a tap was made in (tap record format 2)

The seq of the shift's sign-on tap on the same device (ykt.taprec R_SHIFT_ON),
0 for taps outside a shift and for every tap of record format 1.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("taps") as b:
        b.add_column(sa.Column("shift", sa.BigInteger, nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("taps") as b:
        b.drop_column("shift")
