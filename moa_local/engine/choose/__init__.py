"""The ways a mixture ends, by name: each one a :class:`Chooser` in its own module.

``aggregate`` in models.toml (``--aggregate``) names the way; with
verification on, a code question is always ``verified``. Adding a way is
adding its module and one entry in :data:`CHOOSERS` (and its name to
``config.AGGREGATIONS``, where settings are validated).

Before and between layers, :mod:`.router` may end the run early: the model
alone answers a simple question, or a layer whose answers agree stops it.
"""

from __future__ import annotations

from ..state import Run
from .auto import Auto
from .base import Chooser
from .confidence import Confidence
from .consensus import Consensus
from .router import route, stop_when_agreed
from .select import Select
from .synthesize import Synthesize
from .verified import Verified
from .vote import Vote

CHOOSERS: dict[str, Chooser] = {
    "synthesize": Synthesize(),
    "select": Select(),
    "auto": Auto(),
    "vote": Vote(),
    "confidence": Confidence(),
    "consensus": Consensus(),
    "verified": Verified(),
}


def chooser_for(run: Run) -> Chooser:
    """The way ``run`` ends: ``verified`` when its candidates are tested, else the plan's."""
    return CHOOSERS["verified" if run.verification is not None else run.plan.aggregate]


__all__ = ["CHOOSERS", "Chooser", "chooser_for", "route", "stop_when_agreed"]
