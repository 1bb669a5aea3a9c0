"""`mmdgpp data convert wmca` on small files written here in the documented layout of the preprocessed WMCA release:
per station `<date>/<video>.hdf5`, one group `Frame_<k>` per frame holding a uint8 `array` of planes first (RGB station
[3, H, W] in R, G, B order; CDIT station [4, H, W]: grey, depth, infrared, thermal)."""
import contextlib, io, re, sys
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
h5py = pytest.importorskip('h5py', reason='h5py is not installed (pip install "mmdgpp[wmca]")')

VIDEO = '005_03_000_0_01'


def _planes(n, k, size=(7, 9)):
    "n planes that differ from each other and from frame to frame: a swapped plane or frame cannot go unnoticed."
    y, x = np.mgrid[0:size[0], 0:size[1]]
    return np.stack([(y*(17 + c) + x*(5 + 3*c) + 31*k + 60*c) % 256 for c in range(n)]).astype(np.uint8)


def _release(tmp, frames=(12, 24), cdit_array=None):
    "The two station files of one video, written directly with h5py; and the W lists naming its frames."
    src = tmp/'hdf5'
    for station, n in (('RGB', 3), ('CDIT', 4)):
        d = src/f'preprocessed-face-station_{station}'/'12.02.18'; d.mkdir(parents=True)
        with h5py.File(d/f'{VIDEO}.hdf5', 'w') as f:
            for k in frames:
                a = cdit_array if (station == 'CDIT' and cdit_array is not None) else _planes(n, k)
                f.create_group(f'Frame_{k}').create_dataset('array', data=a)
    lists = tmp/'lists'; lists.mkdir()
    line = lambda k: ' '.join(f'WMCA-Image/R_CDIT/{VIDEO}/{m}/{k:04d}.jpg' for m in ('color', 'depth', 'ir')) + ' 1'
    (lists/'W-train.txt').write_text('\n'.join(line(k) for k in frames) + '\n')
    (lists/'W-val.txt').write_text(line(frames[0]) + '\n')
    (lists/'W-test.txt').write_text(line(frames[-1]) + '\n')
    return lists, src


def _run(*args):
    from mmdgpp.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main(['data', 'convert', 'wmca', *args])
    return rc, out.getvalue(), err.getvalue()


def _jpeg(a):
    "The array through PIL's JPEG encoder at the converter's documented settings (quality 100, no chroma subsampling)."
    b = io.BytesIO(); Image.fromarray(a).save(b, format='JPEG', quality=100, subsampling=0)
    return np.asarray(Image.open(b))


def test_frames_are_the_documented_planes(tmp_path):
    "color = the RGB station's 3 planes moved last; depth, ir = CDIT channels 1, 2; frame NNNN = group Frame_NNNN."
    lists, src = _release(tmp_path)
    rc, out, err = _run('--hdf5', str(src), '--lists', str(lists), '--root', str(tmp_path/'data'))
    assert rc == 0 and '6 written, 0 already there' in out, (out, err)
    base = tmp_path/'data/WMCA-Image/R_CDIT'/VIDEO
    for k in (12, 24):
        rgb, cdit = _planes(3, k), _planes(4, k)
        for folder, want in (('color', np.stack([rgb[0], rgb[1], rgb[2]], axis=-1)), ('depth', cdit[1]), ('ir', cdit[2])):
            im = Image.open(base/folder/f'{k:04d}.jpg')
            assert im.mode == ('RGB' if folder == 'color' else 'L') and im.size == (9, 7)
            got = np.asarray(im)
            assert np.array_equal(got, _jpeg(want)), (folder, k)                      # pixel for pixel
            assert np.abs(got.astype(int) - want.astype(int)).max() <= 8, (folder, k)  # JPEG rounding only
            other = cdit[3] if folder != 'color' else np.stack([rgb[2], rgb[1], rgb[0]], axis=-1)   # thermal / BGR
            assert np.abs(got.astype(int) - other.astype(int)).max() > 8, (folder, k)


def test_resumable_and_never_overwrites_without_force(tmp_path):
    lists, src = _release(tmp_path)
    root = tmp_path/'data'
    mine = root/'WMCA-Image/R_CDIT'/VIDEO/'depth/0012.jpg'
    mine.parent.mkdir(parents=True)
    Image.fromarray(np.full((7, 9), 3, np.uint8)).save(mine, format='JPEG'); before = mine.read_bytes()
    rc, out, _ = _run('--hdf5', str(src), '--lists', str(lists), '--root', str(root))
    assert rc == 0 and '5 written, 1 already there' in out and mine.read_bytes() == before
    rc, out, _ = _run('--hdf5', str(src), '--lists', str(lists), '--root', str(root))
    assert rc == 0 and '0 written, 6 already there' in out
    rc, out, _ = _run('--hdf5', str(src), '--lists', str(lists), '--root', str(root), '--force')
    assert rc == 0 and '6 written' in out
    assert np.array_equal(np.asarray(Image.open(mine)), _jpeg(_planes(4, 12)[1]))
    assert not [p for p in root.rglob('*') if p.name.startswith('.')]                 # no temporary file left


