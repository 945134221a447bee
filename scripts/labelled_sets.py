#!/usr/bin/env python3
"""Build two labelled passage collections (Chinese and English) with a
two-level label hierarchy, for evaluating hierarchical topic clustering.

Data source
-----------
Only Debian 12 (bookworm) documentation packages, fetched with the ordinary
Debian client (`apt-get download <pkg>=<version>`; run `apt-get update` once
first) and checked against the SHA-256 values recorded in PACKAGES below.
The same five books are used in both languages (the zh set is their
Simplified-Chinese translation), each read from its DocBook / Publican XHTML:

  book label     zh package (version)            en package (version)
  reference      debian-reference-zh-cn (2.100)  debian-reference-en (2.100)
  handbook       debian-handbook (11.20220922), html/zh-CN and html/en-US
  install-guide  installation-guide-amd64 (20230508+deb12u1), zh_CN and en
  faq            debian-faq-zh-cn (11.1)         debian-faq (11.1)
  maint-guide    maint-guide-zh-cn (1.2.53)      maint-guide (1.2.53)

No single book reaches 5,000 Chinese passages (the zh-CN Handbook is only
partly translated), hence the combination. Files: debian-docs-zh.tsv and
debian-docs-en.tsv, and the same with the book as a level above the chapter
(debian-docs-zh-books.tsv, debian-docs-en-books.tsv: three levels).

Labels
------
* level 1 = "<book>: <chapter title>" -- a DocBook chapter, appendix, preface
  or foreword, its number prefix ("Chapter 3.", "第 3 章", "附录 A.")
  stripped.
* level 2 = "<level1>/<top-level section title>" -- the section "N.M" in a
  chapter ("N" in a preface), number prefix stripped; text before a
  chapter's first section gets "<level1>/(introduction)". Should one chapter
  have two sections of the same title, the later gets " [N.M]" appended.
Titles are the books' own, so "/" may also occur inside a title; split
level 2 on the length of level 1, not on "/". Level-1 labels are not merged:
several (prefaces, short appendices, small FAQ chapters) have < 50 passages.

Passages
--------
One passage per paragraph (<p>, Publican's <div class="para">), list item or
definition body (<li>, <dd>); nested blocks give separate passages. Text is
whitespace-collapsed (in Chinese also the spaces between two CJK characters,
left around inline markup, are removed). Dropped: headings, code / screen /
program listings (<pre>), all tables (package lists, callout lists),
examples, figures, navigation, tables of contents, the index pages (title
page, legal notice), footnotes, sidebar / table titles, definition-list
terms; boilerplate chapters / sections (GNU GPL appendix, disclaimer,
copyright history, trademark and translator credits); passages shorter than
20 characters (zh) / 40 (en); English passages under 50 % letters;
Chinese-set passages that are untranslated English (CJK < MIN_CJK_SHARE of
CJK + Latin letters, or < MIXED_CJK_SHARE with more than MAX_EN_STOPWORDS
English function words); and exact duplicates (first kept).

Output: for each set a UTF-8 TSV file, one passage a line, in reading order:
    level1<TAB>level2<TAB>text

Usage: python3 scripts/labelled_sets.py [--out DIR]
The .deb files and the extracted HTML are cached in $THEMAP_CACHE or else
~/.cache/themap/labelled (also the default --out); a re-run reuses them.
Prints per set: passages, level-1 / level-2 label counts, the largest
level-1 label's share, median characters per passage.
Python 3.11 standard library only (the .deb is unpacked in Python; needs
apt-get only for the download).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import lzma
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from html.parser import HTMLParser
from pathlib import Path

# package -> (version, sha256 of the .deb, member prefixes to extract)
PACKAGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "debian-reference-zh-cn": (
        "2.100",
        "6d2d8d9a646397e28b04cdff23d2e4374101ebf9be348e35961af62c8a2d0977",
        ("usr/share/debian-reference/",),
    ),
    "debian-reference-en": (
        "2.100",
        "9f31d3a17df505de09689ca255512ea58c1fc47c59bb1b0c7bf1c23362e9743f",
        ("usr/share/debian-reference/",),
    ),
    "debian-handbook": (
        "11.20220922",
        "3d5dbeac1f1afc9c094eab9d0f701f6ecff99c4927d5a4794cf6c85678134faa",
        (
            "usr/share/doc/debian-handbook/html/zh-CN/",
            "usr/share/doc/debian-handbook/html/en-US/",
        ),
    ),
    "installation-guide-amd64": (
        "20230508+deb12u1",
        "812c43e1dc906daf671e3efe953dc023205c238e5bd5a3021ce4ca142793573a",
        (
            "usr/share/doc/installation-guide-amd64/zh_CN/",
            "usr/share/doc/installation-guide-amd64/en/",
        ),
    ),
    "debian-faq-zh-cn": (
        "11.1",
        "3545356b1aa04d87e91dd15e8406210cf5b4f476662e597897bcb42234591758",
        ("usr/share/doc/debian/FAQ/zh-cn/",),
    ),
    "debian-faq": (
        "11.1",
        "427426e0cfa6888622fc1d72631071cb4b5a1f86ccde722e7820bcef284de5d0",
        ("usr/share/doc/debian/FAQ/",),
    ),
    "maint-guide-zh-cn": (
        "1.2.53",
        "d605b60a034f63857bc44205aed5ad7ba6e17d0d2b1ba5e79179b4e7ec4ee4bc",
        ("usr/share/doc/maint-guide-zh-cn/html/",),
    ),
    "maint-guide": (
        "1.2.53",
        "762c8a400a36668d2eb814a3ba356b06488fd889dfce478eb11d5cfb189a47b5",
        ("usr/share/doc/maint-guide/html/",),
    ),
}

# set name -> (language, [(book label, package, html dir, index file)])
SETS: dict[str, tuple[str, list[tuple[str, str, str, str]]]] = {
    "debian-docs-zh": (
        "zh",
        [
            ("reference", "debian-reference-zh-cn",
             "usr/share/debian-reference", "index.zh-cn.html"),
            ("handbook", "debian-handbook",
             "usr/share/doc/debian-handbook/html/zh-CN", "index.html"),
            ("install-guide", "installation-guide-amd64",
             "usr/share/doc/installation-guide-amd64/zh_CN", "index.html"),
            ("faq", "debian-faq-zh-cn",
             "usr/share/doc/debian/FAQ/zh-cn", "index.zh-cn.html"),
            ("maint-guide", "maint-guide-zh-cn",
             "usr/share/doc/maint-guide-zh-cn/html", "index.zh-cn.html"),
        ],
    ),
    "debian-docs-en": (
        "en",
        [
            ("reference", "debian-reference-en",
             "usr/share/debian-reference", "index.en.html"),
            ("handbook", "debian-handbook",
             "usr/share/doc/debian-handbook/html/en-US", "index.html"),
            ("install-guide", "installation-guide-amd64",
             "usr/share/doc/installation-guide-amd64/en", "index.html"),
            ("faq", "debian-faq",
             "usr/share/doc/debian/FAQ", "index.en.html"),
            ("maint-guide", "maint-guide",
             "usr/share/doc/maint-guide/html", "index.en.html"),
        ],
    ),
}

MIN_CHARS = {"zh": 20, "en": 40}
# zh set language check: share of CJK among CJK + Latin letters, and a count
# of English function words (catches half-translated Handbook paragraphs).
MIN_CJK_SHARE = 0.15
MIXED_CJK_SHARE = 0.5
MAX_EN_STOPWORDS = 3

# Boilerplate dropped, matched on the stripped chapter / section title.
DROP_CHAPTER = re.compile(r"^(gnu general public license|gnu 通用公共授权)$", re.I)
DROP_SECTION = re.compile(
    r"^(copyright history|版权历史|thanks to translators|对翻译者的感谢"
    r"|trademark acknowledgement|商标确认|简体中文翻译|disclaimer|免责声明)$",
    re.I,
)


# --------------------------------------------------------------------------
# download / verify / extract


def cache_dir() -> Path:
    env = os.environ.get("THEMAP_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "themap" / "labelled"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_deb(pkg: str, cache: Path) -> Path:
    version, sha, _ = PACKAGES[pkg]
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    deb = debs / f"{pkg}_{version}_all.deb"
    if deb.exists() and sha256_of(deb) == sha:
        return deb
    deb.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=debs) as tmp:
        # apt downloads as _apt where it can; under a private $HOME it warns
        # and downloads unsandboxed, which is harmless.
        os.chmod(tmp, 0o755)
        print(f"downloading {pkg}={version} ...", file=sys.stderr)
        r = subprocess.run(
            ["apt-get", "download", f"{pkg}={version}"],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        got = list(Path(tmp).glob(f"{pkg}_*.deb"))
        if r.returncode != 0 or len(got) != 1:
            sys.exit(
                f"apt-get download {pkg}={version} failed (rc={r.returncode}); "
                f"run 'apt-get update' first?\n{r.stderr.strip()}"
            )
        shutil.move(str(got[0]), deb)
    actual = sha256_of(deb)
    if actual != sha:
        deb.unlink()
        sys.exit(f"sha256 mismatch for {pkg}: got {actual}, want {sha}")
    return deb


def deb_data_tar(deb: Path) -> tarfile.TarFile:
    """Open data.tar.* of a .deb (an `ar` archive) without dpkg-deb."""
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise ValueError(f"{deb}: not an ar archive")
        while True:
            hdr = f.read(60)
            if len(hdr) < 60:
                raise ValueError(f"{deb}: no data.tar member")
            name = hdr[:16].decode().strip().rstrip("/")
            size = int(hdr[48:58].decode().strip())
            body = f.read(size)
            if size % 2:
                f.read(1)
            if name.startswith("data.tar"):
                if name.endswith(".xz"):
                    body = lzma.decompress(body)
                elif name.endswith(".gz"):
                    import gzip
                    body = gzip.decompress(body)
                elif name != "data.tar":
                    raise ValueError(f"{deb}: unsupported member {name}")
                return tarfile.open(fileobj=io.BytesIO(body), mode="r:")


def extract(pkg: str, cache: Path) -> Path:
    version, sha, prefixes = PACKAGES[pkg]
    root = cache / "extracted" / f"{pkg}_{version}"
    stamp = root / ".complete"
    if stamp.exists() and stamp.read_text().strip() == sha:
        return root
    deb = fetch_deb(pkg, cache)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    with deb_data_tar(deb) as tar:
        members = []
        for m in tar.getmembers():
            name = m.name.removeprefix("./")
            if (m.isfile() or m.isdir()) and name.startswith(prefixes) \
                    and not name.endswith((".png", ".jpg", ".svg", ".pdf", ".gz")):
                m.name = name
                members.append(m)
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(root, members=members, **kw)
    stamp.write_text(sha + "\n")
    return root


# --------------------------------------------------------------------------
# HTML -> (level1, level2, text)

VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr"}
BLOCK = {
    "p", "div", "li", "ul", "ol", "dl", "dd", "dt", "h1", "h2", "h3", "h4",
    "h5", "h6", "pre", "table", "tr", "td", "th", "blockquote", "body",
}
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
SKIP_TAGS = {"head", "title", "script", "style", "pre", "table", "dt"}
SKIP_CLASSES = {
    "navheader", "navfooter", "docnav", "toc", "list-of-tables",
    "list-of-figures", "list-of-examples", "table", "informaltable", "figure",
    "informalfigure", "example", "informalexample", "mediaobject", "screen",
    "programlisting", "literallayout", "synopsis", "calloutlist",
    "legalnotice", "footnote", "footnotes", "indexterm", "table-contents",
}
SKIP_IDS = {"banner", "title"}
TOP_DIVS = {"chapter", "appendix", "preface", "book"}
SECTION_DIVS = {"section", "sect1", "sect2", "sect3", "sect4", "sect5"}

CHAPTER_PREFIX = re.compile(
    r"^(?:(?:chapter|appendix)\s+[0-9A-Z]+\.|第\s*\d+\s*章|附录\s*[A-Z]\.?)\s*",
    re.I,
)
SECTION_PREFIX = re.compile(r"^(?:[0-9A-Z]+\.)+\s+")


def collapse(text: str) -> str:
    return " ".join(text.split())


class BookParser(HTMLParser):
    """Collects (level1_title, level2_title, raw_text) from one XHTML file.

    level1/level2 state persists across files (feed files in reading order).
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.level1: str | None = None
        self.level2: str | None = None
        self.section_numbers: dict[tuple[str | None, str], str] = {}
        self.passages: list[tuple[str, str, str]] = []
        self._reset_file()

    def _reset_file(self) -> None:
        self.stack: list[tuple[str, bool, bool, bool]] = []  # tag, skip, section, top
        self.skip = 0
        self.sections = 0
        self.buf: list[str] = []
        self.heading: list[str] | None = None
        self.await_l2 = False

    def feed_file(self, path: Path) -> None:
        self._reset_file()
        self.feed(path.read_text(encoding="utf-8"))
        self.close()
        self.flush()

    def flush(self) -> None:
        text = collapse("".join(self.buf))
        self.buf = []
        if text and self.level1 is not None:
            self.passages.append((self.level1, self.level2 or "(introduction)", text))

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        skip = (
            tag in SKIP_TAGS
            or a.get("id") in SKIP_IDS
            or bool(classes & SKIP_CLASSES)
            or (tag == "p" and "title" in classes)
        )
        section = tag == "div" and bool(classes & SECTION_DIVS)
        top = tag == "div" and bool(classes & TOP_DIVS)
        if tag in BLOCK and not self.skip:
            self.flush()
        self.stack.append((tag, skip, section, top))
        if skip:
            self.skip += 1
        if section:
            self.sections += 1
            if self.sections == 1:
                self.await_l2 = True
        if top:
            self.await_l2 = False
        if tag in HEADINGS and not self.skip:
            self.heading = []

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        # XHTML input is well formed; tolerate stray tags anyway.
        if not any(t == tag for t, *_ in self.stack):
            return
        while self.stack:
            t, skip, section, top = self.stack.pop()
            if t in BLOCK and not self.skip and self.heading is None:
                self.flush()
            if t in HEADINGS and self.heading is not None and not self.skip:
                self._end_heading(t)
            if skip:
                self.skip -= 1
            if section:
                self.sections -= 1
            if t == tag:
                break

    def _end_heading(self, tag: str) -> None:
        title = collapse("".join(self.heading or []))
        self.heading = None
        self.buf = []
        if tag == "h1" and self.sections == 0:
            self.level1 = CHAPTER_PREFIX.sub("", title)
            self.level2 = None
            self.await_l2 = False
        elif self.await_l2 and self.sections == 1:
            self.await_l2 = False
            m = SECTION_PREFIX.match(title)
            num = m.group(0).strip() if m else ""
            name = title[m.end():] if m else title
            # Two different sections with one title (a translation slip in
            # maint-guide zh-cn: two "package.examples") stay apart.
            first = self.section_numbers.setdefault((self.level1, name), num)
            self.level2 = name if first == num else f"{name} [{num.rstrip('.')}]"

    def handle_data(self, data):
        if self.skip:
            return
        if self.heading is not None:
            self.heading.append(data)
        else:
            self.buf.append(data)


