"""OTA releases and staged roll-outs (backoffice/rollout.py)

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version", sa.String(16), nullable=False, unique=True),
        sa.Column("vint", sa.BigInteger, nullable=False),
        sa.Column("boards", sa.Text, nullable=False),
        sa.Column("min_interp", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("blob", sa.LargeBinary, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("release", sa.Integer, sa.ForeignKey("releases.id"), nullable=False),
        sa.Column("target", sa.String(80), nullable=False),
        sa.Column("stage", sa.String(12), nullable=False),
        sa.Column("percent", sa.Integer, nullable=False),
        sa.Column("canary", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_table(
        "rollout_devices",
        sa.Column("rollout", sa.Integer, sa.ForeignKey("rollouts.id"), primary_key=True),
        sa.Column("device", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("board", sa.String(64)),
        sa.Column("running", sa.String(16)),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )


def downgrade():
    op.drop_table("rollout_devices")
    op.drop_table("rollouts")
    op.drop_table("releases")
