"""One run as a stream of what a client may show, cancelled when the client goes away.

Both APIs and the web page use :class:`LiveRun`: it starts the run at once
(so the queue place it holds is given back however the request ends),
collects :class:`Piece` items (answer text, reasoning text, engine events)
and, from :meth:`LiveRun.pieces`, yields them and finally the
:class:`~moa_local.result.MoAResult`. A task watches the connection; when
the client disconnects, the run is cancelled, which stops the model at its
next token and frees the cores for the next request (the trace ends with
``run.error`` of kind ``cancelled``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from ..result import MoAResult
from .runtime import ChatRequest, ServeRuntime, Ticket

# How often the connection is checked while the run goes on.
DISCONNECT_POLL_S = 0.2


@dataclass(frozen=True)
class Piece:
    """Something to send: ``kind`` is "text", "reasoning" or "event"."""

    kind: str
    text: str = ""
    event: str = ""
    record: dict[str, Any] = field(default_factory=dict)


class LiveRun:
    """A run started now, its pieces queued for whoever sends them (module docstring).

    ``reasoning`` streams each proposal's text, under a heading per agent, as
    "reasoning" pieces; ``events`` queues every engine event (text deltas
    included) as "event" pieces. ``load_s`` adds up the models' load times.
    """

    def __init__(
        self,
        runtime: ServeRuntime,
        chat: ChatRequest,
        ticket: Ticket,
        request: Request,
        *,
        reasoning: bool = False,
        events: bool = False,
    ) -> None:
        self.chat = chat
        self.load_s = 0.0
        self._reasoning = reasoning
        self._events = events
        self._speaking: tuple[int, str] | None = None  # whose proposal streams now
        self._held: dict[tuple[int, str], list[str]] = {}  # others' text, in order of arrival
        self._finished: set[tuple[int, str]] = set()  # held ones already done
        self._said = False
        self._queue: asyncio.Queue[Piece | None] = asyncio.Queue()
        self.task = asyncio.create_task(
            runtime.run(
                chat,
                ticket,
                self._on_text,
                observers=[self._observe],
                live=reasoning or events,
            )
        )

        def finished(_: asyncio.Task[MoAResult]) -> None:
            runtime.queue.give_back(ticket)  # a run cancelled before it began
            self._queue.put_nowait(None)

        self.task.add_done_callback(finished)
        self._watcher = asyncio.create_task(self._cancel_on_disconnect(request))

    def _on_text(self, text: str) -> None:
        self._queue.put_nowait(Piece("text", text))

    def _observe(self, event: str, record: dict[str, Any]) -> None:
        if event == "model.load":
            self.load_s += float(record.get("seconds") or 0.0)
        if self._events:
            self._queue.put_nowait(Piece("event", event=event, record=record))
        if self._reasoning and event in ("proposal.delta", "proposal.done"):
            self._reason(event, (int(record["layer"]), str(record["agent"])), record)

    def _reason(self, event: str, who: tuple[int, str], record: dict[str, Any]) -> None:
        """One proposal at a time, under its heading: others wait until it is done.

        Agents on different devices stream at once; interleaving them would
        make the reasoning unreadable, so later ones are held and follow.
        """
        if self._speaking is None:
            if event == "proposal.done":
                return  # a failed or empty proposal that never streamed
            self._speaking = who
            self._say(f"{chr(10) * 2 if self._said else ''}[layer {who[0]}, {who[1]}]\n")
        if event == "proposal.delta":
            if who == self._speaking:
                self._say(str(record["text"]))
            else:
                self._held.setdefault(who, []).append(str(record["text"]))
            return
        if who != self._speaking:
            self._finished.add(who)
            return
        # The current speaker is done: the next held one (finished or not) follows.
        while self._held:
            who, pieces = next(iter(self._held.items()))
            del self._held[who]
            self._speaking = who
            self._say(f"\n\n[layer {who[0]}, {who[1]}]\n" + "".join(pieces))
            if who not in self._finished:
                return
        self._speaking = None

    def _say(self, text: str) -> None:
        self._said = True
        self._queue.put_nowait(Piece("reasoning", text))

    async def pieces(self) -> AsyncIterator[Piece | MoAResult]:
        """The pieces as they come, then the result; the run's error is raised here."""
        try:
            while (piece := await self._queue.get()) is not None:
                yield piece
            yield self.task.result()
        finally:
            await self.close()

    async def close(self) -> None:
        """Cancel the run if it still goes on, and stop watching the connection."""
        self._watcher.cancel()
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task

    async def _cancel_on_disconnect(self, request: Request) -> None:
        while not self.task.done():
            if await request.is_disconnected():
                self.task.cancel()
                return
            await asyncio.sleep(DISCONNECT_POLL_S)
