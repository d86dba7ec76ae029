"""Runs the README's walk-through as a newcomer would and checks every answer it shows.

The section "Walk-through with `make dev`" of README.md is read with a Markdown parser:
its first `sh` block must be `make dev` (the caller starts that); every later `sh` block
runs in bash, in order, with the variables earlier blocks set, and the `http` block that
follows it is the answer the README promises. The real answer (`curl -si`) must have the
same status line, each header shown with the value shown, and a body equal to the one
shown once session keys, handles and RFC 3339 times are set aside: a key (or a handle)
the README shows stands for the one the real answer gave in the same place, in later
commands too.

tools/e2e.py runs it against the `make dev` it starts; by hand, against a `make dev`
already running: python tools/walkthrough.py --port 9000"""

import json
import re
import subprocess
import sys

from markdown_it import MarkdownIt

SECTION = "Walk-through with `make dev`"
README_PORT = "127.0.0.1:9000"
SESSION_KEY = re.compile(r"^[a-z0-9]{32}$")
# A session's handle in a principal's listing.
HANDLE = re.compile(r"^[0-9a-f]{16}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def steps(path):
    """[(line, commands, answer or None)] of the walk-through section, in order."""
    with open(path, encoding="utf-8") as f:
        tokens = MarkdownIt("commonmark").parse(f.read())
    inside, found = False, []
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            title = tokens[i + 1].content
            if title == SECTION:
                inside, level = True, token.tag
            elif inside and token.tag <= level:
                break
        elif inside and token.type == "fence":
            info = token.info.strip()
            if info == "sh":
                found.append([token.map[0] + 1, token.content, None])
            elif info == "http" and found and found[-1][2] is None:
                found[-1][2] = token.content
    if not found:
        raise ValueError(f"README.md has no section '{SECTION}' with sh blocks")
    return [tuple(step) for step in found]


def parse_answer(text):
    """(status line, {header: value}, body) of an HTTP answer as curl -si prints it."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    lines = head.strip("\n").split("\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0].strip(), headers, body.strip()


def learn(shown, real, names):
    """Maps each session key in the shown JSON to the one in the same place of the real."""
    if isinstance(shown, dict) and isinstance(real, dict):
        for k in shown:
            if k in real:
                learn(shown[k], real[k], names)
    elif isinstance(shown, list) and isinstance(real, list):
        for a, b in zip(shown, real):
            learn(a, b, names)
    elif isinstance(shown, str) and isinstance(real, str) and (SESSION_KEY.match(shown)
                                                               or HANDLE.match(shown)):
        names[shown] = real


def substitute(text, names):
    for shown, real in names.items():
        text = text.replace(shown, real)
    return text


def normal(value, names):
    if isinstance(value, dict):
        return {k: normal(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [normal(v, names) for v in value]
    if isinstance(value, str):
        return "<time>" if RFC3339.match(value) else substitute(value, names)
    return value


def differences(shown_text, real_text, names):
    """What of the shown answer the real one lacks; learns keys on the way."""
    status, headers, body = parse_answer(shown_text)
    real_status, real_headers, real_body = parse_answer(real_text)
    wrong = []
    if real_status.split(" ", 1)[1:] != status.split(" ", 1)[1:]:
        wrong.append(f"status {real_status!r}, README shows {status!r}")
    if body:
        try:
            shown_json, real_json = json.loads(body), json.loads(real_body)
        except ValueError as e:
            return wrong + [f"body is not the JSON shown ({e}): {real_body[:300]}"]
        learn(shown_json, real_json, names)
        if normal(shown_json, names) != normal(real_json, {}):
            wrong.append(f"body {real_body[:300]}, README shows {body[:300]}")
    elif real_body:
        wrong.append(f"a body the README does not show: {real_body[:300]}")
    for name, value in headers.items():
        if real_headers.get(name) != substitute(value, names):
            wrong.append(f"header {name}: {real_headers.get(name)!r}, README shows {value!r}")
    return wrong


def run(readme, api_port, report):
    """Runs the walk-through against make dev's API on api_port; report(name, ok, detail)."""
    walk = steps(readme)
    first = walk[0][1].strip()
    report("the walk-through starts with make dev", first == "make dev", first)
    names, assignments, answers = {}, [], []
    for line, commands, shown in walk[1:]:
        commands = substitute(commands, names).replace(README_PORT, f"127.0.0.1:{api_port}")
        script = "set -eu\n" + "".join(assignments) + commands
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=900)
        assignments += [l + "\n" for l in commands.split("\n") if ASSIGNMENT.match(l)]
        name = f"README.md:{line} {commands.strip().splitlines()[-1][:90]}"
        if done.returncode != 0:
            report(name, False, f"exit {done.returncode}: {done.stderr[-500:]}")
            continue
        if shown is None:
            report(name, not done.stdout.strip(), f"prints what the README does not show: {done.stdout[:300]}")
            continue
        wrong = differences(shown, done.stdout, names)
        report(name, not wrong, "; ".join(wrong))
        answers.append((commands, parse_answer(shown)))
    covered = {
        "create (201)": any(s == "HTTP/1.1 201 Created" for _, (s, _, _) in answers),
        "read with ETag": any(" GET " not in c and "-X" not in c and "etag" in h for c, (_, h, _) in answers),
        "PATCH with If-Match": any("PATCH" in c and "if-match" in c.lower() and s.endswith("200 OK")
                                   for c, (s, _, _) in answers),
        "a stale If-Match (412)": any(" 412 " in s for _, (s, _, _) in answers),
        "cycle": any("/cycle" in c for c, _ in answers),
        "delete (204)": any("DELETE" in c and " 204 " in s for c, (s, _, _) in answers),
        "an error as problem+json": any(h.get("content-type") == "application/problem+json" and b
                                        for _, (_, h, b) in answers),
    }
    missing = [what for what, ok in covered.items() if not ok]
    report("the walk-through shows create, read, PATCH, 412, cycle, delete and an error",
           not missing, f"missing: {', '.join(missing)}")


def main(argv):
    port = argv[argv.index("--port") + 1] if "--port" in argv else "9000"
    results = []

    def report(name, ok, detail=""):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}", flush=True)

    run("README.md", port, report)
    print(f"walk-through: {sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
