"""Two-person approvals, KPI history, alarm shelving and escalation (#17).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("intersections", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_approvals_status", "approvals", ["status"])
    op.create_table(
        "kpi_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sim_t_s", sa.Float(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_kpi_samples_at", "kpi_samples", ["at"])
    with op.batch_alter_table("alarms") as b:
        b.add_column(sa.Column("shelved_until", sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("shelved_by", sa.String(length=64), nullable=True))
        b.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))

def downgrade() -> None:
    with op.batch_alter_table("alarms") as b:
        b.drop_column("escalated_at")
        b.drop_column("shelved_by")
        b.drop_column("shelved_until")
    op.drop_index("ix_kpi_samples_at", "kpi_samples")
    op.drop_table("kpi_samples")
    op.drop_index("ix_approvals_status", "approvals")
    op.drop_table("approvals")
