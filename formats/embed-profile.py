#!/usr/bin/env python3
"""Turn a profile text file into a C source holding it as a string.

Build-time helper for formats/: the default profile is compiled into the
library so po_profile_new_default() needs no file at run time.
"""
import sys


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, 'rb') as f:
        data = f.read()
    out = ['/* Generated from msmail3.profile at build time; do not edit. */',
           '#include <glib.h>',
           '#include "profile-default.h"',
           'const char po_profile_default_text[] =']
    for line in data.splitlines(keepends=True):
        esc = ''.join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\?'
                      else '\\%03o' % ord(c) for c in line.decode('latin-1'))
        out.append('        "%s"' % esc)
    out.append('        ;')
    out.append('const gsize po_profile_default_len = %d;' % len(data))
    with open(dst, 'w') as f:
        f.write('\n'.join(out) + '\n')


if __name__ == '__main__':
    main()
