"""``moa-local eval``: score mixtures and single models on verifiable suites.

Suites live in their own modules (:mod:`.humaneval`, :mod:`.ifbench`,
:mod:`.bigbench`) behind the small :class:`~moa_local.evals.suite.Suite`
protocol; :mod:`.runner` runs configs over a suite with a resumable JSONL log;
:mod:`.report` turns the log into a table, JSON and a chart. HumanEval's and
IFBench's data and verifiers come with the ``moa-local[eval]`` extra;
BIG-bench's data is downloaded on first use (:mod:`.bigbench_data`).
"""
