#!/usr/bin/env python3
"""mailbag-stat --json, --prometheus and po-check --json on a real mount:
the JSON parses (also with names that are not UTF-8 and names holding
quotes), promtool accepts the metrics, and both say what the daemon says.

Environment: MAILBAGFS, MKPO, MAILBAG_STAT, PO_CHECK (the built programs).
Needs root and /dev/fuse; promtool (Debian's prometheus package).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import opsupport

HOLD = '''
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
print("held", flush=True)
sys.stdin.read()
'''

WAIT = '''
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
'''

checks = {'passed': 0, 'failed': 0}


def check(condition, what, detail=''):
    if condition:
        checks['passed'] += 1
    else:
        checks['failed'] += 1
        print(f'FAIL {what}' + (f'\n{detail}' if detail else ''))


def main():
    opsupport.need_root()
    promtool = opsupport.need_program('promtool')
    env = os.environ
    top = tempfile.mkdtemp(prefix='mailbagfs-metrics-')
    backing = os.path.join(top, 'backing')
    mnt = os.path.join(top, 'mnt')
    os.makedirs(backing)
    os.mkdir(mnt)
    # A postoffice whose name is Latin-1, not UTF-8, and one whose path
    # holds a double quote: both must survive JSON and label escaping.
    po_latin1 = os.path.join(os.fsencode(backing), b'PO\xc9')
    po_quote = os.path.join(backing, 'HUB', 'PO"2')
    for po, messages in ((po_latin1, '12'), (po_quote, '30')):
        subprocess.run([env['MKPO'], po, '--messages', messages], check=True,
                       stdout=subprocess.DEVNULL)
    with open(os.path.join(po_latin1, b'LOG', b'caf\xe9'), 'wb'):
        pass
    # The holder's program name (its comm) is not UTF-8 either.
    holder_exe = os.path.join(os.fsencode(top), b'hold\xe9')
    os.symlink(os.path.realpath(sys.executable), holder_exe)

    daemon = holder = waiter = None
    try:
        daemon = opsupport.Daemon(env['MAILBAGFS'], backing, mnt, ['lock_timeout=60'])
        mnt_po = os.path.join(os.fsencode(mnt), b'PO\xc9')
        holder = subprocess.Popen([holder_exe, '-c', HOLD,
                                   os.path.join(mnt_po, b'P1', b'INQUEUE3.0LK')],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        check(holder.stdout.readline() == b'held\n', 'the holder took INQUEUE3')
        # A gateway-style open of the queue waits in line behind it.
        waiter = subprocess.Popen([sys.executable, '-c', WAIT,
                                   os.path.join(mnt_po, b'KEY', b'INQUEUE3.KEY')])

        def stat_json():
            out = opsupport.run([env['MAILBAG_STAT'], '--json', mnt])
            assert out.returncode == 0, out.stderr
            value = json.loads(out.stdout)
            for view in value['postoffices']:
                for lease in view['leases']:
                    if lease['waiting']:
                        return value
            return None

        snapshot = opsupport.wait_for(stat_json, 'a waiter in mailbag-stat --json')
        views = {view['postoffice']: view for view in snapshot['postoffices']}
        check(snapshot['mount'] is True, 'mailbag-stat --json: mount is true')
        check(set(views) == {'PO\u00c9', 'HUB/PO"2'}, 'postoffice names, Latin-1 read',
              repr(sorted(views)))
        lease = next(lease for lease in views['PO\u00c9']['leases']
                     if lease['kind'] == 'session' and lease['name'] == 'INQUEUE3')
        check(lease['held'] is True and lease['pid'] == holder.pid, 'the holder and its pid',
              repr(lease))
        check(lease['program'] == 'hold\u00e9', 'the holder program, Latin-1 read',
              repr(lease))
        check(lease['waiting'] == [waiter.pid], 'the waiter', repr(lease))
        records = {bag['name']: bag for bag in views['HUB/PO"2']['mailbags']}
        check(records['INQUEUE3']['live'] == 30 and records['INQUEUE3']['limit'] == 4096,
              'records of HUB/PO"2', repr(records))
        check(snapshot['stats']['acquisitions'] >= 1, 'summed counters', repr(snapshot['stats']))

        prom = opsupport.run([env['MAILBAG_STAT'], '--prometheus', mnt])
        check(prom.returncode == 0, 'mailbag-stat --prometheus', prom.stderr.decode())
        text = prom.stdout.decode()
        lint = subprocess.run([promtool, 'check', 'metrics'], input=prom.stdout,
                              capture_output=True, check=False)
        check(lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(),
              'promtool check metrics', (lint.stdout + lint.stderr).decode() + text)
        session = 'postoffice="PO\u00c9",mailbag="INQUEUE3",kind="session"'
        for line in (f'mailbagfs_lease_held{{{session}}} 1',
                     f'mailbagfs_lease_waiters{{{session}}} 1',
                     'mailbagfs_lease_held{postoffice="HUB/PO\\"2",mailbag="INQUEUE3",'
                     'kind="session"} 0',
                     'mailbagfs_mailbag_records{postoffice="HUB/PO\\"2",mailbag="INQUEUE3"} 30',
                     'mailbagfs_mailbag_records_limit{postoffice="PO\u00c9",mailbag="INQUEUE3"} '
                     '4096',
                     '# TYPE mailbagfs_acquisitions_total counter',
                     '# TYPE mailbagfs_lease_held gauge'):
            check(line in text.splitlines(), f'metric line {line}', text)
        since = re.search(r'^mailbagfs_lease_held_since_seconds\{' + re.escape(session) +
                          r'\} (\d+)$', text, re.M)
        check(since is not None, 'held since', text)
        acquired = re.search(r'^mailbagfs_acquisitions_total\{postoffice="PO\u00c9"\} (\d+)$',
                             text, re.M)
        check(acquired is not None and int(acquired.group(1)) >= 1, 'acquisitions counter', text)

        both = opsupport.run([env['MAILBAG_STAT'], '--prometheus', '--json', mnt])
        check(both.returncode == 2 and not both.stdout, '--prometheus with --json is refused')

        found = opsupport.run([env['PO_CHECK'], '--json', mnt_po])
        check(found.returncode == 1, 'po-check --json finds the lower-case name',
              found.stdout.decode(errors='replace'))
        problems = json.loads(found.stdout)
        check(isinstance(problems, list) and
              {'kind': 'lower-case-name', 'file': 'LOG/caf\u00e9'}.items() <=
              next((p for p in problems if p['kind'] == 'lower-case-name'), {}).items(),
              'po-check --json names the Latin-1 file', repr(problems))
        check(all(set(p) == {'kind', 'file', 'detail', 'fixed'} and p['fixed'] is False
                  for p in problems), 'po-check --json members', repr(problems))
        clean = opsupport.run([env['PO_CHECK'], '--json', os.path.join(mnt, 'HUB', 'PO"2')])
        check(clean.returncode == 0 and json.loads(clean.stdout) == [],
              'po-check --json of a healthy postoffice', clean.stdout.decode())
    finally:
        for child in (holder, waiter):
            if child and child.poll() is None:
                child.kill()
                child.wait()
        if daemon:
            status = daemon.stop()
            check(status == 0, 'the daemon exits 0 once unmounted', daemon.log_text())
        opsupport.unmount(mnt)
        subprocess.run(['rm', '-rf', '--one-file-system', top], check=False)
    print(f"{checks['passed']} passed, {checks['failed']} failed")
    return 1 if checks['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
