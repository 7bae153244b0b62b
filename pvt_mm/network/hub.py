"""Weights named by a Hugging Face hub id, ``hf-hub:REPO_ID[@REVISION]``, as timm names them.

:func:`download` finds the repository's weights file through ``huggingface_hub`` and returns
its path in the hub's cache; :mod:`pvt_mm.network.weights` then reads it as it reads any local
file (safetensors, or a pickle with ``weights_only=True``) and detects its layout. So the
client's own behaviour holds: its cache (``HF_HOME`` / ``HF_HUB_CACHE``), ``HF_HUB_OFFLINE=1``
(the cache only), ``HF_TOKEN`` or ``hf auth login`` for private and gated repositories,
``HF_ENDPOINT`` for a mirror, and a revision (branch, tag or commit) pinned after ``@``.

Which file, first found: ``model.safetensors``, then ``pytorch_model.bin`` (the names timm's
``save_for_hf`` / ``push_to_hub`` and transformers' ``save_pretrained`` write), else the one
weights file the repository holds (``*.safetensors``, ``*.pth``, ``*.pt``, ``*.bin``: an
official checkpoint uploaded as it was published). Each way it can fail raises
:class:`HubError` naming the id, the revision and what to do.
"""
from __future__ import annotations

import os
from typing import NamedTuple

PREFIX = 'hf-hub:'
WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')
WEIGHT_SUFFIXES = ('.safetensors', '.pth', '.pt', '.bin')


class HubError(ValueError):
    """A hub id that names no readable weights (the message says which id and why)."""


class HubFile(NamedTuple):
    """A weights file resolved from a hub id: its local path and its name in the repo."""
    path: str
    filename: str


def is_hub_id(source: object) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


def parse(source: str) -> tuple[str, str | None]:
    """``'hf-hub:owner/name@rev'`` -> ``('owner/name', 'rev')``; no ``@``: revision None (the
    default branch)."""
    spec = source[len(PREFIX):]
    repo_id, _, revision = spec.partition('@')
    if not repo_id or '@' in revision or (_ and not revision):
        raise HubError(f'{source!r}: a hub id is hf-hub:REPO_ID or hf-hub:REPO_ID@REVISION '
                       "(e.g. 'hf-hub:timm/pvt_v2_b2.in1k').")
    from huggingface_hub.utils import HFValidationError, validate_repo_id
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise HubError(f'{source!r}: {repo_id!r} is not a hub repository id ({e}).') from None
    return repo_id, revision or None


def describe(repo_id: str, revision: str | None) -> str:
    """A parsed id with its revision spelled out, as the errors name it."""
    return f'{PREFIX}{repo_id} (revision {revision or "main, the default"})'


def download(source: str) -> HubFile:
    """The weights file of hub id ``source``, downloaded into (or found in) the hub's cache.

    Raises:
        HubError: no such repository (or private / gated without a token), no such revision,
            offline (or the hub unreachable) with nothing cached, or no weights file in the
            repository (its files listed).
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError,
                                        LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    repo_id, revision = parse(source)
    what = describe(repo_id, revision)
    unreachable = None
    for filename in WEIGHT_FILES:
        try:
            path = hf_hub_download(repo_id, filename, revision=revision)
            return HubFile(path, filename)
        except LocalEntryNotFoundError as e:  # offline or unreachable, and not in the cache
            unreachable = e
        except EntryNotFoundError:
            continue
        except GatedRepoError:
            raise HubError(f'{what} is a gated repository: accept its terms on the hub page, '
                           'then log in (hf auth login) or set HF_TOKEN.') from None
        except RepositoryNotFoundError:
            raise HubError(f'{what}: no such repository on {constants.ENDPOINT}, or it is '
                           'private and no token with access to it was given (hf auth login, '
                           'or HF_TOKEN). Check the id: e.g. timm/pvt_v2_b2.in1k, '
                           'OpenGVLab/pvt_v2_b2, Zetatech/pvt-small-224.') from None
        except RevisionNotFoundError:
            raise HubError(f'{what}: the repository has no revision {revision!r} (a branch, '
                           'tag or commit id).') from None
    names = _repo_files(repo_id, revision, offline=unreachable is not None)
    if names is None:
        if constants.HF_HUB_OFFLINE:
            why = 'HF_HUB_OFFLINE is set'
        else:
            why = f'{constants.ENDPOINT} could not be reached ({_first_line(unreachable)})'
        raise HubError(f'{what}: {why} and the hub cache ({constants.HF_HUB_CACHE}) holds no '
                       'weights of it: download it once online (or unset HF_HUB_OFFLINE), or '
                       'point HF_HUB_CACHE / HF_HOME at a cache that has it.')
    weights = sorted(n for n in names if n.endswith(WEIGHT_SUFFIXES))
    if len(weights) != 1:
        held = ', '.join(sorted(names)) or 'no files'
        raise HubError(
            f'{what} holds {"no" if not weights else len(weights)} weights files '
            f'({", ".join(WEIGHT_FILES)} or one *{", *".join(WEIGHT_SUFFIXES)} file): it has '
            f'{held}.' + (' Download the one you mean (hf download) and give its path.'
                          if weights else ''))
    path = hf_hub_download(repo_id, weights[0], revision=revision)
    return HubFile(path, weights[0])


def _repo_files(repo_id: str, revision: str | None, offline: bool) -> list[str] | None:
    """The repository's files at ``revision``: listed by the hub, or offline those its cached
    snapshot holds (None when nothing of it is cached)."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    if not offline:
        return HfApi().list_repo_files(repo_id, revision=revision)
    try:
        folder = snapshot_download(repo_id, revision=revision, local_files_only=True)
    except LocalEntryNotFoundError:
        return None
    names = [os.path.relpath(os.path.join(root, f), folder)
             for root, _, files in os.walk(folder) for f in files]
    return names if any(n.endswith(WEIGHT_SUFFIXES) for n in names) else None


def _first_line(err: BaseException | None) -> str:
    text = str(err or '').strip()
    return text.splitlines()[0] if text else type(err).__name__


__all__ = ['PREFIX', 'HubError', 'HubFile', 'is_hub_id', 'parse', 'describe', 'download']
