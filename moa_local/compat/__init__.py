"""Adapters for code written against other Mixture-of-Agents libraries.

Each adapter keeps the constructor and ``run`` signature its users already
write, maps the arguments onto :class:`moa_local.MoA`, and returns what the
original returned. They are translations, not second engines: every run goes
through :mod:`moa_local.engine`.

- :mod:`.langchain_style`: ``MoA(models_layer=..., model_roles=..., aggregator_model=...,
  nb_models_by_layer=..., layer=..., layer_strategy=...)``; ``await moa.run(prompt)`` -> str.
- :mod:`.azcore_style`: ``Agent(agent_name=..., system_prompt=..., llm=...)`` and
  ``MixtureOfAgents(agents=..., aggregator_agent=..., layers=...)``; ``workflow.run(task)``
  -> dict with ``final_output`` and ``layer_history``.
- :mod:`.proposer_style`: ``ProposerConfig(...)`` and ``MixtureOfAgents(proposers=...,
  aggregator_model=..., num_layers=...)``; ``await moa.run(query)`` -> dict.

All three keep the originals' semantics whatever moa-local's own defaults
(:mod:`.original`): every layer runs, each agent reads the previous layer's
answers, and the aggregator synthesizes; an argument the caller passes wins.
"""
