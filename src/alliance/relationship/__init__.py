"""The relationship: alliance series, ruptures and repairs, agreement, dropout, stages."""

from __future__ import annotations

from alliance.relationship.agreement import ICC_METHODS, ICCResult, ICCRow, icc

__all__ = ["ICC_METHODS", "ICCResult", "ICCRow", "icc"]
