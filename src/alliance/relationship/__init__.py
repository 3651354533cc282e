"""The relationship: two perspectives on the alliance, ruptures and repairs, dropout, stages.

Per-client entry points take plain inputs (lists, arrays, DataFrames) and return frozen
dataclasses with ``to_dict()``:

* :func:`detect_ruptures` — rupture–repair episodes (methods ``absolute``, ``relative_1sd``,
  ``relative_2sd``, ``ceiling_aware``);
* :func:`icc` — agreement across a caseload (Shrout & Fleiss 1979);
* :func:`perspective_gap` — the standardised therapist–client gap and its flags;
* :func:`dropout_warning` — the day-one rule; :func:`fit_dropout_model` — the practice model;
* :func:`suggest_stage` — the relationship stage (a heuristic suggestion);
* :func:`support_checklist` — what to check when a client is off track;
* :func:`alliance_outcome_effects` — within- vs between-client alliance–outcome effects;
* :mod:`alliance.relationship.evaluation` — recovery of a simulated practice's known truth.
"""

from __future__ import annotations

from alliance.relationship.agreement import ICC_METHODS, ICCResult, ICCRow, icc
from alliance.relationship.analytics import (
    WithinBetween,
    alliance_outcome_effects,
    within_between_frame,
)
from alliance.relationship.checklist import (
    CHECKLIST_DOMAINS,
    ChecklistItem,
    SupportChecklist,
    support_checklist,
)
from alliance.relationship.dropout import (
    DROPOUT_FEATURES,
    DropoutModel,
    DropoutRuleConfig,
    DropoutWarning,
    auc,
    dropout_features,
    dropout_warning,
    fit_dropout_model,
    fit_l2_logistic,
)
from alliance.relationship.gap import (
    GapConfig,
    GapNorms,
    PerspectiveGap,
    gap_norms,
    perspective_gap,
)
from alliance.relationship.ruptures import (
    RUPTURE_METHODS,
    DetectionScore,
    RuptureConfig,
    RuptureEpisode,
    RuptureResult,
    detect_ruptures,
    reference_sd,
    score_detection,
)
from alliance.relationship.series import ScaleRange, alliance_series, normalise, scale_range
from alliance.relationship.stages import STAGES, StageConfig, StageSuggestion, suggest_stage

__all__ = [
    "CHECKLIST_DOMAINS",
    "DROPOUT_FEATURES",
    "ICC_METHODS",
    "RUPTURE_METHODS",
    "STAGES",
    "ChecklistItem",
    "DetectionScore",
    "DropoutModel",
    "DropoutRuleConfig",
    "DropoutWarning",
    "GapConfig",
    "GapNorms",
    "ICCResult",
    "ICCRow",
    "PerspectiveGap",
    "RuptureConfig",
    "RuptureEpisode",
    "RuptureResult",
    "ScaleRange",
    "StageConfig",
    "StageSuggestion",
    "SupportChecklist",
    "WithinBetween",
    "alliance_outcome_effects",
    "alliance_series",
    "auc",
    "detect_ruptures",
    "dropout_features",
    "dropout_warning",
    "fit_dropout_model",
    "fit_l2_logistic",
    "gap_norms",
    "icc",
    "normalise",
    "perspective_gap",
    "reference_sd",
    "scale_range",
    "score_detection",
    "suggest_stage",
    "support_checklist",
    "within_between_frame",
]
