"""Speed and memory of pvt_mm's PVT and PVTv2 against their peers with the same weights: the
race ``tools/analysis/benchmark.py`` runs.

The peers: for PVT v1, mmdet's PyramidVisionTransformer; for PVTv2, timm's ``pvt_v2_*``
(``features_only=True``, its fused attention on) and mmdet's PyramidVisionTransformerV2
(which has no linear SRA, so not for b2-li). All live in one process and carry the same
weights (pvt_mm's, converted for mmdet with mmdet's own pvt_convert, for timm to its layout).
Each mode is warmed up, then the models are timed alternately (the order reversed every
round) and the medians compared; ratios are pvt_mm's over each peer's, ``time_ratio`` and
``memory_ratio`` over the first (strongest) peer's. ``infer`` is a forward without autograd (a detector or segmentor's
tensor forward, no post-processing); ``train`` is forward + backward of the backbone's
summed features, or of a detector's / segmentor's loss on synthetic targets. Peak memory is
the CUDA allocator's peak on a GPU and the growth of resident memory (VmHWM after a reset
through /proc/self/clear_refs) on a CPU. The achieved rate is 2 x counted multiply-adds per
second (:mod:`.flops`) beside the machine's measured 4096^2 matrix-product rate: its best
burst (before, during and after the runs) and its median over one product per timed round. Every timed mode
also checks that the two models' outputs agree. A training step also records the bytes
autograd holds for backward (:mod:`.activation_memory`), which carry over to a GPU. A sweep
repeats the race over image sizes, each in a process of its own, and plots it (:mod:`.sweep_plot`).
On a CPU the race runs under glibc's default heap or with freed memory kept for reuse, as
``tools/train.py`` sets it (:mod:`pvt_mm.run.allocator`); ``--allocator both`` runs one race
under each, each in a process of its own, and records them side by side.
"""
import copy
import ctypes
import gc
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time

import torch

from .activation_memory import SavedTensorBytes
from .flops import count_macs

_LIBC = ctypes.CDLL('libc.so.6')
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
# Largest |difference| of features allowed: fp32 within the LayerNorm-eps drift measured in
# tests/test_mmdet_parity.py; half precision relative to the features' scale.
TOLERANCE = {'fp32': 5e-3, 'bf16': 0.1, 'fp16': 0.05}


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory growth of a block: CUDA allocator peak, or resident-set high-water mark."""

    def __init__(self, device):
        self.device = device
        self.peak = None

    @staticmethod
    def _status(field):
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f'{field} not in /proc/self/status')

    def __enter__(self):
        if self.device.type == 'cuda':
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            gc.collect()
            _LIBC.malloc_trim(0)  # hand freed heap pages back, so the baseline is what is live
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # resets VmHWM to the current RSS
            self.base = self._status('VmRSS')
        return self

    def __exit__(self, *exc):
        if self.device.type == 'cuda':
            sync(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self.peak = self._status('VmHWM') - self.base


class MatmulProbe:
    """Times an n x n matrix product, the machine's dense ceiling, in GFLOP/s."""

    def __init__(self, device, dtype, n=4096):
        self.device, self.n = device, n
        self.a = torch.randn(n, n, device=device, dtype=dtype)
        self.b = torch.randn(n, n, device=device, dtype=dtype)
        self.a @ self.b

    def once(self):
        sync(self.device)
        t = time.perf_counter()
        self.a @ self.b
        sync(self.device)
        return 2 * self.n ** 3 / (time.perf_counter() - t) / 1e9

    def best(self, repeat=3):
        return max(self.once() for _ in range(repeat))


def _is_v2(arch):
    return isinstance(arch, dict) and 'linear' in arch


def mmdet_backbone_cfg(arch):
    """mmdet's backbone of the same size: PyramidVisionTransformer(V2)."""
    if _is_v2(arch):
        if arch['linear']:
            raise SystemExit("mmdet's PyramidVisionTransformerV2 has no linear SRA (b2-li): "
                             'race the backbone alone (--arch b2_li) against timm.')
        return dict(type='mmdet.PyramidVisionTransformerV2', embed_dims=arch['embed_dims'][0],
                    num_layers=list(arch['depths']), num_heads=list(arch['num_heads']),
                    mlp_ratios=list(arch['mlp_ratios']), sr_ratios=list(arch['sr_ratios']),
                    drop_path_rate=0.0, init_cfg=None)
    return dict(type='mmdet.PyramidVisionTransformer', num_layers=list(arch['depths']),
                drop_path_rate=0.0, init_cfg=None)