class LinkOrder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[str] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href") if tag == "a" else None
        if href and "://" not in href and not href.startswith(("#", "mailto:")):
            f = href.split("#", 1)[0]
            if f.endswith(".html") and f not in self.files:
                self.files.append(f)


def reading_order(html_dir: Path, index: str) -> list[Path]:
    lo = LinkOrder()
    lo.feed((html_dir / index).read_text(encoding="utf-8"))
    files = [f for f in lo.files if f != index and (html_dir / f).is_file()]
    rest = sorted(
        p.name for p in html_dir.glob("*.html") if p.name != index and p.name not in files
    )
    if rest:
        print(f"warning: {html_dir}: not in index, skipped: {rest}", file=sys.stderr)
    return [html_dir / f for f in files]


# --------------------------------------------------------------------------
# cleaning and assembly

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RE = re.compile(f"[{CJK}]")
CJK_GAP = re.compile(f"(?<=[{CJK}\u3000-\u303f\uff00-\uffef]) (?=[{CJK}\u3000-\u303f\uff00-\uffef])")
LATIN_RE = re.compile(r"[A-Za-z]")
EN_STOPWORDS = re.compile(
    r"\b(?:the|and|is|are|of|to|in|that|for|with|this|it|be|can|on|by|which|you|an?)\b",
    re.I,
)


