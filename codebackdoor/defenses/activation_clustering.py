"""Activation clustering: within a class, poisoned examples form their own small cluster.

Chen et al. reduce the last hidden layer's activations of each class to 10 dimensions with
independent component analysis, split them with 2-means, and call the smaller cluster
poisoned when it is small enough relative to the class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from codebackdoor.defenses.base import DefenseContext, FilterDecision, FilterDefense
from codebackdoor.defenses.spectral import class_groups
from codebackdoor.errors import UserError

if TYPE_CHECKING:
    import numpy

    from codebackdoor.examples import Example
    from codebackdoor.models.victim import Victim

REDUCTIONS = ("ica", "pca")


@dataclass
class ActivationClustering(FilterDefense):
    """Removes, per class, the smaller of two k-means clusters when it is small enough."""

    name = "ac"
    description = (
        "activation clustering: per class, ICA to 10 dimensions, 2-means, removes the smaller "
        "cluster when its share of the class is under a threshold"
    )
    citation = (
        "Chen, Carvalho, Baracaldo, Ludwig, Edwards, Lee, Molloy, Srivastava. Detecting "
        "Backdoor Attacks on Deep Neural Networks by Activation Clustering. SafeAI@AAAI 2019"
    )

    # Chen et al.: FastICA to 10 components; PCA is the cheaper alternative they compare.
    reduction: Literal["ica", "pca"] = "ica"
    components: int = 10
    # Chen et al. flag a cluster holding a small share of its class without fixing the share;
    # 0.35 is the relative-size threshold of IBM's Adversarial Robustness Toolbox, whose
    # ActivationDefence the authors contributed.
    size_threshold: float = 0.35
    # Where each example's vector is read (Victim.representations). Chen et al. cluster the
    # last hidden layer, the classifier's penultimate activations: "head-input".
    representation: Literal["mean", "first-token", "head-input"] = "mean"
    # Rows per victim call; None: the victim's evaluation batch size.
    batch_size: int | None = None

    def __post_init__(self) -> None:
        self.check_representation(self.representation)
        if self.reduction not in REDUCTIONS:
            raise UserError(f"ac: reduction = {self.reduction!r} must be one of {REDUCTIONS}")
        if self.components < 1:
            raise UserError(f"ac: components = {self.components} must be at least 1")
        if not 0.0 < self.size_threshold <= 0.5:
            raise UserError(f"ac: size_threshold = {self.size_threshold} must lie in (0, 0.5]")

    def filter(
        self, train: list[Example], victim: Victim | None, context: DefenseContext
    ) -> FilterDecision:
        if victim is None:
            raise ValueError("ac needs the victim trained on the poisoned data")
        vectors = victim.representations(
            [e.source for e in train], self.batch_size, self.representation
        )
        return self.decide(vectors, class_groups(train, context.task), context.seed)

    def decide(
        self, vectors: numpy.ndarray, groups: dict[str, list[int]], seed: int
    ) -> FilterDecision:
        """The verdict on representations ``vectors`` (N, H), clustered within each group."""
        import numpy as np

        keep = [True] * len(vectors)
        found: dict[str, Any] = {}
        for group, rows in groups.items():
            labels = self.clusters(vectors[rows], seed)
            sizes = np.bincount(labels, minlength=2)
            smaller = int(np.argmin(sizes))
            share = float(sizes[smaller] / len(rows))
            flagged = share < self.size_threshold
            if flagged:
                for row, label in zip(rows, labels, strict=True):
                    if label == smaller:
                        keep[row] = False
            found[group] = {
                "cluster_sizes": sizes.tolist(),
                "smaller_share": share,
                "removed": int(sizes[smaller]) if flagged else 0,
            }
        return FilterDecision(
            keep,
            None,
            {"reduction": self.reduction, "components": self.components, "groups": found},
        )

    def clusters(self, vectors: numpy.ndarray, seed: int) -> numpy.ndarray:
        """2-means labels (0/1) of the reduced ``vectors``; all 0 when too few to split."""
        import warnings

        import numpy as np
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA, FastICA
        from sklearn.exceptions import ConvergenceWarning

        rows, width = vectors.shape
        dims = min(self.components, width, rows - 1)
        if dims < 1 or rows < 2:
            return np.zeros(rows, dtype=np.int64)
        data = np.asarray(vectors, dtype=np.float64)
        if self.reduction == "ica":
            # ART's ActivationDefence settings (max_iter 1000, tol 0.005), the authors' code.
            reducer: Any = FastICA(
                n_components=dims,
                whiten="unit-variance",
                max_iter=1000,
                tol=0.005,
                random_state=seed,
            )
        else:
            reducer = PCA(n_components=dims, random_state=seed)
        with warnings.catch_warnings():
            # FastICA warns when it stops at max_iter; its components still serve 2-means.
            warnings.simplefilter("ignore", ConvergenceWarning)
            reduced = reducer.fit_transform(data)
            return KMeans(n_clusters=2, n_init=10, random_state=seed).fit_predict(reduced)