def mmdet_backbone_state(ours_backbone_sd, arch):
    from mmdet.models.backbones.pvt import pvt_convert

    from ...network.weight_layouts import to_official, to_official_v2
    return pvt_convert((to_official_v2 if _is_v2(arch) else to_official)(ours_backbone_sd))


def mmdet_backbone(ours):
    from mmdet.models.backbones.pvt import PyramidVisionTransformer, PyramidVisionTransformerV2
    cfg = mmdet_backbone_cfg(ours.arch)
    network = PyramidVisionTransformerV2 if cfg.pop('type').endswith('V2') else \
        PyramidVisionTransformer
    theirs = network(**cfg)
    theirs.load_state_dict(mmdet_backbone_state(ours.state_dict(), ours.arch), strict=True)
    return theirs


def timm_backbone(name, ours):
    """timm's ``pvt_v2_<name>`` pyramid (``features_only=True``) with ``ours``' weights."""
    import re

    import timm

    from ...network.weight_layouts import to_timm_v2
    theirs = timm.create_model(f'pvt_v2_{name}', features_only=True, pretrained=False,
                               drop_path_rate=0.0)
    # features_only flattens the stage modules' names: stages.1 -> stages_1
    theirs.load_state_dict({re.sub(r'^stages\.(\d+)\.', r'stages_\1.', k): v
                            for k, v in to_timm_v2(ours.state_dict()).items()}, strict=True)
    return theirs


def build_backbones(arch, device):
    """pvt_mm's backbone (PVT, or PVTv2 for b0-b5 / b2_li) and its peers: {name: model}."""
    from ...network.families import family_of_arch
    family = family_of_arch(arch)
    torch.manual_seed(0)
    ours = family.network(arch, drop_path_rate=0.0)
    ours.init_weights()
    models = {'pvt_mm': ours}
    if family.timm_prefix:  # timm's own model of the family
        models['timm'] = timm_backbone(arch, ours)
    if not ours.arch.get('linear'):  # mmdet's PVT and PVTv2 have no linear SRA
        models['mmdet'] = mmdet_backbone(ours)
    return {k: m.to(device) for k, m in models.items()}, None


def select_peers(models, names):
    """``models`` less the peers not in ``names`` (all of them when ``names`` is empty); a
    name the race has no such peer for is an error that names the peers it has."""
    if not names:
        return models
    have = [k for k in models if k != 'pvt_mm']
    unknown = [n for n in names if n not in have]
    if unknown:
        raise SystemExit(f"--peers {' '.join(unknown)}: this race's peers are {', '.join(have)}")
    return {k: m for k, m in models.items() if k == 'pvt_mm' or k in names}


def build_models(config, device, shape, batch):
    """The config's model with pvt_mm's backbone, and the same with mmdet's PVT (or PVTv2)."""
    from mmengine.registry import DefaultScope

    from ..config import load_config
    cfg, task = load_config(config)
    DefaultScope.get_instance('pvt_mm_benchmark', scope_name=cfg.default_scope)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.update(init_cfg=None, drop_path_rate=0.0)
    model_cfg.pop('pretrained', None)
    torch.manual_seed(0)
    ours = task.build_model(cfg, model_cfg)
    ours.init_weights()
    theirs_cfg = copy.deepcopy(model_cfg)
    theirs_cfg.backbone = mmdet_backbone_cfg(ours.backbone.arch)
    theirs = task.build_model(cfg, theirs_cfg)
    state = {k: v for k, v in ours.state_dict().items() if not k.startswith('backbone.')}
    state.update({f'backbone.{k}': v for k, v in mmdet_backbone_state(
        ours.backbone.state_dict(), ours.backbone.arch).items()})
    theirs.load_state_dict(state, strict=True)
    samples = task.synthetic_samples(shape, batch)
    return {'pvt_mm': ours.to(device), 'mmdet': theirs.to(device)}, samples


def features(model, x, samples):
    if samples is None:
        return model(x)
    out = model(x, samples, mode='tensor')
    return out if isinstance(out, (tuple, list)) else (out,)


def flatten(outs):
    flat = []
    for o in outs:
        flat.extend(flatten(o) if isinstance(o, (tuple, list)) else [o])
    return flat


def autocast_to(device, dtype):
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def loss_of(model, x, samples):
    """The training step's scalar: the backbone's summed features, or the model's loss."""
    if samples is None:
        return sum(o.float().mean() for o in model(x))
    return model.parse_losses(model(x, samples, mode='loss'))[0]


def make_step(model, x, samples, mode, device, dtype):
    autocast = autocast_to(device, dtype)

    def infer():
        with torch.no_grad(), autocast:
            return features(model, x, samples)

    def train():
        model.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_of(model, x, samples)
        loss.backward()
        return loss

    return infer if mode == 'infer' else train


