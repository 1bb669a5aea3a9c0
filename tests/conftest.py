import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
# The released split lists are third-party files, not in the repository; tests that need them read the folder
# from MMDGPP_TEST_SPLIT_LISTS (.ci/run sets it) and skip where it is unset or incomplete.
SPLIT_LISTS = Path(os.environ['MMDGPP_TEST_SPLIT_LISTS']).resolve() if os.environ.get('MMDGPP_TEST_SPLIT_LISTS') else None
BIN = Path(sys.executable).parent
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')


def run_cli(*args, cwd=None, timeout=600, env=None):
    "Run the `mmdgpp` console script; return the CompletedProcess."
    import subprocess
    e = dict(os.environ, HF_HUB_OFFLINE='1', **(env or {}))
    return subprocess.run([str(BIN/'mmdgpp'), *map(str, args)], cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=timeout, env=e)


@pytest.fixture
def cli():
    return run_cli
