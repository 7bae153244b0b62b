"""Shared helpers: checkpoints in the official PVT key layout, written independently of pvt_mm.

The official layout below is transcribed from the structure of the official code
(``patch_embed{i}``, ``pos_embed{i}`` with one class-token row in the last stage,
``block{i}.{j}.{norm1,attn.q,attn.kv,attn.sr,attn.norm,attn.proj,norm2,mlp.fc1,mlp.fc2}``,
and the classifier's ``cls_token``, ``norm``, ``head``), not from pvt_mm's converter, so
that a converter bug cannot cancel itself out in the tests.
"""
from __future__ import annotations

import atexit
import json
import math
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile

import pytest

from local_hub import LocalHub

# Every huggingface_hub request of the tests (and of the tools they start) goes to a hub on
# 127.0.0.1 (tests/local_hub.py) and into a cache of this process's own, without a token:
# huggingface_hub reads its endpoint and cache locations at import, so they are set before
# pvt_mm (through timm) imports it.
LOCAL_HUB = LocalHub.start()
HF_HOME = tempfile.mkdtemp(prefix='pvt_mm_tests_hf_')
atexit.register(shutil.rmtree, HF_HOME, ignore_errors=True)
for _name in ('HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_HUB_CACHE', 'HF_TOKEN_PATH',
              'TRANSFORMERS_OFFLINE', 'HF_HUB_OFFLINE'):
    os.environ.pop(_name, None)
os.environ.update(HF_ENDPOINT=LOCAL_HUB.url, HF_HOME=HF_HOME, HF_HUB_DISABLE_TELEMETRY='1')

import torch  # noqa: E402

import pvt_mm  # noqa: E402,F401  (registers the models and applies the compat fixes)
from pvt_mm.network.arch import resolve_arch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One process: every core. Under pytest-xdist (make test runs a worker per core), each worker
# and the tools it starts get their share, so that workers never oversubscribe the cores.
WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
THREADS = max(1, (os.cpu_count() or 1) // WORKERS)
torch.set_num_threads(THREADS)
if WORKERS > 1:
    os.environ['OMP_NUM_THREADS'] = str(THREADS)

FP32_EPS = torch.finfo(torch.float32).eps
WIDEST_REDUCTION = 2048  # the longest dot product in PVT: stage 4's MLP (512 x 4 hidden)


def train_step(model, x):
    """One training step's outputs and every parameter's gradient (a double-precision
    loss on all the maps), the gradients cleared afterwards."""
    outs = model(x)
    sum((o.double() ** 2).mean() for o in outs).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return [o.detach() for o in outs], grads


def rounding_atol(ref: torch.Tensor, reduction: int = WIDEST_REDUCTION, chained: int = 1) -> float:
    """Largest |difference| between two fp32 computations of ``ref`` that differ only in
    summation order (fused vs explicit attention, chunked vs whole products, the GEMM and
    attention kernels each instruction set picks).

    A length-K dot product summed in another order moves by about sqrt(K) * eps relative to
    the magnitudes summed, so the bound is sqrt(reduction) * eps * max|ref|. Forward
    features need ``chained=1``: every block's LayerNorms renormalise, so rounding does not
    compound from block to block (measured: 5-12 eps * max|ref| on the CPU's default, AVX2
    and AVX-512 kernels, against the bound's 45). A gradient passes through every block
    with nothing renormalising it: ``chained`` = the blocks it crossed (measured for
    PVT-Tiny's input gradient: 16-20 eps * max|ref|, against 45 * 8 = 362).
    """
    return math.sqrt(reduction) * chained * FP32_EPS * ref.detach().abs().max().item()


# The tools end to end: each run is a subprocess of the command a user types.
PY = sys.executable
TOY = osp.join(ROOT, 'configs', 'toy')
FEW_EPOCHS = ['--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1']


def run(args, timeout=900, env=None, check=True):
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})})
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, f'{" ".join(args)} failed:\n{out[-4000:]}'
    return out


