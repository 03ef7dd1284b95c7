"""device requests: flags returned in the next heartbeat reply

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    # ykt.net.heartbeat HB_SYNC_NOW / HB_UPLOAD_NOW, cleared when delivered
    with op.batch_alter_table("devices") as b:
        b.add_column(sa.Column("requests", sa.Integer, nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("devices") as b:
        b.drop_column("requests")
