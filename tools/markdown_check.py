"""Reads Markdown files as a renderer does (markdown-it-py, CommonMark) and fails on what a
renderer silently gets wrong: a code fence never closed (everything after it renders as
code), a heading inside a code block (a `## ` line there was meant as a heading: a shell
comment never starts with two hashes), and a relative link or image whose file, or
whose `#anchor` among that file's headings, does not exist.

Usage: python tools/markdown_check.py [--self-test] FILE...
--self-test first shows that each kind of fault, planted in a sample, is reported."""

import os
import re
import sys
import tempfile
from urllib.parse import unquote

from markdown_it import MarkdownIt

PARSER = MarkdownIt("commonmark").enable("table")
HEADING_IN_CODE = re.compile(r"^\s{0,3}#{2,6}\s")
# An opening fence with an info string inside a fence: the fence before it was left open
# and the next one's closing line closed it instead.
FENCE_IN_CODE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*\w")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def slug(text):
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]", "", text.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(path):
    with open(path, encoding="utf-8") as f:
        tokens = PARSER.parse(f.read())
    anchors, seen = set(), {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            base = slug(tokens[i + 1].content)
            n = seen.get(base, 0)
            seen[base] = n + 1
            anchors.add(base if n == 0 else f"{base}-{n}")
    return anchors


def links(tokens):
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                yield token.map, child.attrs.get("href", "")
            elif child.type == "image":
                yield token.map, child.attrs.get("src", "")


def problems(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    tokens = PARSER.parse(text)
    found = []
    for token in tokens:
        if token.type not in ("fence", "code_block"):
            continue
        start, end = token.map
        if token.type == "fence":
            last = lines[end - 1].strip() if end - 1 > start else ""
            marker = token.markup[0]
            closed = last.startswith(token.markup) and set(last) == {marker}
            if not closed:
                found.append(f"{path}:{start + 1}: code fence {token.markup} is never closed")
        for offset, line in enumerate(token.content.split("\n")):
            where = start + offset + (2 if token.type == "fence" else 1)
            if HEADING_IN_CODE.match(line):
                found.append(f"{path}:{where}: heading inside a code block: {line.strip()}")
            elif token.type == "fence" and FENCE_IN_CODE.match(line):
                found.append(f"{path}:{start + 1}: code fence {token.markup} is never closed "
                             f"(line {where} opens another inside it)")
    directory = os.path.dirname(path)
    for line_map, target in links(tokens):
        if not target or EXTERNAL.match(target):
            continue
        where = f"{path}:{line_map[0] + 1}" if line_map else path
        file_part, _, anchor = target.partition("#")
        linked = os.path.normpath(os.path.join(directory, unquote(file_part))) if file_part else path
        if not os.path.exists(linked):
            found.append(f"{where}: link to a missing file: {target}")
        elif anchor and linked.endswith(".md") and unquote(anchor) not in headings(linked):
            found.append(f"{where}: link to a missing heading: {target}")
    return found


# Each sample plants one fault; its name is part of what the report must say.
SAMPLES = {
    "is never closed": "# T\n\n```sh\ncurl x\n\ntext\n",
    "opens another inside it": "# T\n\n```sh\ncurl x\n\ntext\n\n```sh\nmake\n```\n",
    "heading inside a code block": "# T\n\n```sh\ncurl x\n## Next\n```\n",
    "missing file": "# T\n\nSee [it](nowhere.md).\n",
    "missing heading": "# T\n\n## Here\n\nSee [it](#there).\n",
}


def self_test():
    """Each planted fault must be reported, and a clean sample must pass."""
    clean = "# T\n\n## Here\n\n```sh\n# a shell comment\ncurl x\n```\n\nSee [here](#here).\n"
    ok = True
    with tempfile.TemporaryDirectory() as work:
        for name, sample in [*SAMPLES.items(), ("clean", clean)]:
            path = os.path.join(work, "sample.md")
            with open(path, "w", encoding="utf-8") as f:
                f.write(sample)
            reported = problems(path)
            if bool(reported) != (name != "clean") or not all(name in r for r in reported):
                print(f"FAIL self-test: {name}: {reported}")
                ok = False
    print(f"{'ok  ' if ok else 'FAIL'} the checker reports each planted fault and passes a clean file")
    return ok


def main(argv):
    ok = True
    if argv and argv[0] == "--self-test":
        ok = self_test()
        argv = argv[1:]
    for path in argv:
        found = problems(path)
        for problem in found:
            print(problem)
        ok &= not found
    print(f"markdown: {len(argv)} files, {'no problems' if ok else 'problems above'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