def saved_memory(models, x, samples, device, dtype):
    """MiB autograd holds for backward in a training step (:mod:`.activation_memory`), per model
    and the backbone's share. pvt_mm is counted on the blocks a GPU runs (``cpu_fast_paths``
    off: PyTorch's own kernels) and, as ``*_cpu_path``, on the CPU path this machine runs."""
    row = {}
    for name, model in models.items():
        backbone = model if samples is None else model.backbone
        paths = [('', False), ('_cpu_path', True)] if name == 'pvt_mm' else [('', None)]
        for suffix, fast in paths:
            if fast is not None:
                backbone.cpu_fast_paths = fast
            torch.manual_seed(0)
            with SavedTensorBytes(model, {'backbone': backbone}) as count, \
                    autocast_to(device, dtype):
                loss = loss_of(model, x, samples)
            del loss  # the graph and what it saved go with it
            row[f'{name}_saved_mb{suffix}'] = count.total / 2 ** 20
            row[f'{name}_saved_backbone_mb{suffix}'] = count.by_section['backbone'] / 2 ** 20
        if name == 'pvt_mm':
            backbone.cpu_fast_paths = True
    peers = list(models)[1:]
    for peer in peers:
        row[f'saved_ratio_{peer}'] = row['pvt_mm_saved_mb'] / row[f'{peer}_saved_mb']
        row[f'backbone_saved_ratio_{peer}'] = \
            row['pvt_mm_saved_backbone_mb'] / row[f'{peer}_saved_backbone_mb']
    row['saved_ratio'] = row[f'saved_ratio_{peers[0]}']
    row['backbone_saved_ratio'] = row[f'backbone_saved_ratio_{peers[0]}']
    # The training memory a GPU would need, estimated: what autograd holds, plus the fp32
    # weights, their gradients and AdamW's two moments (16 bytes a parameter); allocator
    # slack and kernels' workspaces come on top.
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters())
        row[f'{name}_gpu_train_estimate_mb'] = row[f'{name}_saved_mb'] + 16 * params / 2 ** 20
    return row


def max_diff(a_outs, b_outs):
    a, b = flatten(a_outs), flatten(b_outs)
    assert len(a) == len(b) and all(p.shape == q.shape for p, q in zip(a, b))
    return max((p.float() - q.float()).abs().max().item() for p, q in zip(a, b))


