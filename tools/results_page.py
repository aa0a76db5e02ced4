"""The shared results page, docs/results.md: one section per study, each written by its own
report script (study_report.py: lm; assoc_report.py: assoc) between marker comments, so that
re-running one study replaces its section and leaves the others alone. A section's headings are
demoted one level under the page's title; and the command-line options every report script
shares, and the mean ± sample std they quote. It formats nothing else.
"""
import argparse
import math
import os
import re

TITLE = "# Results\n\nEach section below is written by one `tools/reproduce.sh` study; re-running a study replaces\nonly its own section.\n"
ORDER = ["lm", "assoc", "sensing", "facts"]  # the page's section order


def _begin(name):
    return f"<!-- muonlab:section {name} -->"


def _end(name):
    return f"<!-- muonlab:end {name} -->"


def _sections(text):
    """name -> section text (markers included), in page order."""
    found = {}
    for m in re.finditer(r"<!-- muonlab:section (\S+) -->.*?<!-- muonlab:end \1 -->", text, re.S):
        found[m.group(1)] = m.group(0)
    return found


def replace_section(path, name, markdown):
    """Writes `markdown` (a page of its own, headings from #) as section `name` of `path`."""
    body = re.sub(r"^(#+) ", r"#\1 ", markdown.strip(), flags=re.M)
    section = f"{_begin(name)}\n{body}\n{_end(name)}"
    sections = {}
    if os.path.exists(path):
        with open(path) as f:
            sections = _sections(f.read())
    sections[name] = section
    names = [n for n in ORDER if n in sections] + sorted(n for n in sections if n not in ORDER)
    text = TITLE + "\n" + "\n\n".join(sections[n] for n in names) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def study_arguments(description):
    """An argument parser with the options every study report takes (add the study's own)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--page", required=True, help="results page; the section is replaced")
    p.add_argument("--figures", required=True, help="directory for the PNGs")
    p.add_argument("--figures-rel", required=True, help="the PNG directory as the page links it")
    p.add_argument("--json", required=True, help="every number of the section, as JSON")
    p.add_argument("--command", required=True, help="the command that reproduces the section")
    p.add_argument("--wall-seconds", type=float, required=True)
    p.add_argument("--setup", default="", help="a paragraph describing the set-up")
    return p


def mean_std(values):
    """Mean and sample std of the finite values (None and NaN left out); NaN where undefined."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(values) / n
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return m, s
