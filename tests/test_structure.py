"""The package's shape: imports inside pvt_mm go one way (no cycle, eager or lazy), and the
network file holds the network only."""
import ast
import os
import os.path as osp

from conftest import ROOT

PKG = osp.join(ROOT, 'pvt_mm')


def module_name(path):
    rel = osp.relpath(path, ROOT)[:-3].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def package_imports():
    """Module -> the pvt_mm modules it imports anywhere in its body (lazy imports too)."""
    modules = {}
    for folder, _, files in os.walk(PKG):
        for f in files:
            if f.endswith('.py'):
                modules[module_name(osp.join(folder, f))] = osp.join(folder, f)
    graph = {}
    for name, path in modules.items():
        is_pkg = path.endswith('__init__.py')
        base = name.split('.') if is_pkg else name.split('.')[:-1]
        edges = set()
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom):
                parts = (base[:len(base) - node.level + 1] if node.level else []) + \
                    (node.module.split('.') if node.module else [])
                target = '.'.join(parts)
                for alias in node.names:  # `from . import x` may name a submodule
                    sub = f'{target}.{alias.name}'
                    edges.add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
        graph[name] = {e for e in edges if e in modules and e != name}
        IMPORTED[name] = edges
    return graph


IMPORTED = {}  # module -> every name it imports, inside pvt_mm or not


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 'done'
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_inside_pvt_mm():
    graph = package_imports()
    assert 'pvt_mm.arch' in graph['pvt_mm.checkpoint']  # the walker sees real edges
    assert 'pvt_mm.checkpoint' in graph['pvt_mm.models.pvt']
    assert find_cycle(graph) is None, ' -> '.join(find_cycle(graph))
    # The weights path goes model -> loader; the loader never reaches back into the models.
    assert not {m for m in graph['pvt_mm.checkpoint'] | graph['pvt_mm.weight_layouts']
                if m.startswith('pvt_mm.models')}
    # The package never reaches into tools/ (its helpers are the tools' own).
    tool_modules = {f[:-3] for _, _, fs in os.walk(osp.join(ROOT, 'tools')) for f in fs
                    if f.endswith('.py')}
    assert not {m for names in IMPORTED.values() for m in names} & (tool_modules | {'tools'})


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None


def test_the_network_file_holds_the_network_only():
    """models/pvt.py: layers, the backbone, and no CPU-specific tuning or file reading."""
    tree = ast.parse(open(osp.join(PKG, 'models', 'pvt.py')).read())
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert classes == {'PatchEmbed', 'SpatialReductionAttention', 'Block', 'PVTStage', 'PVT'}
    text = ast.unparse(tree)
    for forbidden in ('get_num_threads', 'autograd.Function', 'torch.load', 'addmm'):
        assert forbidden not in text, forbidden
