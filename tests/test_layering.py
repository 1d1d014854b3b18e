"""The layering the README's Layout section promises, read from the source (module-level imports)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "seqlab"


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        yield ".".join(parts), path


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_nothing_below_the_cli_imports_it_or_argparse():
    bad = [(name, imp) for name, path in _modules() if not name.startswith("seqlab.cli") and name != "seqlab.__main__"
           for imp in _imports(path, top_level_only=False)
           if imp == "argparse" or imp == "seqlab.cli" or imp.startswith("seqlab.cli.")]
    assert not bad, bad


def test_viz_web_export_reach_task_pipelines_only_through_the_registry():
    allowed = {"seqlab.pipelines.registry", "seqlab.pipelines.base"}
    bad = [(name, imp) for name, path in _modules() if name.split(".")[1:2] in (["viz"], ["web"], ["export"])
           for imp in _imports(path, top_level_only=False)
           if imp.startswith("seqlab.pipelines.") and not any(imp == a or imp.startswith(a + ".") for a in allowed)]
    assert not bad, bad


def test_no_import_cycles_at_module_level():
    names = dict(_modules())
    graph = {}
    for name, path in names.items():
        deps = set()
        for imp in _imports(path, top_level_only=True):
            while imp and imp not in names:
                imp = imp.rpartition(".")[0]
            if imp and imp != name and not name.startswith(imp + "."):  # a package's own __init__ is not a cycle
                deps.add(imp)
        graph[name] = deps
    state, cycles = {}, []

    def visit(n, stack):
        state[n] = "open"
        for d in sorted(graph[n]):
            if state.get(d) == "open":
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, cycles[:3]
