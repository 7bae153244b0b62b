"""Runs a timm script (its train.py, validate.py, or the official PVT main.py) with pvt_mm's
classifiers registered in timm, so ``--model pvt_small`` resolves to pvt_mm's network.

    python tools/timm_run.py path/to/train.py --model pvt_small --data-dir ... [timm's flags]

Imports pvt_mm (which registers pvt_tiny, pvt_small, pvt_medium, pvt_large), then runs the
script as ``__main__`` with the remaining arguments as its own.
"""
import os.path as osp
import runpy
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ('-h', '--help'):
        print(__doc__)
        return
    script = argv[0]
    if not osp.isfile(script):
        raise FileNotFoundError(f'timm script {script!r} does not exist.')
    try:
        import pvt_mm  # noqa: F401  (registers the timm models)
    except ModuleNotFoundError as err:
        raise SystemExit(f'{err}\nRun `make setup` first and use .venv/bin/python (or install '
                         'pvt_mm into your environment: docs/install.md).') from None
    sys.argv = [script, *argv[1:]]
    sys.path.insert(0, osp.dirname(osp.abspath(script)))  # as `python SCRIPT` would
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
