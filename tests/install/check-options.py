#!/usr/bin/env python3
"""The daemon's option parser and its manual page agree: every option
fs/main.c parses is documented in mailbagfs.8.scd, exactly once, with the
default main.c gives it; and the page documents no option the parser does
not know. Reads source files only: no build, no root, no mount.

usage: check-options.py MAIN_C PAGE_SOURCE

What main.c parses:
- its own options: the first string of each entry of every fuse_opt table
  that main.c hands to fuse_opt_parse() ("lock_timeout=%lf" is
  -o lock_timeout, "-x" is -x);
- libfuse's, for each libfuse call in main.c that parses the command line:
  the options that libfuse's own help lists for it (LIBFUSE below, from
  libfuse 3.14). mailbagfs --help prints both helps, so these are the
  options a user is told about.

A numeric default (a field of the Options initializer in main.c, such as
.lock_timeout = 10.0) must appear in the option's entry as "default N";
negative defaults mean "unset" and are not checked.
"""
import importlib.util
import os
import re
import sys

# libfuse call in main.c -> the options that call parses, as libfuse's
# fuse_cmdline_help() and fuse_lowlevel_help() list them.
LIBFUSE = {
    'fuse_parse_cmdline': ['-h', '--help', '-V', '--version', '-d', '-o debug', '-f', '-s',
                           '-o clone_fd', '-o max_idle_threads', '-o max_threads'],
    'fuse_session_new': ['-o allow_other', '-o allow_root', '-o auto_unmount'],
}


def load_check_man():
    """check-man.py's reading of a page's option lines, so that both tests
    see the same options in a page."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'check-man.py')
    spec = importlib.util.spec_from_file_location('check_man', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def strip_comments(source):
    source = re.sub(r'/\*.*?\*/', ' ', source, flags=re.S)
    return re.sub(r'//[^\n]*', ' ', source)


def option_name(template):
    """"lock_timeout=%lf" -> "-o lock_timeout"; "-f" -> "-f"."""
    name = re.split(r'[=%\s]', template, maxsplit=1)[0]
    if template.startswith('-'):
        return name
    return '-o ' + name


def main_c_options(path):
    """{option: Options field or None} of main.c's own tables, the libfuse
    options of the calls it makes, and the "-oNAME" arguments it adds
    itself; and the numeric defaults {field: value}."""
    source = strip_comments(open(path, encoding='utf-8').read())
    own = {}
    tables = set(re.findall(r'\bfuse_opt_parse\s*\(\s*[^,]+,\s*[^,]+,\s*(\w+)', source))
    if not tables:
        raise SystemExit(f'{path}: no fuse_opt_parse() call with an option table found')
    for table in tables:
        match = re.search(r'struct\s+fuse_opt\s+' + re.escape(table) + r'\s*\[\s*\]\s*=\s*\{(.*?)\};',
                          source, re.S)
        if not match:
            raise SystemExit(f'{path}: option table {table} not found')
        # Each entry: MACRO("template", field, value), FUSE_OPT_KEY("template",
        # key) or {"template", offset, value}; FUSE_OPT_END has no string.
        for entry in re.finditer(r'(?:(\w+)\s*\(|\{)\s*"([^"]+)"\s*,?\s*([A-Za-z_]\w*)?',
                                 match.group(1)):
            macro, template, second = entry.groups()
            field = second if macro and not macro.startswith('FUSE_OPT') else None
            # A keyed option (parsed by main.c's own handler) keeps its
            # value in the Options field of its name, when there is one.
            if macro == 'FUSE_OPT_KEY':
                field = template.rstrip('=')
            own[option_name(template)] = field
    libfuse = []
    for call, options in LIBFUSE.items():
        if re.search(r'\b' + call + r'\s*\(', source):
            libfuse += options
    added = {option_name(arg[2:]) for arg in
             re.findall(r'fuse_opt_add_arg\s*\([^,]+,\s*"(-o[^"]+)"', source)}
    defaults = {}
    init = re.search(r'\bOptions\s+\w+\s*=\s*\{(.*?)\};', source, re.S)
    if init:
        for field, value in re.findall(r'\.(\w+)\s*=\s*(-?[0-9][0-9.]*)', init.group(1)):
            defaults[field] = float(value)
    return own, libfuse, added, defaults


def page_entries(path, check_man):
    """[(options, text)] of each option entry of the page: a line starting
    with "*-" and the indented lines below it, markup removed."""
    entries = []
    current = None
    for line in open(path, encoding='utf-8'):
        if line.startswith('*-'):
            plain = re.sub(r'(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])', '',
                           line.replace('*', '')).replace('\\', '')
            current = (check_man.leading_options(plain), [])
            entries.append(current)
        elif current and (line.startswith('\t') or not line.strip()):
            current[1].append(line.replace('*', '').replace('\\', '').strip())
        else:
            current = None
    return [(options, ' '.join(text)) for options, text in entries]


def main(args):
    if len(args) != 2:
        raise SystemExit(__doc__)
    main_c, page = args
    check_man = load_check_man()
    own, libfuse, added, defaults = main_c_options(main_c)
    parsed = set(own) | set(libfuse)
    entries = page_entries(page, check_man)
    documented = {}
    for options, text in entries:
        for option in options:
            documented.setdefault(option, []).append(text)

    failures = []  # (option, message)
    for option in sorted(parsed):
        where = 'fs/main.c' if option in own else 'libfuse, through fs/main.c,'
        if option not in documented:
            failures.append((option, f'{where} parses it, but {page} does not document it'))
        elif len(documented[option]) > 1:
            failures.append((option, f'documented {len(documented[option])} times in {page}'))
    for option in sorted(set(documented) - parsed):
        if option in added:
            failures.append((option, f'{page} documents it as an option, but mailbagfs sets '
                                     'it itself (fuse_opt_add_arg in fs/main.c)'))
        else:
            failures.append((option, f'{page} documents it, but fs/main.c does not parse it'))
    for option, field in sorted(own.items()):
        value = defaults.get(field) if field else None
        if value is None or value < 0 or option not in documented:
            continue
        stated = re.findall(r'\bdefault:?\s+([0-9][0-9.]*[0-9]|[0-9])', documented[option][0])
        if not any(float(number) == value for number in stated):
            said = ', '.join(f'default {n}' for n in stated) if stated else 'no "default N"'
            failures.append((option, f'fs/main.c defaults it to {value:g}, but its entry in '
                                     f'{page} says {said}'))
    for option, message in failures:
        print(f'FAIL {option}: {message}')
    checked = parsed | set(documented)
    failed = {option for option, _ in failures}
    print(f'{len(own)} options of fs/main.c and {len(libfuse)} of libfuse checked against '
          f'{len(entries)} entries of {os.path.basename(page)}')
    print(f'{len(checked) - len(failed)} passed, {len(failed)} failed')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
