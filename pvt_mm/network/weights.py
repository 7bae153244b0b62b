"""Reading PVT weights from a file and checking them strictly against a model, and the
``init_cfg`` forms that say which file.

Accepted sources: a local path, an http(s) URL, or a Hugging Face hub id
``hf-hub:REPO_ID[@REVISION]`` (:mod:`pvt_mm.network.hub` finds its file through
``huggingface_hub``'s cache). ``.safetensors`` files are read with
safetensors; everything else with :mod:`pvt_mm.network.safe_load` (``weights_only=True``,
mmengine's own checkpoint types allowed), so official checkpoints, mmdet's and pvt_mm's, and
the training checkpoints mmengine writes (``epoch_12.pth``: ``backbone.`` keys beside the
neck's and heads') all load without any code in the file running. The key layouts and their
conversion to pvt_mm's are :mod:`pvt_mm.network.weight_layouts`.

Nothing is loaded partially: any missing, unexpected or mis-shaped key raises
:class:`CheckpointError` naming the file and the keys.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from . import hub
from .families import FAMILIES, LAYOUT_FAMILY, depths_of
from .safe_load import load_local, load_url
from .weight_layouts import CLASSIFIER_KEYS, LayoutError, convert_state_dict, summarise_keys

_WRAPPER_KEYS = ('state_dict', 'model', 'module', 'model_state', 'model_state_dict')
_ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def check_source(source: Any) -> str:
    """Returns ``source`` as a string if it names a local file, an http(s) URL or a hub id.

    Raises:
        CheckpointError: not a path, a location scheme other than http(s), or a malformed
            ``hf-hub:`` id.
        FileNotFoundError: a local file that does not exist.
    """
    if not isinstance(source, (str, os.PathLike)):
        raise CheckpointError(f'A checkpoint must be a path, an http(s) URL or an hf-hub: id, '
                              f'got {source!r} ({type(source).__name__}).')
    source = os.path.expanduser(os.fspath(source))
    if hub.is_hub_id(source):
        try:
            hub.parse(source)
        except hub.HubError as e:
            raise CheckpointError(str(e)) from None
        return source
    scheme = urlparse(source).scheme
    if scheme in ('http', 'https'):
        return source
    if scheme and len(scheme) > 1:  # a one-letter "scheme" is a Windows drive
        raise CheckpointError(f'Unsupported checkpoint location {source!r}: use a local path, '
                              'an http(s) URL or hf-hub:REPO_ID[@REVISION].')
    if not os.path.isfile(source):
        raise FileNotFoundError(f'Checkpoint file {source!r} does not exist.')
    return source


def read_checkpoint(source: str, map_location: str | torch.device = 'cpu') -> Any:
    """Reads a checkpoint safely (no code in it runs) and returns its content.

    A hub id is resolved to its weights file in the hub's cache first (:func:`hub.download`);
    errors then name the id and the file.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated, not a checkpoint, or needs Python objects
            beyond tensors, containers and what mmengine itself writes (refused: that is
            how malicious pickles run code); a hub id that names no weights (why, said).
    """
    source = check_source(source)
    path, name = source, source
    if hub.is_hub_id(source):
        try:
            path, filename = hub.download(source)
        except hub.HubError as e:
            raise CheckpointError(str(e)) from None
        name = f'{source} ({filename})'
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        try:
            return load_file(path, device=str(map_location))
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f'{name}: not a readable .safetensors file '
                                  f'({_first_line(e)}).') from e
    try:
        if urlparse(path).scheme in ('http', 'https'):
            return load_url(path, map_location)
        return load_local(path, map_location)
    except Exception as e:
        text = str(e)
        if 'Weights only load failed' in text or 'Unsupported global' in text or \
                'unrecognized function' in text or 'refused getattr' in text:
            reason = ('it contains Python objects beyond tensors, plain containers and '
                      "mmengine's own checkpoint contents, which pvt_mm refuses to unpickle "
                      '(weights_only=True) so that no code in the file can run')
        else:
            reason = 'it is truncated, corrupt, or not a PyTorch checkpoint'
        raise CheckpointError(f'Cannot load checkpoint {name}: {reason} '
                              f'({type(e).__name__}: {_first_line(e)}).') from e


def _first_line(err: BaseException) -> str:
    """The first line of an error's text, without terminal colour codes."""
    text = _ANSI.sub('', str(err)).strip()
    return text.splitlines()[0] if text else type(err).__name__


