"""The documentation site in a real browser (headless Chromium), opened from disk as the README says: every page
loads, the notebooks' figures are on their pages, MathJax (served from the site itself) typeset every formula, and
search finds pages. Without a browser: the built site holds what search from file:// needs."""
import functools, http.server, json, os, re, shutil, subprocess, threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = next((p for p in (shutil.which('chromium'), shutil.which('chromium-browser'), shutil.which('google-chrome')) if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason='no Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--virtual-time-budget=20000']


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The built site: `_docs/site` when it is newer than every notebook, else a fresh build in a temporary folder."
    built = ROOT/'_docs'/'site'/'index.html'
    sources = [*ROOT.glob('nbs/*.ipynb'), *ROOT.glob('ablations/*.ipynb'), *ROOT.glob('mmdgpp/**/*.py')]
    if built.exists() and built.stat().st_mtime > max(p.stat().st_mtime for p in sources): return built.parent
    from mmdgpp.docs import build_site
    tmp = tmp_path_factory.mktemp('docs')
    return build_site(tmp/'build', tmp/'site')


@pytest.fixture(scope='module')
def server(site):
    "The site served on a free localhost port (search and MathJax load over HTTP, as a reader's browser would)."
    missing = []
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
        def send_error(self, code, *a, **k):
            if code == 404: missing.append(self.path)
            super().send_error(code, *a, **k)
    handler = functools.partial(Quiet, directory=str(site))
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_address[1]}', missing
    srv.shutdown()


def dom(url: str, profile: Path) -> str:
    "The page's DOM after its scripts ran."
    r = subprocess.run([CHROMIUM, *FLAGS, f'--user-data-dir={profile}', '--dump-dom', url], capture_output=True, text=True, timeout=180)
    return r.stdout


def notebook_of(page: Path, site: Path) -> Path|None:
    rel = page.relative_to(site).with_suffix('.ipynb').as_posix()
    for cand in (ROOT/'nbs'/rel, ROOT/'ablations'/rel.removeprefix('ablations-')):
        if cand.exists(): return cand
    return None


def expected_images(nb: Path) -> int:
    "Image outputs of the notebook's cells that the site keeps (not `#| hide`)."
    cells = json.loads(nb.read_text())['cells']
    keep = [c for c in cells if c['cell_type'] == 'code' and not re.search(r'^\s*#\|\s*hide\b', ''.join(c['source']), re.M)]
    return sum(any(k.startswith('image/') for k in o.get('data', {})) for c in keep for o in c.get('outputs', []))


def has_math(nb: Path) -> bool:
    "Whether the notebook's markdown holds TeX (`$…$` or `$$…$$` outside code spans)."
    md = ' '.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'markdown')
    md = re.sub(r'`[^`]*`', '', md)
    return bool(re.search(r'\$[^$\s][^$]*\$', md))


@needs_chromium
def test_every_page_loads_with_figures_and_math(site, tmp_path):
    pages = sorted(p for p in site.rglob('*.html') if p.name != '404.html' and 'assets' not in p.parts)
    assert len(pages) >= 20
    def check(page):
        rel = page.relative_to(site).as_posix()
        d = dom(page.as_uri(), tmp_path/f'profile-{rel.replace("/", "_")}')   # from disk, as the README says
        problems = []
        if 'md-content' not in d: return [f'{rel}: did not load']
        if re.search(r'<pre>[^<]*\b[VH]Box\(children=', d): problems.append(f'{rel}: a widget shown as text')
        title = re.search(r'<title>(.*?)</title>', page.read_text()).group(1)
        if f'<title>{title}</title>' not in d: problems.append(f'{rel}: title {title!r} missing')
        nb = notebook_of(page, site)
        if nb is not None:
            want, got = expected_images(nb), len(re.findall(r'<img[^>]+src="data:image/', d))
            if got < want: problems.append(f'{rel}: {got} images on the page, the notebook has {want}')
            typeset = len(re.findall(r'class="(?:MathJax|MathJax_Display|MathJax_SVG)"', d))
            scripts = len(re.findall(r'<script type="math/tex', d))
            if has_math(nb) and not typeset: problems.append(f'{rel}: the notebook has TeX, the page typeset none')
            if typeset < scripts: problems.append(f'{rel}: {scripts} formulas found, {typeset} typeset')
            if 'Math Processing Error' in d or 'class="merror"' in d: problems.append(f'{rel}: MathJax error')
        return problems
    with ThreadPoolExecutor(2) as ex: problems = [p for ps in ex.map(check, pages) for p in ps]
    assert not problems, '\n'.join(problems)


@needs_chromium
def test_a_page_served_over_http_asks_for_no_missing_file(site, server, tmp_path):
    "Over HTTP every request is seen: the method overview (figures, formulas, search) asks for nothing the site lacks."
    server, missing = server
    d = dom(f'{server}/05_method.html?q=adapter', tmp_path/'profile')
    assert 'md-content' in d and re.search(r'md-search-result__meta">\d+ matching documents?<', d)
    # MathJax's combined configuration also probes its TeX web fonts, which jupyter-server-mathjax does not ship; it
    # then typesets with the STIX-Web fonts the package does ship (checked above), so those probes are not failures
    missing = [m for m in missing if not m.startswith('/assets/mathjax/fonts/HTML-CSS/TeX/')]
    assert not missing, f'the pages asked for files the site lacks: {sorted(set(missing))}'


def test_method_overview_is_second_in_the_navigation(site):
    "The reading order: index, then the method overview, with its architecture figure and typeset equations."
    html = (site/'index.html').read_text()
    links = re.findall(r'<a href="([^"#]+\.html)" class="md-nav__link', html)
    order = [l for l in dict.fromkeys(l.removeprefix('./') for l in links)]
    assert order[:2] == ['index.html', '05_method.html'], order[:5]
    assert order.index('05_method.html') < order.index('22_models.adapters.html') < order.index('00_core.html')


def search_results(url: str, profile: Path) -> tuple[str, list[str]]:
    "The search box's verdict and the result links on `url` (a page with `?q=...`)."
    d = dom(url, profile)
    meta = re.search(r'md-search-result__meta">([^<]*)<', d)
    return (meta.group(1) if meta else ''), re.findall(r'<li class="md-search-result__item"><a href="([^"]+)"', d)


@needs_chromium
def test_search_works_from_file(site, tmp_path):
    "Opened from disk, the search box finds the pages that hold a word, from the top page and from a page in a folder."
    for page in (site/'index.html', next((site/'api').glob('mmdgpp.core.html'))):
        meta, links = search_results(f'{page.as_uri()}?q=quickstart', tmp_path/f'profile-{page.stem}')
        assert re.fullmatch(r'\d+ matching documents?', meta), (page.name, meta)
        assert links and all(l.startswith('file://') and Path(unquote(urlparse(l).path)).is_file() for l in links), links[:3]


def test_the_site_has_what_search_from_file_needs(site):
    "The index as a script (the theme loads it under file:), the worker script, and every page loading it."
    from mmdgpp.docsite import SHIM, check_offline_search
    assert check_offline_search(site) == []
    index = json.loads((site/'search'/'search_index.json').read_text())
    assert {d['location'].split('#')[0] for d in index['docs']} >= {'index.html', '05_method.html'}
    assert 'https://' not in (site/'index.html').read_text().split('</head>')[0]   # no network polyfill in the page head
    assert (site/SHIM).read_text().count('location.protocol !== "file:"') == 1      # a no-op over HTTP