def run(args):
    allocator = getattr(args, 'allocator', 'glibc')
    if allocator == 'keep':
        from ..allocator import keep_freed_memory
        print(keep_freed_memory())
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    if dtype == torch.float16 and device.type != 'cuda':
        raise SystemExit('--dtype fp16 needs --device cuda')
    shape = tuple(args.shape)
    if args.config:
        models, samples = build_models(args.config, device, shape, args.batch)
        what = osp.basename(args.config)
    else:
        models, samples = build_backbones(args.arch, device)
        what = f'{models["pvt_mm"].family}-{args.arch} backbone'
    models = select_peers(models, getattr(args, 'peers', None))
    if args.compile:
        models = {k: torch.compile(m) for k, m in models.items()}
    x = torch.randn(args.batch, 3, *shape, generator=torch.Generator().manual_seed(1)).to(device)
    ours, peers = models['pvt_mm'], list(models)[1:]
    mm_dtype = dtype if device.type == 'cuda' else torch.float32
    probe = MatmulProbe(device, mm_dtype)
    rate = probe.best()
    rows = []
    for mode in args.modes:
        for m in models.values():
            m.train(mode == 'train')
        steps = {k: make_step(m, x, samples, mode, device, dtype) for k, m in models.items()}
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype,
                                             enabled=dtype != torch.float32):
            # Same seed for both: heads' dropout draws the same masks in train mode.
            outs = {}
            for k, m in models.items():
                torch.manual_seed(0)
                outs[k] = features(m, x, samples)
            diffs = {f'max_abs_diff_{p}': max_diff(outs['pvt_mm'], outs[p]) for p in peers}
        vs_fp32 = {}
        if dtype != torch.float32:  # the low-precision features against pvt_mm's fp32 ones
            with torch.no_grad():
                torch.manual_seed(0)
                ref = flatten(features(ours, x, samples))
            vs_fp32 = dict(vs_fp32_max_abs_diff=max_diff(outs['pvt_mm'], ref),
                           fp32_max_abs=max(r.abs().max().item() for r in ref))
        del outs
        diff = max(diffs.values())
        for _ in range(args.warmup):
            for step in steps.values():
                step()
        times = {k: [] for k in steps}
        same_time = []  # the ceiling once per round, beside the runs it is compared with
        for r in range(args.repeat):
            order = list(steps) if r % 2 == 0 else list(reversed(steps))
            same_time.append(probe.once())
            for k in order:
                sync(device)
                t = time.perf_counter()
                steps[k]()
                sync(device)
                times[k].append(time.perf_counter() - t)
        peaks = {}
        for k, step in steps.items():
            with PeakMemory(device) as meter:
                step()
            peaks[k] = meter.peak
        for m in models.values():
            m.zero_grad(set_to_none=True)
        macs = count_macs(steps['pvt_mm'])[0]  # forward, plus backward in train mode
        med = {k: statistics.median(v) for k, v in times.items()}
        achieved = 2 * macs / med['pvt_mm'] / 1e9
        same_rate = statistics.median(same_time)
        per_model = {}
        for k in models:
            per_model[f'{k}_s'] = med[k]
            per_model[f'{k}_peak_mb'] = peaks[k] / 2 ** 20
        for p in peers:
            per_model[f'time_ratio_{p}'] = med['pvt_mm'] / med[p]
            per_model[f'memory_ratio_{p}'] = peaks['pvt_mm'] / max(1, peaks[p])
        rows.append(dict(
            mode=mode, **per_model, time_ratio=per_model[f'time_ratio_{peers[0]}'],
            memory_ratio=per_model[f'memory_ratio_{peers[0]}'],
            gmacs=macs / 1e9, pvt_mm_gflops=achieved,
            matmul_gflops_same_time=same_rate, rate_fraction_same_time=achieved / same_rate,
            matmul_same_time_samples=same_time, max_abs_diff=diff, **diffs,
            outputs_match=diff <= TOLERANCE[args.dtype],
            all_times_s={k: v for k, v in times.items()}, **vs_fp32))
        if mode == 'train' and not args.compile:
            rows[-1].update(saved_memory(models, x, samples, device, dtype))
    # Two ceilings. The best burst (before, during and after the timed runs): a
    # passing disturbance cannot shrink it and inflate the fraction, but on a shared machine
    # whose speed drifts it is the machine at its fastest. The same-time one is the median
    # of one product per timed round, the machine in the state the model ran in.
    rate = max(rate, probe.best(), *(g for r in rows for g in r['matmul_same_time_samples']))
    for row in rows:
        row['matmul_gflops'] = rate
        row['rate_fraction'] = row['pvt_mm_gflops'] / rate
    return dict(what=what, peers=peers, shape=list(shape), batch=args.batch, dtype=args.dtype,
                device=str(device), compile=args.compile, allocator=allocator,
                machine=machine(device),
                torch=torch.__version__, threads=torch.get_num_threads(), rows=rows)


