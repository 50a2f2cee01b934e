"""No bench keeps a training loop of its own: the benches that train call the service's loop (jobs/run/loop.py),
so what they measure is what a job trains. Read statically (ast): nothing heavy is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
# The benches that train a model, each through jobs.run.loop.fit.
TRAINING_BENCHES = ["ram_paper.py", "dram_multidigit.py", "racnn_zoom.py", "birds.py"]
# The files that may step an optimiser themselves, and why.
OWN_STEPS = {
    "models.py": "times single training steps of each variant (a speed benchmark, not training)",
    "dram_where_bandit.py": "a REINFORCE bandit on three of DRAM's sub-networks with a reward of its own, "
                            "which is no model family's losses (all the loop trains)",
}


def _dotted(node: ast.AST) -> str:
    """`torch.optim.Adam` for the expression torch.optim.Adam ("" for anything but names and attributes)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else ""
    return ""


def own_steps(source: str) -> list[str]:
    """Where `source` makes a torch.optim optimiser or calls .backward(): ["line N: what", ...]."""
    tree = ast.parse(source)
    # Local names bound to torch.optim or to something in it: `from torch import optim`, `import torch.optim as o`,
    # `from torch.optim import Adam`.
    optim_names = {"torch.optim"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.optim"):
            for alias in node.names:
                if node.module == "torch.optim" or alias.name == "optim":
                    optim_names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("torch.optim") and alias.asname:
                    optim_names.add(alias.asname)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "backward":
            found.append((node.lineno, f"{_dotted(node.func.value) or '...'}.backward()"))
        elif any(name == n or name.startswith(n + ".") for n in optim_names) and name.split(".")[-1][:1].isupper():
            found.append((node.lineno, f"{name}(...)"))
    return [f"line {line}: {what}" for line, what in sorted(found)]


def _calls_the_loop(source: str) -> bool:
    """`source` imports fit from jobs.run.loop (or the module) and calls it."""
    tree = ast.parse(source)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "jobs.run.loop":
            names |= {a.asname or a.name for a in node.names if a.name == "fit"}
        elif isinstance(node, ast.ImportFrom) and node.module == "jobs.run":
            names |= {f"{a.asname or a.name}.fit" for a in node.names if a.name == "loop"}
        elif isinstance(node, ast.Import):
            names |= {f"{a.asname}.fit" if a.asname else "jobs.run.loop.fit" for a in node.names
                      if a.name == "jobs.run.loop"}
    return any(isinstance(n, ast.Call) and _dotted(n.func) in names for n in ast.walk(tree))


def test_the_detector_sees_optimisers_and_backward_however_they_are_named():
    assert own_steps("import torch\nopt = torch.optim.Adam(ps, lr=1)\nloss.backward()\n") == [
        "line 2: torch.optim.Adam(...)", "line 3: loss.backward()"]
    assert own_steps("from torch.optim import SGD as S\nS(ps)\n") == ["line 2: S(...)"]
    assert own_steps("from torch import optim\noptim.AdamW(ps)\n") == ["line 2: optim.AdamW(...)"]
    assert own_steps("from torch import optim\noptim.lr_scheduler\nopt.step()\n") == []
    assert own_steps((BENCH / "models.py").read_text())  # the one bench that times steps does both


def test_only_the_listed_benches_step_an_optimiser_themselves():
    stepping = {p.name: own_steps(p.read_text()) for p in sorted(BENCH.glob("*.py"))}
    unexpected = {name: where for name, where in stepping.items() if where and name not in OWN_STEPS}
    assert not unexpected, f"benches with a training loop of their own (train through jobs.run.loop.fit): {unexpected}"


@pytest.mark.parametrize("name", TRAINING_BENCHES)
def test_each_training_bench_calls_the_services_loop(name):
    source = (BENCH / name).read_text()
    assert _calls_the_loop(source), f"bench/{name}: does not import and call jobs.run.loop.fit"
    assert not own_steps(source), f"bench/{name}: {own_steps(source)}"
