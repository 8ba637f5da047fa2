"""The Mixture-of-Agents algorithm, and nothing else.

The engine knows nothing of click, printing, environment variables or where
models come from: it receives a resolved :class:`Plan`, a backend registry, a
scheduler and a tracer, and returns a :class:`MoAResult`. Its rooms:

- :mod:`.plan`: what a run is asked to do (:class:`Plan`, :class:`Sampling`);
- :mod:`.run`: the run flow, step by step (:class:`Engine`);
- :mod:`.state`: one run in progress and the answer it ends with;
- :mod:`.generation`: requests built, leased and turned into proposals;
- :mod:`.context`: references fitted into a model's context;
- :mod:`.layers`: filling and running a layer, roles, the refinement layouts;
- :mod:`.evidence`: one run's tests and how candidates do on them;
- :mod:`.choose`: the ways a mixture ends, one module each.
"""

from .context import fit_references
from .plan import Plan, Sampling, TextCallback, policy_from
from .run import Engine, cut_at_stop

__all__ = [
    "Engine",
    "Plan",
    "Sampling",
    "TextCallback",
    "cut_at_stop",
    "fit_references",
    "policy_from",
]
