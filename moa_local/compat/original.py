"""The settings that keep the original libraries' semantics under moa-local's defaults.

Code written against those libraries expects every layer to run, each agent
to read all of the previous layer's answers, and the aggregator to write the
final answer from them. moa-local's own defaults (chosen by evaluation) may
stop early when answers agree, pick an answer instead of synthesizing one, or
run tests; the compat classes pin the originals' behaviour instead. An
argument the caller passes still wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ORIGINAL_SETTINGS: dict[str, Any] = {
    "router": "off",  # every layer runs, even when the answers agree
    "layout": "references",  # every agent reads all of the previous layer's answers
    "aggregate": "synthesize",  # the aggregator writes the final answer
    "verify": False,  # no model-written code is run
}


def with_original_settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` over the originals' settings (the caller's values win)."""
    return {**ORIGINAL_SETTINGS, **options}
