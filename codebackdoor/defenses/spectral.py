"""Spectral signatures: poisoned examples stand out along the top singular directions of the
(centred) representations of their class.

Tran, Li and Madry score each example by its squared projection on the top right singular
vector of its class's centred representation matrix and remove the 1.5·ε·n highest scores
of each class of n examples. Ramakrishnan & Albarghouthi apply it to code models with the
top 10 singular vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codebackdoor.defenses.base import DefenseContext, FilterDecision, FilterDefense
from codebackdoor.errors import UserError

if TYPE_CHECKING:
    import numpy

    from codebackdoor.examples import Example
    from codebackdoor.models.victim import Victim


@dataclass
class SpectralSignatures(FilterDefense):
    """Removes the examples with the largest projection on the top singular vector(s)."""

    name = "spectral"
    description = (
        "spectral signatures: removes the training examples whose centred representation "
        "projects most on the top singular vector(s) of their class"
    )
    citation = (
        "Tran, Li, Madry. Spectral Signatures in Backdoor Attacks. NeurIPS 2018; with k = 10 "
        "singular vectors: Ramakrishnan, Albarghouthi. Backdoors in Neural Models of Source "
        "Code. ICPR 2022"
    )

    # Tran et al. use the top singular vector; Ramakrishnan & Albarghouthi the top 10.
    k: int = 1
    # The expected poisoned share of a group. When given, each group of n loses its 1.5·ε·n
    # top scores (Tran et al.); when not, every score above the group's `percentile` goes.
    # A classifier's poison sits in the target class, where its share exceeds the run's rate
    # (41 of 407 idlelib functions at rate 0.05 on the `package` task); a generation task has
    # one group, whose share is the rate.
    epsilon: float | None = None
    # BackdoorBench's default for an unknown poison fraction.
    percentile: float = 85.0
    # Rows per victim call; None: the victim's evaluation batch size.
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise UserError(f"spectral: k = {self.k} must be at least 1")
        if self.epsilon is not None and not 0.0 < self.epsilon < 1.0:
            raise UserError(f"spectral: epsilon = {self.epsilon} must lie in (0, 1)")
        if not 0.0 <= self.percentile < 100.0:
            raise UserError(f"spectral: percentile = {self.percentile} must lie in [0, 100)")

    def filter(
        self, train: list[Example], victim: Victim | None, context: DefenseContext
    ) -> FilterDecision:
        if victim is None:
            raise ValueError("spectral needs the victim trained on the poisoned data")
        vectors = victim.representations([e.source for e in train], self.batch_size)
        return self.decide(vectors, class_groups(train, context.task))

    def decide(self, vectors: numpy.ndarray, groups: dict[str, list[int]]) -> FilterDecision:
        """The verdict on representations ``vectors`` (N, H) scored within each group of rows."""
        import numpy as np

        scores = np.zeros(len(vectors))
        keep = [True] * len(vectors)
        found: dict[str, Any] = {}
        for group, rows in groups.items():
            group_scores = spectral_scores(vectors[rows], self.k)
            scores[rows] = group_scores
            if self.epsilon is not None:
                count = min(len(rows), math.floor(1.5 * self.epsilon * len(rows)))
                # Stable, so that ties are broken by position and the run is reproducible.
                order = np.argsort(-group_scores, kind="stable")[:count]
                removed = [rows[i] for i in order]
                threshold = float(group_scores[order[-1]]) if count else None
            else:
                threshold = float(np.percentile(group_scores, self.percentile))
                removed = [row for row, s in zip(rows, group_scores, strict=True) if s > threshold]
            for row in removed:
                keep[row] = False
            found[group] = {"size": len(rows), "removed": len(removed), "threshold": threshold}
        return FilterDecision(keep, scores.tolist(), {"k": self.k, "groups": found})


def class_groups(train: Sequence[Example], task: Any) -> dict[str, list[int]]:
    """Rows per target label for a classification task; one group of all rows otherwise.

    A generation task's targets are nearly all distinct, so they cannot define classes.
    """
    if getattr(task, "output_kind", None) != "label":
        return {"all": list(range(len(train)))}
    groups: dict[str, list[int]] = {}
    for row, example in enumerate(train):
        groups.setdefault(example.target, []).append(row)
    return groups


def spectral_scores(vectors: numpy.ndarray, k: int) -> numpy.ndarray:
    """Squared norm of each centred row's projection on the top ``k`` right singular vectors.

    Computed from the eigendecomposition of the smaller Gram matrix (H×H or N×N) in float64
    rather than an SVD of the N×H matrix: for 50,000 rows of width 1,024 that is one
    matrix product and a 1,024² eigenproblem.
    """
    import numpy as np

    centred = np.asarray(vectors, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    rows, width = centred.shape
    k = min(k, rows, width)
    if k == 0:
        return np.zeros(rows)
    if rows >= width:
        _, eigenvectors = np.linalg.eigh(centred.T @ centred)
        projections = centred @ eigenvectors[:, -k:]
        return (projections**2).sum(axis=1)
    # Row side: C = U S Vᵀ, so the projection on v_j is s_j·u_j and C Cᵀ = U S² Uᵀ.
    eigenvalues, eigenvectors = np.linalg.eigh(centred @ centred.T)
    return (eigenvectors[:, -k:] ** 2 * np.clip(eigenvalues[-k:], 0.0, None)).sum(axis=1)
