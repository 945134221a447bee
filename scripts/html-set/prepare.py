"""Builds the labelled page set from Debian's packaged HTML documentation: pages of the Debian
Administrator's Handbook (English, simplified and traditional Chinese) and of the Debian
Reference, each with its gold text: the page less its navigation (banner, docnav, navheader,
navfooter, table of contents), scripts and styles. Then copies themap's own labelled Chinese
site pages (tests/data/html) beside them.

    python scripts/html-set/prepare.py DEB_TREE OUT_DIR
"""
import glob
import os
import shutil
import sys

import lxml.html

HANDBOOK = ["sect.rights-management", "sect.remote-login", "sect.apt-get", "sect.network-config", "sect.backup"]
REFERENCE = ["pr01", "ch04", "ch08"]
NAVIGATION = [
    '//div[@id="banner"]', '//p[@id="title"]', '//ul[contains(@class,"docnav")]', '//div[@class="navheader"]',
    '//div[@class="navfooter"]', '//div[@class="toc"]', "//script", "//style",
]


def gold(path):
    tree = lxml.html.fromstring(open(path, "rb").read())
    for xpath in NAVIGATION:
        for element in tree.xpath(xpath):
            element.drop_tree()
    body = tree.find("body")
    blocks = body.xpath(".//p|.//div[@class='para']|.//li|.//h1|.//h2|.//h3|.//h4|.//pre|.//td|.//dt|.//dd")
    # Text of the outermost blocks only, so nested ones are not counted twice.
    outer = [b for b in blocks if not any(a in blocks for a in b.iterancestors())]
    return "\n\n".join(" ".join(b.text_content().split()) for b in outer if b.text_content().strip()) + "\n"


def main(deb, out):
    os.makedirs(out, exist_ok=True)
    for lang, tag in [("en-US", "en"), ("zh-CN", "zhcn"), ("zh-TW", "zhtw")]:
        for name in HANDBOOK:
            src = os.path.join(deb, "usr/share/doc/debian-handbook/html", lang, name + ".html")
            dst = os.path.join(out, f"handbook{tag}-{name[5:]}")
            shutil.copy(src, dst + ".html")
            open(dst + ".gold", "w", encoding="utf-8").write(gold(src))
    for name in REFERENCE:
        src = os.path.join(deb, "usr/share/debian-reference", name + ".en.html")
        dst = os.path.join(out, f"reference-{name}")
        shutil.copy(src, dst + ".html")
        open(dst + ".gold", "w", encoding="utf-8").write(gold(src))
    here = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "html")
    for path in glob.glob(os.path.join(here, "*")):
        shutil.copy(path, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
