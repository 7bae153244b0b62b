"""The package's shape: two layers whose imports go one way (no cycle, eager or lazy), one
table of tasks, tools that are thin shells, an `import pvt_mm` that leaves OpenMMLab's task
packages alone, and clear messages where the set-up is missing."""
import ast
import json
import os
import os.path as osp
import re
import subprocess

import pytest

from conftest import PY, ROOT

PKG = osp.join(ROOT, 'pvt_mm')
TASK_PACKAGES = ('mmcv', 'mmdet', 'mmseg', 'mmpretrain')


def module_name(path):
    rel = osp.relpath(path, ROOT)[:-3].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def python_files(folder):
    return sorted(osp.join(d, f) for d, _, fs in os.walk(folder) for f in fs if f.endswith('.py'))


def package_imports():
    """Module -> the pvt_mm modules it imports anywhere in its body (lazy imports too), and
    module -> every name it imports."""
    modules = {module_name(p): p for p in python_files(PKG)}
    graph, imported = {}, {}
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
        imported[name] = edges
    return graph, imported


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
    graph, _ = package_imports()
    assert 'pvt_mm.network.families' in graph['pvt_mm.network.weights']  # real edges are seen
    assert 'pvt_mm.network.weights' in graph['pvt_mm.network.pyramid']
    assert find_cycle(graph) is None, ' -> '.join(find_cycle(graph))
    # The weights path goes model -> loader; the loader never reaches back into the models.
    loader = graph['pvt_mm.network.weights'] | graph['pvt_mm.network.weight_layouts']
    assert not loader & {'pvt_mm.network.pvt', 'pvt_mm.network.timm_models'}


def test_the_network_layer_never_imports_the_run_layer_or_openmmlab_tasks():
    graph, imported = package_imports()
    network = [m for m in graph if m.startswith('pvt_mm.network')]
    assert len(network) >= 7
    for module in network:
        assert not {m for m in graph[module] if m.startswith('pvt_mm.run')}, module
        names = {n.split('.')[0] for n in imported[module]}
        assert not names & {*TASK_PACKAGES, 'onnx', 'onnxruntime'}, (module, names)
    # The package never reaches into tools/.
    tool_modules = {osp.basename(p)[:-3] for p in python_files(osp.join(ROOT, 'tools'))}
    everything = {n.split('.')[0] for names in imported.values() for n in names}
    assert not everything & (tool_modules | {'tools'})


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None


def test_the_network_file_holds_the_network_only():
    """network/pvt.py: layers, the backbone, and no CPU-specific tuning or file reading."""
    tree = ast.parse(open(osp.join(PKG, 'network', 'pvt.py')).read())
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert classes == {'PatchEmbed', 'SpatialReductionAttention', 'Block', 'PVTStage', 'PVT'}
    text = ast.unparse(tree)
    for forbidden in ('get_num_threads', 'autograd.Function', 'torch.load', 'addmm'):
        assert forbidden not in text, forbidden