def machine(device):
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            model = next(ln.split(':', 1)[1].strip() for ln in f if ln.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{model}, {os.cpu_count()} cores'


def print_table(result):
    peers = result.get('peers', ['mmdet'])
    print(f"\n{result['what']}  {result['batch']}x3x{result['shape'][0]}x{result['shape'][1]}  "
          f"{result['dtype']}  {result['device']}{'  compiled' if result['compile'] else ''}")
    print(f"machine: {result['machine']}, torch {result['torch']}, {result['threads']} threads")
    head = f"{'mode':6} {'pvt_mm s':>9}" + ''.join(f" {p + ' s':>9} {'ratio':>6}" for p in peers)
    head += f" {'pvt_mm MB':>10}" + ''.join(f" {p + ' MB':>9} {'ratio':>6}" for p in peers)
    head += f" {'GFLOP/s':>8} {'of best':>8} {'of same':>8} {'max|diff|':>10}"
    print(head)
    print('-' * len(head))
    for r in result['rows']:
        line = f"{r['mode']:6} {r['pvt_mm_s']:9.3f}"
        line += ''.join(f" {r[p + '_s']:9.3f} {r.get('time_ratio_' + p, r['time_ratio']):6.2f}"
                        for p in peers)
        line += f" {r['pvt_mm_peak_mb']:10.0f}"
        line += ''.join(f" {r[p + '_peak_mb']:9.0f} "
                        f"{r.get('memory_ratio_' + p, r['memory_ratio']):6.2f}" for p in peers)
        line += (f" {r['pvt_mm_gflops']:8.1f} {r['rate_fraction']:8.0%} "
                 f"{r['rate_fraction_same_time']:8.0%} {r['max_abs_diff']:10.2e}")
        print(line + ('' if r['outputs_match'] else '  OUTPUTS DIFFER'))
    same = ', '.join(f"{r['mode']} {r['matmul_gflops_same_time']:.0f}" for r in result['rows'])
    print(f"matrix-product ceiling (4096^2 {'fp32' if result['device'] == 'cpu' else result['dtype']}):"
          f" best burst {result['rows'][0]['matmul_gflops']:.0f} GFLOP/s, same-time median "
          f"{same}; GFLOP/s = 2 x counted multiply-adds / median time")


# --sweep: square sizes from 512 to 1344 and COCO's two usual inputs.
SWEEP_SHAPES = [(512, 512), (800, 800), (1024, 1024), (800, 1333), (1344, 1344)]


def _common_flags(args):
    what = ['--config', args.config] if args.config else ['--arch', args.arch]
    return [*what, '--batch', str(args.batch), '--dtype', args.dtype, '--device', args.device,
            '--modes', *args.modes, '--repeat', str(args.repeat), '--warmup', str(args.warmup),
            *(['--compile'] if args.compile else []),
            *(['--peers', *args.peers] if getattr(args, 'peers', None) else [])]


def _race_in_process(script, flags):
    """One race in a fresh process: (record or None, return code)."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = osp.join(tmp, 'run.json')
        proc = subprocess.run([sys.executable, script, *flags, '--out', out])
        if proc.returncode == 0:
            with open(out) as f:
                return json.load(f), 0
    return None, proc.returncode


RECORD_KEYS = ('what', 'peers', 'batch', 'dtype', 'device', 'compile', 'machine', 'torch',
               'threads')


def sweep(args, script):
    """One race per size, each in a process of its own running ``script`` (the benchmark
    tool; memory starts clean, and a size that runs out of memory is recorded as failed
    instead of ending the sweep)."""
    allocator = ['--allocator', args.allocator]
    runs, failed = [], []
    for shape in args.sweep_shapes or SWEEP_SHAPES:
        record, code = _race_in_process(
            script, [*_common_flags(args), *allocator, '--shape', str(shape[0]), str(shape[1])])
        if record is not None:
            runs.append(record)
            continue
        why = 'killed: out of memory?' if code in (-9, 137) else 'see its output'
        failed.append(dict(shape=list(shape), returncode=code, reason=why))
        print(f'sweep: {shape[0]}x{shape[1]} failed with exit code {code} ({why})')
    if not runs:
        raise SystemExit('sweep: no size ran')
    return dict(**{k: runs[0][k] for k in RECORD_KEYS}, allocator=args.allocator, sweep=True,
                runs=runs, failed=failed)


ALLOCATORS = ('glibc', 'keep')


def both_allocators(args, script):
    """The race under glibc's default heap and with freed memory kept, each in a process of
    its own: ``{'allocators': {'glibc': record, 'keep': record}}``."""
    records = {}
    for name in ALLOCATORS:
        record, code = _race_in_process(script, [*_common_flags(args), '--allocator', name,
                                                 '--shape', *map(str, args.shape)])
        if record is None:
            raise SystemExit(f'the race under --allocator {name} failed (exit code {code})')
        records[name] = record
    first = records[ALLOCATORS[0]]
    return dict(**{k: first[k] for k in RECORD_KEYS}, shape=first['shape'], allocator='both',
                allocators=records)


def benchmark(args, command, script):
    """The race as ``tools/analysis/benchmark.py`` runs it (``args`` are its flags): the table
    printed, the JSON record (and with a sweep its plot) written; exits non-zero when the two
    models' outputs differ beyond :data:`TOLERANCE`."""
    if args.sweep:
        if args.allocator == 'both':
            raise SystemExit('--sweep runs under one allocator: --allocator glibc or keep')
        result = sweep(args, script)
        runs = result['runs']
    elif args.allocator == 'both':
        result = both_allocators(args, script)
        runs = list(result['allocators'].values())
        for name, record in result['allocators'].items():
            print(f'\nallocator: {name}', end='')
            print_table(record)
    else:
        result = run(args)
        print_table(result)
        runs = [result]
    result['command'] = command
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
        print(f'record written to {args.out}')
        if args.sweep:
            from .sweep_plot import plot_sweep
            plot = osp.splitext(args.out)[0] + '.png'
            plot_sweep(result, plot)
            print(f'plot written to {plot}')
    if not all(r['outputs_match'] for run_ in runs for r in run_['rows']):
        raise SystemExit("pvt_mm's outputs and a peer's differ beyond the tolerance")
    return result


__all__ = ['benchmark', 'run', 'sweep', 'select_peers', 'both_allocators', 'SWEEP_SHAPES',
           'ALLOCATORS', 'DTYPES', 'TOLERANCE']
