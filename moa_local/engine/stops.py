"""When the verified cascade stops drawing samples although none has passed.

The cascade (:func:`moa_local.engine.layers.run_cascade`) draws one sample
after another until one passes the question's examples, up to the plan's
agents and ``verify_samples`` more. Where nothing passes, every further
sample costs a whole answer and rarely wins: a small model that has failed
twice in the same way tends to fail a third time in that way too. A stop
rule reads the verdicts so far and says when more samples are unlikely to
help (``verify_stop``):

- ``never``: draw them all;
- ``repeat``: stop when a sample fails the examples exactly as an earlier one
  did (the same tests failed, the same values returned or the same errors
  raised), whatever its source looks like: the model is circling one wrong
  reading of the question;
- ``stalled``: stop when two samples in a row pass none of the examples: a
  sample that passes some is near an answer, one that passes none has
  misread the question, and two such in a row say the next will too.

Rules are general: they read behaviour on the question's own examples, never
which problem it is. ``scripts/cascade_samples.py`` prices each on a logged
run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..checks.program_tests import Verdict

StopRule = Callable[[Sequence[Verdict]], str | None]


def never(verdicts: Sequence[Verdict]) -> str | None:
    """Draw every sample allowed."""
    return None


def repeated_failure(verdicts: Sequence[Verdict]) -> str | None:
    """Why to stop when the last sample failed exactly as an earlier one (else None)."""
    last = verdicts[-1].behaviour()
    if last is None or all(last[0]):
        return None
    for earlier, verdict in enumerate(verdicts[:-1]):
        if verdict.behaviour() == last:
            return (
                f"sample {len(verdicts)} fails the examples exactly as sample {earlier + 1} "
                "did (same tests, same values)"
            )
    return None


def stalled(verdicts: Sequence[Verdict]) -> str | None:
    """Why to stop when the last two samples passed none of the examples (else None)."""
    if len(verdicts) < 2 or any(any(v.passed) for v in verdicts[-2:]):
        return None
    return f"samples {len(verdicts) - 1} and {len(verdicts)} pass none of the examples"


STOP_RULES: dict[str, StopRule] = {"never": never, "repeat": repeated_failure, "stalled": stalled}