def unwrap_state_dict(obj: Any, source: str = '<checkpoint>') -> dict[str, Tensor]:
    """Finds the tensor dict inside a checkpoint (``state_dict``/``model`` wrappers)."""
    for _ in range(3):
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is not None and not _is_tensor_dict(obj):
                obj = inner
                continue
        break
    if not isinstance(obj, Mapping) or not obj or not _is_tensor_dict(obj):
        kind = type(obj).__name__ if not isinstance(obj, Mapping) else \
            f'a dict with keys {sorted(map(str, obj))[:8]}'
        raise CheckpointError(f'{source}: no state dict of tensors found (got {kind}).')
    return {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}


def _is_tensor_dict(obj: Mapping) -> bool:
    values = list(obj.values())
    return bool(values) and sum(isinstance(v, Tensor) for v in values) >= len(values) / 2


def load_pvt_state_dict(source: str, prefix: str | None = None,
                        map_location: str | torch.device = 'cpu') -> tuple[dict[str, Tensor], str]:
    """Reads ``source`` and returns its backbone weights in pvt_mm's layout, and the layout."""
    state_dict = unwrap_state_dict(read_checkpoint(source, map_location), source)
    try:
        return convert_state_dict(state_dict, prefix)
    except LayoutError as e:
        raise CheckpointError(f'{source}: {e}') from None


def mismatches(model: nn.Module, state_dict: Mapping[str, Tensor]
                ) -> tuple[list[str], list[str], list[str]]:
    """The keys ``model`` has and the file lacks, the reverse, and the mis-shaped ones."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [f'{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}'
              for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    return missing, unexpected, shapes


def mismatch_lines(missing: list[str], unexpected: list[str], shapes: list[str]) -> list[str]:
    """The error's lines naming each kind of mismatch, the first keys of each."""
    return [f'{what} ({len(items)}): {summarise_keys(items)}' for what, items in (
        ('Missing in the file', missing), ('Unexpected in the file', unexpected),
        ('Shape mismatches', shapes)) if items]


def check_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """Raises :class:`CheckpointError` unless keys and shapes match ``model`` exactly."""
    missing, unexpected, shapes = mismatches(model, state_dict)
    if not (missing or unexpected or shapes):
        return
    family = getattr(model, 'family', 'PVT')
    lines = [f'Checkpoint {source} does not fit this {family} '
             f'({_describe_model(model)}); nothing was loaded.']
    file_depths = depths_of(state_dict)
    file_size = _describe_weights(state_dict, family)
    if file_depths and getattr(model, 'arch', None) and (
            file_depths != tuple(model.arch['depths'])
            or not _describe_model(model).startswith(file_size)):
        lines.append(f'The file holds depths {file_depths} ({file_size}).')
    if any('pos_embed' in s for s in shapes):
        lines.append('Position-embedding grids differ: set pretrain_img_size to the size the '
                     'checkpoint was trained at.')
    if missing and all(k.startswith(CLASSIFIER_KEYS) for k in missing):
        lines.append('The file holds a backbone without the ImageNet classifier (class token, '
                     'final norm, head): a classifier needs a classification checkpoint, e.g. '
                     "the official pvt_small.pth; or build the backbone (num_classes=0).")
    raise CheckpointError('\n  '.join(lines + mismatch_lines(missing, unexpected, shapes)))


