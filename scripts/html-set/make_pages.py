"""Writes the labelled Chinese web pages of themap's HTML tests and extraction benchmark.

Each page wraps a known article (paragraphs from the sample corpus in data/, with subheadings)
in the furniture of a real news, blog or forum site: navigation, breadcrumbs, sidebars of links,
share buttons, comment threads, footers, scripts and styles. Beside each page.html goes
page.gold, the article body as a reader sees it (headings and paragraphs, no title), and
page.furniture.lst, lines that must never become a passage. Deterministic: run it again and the
files are the same.

    python scripts/html-set/make_pages.py tests/data/html
"""
import html
import json
import os
import re
import sys
import zlib

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def paragraphs(name, skip_front_matter=True, limit=8, min_chars=60):
    text = open(os.path.join(ROOT, "data", name), encoding="utf-8").read()
    if skip_front_matter and text.startswith("---\n"):
        text = text.split("\n---\n", 1)[1]
    out = []
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip().replace("**", "")
        if len(line) >= min_chars and "http" not in line:
            out.append(line[:400])
        if len(out) == limit:
            break
    return out


NAV = ["首页", "国际", "财经", "科技", "评论", "视频", "专题", "登录", "注册"]
FOOTER = ["关于我们 | 联系我们 | 广告服务 | 隐私政策", "版权所有 © 2025 环球观察网 京ICP备12345678号"]
SIDEBAR = ["热门文章", "美联储年内第三次降息 市场反应平淡", "专家：明年全球经济增速或放缓", "一图看懂新能源汽车出口数据"]
COMMENTS = ["网友评论（3）", "说得太好了，支持作者！", "楼上的，你看懂了吗？", "转发了，大家都来看看。"]
SHARE = ["分享到：微信 微博 QQ空间", "字号：大 中 小"]
SCRIPT = "var _hmt = _hmt || []; console.log('统计代码加载完成');"
STYLE = "body { font-family: 'PingFang SC'; } .nav li { float: left; }"


def furniture_html():
    nav = "".join(f'<li><a href="/{i}">{w}</a></li>' for i, w in enumerate(NAV))
    side = "".join(f'<li><a href="/hot/{i}">{w}</a></li>' for i, w in enumerate(SIDEBAR[1:]))
    comments = "".join(f'<div class="comment"><span class="user">网友{i}</span><p>{c}</p></div>' for i, c in enumerate(COMMENTS[1:]))
    return {
        "head": f"<style>{STYLE}</style><script>{SCRIPT}</script>",
        "nav": f'<header><div class="logo">环球观察网</div><nav class="nav"><ul>{nav}</ul></nav></header>'
        f'<div class="breadcrumb"><a href="/">首页</a> &gt; <a href="/world">国际</a> &gt; 正文</div>',
        "side": f'<aside class="sidebar"><h3>{SIDEBAR[0]}</h3><ul>{side}</ul><div class="ad">广告 赞助商链接</div></aside>',
        "share": f'<div class="share">{SHARE[0]}</div><div class="font-size">{SHARE[1]}</div>',
        "comments": f'<section id="comments"><h3>{COMMENTS[0]}</h3>{comments}</section>',
        "footer": f'<footer><p>{FOOTER[0]}</p><p>{FOOTER[1]}</p></footer><script>document.write("<p>加载更多</p>");</script>',
    }


def body_html(sections):
    parts = []
    for heading, paras in sections:
        if heading:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.extend(f"<p>{html.escape(p)}</p>" for p in paras)
    return "\n".join(parts)


def gold_text(sections):
    lines = []
    for heading, paras in sections:
        if heading:
            lines.append(heading)
        lines.extend(paras)
    return "\n\n".join(lines) + "\n"


def news_page(title, date, author, sections, tags, charset="utf-8", jsonld=False, time_only=False):
    f = furniture_html()
    meta = [f'<meta charset="{charset}">', f"<title>{html.escape(title)} - 环球观察网</title>"]
    if not time_only:
        meta.append(f'<meta property="article:published_time" content="{date}T08:30:00+08:00">')
        meta += [f'<meta property="article:tag" content="{t}">' for t in tags]
        meta.append(f'<meta name="author" content="{author}">')
    meta.append(f'<link rel="canonical" href="https://news.example.cn/world/{date}/{zlib.crc32(title.encode()) % 100000}.html">')
    if jsonld:
        ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": title, "datePublished": f"{date}T08:30:00+08:00", "author": {"@type": "Person", "name": author}}
        meta.append(f'<script type="application/ld+json">{json.dumps(ld, ensure_ascii=False)}</script>')
    byline = f'<div class="info"><time datetime="{date}T08:30:00+08:00">{date}</time> 来源：环球观察网 作者：{author}</div>'
    return (
        f'<!DOCTYPE html><html lang="zh"><head>{"".join(meta)}{f["head"]}</head><body>{f["nav"]}'
        f'<main><article><h1>{html.escape(title)}</h1>{byline}{f["share"]}<div class="article-body">{body_html(sections)}</div>'
        f'</article>{f["comments"]}</main>{f["side"]}{f["footer"]}</body></html>\n'
    )


