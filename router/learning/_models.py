"""The models learning puts in force: the deployment's (learning.shared) or each tenant's own, and
the ones other instances on the ledger published. A tenant's model and verifier route only that
tenant's requests (`Core.brains`, `Core.verifiers`); the deployment's route everyone else's."""

from __future__ import annotations

from typing import Any

from classifiers import LinearClassifier
from policies import ThresholdPolicy
from router._core import Core
from router.ledger import SavedModel
from router.verifier._model import FORMAT as VERIFIER_FORMAT
from router.verifier._model import from_dict as verifier_from_dict


class InForce:
    """Owns which model and verifier are in force for each scope, and how far publications were read."""

    def __init__(self, core: Core, tiers: list[str], shared: bool) -> None:
        self._core, self._tiers, self.shared = core, tiers, shared
        self.model_id = 0  # the deployment's publications read so far
        self.tenant_model_id = 0  # the tenants' publications read so far

    def scope(self, tenant: str) -> str | None:
        """Whose model a tenant's labels refit: its own, or the deployment's (None) when shared."""
        return None if self.shared else tenant

    def brain(self, scope: str | None) -> tuple[Any, Any]:
        return self._core.brain if scope is None else self._core.brain_for(scope)

    def verifier(self, scope: str | None) -> Any:
        return self._core.verifier if scope is None else self._core.verifier_for(scope)

    def tenants(self) -> dict[str, dict[str, Any]]:
        """The tenants with a model or verifier of their own: their thresholds, and whether a verifier."""
        core = self._core
        return {t: {"thresholds": list(getattr(core.brain_for(t)[1], "thresholds", ())), "verifier": t in core.verifiers}
                for t in sorted(core.brains.keys() | core.verifiers.keys())}

    def install(self, clf: Any, thresholds: list[float], scope: str | None) -> None:
        downgrade = getattr(self.brain(scope)[1], "downgrade", None)
        pair = (clf, ThresholdPolicy(self._tiers, thresholds, downgrade))
        if scope is None:
            self._core.brain = pair  # one assignment: a request sees the old pair or the new, never half
        else:
            self._core.brains[scope] = pair

    def install_verifier(self, verifier: Any, scope: str | None) -> None:
        if scope is None:
            self._core.verifier = verifier
        else:
            self._core.verifiers[scope] = verifier

    def pickup(self) -> None:
        """Install what instances published since the last look, in order: classifiers and verifiers."""
        for saved in self._core.ledger.models(self.model_id):
            self._put(saved, None)
            self.model_id = saved.id
        if not self.shared:
            for saved in self._core.ledger.models(self.tenant_model_id, tenants=True):
                self._put(saved, saved.tenant)
                self.tenant_model_id = saved.id

    def _put(self, saved: SavedModel, scope: str | None) -> None:
        if saved.weights.get("format") == VERIFIER_FORMAT:
            self.install_verifier(verifier_from_dict(saved.weights, "ledger verifier"), scope)
        else:
            self.install(LinearClassifier.from_dict(saved.weights, source="ledger model"), saved.thresholds, scope)