def load_tool(path):
    """The tool script at ``path`` (relative to the repo) as a module, to call its ``main``
    in this process; its folder does not go on sys.path."""
    import importlib.util
    name = 'tool_' + osp.splitext(path)[0].replace('/', '_')
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mim_file(package, *parts):
    """A file an OpenMMLab package ships under its ``.mim/`` folder (its own ``tools/`` and
    ``configs/``), where ``mim`` and the package's docs find them."""
    import importlib
    return osp.join(osp.dirname(importlib.import_module(package).__file__), '.mim', *parts)


def metrics_of(output):
    line = [ln for ln in output.splitlines() if ln.startswith('pvt_mm metrics: ')][-1]
    return json.loads(line[len('pvt_mm metrics: '):])


def last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


@pytest.fixture(scope='session')
def mini_data(tmp_path_factory):
    """A small toy set: 8 training images (2 iterations an epoch at batch 4), 4 for validation."""
    out = tmp_path_factory.mktemp('toy_mini')
    run([PY, 'tools/data/make_toy_data.py', '--out', str(out), '--train', '8', '--val', '4',
         '--seed', '1'])
    return out


@pytest.fixture(scope='session')
def toy_data(tmp_path_factory):
    """The bundled toy set as make_toy_data.py makes it by default (seed 0: 64 training and
    16 validation images, COCO and ADE20K layouts), made once per test process."""
    out = tmp_path_factory.mktemp('toy')
    run([PY, 'tools/data/make_toy_data.py', '--out', str(out)])
    return out


@pytest.fixture(scope='session')
def trained(tmp_path_factory, toy_data):
    """``trained(config, *options)``: tools/train.py on the toy set, run once per config and
    options in a test process and shared by every test that asks (each toy is trained once
    per test run; tests that share one are kept on one pytest-xdist worker by an
    ``xdist_group`` mark). Returns the work dir, the training output, the last checkpoint
    and the data root."""
    cache = {}

    def train(config, *options):
        key = (config, options)
        if key not in cache:
            layout = 'ade/ADEChallengeData2016' if config.startswith(('fpn_', 'trans2seg_')) \
                else 'coco/'
            data = str(toy_data / layout)
            work = tmp_path_factory.mktemp(osp.splitext(config)[0])
            output = run([PY, 'tools/train.py', osp.join(TOY, config), '--work-dir', str(work),
                          '--data-root', data, *options])
            cache[key] = dict(work=work, output=output, checkpoint=last_checkpoint(str(work)),
                              data=data)
        return cache[key]
    return train


@pytest.fixture(scope='session')
def demo_run(tmp_path_factory):
    """The README's main job (scripts/demo.sh) run once: its toy data in ``data``, its work dir
    (checkpoints, metrics, pictures) in ``work``, its output in ``output``. The demo test
    checks what it learned; the deployment tests export its checkpoint."""
    root = tmp_path_factory.mktemp('demo')
    work = root / 'demo'
    output = run(['bash', 'scripts/demo.sh'], timeout=1800,
                 env={'DATA': str(root / 'toy'), 'WORK_DIR': str(work)})
    return dict(data=root / 'toy', work=work, output=output,
                checkpoint=last_checkpoint(str(work)))