def fit_classifier_keys(model: nn.Module, state_dict: dict[str, Tensor],
                        source: str) -> dict[str, Tensor]:
    """What of a checkpoint's classifier ``model`` takes; each thing left out is logged.

    A backbone (``num_classes=0``) leaves the classifier's keys (``cls_token``,
    ``cls_pos_embed``, ``norm.*``, ``head.*``). A classifier takes them all, except a head
    made for another number of classes: that head is left and the model's new one kept (its
    tensors take the head's place in the result; fine-tuning on one's own classes). Anything
    else is for :func:`check_state_dict`.
    """
    classifier = [k for k in state_dict if k.startswith(CLASSIFIER_KEYS)]
    family = getattr(model, 'family', 'PVT')
    if not getattr(model, 'is_classifier', False):
        if classifier:
            print_log(f'{family} checkpoint: skipped the ImageNet classifier keys '
                      f'{summarise_keys(classifier)} (this {family} is a backbone).',
                      logger='current')
        return {k: v for k, v in state_dict.items() if k not in classifier}
    head = state_dict.get('head.weight')
    if head is not None and isinstance(model.head, nn.Linear) and head.ndim == 2 and \
            head.shape[1] == model.head.in_features and head.shape[0] != model.head.out_features:
        print_log(f'{family} checkpoint {source}: its head has {head.shape[0]} classes and this '
                  f'classifier {model.head.out_features}: loaded everything but the head, which '
                  'keeps its new random init.', logger='current')
        kept = {k: v for k, v in state_dict.items() if not k.startswith('head.')}
        kept.update({f'head.{k}': v for k, v in model.head.state_dict().items()})
        return kept
    return state_dict


def check_family(model: nn.Module, state_dict: Mapping[str, Tensor], layout: str,
                 source: str) -> None:
    """Raises :class:`CheckpointError` when the weights are for the other network family
    (PVT v1 weights for a PVTv2, or the reverse), naming what the file holds."""
    family, model_family = LAYOUT_FAMILY[layout], getattr(model, 'family', 'PVT')
    if family == model_family:
        return
    raise CheckpointError(
        f'Checkpoint {source} holds {family} weights ({_describe_weights(state_dict, family)}, '
        f'{layout} layout), and this model is {model_family} ({_describe_model(model)}): '
        f'build pvt_mm.{family} for this file; nothing was loaded.')


def load_pretrained(model: nn.Module, source: str, prefix: str | None = None,
                    map_location: str | torch.device = 'cpu') -> None:
    """Loads a PVT or PVTv2 checkpoint into ``model`` strictly (all keys, all shapes) or
    raises.

    The only keys allowed to stay behind are the classifier's, where ``model`` has no use
    for them (:func:`fit_classifier_keys`), and it says so.
    """
    state_dict, layout = load_pvt_state_dict(source, prefix, map_location)
    check_family(model, state_dict, layout, source)
    state_dict = fit_classifier_keys(model, state_dict, source)
    check_state_dict(model, state_dict, source)
    model.load_state_dict(state_dict, strict=True)
    family = getattr(model, 'family', 'PVT')
    print_log(f'{family}: loaded {len(state_dict)} tensors from {source} ({layout} layout).',
              logger='current')


def load_from_hf_hub(filename: str, map_location: str | torch.device | None = None) -> Any:
    """mmengine's ``CheckpointLoader`` scheme for ``hf-hub:`` ids (``load_from``,
    ``init_cfg`` of mmengine's own modules, ``load_checkpoint``): :func:`read_checkpoint`."""
    return read_checkpoint(filename, map_location or 'cpu')


PRETRAINED_KEYS = {'type', 'checkpoint', 'prefix', 'map_location'}
PRETRAINED_FROM_BASE = (
    "mmseg's EncoderDecoder hands model.pretrained to the backbone, and base configs written "
    "for another backbone set it to that network's weights (upernet_r50's "
    "'open-mmlab://resnet50_v1c', for one). Write model = dict(pretrained=None, "
    "backbone=dict(type='pvt_mm.PVT', ..., init_cfg=dict(type='Pretrained', "
    "checkpoint=PVT_WEIGHTS))) in your config, or pass --cfg-options model.pretrained=None.")


def pretrained_init_cfg(pretrained: Any, init_cfg: Any, family: str = 'PVT') -> dict:
    """The ``init_cfg`` that the deprecated ``pretrained`` argument stands for.

    A location that holds no PVT weights (another network's ``open-mmlab://`` weights that
    a base config set) fails when the weights are loaded, with :data:`PRETRAINED_FROM_BASE`
    saying where it came from: a model that is only built, or gets all its weights from
    ``load_from``, never reads it.

    Raises:
        ValueError: both given, with where the ``pretrained`` may have come from.
    """
    if not isinstance(pretrained, str):
        raise TypeError(f'pretrained must be a path or URL, got {type(pretrained).__name__}.')
    if init_cfg is not None:
        raise ValueError(f'{family} got pretrained={pretrained!r} beside init_cfg={init_cfg}: give '
                         f'the checkpoint once, in init_cfg. {PRETRAINED_FROM_BASE}')
    warnings.warn(f"{family}(pretrained=...) is deprecated; use init_cfg=dict(type='Pretrained', "
                  'checkpoint=...).', DeprecationWarning, stacklevel=3)
    return dict(type='Pretrained', checkpoint=pretrained)