def test_missing_frames_are_listed_not_invented(tmp_path):
    lists, src = _release(tmp_path, frames=(12,))
    (lists/'W-test.txt').write_text(' '.join(f'WMCA-Image/R_CDIT/{VIDEO}/{m}/0036.jpg' for m in ('color', 'depth', 'ir')) + ' 1\n'
                                    + ' '.join(f'WMCA-Image/R_CDIT/999_01_000_0_00/{m}/0012.jpg' for m in ('color', 'depth', 'ir')) + ' 1\n')
    rc, out, _ = _run('--hdf5', str(src), '--lists', str(lists), '--root', str(tmp_path/'data'))
    assert rc == 1 and '3 written' in out and '6 not in the release' in out
    assert 'no Frame_36 in preprocessed-face-station_RGB/12.02.18/005_03_000_0_01.hdf5' in out
    assert 'no 999_01_000_0_00.hdf5 in preprocessed-face-station_CDIT' in out
    assert not (tmp_path/'data/WMCA-Image/R_CDIT'/VIDEO/'color/0036.jpg').exists()


@pytest.mark.parametrize('bad, why', [(np.zeros((4, 7, 9), np.float32), 'float32 [4, 7, 9]'),
                                      (np.zeros((3, 7, 9), np.uint8), 'uint8 [3, 7, 9]')])
def test_a_file_not_in_the_documented_layout_is_one_line_exit_2(tmp_path, bad, why):
    lists, src = _release(tmp_path, cdit_array=bad)
    rc, out, err = _run('--hdf5', str(src), '--lists', str(lists), '--root', str(tmp_path/'data'))
    assert rc == 2 and err.count('\n') == 1 and why in err and 'uint8 [4, H, W]' in err, err
    assert not list((tmp_path/'data').rglob('depth/*.jpg'))


def test_bad_inputs_are_one_line_exit_2(tmp_path):
    lists, src = _release(tmp_path)
    rc, _, err = _run('--hdf5', str(tmp_path/'nowhere'), '--lists', str(lists), '--root', str(tmp_path/'data'))
    assert rc == 2 and err.startswith('error: WMCA HDF5 folder not found') and err.count('\n') == 1
    rc, _, err = _run('--hdf5', str(tmp_path/'lists'), '--lists', str(lists), '--root', str(tmp_path/'data'))
    assert rc == 2 and 'preprocessed-face-station_RGB' in err and err.count('\n') == 1
    (lists/'W-val.txt').write_text('WMCA-Image/R_CDIT/x/thermal/0012.jpg a b 1\n')
    rc, _, err = _run('--hdf5', str(src), '--lists', str(lists), '--root', str(tmp_path/'data'))
    assert rc == 2 and 'W-val.txt:1' in err and err.count('\n') == 1
    (src/'preprocessed-face-station_RGB/12.02.18'/f'{VIDEO}.hdf5').write_bytes(b'not hdf5')
    (lists/'W-val.txt').write_text((lists/'W-test.txt').read_text())
    rc, _, err = _run('--hdf5', str(src), '--lists', str(lists), '--root', str(tmp_path/'data'))
    assert rc == 2 and 'not a readable HDF5 file' in err and err.count('\n') == 1


def test_without_h5py_one_line_naming_the_extra(tmp_path, monkeypatch):
    lists, src = _release(tmp_path)
    monkeypatch.setitem(sys.modules, 'h5py', None)                                   # `import h5py` now fails
    rc, _, err = _run('--hdf5', str(src), '--lists', str(lists), '--root', str(tmp_path/'data'))
    assert rc == 2 and err.count('\n') == 1 and 'needs h5py' in err and 'mmdgpp[wmca]' in err, err


def test_h5py_is_an_optional_extra_only():
    text = (ROOT/'pyproject.toml').read_text()
    deps = re.search(r'^dependencies = \[(.*?)^\]', text, flags=re.M | re.S).group(1)
    assert 'h5py' not in deps and re.search(r'^wmca = \["h5py>=3"\]', text, flags=re.M)