def official_shapes(arch: str | dict, num_classes: int = 1000, img_size: int = 224,
                    classifier: bool = True) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an official PVT v1 classification checkpoint of ``arch``."""
    a = resolve_arch(arch)
    shapes: dict[str, tuple[int, ...]] = {}
    cin, size = 3, img_size
    n = len(a['depths'])
    for i in range(n):
        s = i + 1
        c, p, r = a['embed_dims'][i], a['patch_sizes'][i], a['sr_ratios'][i]
        hidden = int(c * a['mlp_ratios'][i])
        size //= p
        shapes[f'patch_embed{s}.proj.weight'] = (c, cin, p, p)
        shapes[f'patch_embed{s}.proj.bias'] = (c,)
        shapes[f'patch_embed{s}.norm.weight'] = (c,)
        shapes[f'patch_embed{s}.norm.bias'] = (c,)
        shapes[f'pos_embed{s}'] = (1, size * size + (1 if s == n else 0), c)
        for j in range(a['depths'][i]):
            b = f'block{s}.{j}.'
            for norm in ('norm1', 'norm2'):
                shapes[b + norm + '.weight'] = (c,)
                shapes[b + norm + '.bias'] = (c,)
            shapes[b + 'attn.q.weight'] = (c, c)
            shapes[b + 'attn.q.bias'] = (c,)
            shapes[b + 'attn.kv.weight'] = (2 * c, c)
            shapes[b + 'attn.kv.bias'] = (2 * c,)
            shapes[b + 'attn.proj.weight'] = (c, c)
            shapes[b + 'attn.proj.bias'] = (c,)
            if r > 1:
                shapes[b + 'attn.sr.weight'] = (c, c, r, r)
                shapes[b + 'attn.sr.bias'] = (c,)
                shapes[b + 'attn.norm.weight'] = (c,)
                shapes[b + 'attn.norm.bias'] = (c,)
            shapes[b + 'mlp.fc1.weight'] = (hidden, c)
            shapes[b + 'mlp.fc1.bias'] = (hidden,)
            shapes[b + 'mlp.fc2.weight'] = (c, hidden)
            shapes[b + 'mlp.fc2.bias'] = (c,)
        cin = c
    if classifier:
        c = a['embed_dims'][-1]
        shapes['cls_token'] = (1, 1, c)
        shapes['norm.weight'] = (c,)
        shapes['norm.bias'] = (c,)
        shapes['head.weight'] = (num_classes, c)
        shapes['head.bias'] = (num_classes,)
    return shapes


def official_state_dict(arch: str | dict, seed: int = 0, classifier: bool = True,
                        img_size: int = 224) -> dict[str, torch.Tensor]:
    """Random weights in the official layout, scaled like a trained network's.

    LayerNorm weights scatter around 1 and biases around 0 so that every parameter
    influences the output (an identity LayerNorm would hide a mix-up of norms).
    """
    g = torch.Generator().manual_seed(seed)
    return {key: trained_like(key, shape, g) for key, shape in
            official_shapes(arch, classifier=classifier, img_size=img_size).items()}


def trained_like(key: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """A random tensor for the weight ``key``, scaled like a trained network's: LayerNorm
    weights around 1, biases (and norms' other tensors) around 0, position embeddings and
    class tokens at 0.02, other weights at 1 / sqrt(fan-in)."""
    t = torch.randn(shape, generator=generator)
    if 'norm' in key and key.endswith('weight'):
        return 1.0 + 0.1 * t
    if key.endswith('bias') or 'norm' in key:
        return 0.02 * t
    if any(name in key for name in ('pos_embed', 'position_embeddings', 'cls_token')):
        return 0.02 * t
    return t * max(1, math.prod(shape[1:])) ** -0.5


def randomised(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``model`` (another library's PVT) with every tensor :func:`trained_like`, in eval mode:
    LayerNorm weights around 1, biases around 0 (an identity norm would hide a mix-up of
    norms)."""
    g = torch.Generator().manual_seed(seed)
    model.load_state_dict({key: trained_like(key, tuple(value.shape), g)
                           for key, value in model.state_dict().items()})
    return model.eval()


# HF transformers' and mmdet's PVTs use LayerNorm eps 1e-6 everywhere; the official code 1e-5
# in the patch embeddings and the spatial reduction.
LIBRARY_EPS = 1e-6


def with_library_eps(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with its official-eps (1e-5) LayerNorms at :data:`LIBRARY_EPS`."""
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm) and m.eps == 1e-5:
            m.eps = LIBRARY_EPS
    return model


def assert_eps_explains(model, run_ours, run_ref):
    """Each output of ``run_ours()`` differs from ``run_ref()``'s, and by no more than the eps
    change can move it: LayerNorm's output moves by about (1e-5 - 1e-6) / (2 var) of itself,
    the smallest variance ``model``'s 1e-5 norms see bounds that, and the outputs move within
    a small multiple of it per norm crossed (the blocks renormalise)."""
    variances = []
    hooks = [m.register_forward_pre_hook(lambda mod, a: variances.append(
        a[0].float().var(-1, unbiased=False).min().item()))
        for m in model.modules() if isinstance(m, torch.nn.LayerNorm) and m.eps == 1e-5]
    with torch.no_grad():
        ours, ref = run_ours(), run_ref()
    for h in hooks:
        h.remove()
    per_norm = (1e-5 - LIBRARY_EPS) / (2 * min(variances))
    for o, r in zip(ours, ref):
        rel = ((o - r).abs().max() / r.abs().max()).item()
        assert 0 < rel <= 10 * per_norm * len(variances), (rel, per_norm, len(variances))
    return ours, ref


def official_v2_shapes(arch: str | dict, num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an official PVTv2 classification checkpoint (classification/pvt_v2.py:
    patch_embed{s}, block{s}.{j}, norm{s}, head; ``attn.pool`` has no weights)."""
    from pvt_mm.network.arch import resolve_arch_v2
    a = resolve_arch_v2(arch)
    shapes: dict[str, tuple[int, ...]] = {}
    cin = 3
    for i, depth in enumerate(a['depths']):
        s, c, r = i + 1, a['embed_dims'][i], a['sr_ratios'][i]
        k, hidden = 7 if i == 0 else 3, int(c * a['mlp_ratios'][i])
        shapes.update({f'patch_embed{s}.proj.weight': (c, cin, k, k),
                       f'patch_embed{s}.proj.bias': (c,), f'patch_embed{s}.norm.weight': (c,),
                       f'patch_embed{s}.norm.bias': (c,)})
        for j in range(depth):
            b = f'block{s}.{j}.'
            for n in ('norm1', 'norm2'):
                shapes[b + n + '.weight'] = shapes[b + n + '.bias'] = (c,)
            shapes.update({b + 'attn.q.weight': (c, c), b + 'attn.q.bias': (c,),
                           b + 'attn.kv.weight': (2 * c, c), b + 'attn.kv.bias': (2 * c,),
                           b + 'attn.proj.weight': (c, c), b + 'attn.proj.bias': (c,),
                           b + 'mlp.fc1.weight': (hidden, c), b + 'mlp.fc1.bias': (hidden,),
                           b + 'mlp.dwconv.dwconv.weight': (hidden, 1, 3, 3),
                           b + 'mlp.dwconv.dwconv.bias': (hidden,),
                           b + 'mlp.fc2.weight': (c, hidden), b + 'mlp.fc2.bias': (c,)})
            if a['linear'] or r > 1:
                kk = 1 if a['linear'] else r
                shapes.update({b + 'attn.sr.weight': (c, c, kk, kk), b + 'attn.sr.bias': (c,),
                               b + 'attn.norm.weight': (c,), b + 'attn.norm.bias': (c,)})
        shapes[f'norm{s}.weight'] = shapes[f'norm{s}.bias'] = (c,)
        cin = c
    if num_classes:
        shapes['head.weight'] = (num_classes, cin)
        shapes['head.bias'] = (num_classes,)
    return shapes


def official_v2_state_dict(arch: str | dict, seed: int = 0,
                           num_classes: int = 1000) -> dict[str, torch.Tensor]:
    """Random weights in the official PVTv2 layout, scaled like a trained network's."""
    g = torch.Generator().manual_seed(seed)
    return {key: trained_like(key, shape, g)
            for key, shape in official_v2_shapes(arch, num_classes).items()}