def forum_page(title, date, sections):
    f = furniture_html()
    post = body_html(sections)
    replies = "".join(
        f'<table class="post"><tr><td class="author">用户{i}<br>加入时间: 2004/02/14<br>文章: {100 + i}</td>'
        f'<td class="content"><div class="postbody">{c}</div></td></tr></table>'
        for i, c in enumerate(["顶！", "楼主分析得有道理，但是结论太悲观了。", "路过，看看。"])
    )
    return (
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"><title>{html.escape(title)} - 海纳百川论坛</title>{f["head"]}</head><body>'
        f'<div class="forum-nav">登录 | 个人设置 | 网站首页 | 论坛首页 | 博客 | 搜索 | 收藏夹 | 帮助 | 注册 | RSS</div>'
        f'<div class="topic">主题: {html.escape(title)}</div><div class="crumbs">海纳百川首页 -&gt; 罕见奇谈</div>'
        f'<table class="post first"><tr><td class="author">bystander<br>[博客] [个人文集]<br>加入时间: 2004/02/14<br>文章: 1219</td>'
        f'<td class="content"><div class="postdate">发表于: {date}</div><div class="postbody">{post}</div></td></tr></table>'
        f'{replies}<div class="pager">所有的时间均为 北京时间 阅读上一个主题 :: 阅读下一个主题</div>{f["footer"]}</body></html>\n'
    )


def main(out):
    os.makedirs(out, exist_ok=True)
    ai = paragraphs("002_e81e739ff95e68b4.txt", limit=9)
    dollar = paragraphs("004_cf369c94da936a8a.txt", skip_front_matter=False, limit=6)
    power = paragraphs("003_5fd6f3b08cf0e31a.txt", skip_front_matter=False, limit=6)
    order = paragraphs("000_141982620089a88c.txt", skip_front_matter=False, limit=6, min_chars=80)
    pages = {
        "news-ai": (news_page("算力枯竭与地缘博弈：中国 AI 的真相", "2026-01-21", "小翠", [(None, ai[:3]), ("算力之困", ai[3:6]), ("市场动荡", ai[6:9])], ["AI", "半导体"]), [(None, ai[:3]), ("算力之困", ai[3:6]), ("市场动荡", ai[6:9])], "utf-8"),
        "news-dollar-big5": (news_page("美元的避險地位依舊，但美債並不再是", "2025-11-03", "老馬記", [(None, dollar[:3]), ("美債的特權", dollar[3:6])], ["美元", "美債"], charset="big5", jsonld=True, time_only=True), [(None, dollar[:3]), ("美債的特權", dollar[3:6])], "big5"),
        "blog-power-gb18030": (news_page("AI電老虎撞上電網老骨頭", "2025-12-09", "科技觀察", [(None, power[:6])], ["電網"], charset="gb18030", jsonld=True), [(None, power[:6])], "gb18030"),
        "forum-order": (forum_page("霸权没落、秩序重置与中美博弈策略对比", "2025-10-18", [(None, order[:6])]), [(None, order[:6])], "utf-8"),
    }
    # Lines only furniture holds (single menu words such as 科技 also occur in articles).
    furniture = ["首页", "登录", "注册"] + FOOTER + SIDEBAR + COMMENTS + SHARE + [
        "console.log", "统计代码", "加载更多", "广告 赞助商链接", "论坛首页", "加入时间", "阅读上一个主题", "楼主分析得有道理",
    ]
    for name, (page, sections, encoding) in pages.items():
        with open(os.path.join(out, f"{name}.html"), "wb") as f:
            f.write(page.encode(encoding, errors="xmlcharrefreplace"))
        with open(os.path.join(out, f"{name}.gold"), "w", encoding="utf-8") as f:
            f.write(gold_text(sections))
    with open(os.path.join(out, "furniture.lst"), "w", encoding="utf-8") as f:
        f.write("\n".join(furniture) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