def clean(text: str, lang: str) -> str | None:
    text = text.replace("\t", " ")
    if lang == "zh":
        text = CJK_GAP.sub("", text)
    if len(text) < MIN_CHARS[lang]:
        return None
    if lang == "zh":
        cjk = len(CJK_RE.findall(text))
        latin = len(LATIN_RE.findall(text))
        share = cjk / (cjk + latin) if cjk else 0.0
        if share < MIN_CJK_SHARE:
            return None
        if share < MIXED_CJK_SHARE and len(EN_STOPWORDS.findall(text)) > MAX_EN_STOPWORDS:
            return None
    elif len(LATIN_RE.findall(text)) < 0.5 * len(text.replace(" ", "")):
        return None  # mostly symbols / paths / numbers, not prose
    return text


def build_set(name: str, cache: Path) -> list[tuple[str, str, str]]:
    lang, books = SETS[name]
    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for book, pkg, rel, index in books:
        html_dir = extract(pkg, cache) / rel
        parser = BookParser()
        for path in reading_order(html_dir, index):
            parser.feed_file(path)
        for l1, l2, raw in parser.passages:
            if DROP_CHAPTER.match(l1) or DROP_SECTION.match(l2):
                continue
            text = clean(raw, lang)
            if text is None or text in seen:
                continue
            seen.add(text)
            level1 = f"{book}: {l1}"
            rows.append((level1, f"{level1}/{l2}", text))
    return rows