def init_cfg_entries(init_cfg: Any, family: str = 'PVT') -> list[dict]:
    """``init_cfg`` as a list of entries pvt_mm can honour, or a ValueError saying why not.

    One ``Pretrained`` entry (``checkpoint``, optional ``prefix`` and ``map_location``) sets
    every weight, so it stands alone; other entries are mmengine weight initializers
    (``TruncNormal``, ``Constant``, ...) that must name the ``layer`` or ``override`` they
    apply to (mmengine silently skips one that names neither).
    """
    entries = [] if init_cfg is None else list(init_cfg) if isinstance(
        init_cfg, (list, tuple)) else [init_cfg]
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get('type'), str):
            raise ValueError(f'{family} init_cfg entries must be dicts with a type, got {entry!r}.')
    pretrained = [e for e in entries if e['type'] == 'Pretrained']
    others = [e for e in entries if e['type'] != 'Pretrained']
    if pretrained and others:
        raise ValueError(f'{family} init_cfg {init_cfg} mixes a Pretrained checkpoint, which sets '
                         f'every weight, with initializers {[e["type"] for e in others]} that '
                         'would be overwritten: keep one or the other.')
    if len(pretrained) > 1:
        raise ValueError(f'{family} init_cfg names {len(pretrained)} Pretrained checkpoints; give '
                         'one.')
    for entry in pretrained:
        unknown = sorted(set(entry) - PRETRAINED_KEYS)
        if 'checkpoint' not in entry or unknown:
            raise ValueError(f'{family} init_cfg {dict(entry)}: a Pretrained entry takes checkpoint '
                             f'(required), prefix and map_location; '
                             f'{"unknown " + str(unknown) if unknown else "checkpoint missing"}.')
    for entry in others:
        if 'layer' not in entry and 'override' not in entry:
            raise ValueError(f'{family} init_cfg {dict(entry)} names no layer or override, so '
                             'mmengine would apply it to nothing; add e.g. '
                             "layer='Linear'.")
    return [dict(e) for e in entries]


def infer_arch(state_dict: Mapping[str, Tensor], source: str = '<checkpoint>',
               family: str = 'PVT') -> str:
    """The size name of a pvt_mm-layout state dict of ``family``, as its family's entry reads
    it (PVT's by its depths; PVTv2's by depths, widths, MLP ratios and SRA kind)."""
    entry = FAMILIES[family]
    try:
        arch = entry.arch_of(state_dict)
    except (KeyError, IndexError, ZeroDivisionError) as err:
        raise CheckpointError(f'{source}: not a whole {family} backbone ({err!r} missing); '
                              'pass the arch explicitly.') from None
    name = entry.arch_name(arch)
    if name is None:
        what = f'depths {arch["depths"]}' if set(arch) == {'depths'} else str(arch)
        raise CheckpointError(f'{source}: {what} match none of {sorted(entry.archs)}; '
                              'pass the arch explicitly.')
    return name


def _describe_weights(state_dict: Mapping[str, Tensor], family: str) -> str:
    """The size a pvt_mm-layout state dict holds, named as its family names sizes."""
    entry = FAMILIES[family]
    try:
        return entry.describe(entry.arch_of(state_dict))
    except (KeyError, IndexError, ValueError, ZeroDivisionError):
        return f'a custom {family} arch'


def _describe_model(model: nn.Module) -> str:
    arch = getattr(model, 'arch', None)
    entry = FAMILIES.get(getattr(model, 'family', None) or '')
    if not arch or entry is None:
        return 'unknown arch'
    return f'{entry.describe(arch)}, depths {tuple(arch["depths"])}'


__all__ = ['CheckpointError', 'check_family', 'init_cfg_entries', 'pretrained_init_cfg', 'check_source',
           'read_checkpoint', 'load_from_hf_hub', 'unwrap_state_dict',
           'load_pvt_state_dict', 'fit_classifier_keys', 'check_state_dict', 'load_pretrained',
           'infer_arch', 'mismatches', 'mismatch_lines']