def test_tools_are_thin_and_never_edit_sys_path_to_reach_the_package():
    """No tool puts a path built from its own location on sys.path (running a third-party
    script, timm_run.py puts that script's folder first, as Python does), and a tool over
    pvt_mm defines nothing but its argument parsing and its call. The toy-data generator
    and the curve plotter stand alone: they need no pvt_mm."""
    for path in python_files(osp.join(ROOT, 'tools')):
        text = open(path).read()
        for line in text.splitlines():
            assert not ('sys.path' in line and '__file__' in line), f'{path}: {line}'
        if osp.basename(path) not in ('make_toy_data.py', 'plot_curves.py'):
            assert 'from pvt_mm' in text or 'import pvt_mm' in text, path
            tree = ast.parse(text)
            defined = {n.name for n in tree.body
                       if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            assert defined <= {'parse_args', 'main'}, f'{path} defines {defined}'


def test_one_table_of_tasks():
    """Nothing outside pvt_mm/run/tasks.py branches on the task."""
    branch = re.compile(r'task *(==|!=)|task in \(')
    for folder in ('pvt_mm', 'tools'):
        for path in python_files(osp.join(ROOT, folder)):
            if path.endswith(osp.join('run', 'tasks.py')):
                continue
            for n, line in enumerate(open(path), 1):
                assert not branch.search(line), f'{path}:{n}: {line.strip()}'
    from pvt_mm.run.tasks import TASKS
    assert sorted(TASKS) == ['cls', 'det', 'seg']
    assert {t.package for t in TASKS.values()} == {'mmdet', 'mmseg', 'mmpretrain'}


def _python(code, *flags):
    return subprocess.run([PY, *flags, '-c', code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_import_pvt_mm_leaves_openmmlab_task_packages_alone():
    """`import pvt_mm` registers the network, the hooks and the timm models without importing
    mmcv, mmdet, mmseg or mmpretrain; they come with a config or a tool."""
    proc = _python('import json, sys, pvt_mm, timm\n'
                   'from mmengine.registry import HOOKS\n'
                   f'print(json.dumps([[m for m in {TASK_PACKAGES!r} if m in sys.modules],\n'
                   '    pvt_mm.MODELS.get("PVT") is pvt_mm.PVT, "pvt_tiny" in timm.list_models(),\n'
                   '    pvt_mm.HOOKS.get("NonFiniteLossHook") is not None]))')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == [[], True, True, True]


@pytest.mark.slow
def test_the_seg_visualizer_fix_applies_when_mmseg_comes_later_or_first():
    check = ('from mmseg.visualization import SegLocalVisualizer\n'
             'assert getattr(SegLocalVisualizer.add_datasample, "_pvt_mm_contiguous", False)\n'
             'print("fixed")')
    for code in (f'import pvt_mm\n{check}', f'import mmseg.visualization, pvt_mm\n{check}'):
        proc = _python(code)
        assert proc.returncode == 0 and proc.stdout.strip() == 'fixed', proc.stderr[-3000:]


def test_without_the_set_up_the_tools_and_the_package_name_the_set_up_command():
    """`python -S` sees no site-packages: no pvt_mm, no torch. A tool stops with the set-up
    command, not a traceback; the package itself, found on the path, says the same."""
    for tool in ('tools/train.py', 'tools/deployment/export_onnx.py'):
        proc = subprocess.run([PY, '-S', tool, 'config.py'], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode != 0 and 'make setup' in proc.stderr, proc.stderr
        assert 'Traceback' not in proc.stderr, proc.stderr
    proc = _python(f'import sys; sys.path.insert(0, {ROOT!r}); import pvt_mm', '-S')
    assert proc.returncode != 0 and 'make setup' in proc.stderr and 'docs/install.md' in \
        proc.stderr, proc.stderr[-2000:]


def test_tool_help_names_every_task():
    proc = subprocess.run([PY, 'tools/train.py', '--help'], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and 'detector, segmentor or classifier' in proc.stdout


def test_the_families_are_siblings_that_the_rest_asks_through_one_table():
    """PVT and PVTv2 each subclass the family-neutral pyramid and call its constructor; no
    code outside the network classes tests for a family by class or by name, it asks the
    family table."""
    from pvt_mm import PVT, PVTv2
    from pvt_mm.network.families import FAMILIES, family_of
    from pvt_mm.network.pyramid import PyramidBackbone
    for cls in (PVT, PVTv2):
        assert cls.__bases__ == (PyramidBackbone,), cls
        init = ast.unparse(next(n for n in ast.walk(ast.parse(open(
            osp.join(PKG, 'network', FAMILIES[cls.family].module.split('.')[-1] + '.py')).read()))
            if isinstance(n, ast.FunctionDef) and n.name == '__init__'
            and n.lineno > _class_line(cls)))
        assert 'super().__init__(' in init, cls
        assert FAMILIES[cls.family].network is cls
    assert family_of(PVTv2('b0')) is FAMILIES['PVTv2'] and family_of(object()) is None
    isinstance_pvt = re.compile(r'isinstance\([^)]*\bPVT(v2)?\)')
    branch = re.compile(r"family\s*==\s*'|'PVTv2' if|== 'PVTv2'")
    for folder in ('pvt_mm', 'tools', 'pvt_deploy'):
        for path in python_files(osp.join(ROOT, folder)):
            text = open(path).read()
            assert not isinstance_pvt.search(text), path
            assert not branch.search(text), path


def _class_line(cls):
    import inspect
    return inspect.getsourcelines(cls)[1]


def test_deployment_is_one_wing_with_one_contract():
    """Everything that turns a model into a graph is under pvt_mm/run/deployment/; the
    contract (metadata keys, version, outputs per task) is pvt_deploy/schema.py, imported by
    the exporter and the runner alike; the runner dispatches on its task table, never on
    ``task ==`` chains, and imports neither torch nor OpenMMLab nor pvt_mm."""
    graph, imported = package_imports()
    assert not any(m.startswith('pvt_mm.run.end2end') for m in graph)
    export = imported['pvt_mm.run.deployment.export_model'] | imported['pvt_mm.run.deployment.export']
    assert any(n.startswith('pvt_deploy') for n in export)
    deploy_files = python_files(osp.join(ROOT, 'pvt_deploy'))
    runner_uses_schema = False
    for path in deploy_files:
        tree = ast.parse(open(path).read())
        names = {a.name.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names}
        names |= {n.module.split('.')[0] for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        assert not names & {'torch', 'torchvision', 'pvt_mm', *TASK_PACKAGES}, (path, names)
        text = open(path).read()
        for node in ast.walk(tree):  # no comparison of a task name: the table answers
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                assert not any(isinstance(s, ast.Name) and s.id == 'task' or
                               isinstance(s, ast.Attribute) and s.attr == 'task'
                               for s in sides), f'{path}:{node.lineno}'
        runner_uses_schema |= 'read_end2end' in text and not path.endswith('schema.py')
    assert runner_uses_schema
    for key in ("'pvt_mm.end2end'", "'pvt_mm.part'"):  # written once, in the schema
        owners = [p for p in python_files(PKG) + deploy_files if key in open(p).read()]
        assert owners == [osp.join(ROOT, 'pvt_deploy', 'schema.py')], (key, owners)
