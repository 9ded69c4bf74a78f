"""Spectral signatures: poisoned examples stand out along the top singular directions of the
representations of their class.

Tran, Li and Madry's paper (Algorithm 1) scores each example by its squared projection on the
top right singular vector of its class's centred representation matrix and removes the
1.5·ε·n highest scores of each class of n examples; Ramakrishnan & Albarghouthi's
``detect_backdoor.py`` does the same with the top 10 singular vectors. The authors' released
code (MadryLab ``compute_corr.py``), BackdoorBench's ``defense/spectral.py`` and ART's
``spectral_signature_scores`` take the singular vector of the centred matrix but score |v·x| on
the uncentred rows, and the first two remove every score above the 85th percentile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from codebackdoor.defenses.base import DefenseContext, FilterDecision, FilterDefense
from codebackdoor.errors import UserError

if TYPE_CHECKING:
    import numpy

    from codebackdoor.examples import Example
    from codebackdoor.models.victim import Victim


SCORES = ("centred", "madry-uncentred")


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
    # The authors' code's and BackdoorBench's cut for an unknown poison fraction.
    percentile: float = 85.0
    # "centred": ‖Vₖᵀ(x − μ)‖², the paper's Algorithm 1 and Ramakrishnan & Albarghouthi's
    # score, which flags both tails of the projection. "madry-uncentred": ‖Vₖᵀx‖ on the rows as
    # they are (|v·x| for k = 1), as MadryLab's compute_corr.py, BackdoorBench and ART score;
    # it ranks by the distance from 0 rather than from the mean, so when the class mean
    # projects far from 0 only the tail on the mean's side is flagged.
    score: Literal["centred", "madry-uncentred"] = "centred"
    # Where each example's vector is read (Victim.representations).
    representation: Literal["mean", "first-token", "head-input"] = "mean"
    # Rows per victim call; None: the victim's evaluation batch size.
    batch_size: int | None = None

    def __post_init__(self) -> None:
        self.check_representation(self.representation)
        if self.score not in SCORES:
            raise UserError(f"spectral: score = {self.score!r} must be one of {SCORES}")
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
        vectors = victim.representations(
            [e.source for e in train], self.batch_size, self.representation
        )
        return self.decide(vectors, class_groups(train, context.task))

    def decide(self, vectors: numpy.ndarray, groups: dict[str, list[int]]) -> FilterDecision:
        """The verdict on representations ``vectors`` (N, H) scored within each group of rows."""
        import numpy as np

        scores = np.zeros(len(vectors))
        keep = [True] * len(vectors)
        found: dict[str, Any] = {}
        for group, rows in groups.items():
            group_scores = spectral_scores(vectors[rows], self.k, centred=self.score == "centred")
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
        details = {"k": self.k, "score": self.score, "groups": found}
        return FilterDecision(keep, scores.tolist(), details)


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


def spectral_scores(vectors: numpy.ndarray, k: int, *, centred: bool = True) -> numpy.ndarray:
    """Each row's projection on the top ``k`` right singular vectors of the centred rows:
    the squared norm of the centred row's projection, or (``centred=False``) the norm of the
    row's own projection, the released code's |v·x|.

    Computed from the eigendecomposition of the smaller Gram matrix (H×H or N×N) in float64
    rather than an SVD of the N×H matrix: for 50,000 rows of width 1,024 that is one
    matrix product and a 1,024² eigenproblem.
    """
    import numpy as np

    rows_as_given = np.asarray(vectors, dtype=np.float64)
    mean = rows_as_given.mean(axis=0)
    centred_rows = rows_as_given - mean
    rows, width = centred_rows.shape
    k = min(k, rows, width)
    if k == 0:
        return np.zeros(rows)
    if rows >= width:
        _, eigenvectors = np.linalg.eigh(centred_rows.T @ centred_rows)
        top = eigenvectors[:, -k:]
    else:
        # Row side: C = U S Vᵀ and C Cᵀ = U S² Uᵀ, so V = Cᵀ U S⁻¹.
        eigenvalues, eigenvectors = np.linalg.eigh(centred_rows @ centred_rows.T)
        singular = np.sqrt(np.clip(eigenvalues[-k:], 0.0, None))
        top = centred_rows.T @ eigenvectors[:, -k:] / np.where(singular > 0, singular, 1.0)
    if centred:
        return ((centred_rows @ top) ** 2).sum(axis=1)
    return np.linalg.norm(rows_as_given @ top, axis=1)