def write_tsv(rows: list[tuple[str, str, str]], path: Path) -> None:
    """Writes `level1<TAB>level2<TAB>text`, and beside it (`…-books.tsv`) the same with the book
    as a level above: `book<TAB>level1<TAB>level2<TAB>text`."""
    books = path.with_name(path.stem + "-books.tsv")
    for target, with_book in ((path, False), (books, True)):
        tmp = target.with_suffix(".tsv.tmp")
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for row in rows:
                assert all("\t" not in c and "\n" not in c for c in row)
                book = (row[0].split(": ", 1)[0],) if with_book else ()
                f.write("\t".join(book + row) + "\n")
        tmp.replace(target)


def stats(rows: list[tuple[str, str, str]]) -> str:
    from collections import Counter

    l1 = Counter(r[0] for r in rows)
    l2 = {r[1] for r in rows}
    top, top_n = l1.most_common(1)[0]
    med = statistics.median(len(r[2]) for r in rows)
    return (
        f"passages={len(rows)} level1={len(l1)} level2={len(l2)} "
        f"largest_level1_share={top_n / len(rows):.3f} ({top}) "
        f"median_chars={med:g}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None,
                    help="output directory (default: the cache directory)")
    args = ap.parse_args()
    cache = cache_dir()
    out = args.out or cache
    out.mkdir(parents=True, exist_ok=True)
    for name in SETS:
        rows = build_set(name, cache)
        path = out / f"{name}.tsv"
        write_tsv(rows, path)
        print(f"{path}: {stats(rows)}")


if __name__ == "__main__":
    main()
