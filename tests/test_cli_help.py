"The command line's own texts: `--help` without torch, help and hints that say what the code does."
import subprocess, sys
from conftest import ROOT, BIN


def test_top_level_help_does_not_import_torch():
    "`mmdgpp --help` and `mmdgpp` alone list the commands without building their flags (which imports torch, ~6 s)."
    code = ("import sys\nfrom mmdgpp.cli import main\n"
            "for argv in (['--help'], []):\n"
            "    try: main(argv)\n"
            "    except SystemExit: pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert 'TORCH False' in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    for name in ('quickstart', 'train', 'eval', 'ablate', 'pretrain', 'info'): assert name in r.stdout


def test_quickstart_help_names_the_shipped_tower(capsys):
    from mmdgpp.cli import main
    try: main(['quickstart', '--help'])
    except SystemExit: pass
    out = ' '.join(capsys.readouterr().out.split())
    assert 'synthclip' in out and "random init (tiny default)" not in out


def test_missing_split_folder_hint_names_a_real_way(tmp_path):
    "`train` has no flag for the split-list folder: the hint names the setting and its environment variable."
    import pytest
    from mmdgpp.core import MMDGError
    from mmdgpp.data.splits import load_benchmark
    with pytest.raises(MMDGError) as e: load_benchmark(tmp_path/'none')
    assert 'MMDGPP_SPLIT_LISTS' in str(e.value) and 'pass the folder' not in str(e.value)
