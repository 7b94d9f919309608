#!/usr/bin/env python3
"""Each manual page lists the options of its program's --help, no more and
no fewer, and renders without a groff warning.

usage: check-man.py PROGRAM PAGE_SOURCE PAGE [PROGRAM PAGE_SOURCE PAGE ...]

An option is "--name", "-x" or "-o name" (a FUSE mount option). In --help
they are the leading words of a line that starts with "-"; in a page
source (scdoc) the leading words of a line that starts with "*-".
"""
import re
import subprocess
import sys


def leading_options(text):
    """The options named by the leading words of one line."""
    words = text.split()
    found = set()
    i = 0
    while i < len(words) and words[i].startswith('-'):
        word = words[i].rstrip(',')
        if word == '-o' and i + 1 < len(words):
            found.add('-o ' + re.split(r'[=,]', words[i + 1])[0])
            i += 2
            continue
        found.add(re.split(r'[=\[]', word)[0])
        i += 1
    return found


def help_options(program):
    run = subprocess.run([program, '--help'], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f'{program} --help exited {run.returncode}: {run.stderr}')
    found = set()
    for line in run.stdout.splitlines():
        if line.lstrip().startswith('-'):
            found |= leading_options(line)
    return found


def page_options(source):
    found = set()
    for line in open(source, encoding='utf-8'):
        if line.startswith('*-'):
            # *-o* log_level=_LEVEL_, *-u*, *--users*=_N_: drop the markup.
            # scdoc's underline marks sit at word edges; log_level keeps its _.
            plain = re.sub(r'(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])', '', line.replace('*', ''))
            plain = plain.replace('\\', '')
            found |= leading_options(plain)
    return found


def groff_warnings(page):
    run = subprocess.run(['groff', '-man', '-Tutf8', '-ww', '-z', page],
                         capture_output=True, text=True, check=False)
    return (run.stderr.strip() or (f'groff exited {run.returncode}' if run.returncode else ''))


def main(args):
    if len(args) % 3 != 0 or not args:
        raise SystemExit(__doc__)
    failures = 0
    checked = 0
    for program, source, page in zip(args[0::3], args[1::3], args[2::3]):
        in_help = help_options(program)
        in_page = page_options(source)
        name = program.rsplit('/', 1)[-1]
        for option in sorted(in_help - in_page):
            print(f'FAIL {name}: {option} is in --help but not in {source}')
            failures += 1
        for option in sorted(in_page - in_help):
            print(f'FAIL {name}: {option} is in {source} but not in --help')
            failures += 1
        if not in_help:
            print(f'FAIL {name}: no option found in --help')
            failures += 1
        warnings = groff_warnings(page)
        if warnings:
            print(f'FAIL {name}: groff: {warnings}')
            failures += 1
        checked += 1
        print(f'{name}: {len(in_help)} options in --help checked against its page')
    passed = checked - min(checked, failures)
    print(f'{passed} passed, {failures} failed')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
