#!/usr/bin/env python3
"""meson install, as an operator runs it, and the service it installs.

1. Into a scratch DESTDIR: every program, the profile, the manual pages
   and the units land where they should, the units name the installed
   programs, and each page renders.
2. For real, into the build's prefix (mount(8) gives mount.fuse3 a fixed
   PATH, so the daemon must be there): mount -t fuse.mailbagfs works;
   systemd-analyze verify accepts the units, an instance of each and the
   smbd drop-in; the commands of mailbagfs@.service run as systemd runs
   them (there is no booted systemd here): start, served, a lease event
   in the log (the journal), stop unmounts, restart serves again, a killed
   daemon leaves a dead mount that ExecStartPre clears. Everything
   installed is removed again from meson's install log. When a file of
   the install is already on the machine, part 2 is skipped rather than
   overwrite it.
"""
import errno
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

import opsupport

checks = {'passed': 0, 'failed': 0}
ENV = os.environ
SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
PROGRAMS = ['mailbagfs', 'mkpo', 'po-check', 'po-sim', 'mailbag-stat', 'po-freeze']
PAGES = ['man8/mailbagfs.8', 'man1/mailbag-stat.1', 'man8/po-check.8', 'man1/mkpo.1',
         'man1/po-sim.1', 'man8/po-freeze.8']
UNITS = ['mailbagfs@.service', 'mailbagfs-check@.service', 'mailbagfs-check@.timer',
         'mailbagfs-metrics@.service', 'mailbagfs-metrics@.timer']


def check(condition, what, detail=''):
    if os.environ.get('OP_TRACE'):
        print(f'{time.monotonic():.1f} {what}', flush=True)
    if condition:
        checks['passed'] += 1
    else:
        checks['failed'] += 1
        print(f'FAIL {what}' + (f'\n{detail}' if detail else ''), flush=True)
    return condition


def under(root, *parts):
    """PREFIX-relative option values joined as meson does."""
    path = os.path.join(ENV['PREFIX'], *parts)
    return os.path.join(root, path.lstrip('/')) if root else path


def meson_install(destdir=None):
    args = ['meson', 'install', '-C', ENV['MESON_BUILD_ROOT'], '--no-rebuild', '--quiet']
    if destdir:
        args += ['--destdir', destdir]
    run = opsupport.run(args)
    if not check(run.returncode == 0, 'meson install ' + (destdir or ''),
                 (run.stdout + run.stderr).decode()):
        raise SystemExit(1)


# --- 1. DESTDIR ------------------------------------------------------------

def check_layout(dest):
    for program in PROGRAMS:
        path = under(dest, ENV['BINDIR'], program)
        check(os.access(path, os.X_OK), f'installed program {path}')
    check(os.path.isfile(under(dest, ENV['DATADIR'], 'mailbagfs', 'msmail3.profile')),
          'the default profile in share/mailbagfs')
    if ENV['MAN_PAGES'] == 'true':
        for page in PAGES:
            path = under(dest, ENV['MANDIR'], page)
            shown = opsupport.run(['man', '-l', path], env={**ENV, 'MANWIDTH': '80'})
            name = os.path.basename(page).rsplit('.', 1)[0]
            check(shown.returncode == 0 and f'{name} - ' in shown.stdout.decode(),
                  f'man -l {path}', shown.stderr.decode())
    if ENV['SYSTEMD_UNITS'] == 'true':
        unit_dir = os.path.join(dest, ENV['SYSTEMD_UNIT_DIR'].lstrip('/'))
        for unit in UNITS:
            check(os.path.isfile(os.path.join(unit_dir, unit)), f'unit {unit}')
        service = open(os.path.join(unit_dir, 'mailbagfs@.service')).read()
        bindir = under(None, ENV['BINDIR'])
        check(f'ExecStart={bindir}/mailbagfs -f ' in service, 'ExecStart names the install',
              service)
        check('@' not in re.sub(r'mailbagfs[-\w]*@', '', service.split('[Unit]', 1)[1])
              .replace('%i', ''), 'no unconfigured @VARIABLE@ left', service)
        check(os.path.isfile(under(dest, ENV['DATADIR'], 'mailbagfs', 'systemd',
                                   'smbd-mailbagfs.conf')), 'the smbd drop-in example')


def destdir_files(dest):
    files = []
    for root, _, names in os.walk(dest):
        for name in names:
            files.append('/' + os.path.relpath(os.path.join(root, name), dest))
    return files


# --- 2. the service, run as systemd runs it ----------------------------------

def unit_settings(path):
    """[Service] settings of a unit file: name -> list of values."""
    settings = {}
    section = None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if line.startswith('['):
            section = line
            continue
        key, _, value = line.partition('=')
        settings.setdefault((section, key), []).append(value)
    return settings


def specifiers(text, instance):
    unescaped = opsupport.run(['systemd-escape', '--unescape', '--path', instance])
    path = unescaped.stdout.decode().strip()
    table = {'i': instance, 'I': path.lstrip('/'), 'f': path, '%': '%'}
    return re.sub(r'%(.)', lambda m: table[m.group(1)], text)


def command_words(line, instance, env):
    """An Exec line as systemd makes it argv: specifiers, words, then
    $VAR (split at whitespace, a word alone) and ${VAR} (in a word)."""
    ignore = line.startswith('-')
    words = []
    for word in shlex.split(specifiers(line.lstrip('-'), instance)):
        alone = re.fullmatch(r'\$([A-Za-z_][A-Za-z0-9_]*)', word)
        if alone:
            words += env.get(alone.group(1), '').split()
            continue
        word = re.sub(r'\$\{([A-Za-z_][A-Za-z0-9_]*)\}', lambda m: env.get(m.group(1), ''),
                      word)
        words.append(word.replace('$$', '$'))
    return ignore, words


class Service:
    """The commands of mailbagfs@INSTANCE.service, in systemd's order."""

    def __init__(self, unit, instance, journal):
        self.settings = unit_settings(unit)
        self.instance = instance
        self.journal = journal
        self.main = None
        self.env = {'PATH': SYSTEMD_PATH}
        # Only so that a sanitizer build of the tree can run here.
        for name in ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS'):
            if name in ENV:
                self.env[name] = ENV[name]
        for value in self.settings.get(('[Service]', 'Environment'), []):
            for assignment in shlex.split(specifiers(value, instance)):
                key, _, val = assignment.partition('=')
                self.env[key] = val
        for value in self.settings.get(('[Service]', 'EnvironmentFile'), []):
            path = specifiers(value.lstrip('-'), instance)
            if os.path.exists(path):
                for line in open(path):
                    line = line.strip()
                    if line and not line.startswith('#'):
                        key, _, val = line.partition('=')
                        self.env[key] = val.strip('"')

    def setting(self, key):
        return self.settings.get(('[Service]', key), [])

    def run_each(self, key, extra_env=None):
        for line in self.setting(key):
            ignore, argv = command_words(line, self.instance, {**self.env, **(extra_env or {})})
            run = subprocess.run(argv, env={**self.env, **(extra_env or {})},
                                 stdout=self.journal, stderr=self.journal, timeout=60,
                                 check=False)
            if run.returncode != 0 and not ignore:
                return False
        return True

    def start(self, with_pre=True):
        """True when the unit would become active."""
        if with_pre and not self.run_each('ExecStartPre'):
            return False
        (line,) = self.setting('ExecStart')
        _, argv = command_words(line, self.instance, self.env)
        self.main = subprocess.Popen(argv, env=self.env, stdout=self.journal,
                                     stderr=self.journal)
        # ExecStartPost runs while the daemon starts; a daemon that exits
        # meanwhile fails the start at once, as systemd fails it.
        for line in self.setting('ExecStartPost'):
            ignore, argv = command_words(line, self.instance, self.env)
            post = subprocess.Popen(argv, env=self.env, stdout=self.journal,
                                    stderr=self.journal)
            opsupport.wait_for(lambda: post.poll() is not None or self.main.poll() is not None,
                               'ExecStartPost or the daemon to end', 60)
            if post.poll() is None:
                post.kill()
                post.wait()
                self.kill()
                return False
            if post.returncode != 0 and not ignore:
                self.kill()
                return False
        return self.main.poll() is None

    def stop(self):
        """The main process's exit status after ExecStop (then SIGTERM).
        The main process is reaped while ExecStop runs, as systemd reaps
        it: ExecStop waits for it to be gone."""
        extra = {'MAINPID': str(self.main.pid)}
        env = {**self.env, **extra}
        for line in self.setting('ExecStop'):
            _, argv = command_words(line, self.instance, env)
            stop = subprocess.Popen(argv, env=env, stdout=self.journal, stderr=self.journal)
            opsupport.wait_for(lambda: self.main.poll() is not None and stop.poll() is not None,
                               'ExecStop and the daemon to end', 30)
        if self.main.poll() is None:
            self.main.terminate()
        return self.main.wait()

    def kill(self):
        if self.main and self.main.poll() is None:
            self.main.kill()
            self.main.wait()


def stat_error(path):
    try:
        os.stat(path)
        return 0
    except OSError as error:
        return error.errno


def journal_text(journal):
    journal.flush()
    journal.seek(0)
    return journal.read().decode(errors='replace')


def served(mailbag_stat, mountpoint):
    run = opsupport.run([mailbag_stat, mountpoint])
    return run.returncode == 0 and b'Postoffice . (the mount root)' in run.stdout


def daemons_of(mountpoint):
    """Pids of processes whose command line names @mountpoint."""
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            cmdline = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')
        except OSError:
            continue
        if os.fsencode(mountpoint) in cmdline and int(pid) != os.getpid():
            pids.append(int(pid))
    return pids


def check_mount_helper(bindir, top):
    backing = os.path.join(top, 'fstab-po')
    subprocess.run([os.path.join(bindir, 'mkpo'), backing], check=True,
                   stdout=subprocess.DEVNULL)
    run = opsupport.run(['mount', '-t', 'fuse.mailbagfs', backing, backing,
                         '-o', 'allow_other'], env={**ENV, 'PATH': SYSTEMD_PATH})
    if check(run.returncode == 0, 'mount -t fuse.mailbagfs', run.stderr.decode()):
        check(served(os.path.join(bindir, 'mailbag-stat'), backing),
              'the mount(8) mount is served')
        check(opsupport.run(['umount', backing]).returncode == 0, 'umount')
        opsupport.wait_for(lambda: not daemons_of(backing), 'the detached daemon to exit')
        check(not opsupport.mounted(backing), 'unmounted after umount')
    opsupport.unmount(backing)
    for pid in daemons_of(backing):
        os.kill(pid, signal.SIGKILL)


def check_verify(unit_dir, datadir, instance, top):
    units = [f'mailbagfs@{instance}.service', f'mailbagfs-check@{instance}.service',
             f'mailbagfs-check@{instance}.timer', f'mailbagfs-metrics@{instance}.service',
             f'mailbagfs-metrics@{instance}.timer']
    # The smbd drop-in, edited to this instance as a site does.
    extra = os.path.join(top, 'units')
    os.makedirs(os.path.join(extra, 'smbd.service.d'))
    dropin = open(os.path.join(datadir, 'mailbagfs', 'systemd', 'smbd-mailbagfs.conf')).read()
    with open(os.path.join(extra, 'smbd.service.d', 'mailbagfs.conf'), 'w') as out:
        out.write(dropin.replace('srv-postoffice', instance))
    if os.path.exists('/lib/systemd/system/smbd.service'):
        units.append('smbd.service')
    env = {**ENV, 'SYSTEMD_UNIT_PATH': f'{extra}:{unit_dir}:'}
    run = opsupport.run(['systemd-analyze', 'verify'] + units, env=env)
    check(run.returncode == 0 and not run.stderr.strip(), 'systemd-analyze verify ' +
          ' '.join(units), (run.stdout + run.stderr).decode())
    print(f'verified {len(units)} units' + (' (smbd with the drop-in)' if 'smbd.service' in units
                                             else ''))


def check_service(unit_dir, bindir, sysconfdir, top, created):
    mountpoint = os.path.join(top, 'po')
    subprocess.run([os.path.join(bindir, 'mkpo'), mountpoint], check=True,
                   stdout=subprocess.DEVNULL)
    instance = opsupport.run(['systemd-escape', '--path', mountpoint]).stdout.decode().strip()
    check_verify(unit_dir, under(None, ENV['DATADIR']), instance, top)
    # The instance's settings, as a site writes them: a short lock_timeout
    # makes a wait end, so that a lease event reaches the log.
    conf_dir = os.path.join(sysconfdir, 'mailbagfs')
    if not os.path.isdir(conf_dir):
        os.makedirs(conf_dir)
        created.append(conf_dir)
    conf = os.path.join(conf_dir, instance + '.conf')
    with open(conf, 'w') as out:
        out.write('MAILBAGFS_OPTIONS=allow_other,lock_timeout=0.2\n')
    created.append(conf)

    unit = os.path.join(unit_dir, 'mailbagfs@.service')
    settings = unit_settings(unit)
    check(settings.get(('[Service]', 'Restart')) == ['on-failure'], 'Restart=on-failure')
    check(f'-/bin/fusermount3 -u -z %f' in settings.get(('[Service]', 'ExecStartPre'), []),
          'ExecStartPre clears a dead mount')
    mailbag_stat = os.path.join(bindir, 'mailbag-stat')
    journal = tempfile.TemporaryFile()
    service = Service(unit, instance, journal)
    holder = None
    try:
        check(service.start(), 'start', journal_text(journal))
        check(served(mailbag_stat, mountpoint), 'served after start')
        check(b'allow_other' in open('/proc/self/mountinfo', 'rb').read(),
              'the options of the instance file reach the daemon')
        # This process holds the session (an External's .0LK); another
        # process's gateway open waits for lock_timeout and gives up.
        holder = open(os.path.join(mountpoint, 'P1', 'INQUEUE3.0LK'), 'a')
        waiter = opsupport.run([sys.executable, '-c',
                                'import os,sys; os.open(sys.argv[1], os.O_RDONLY)',
                                os.path.join(mountpoint, 'KEY', 'INQUEUE3.KEY')])
        check(waiter.returncode != 0 and b'Device or resource busy' in waiter.stderr,
              'a wait ends after lock_timeout', waiter.stderr.decode())
        event = [line for line in journal_text(journal).splitlines() if 'gave up on' in line]
        check(len(event) == 1 and 'session INQUEUE3' in event[0] and
              f'held by pid {os.getpid()} (python3' in event[0] and
              re.search(r': pid \d+ \(python3, queue-read\)', event[0]) is not None,
              'the lease event names kind, mailbag, pids and programs',
              journal_text(journal))
        holder.close()
        holder = None

        check(service.stop() == 0, 'a stop exits 0', journal_text(journal))
        check(not opsupport.mounted(mountpoint), 'a stop unmounts')
        check(service.start(), 'start again (systemctl restart)', journal_text(journal))
        check(served(mailbag_stat, mountpoint), 'served after the restart')

        # A crash: the dead mount stays, a plain start refuses it with the
        # command to run, and the unit's ExecStartPre clears it.
        service.main.send_signal(signal.SIGKILL)
        service.main.wait()
        check(opsupport.mounted(mountpoint), 'a killed daemon leaves a dead mount')
        # The kernel answers stat() from its cache for cache_timeout (1 s)
        # after the daemon died; RestartSec=2 waits longer than that.
        opsupport.wait_for(lambda: stat_error(mountpoint) == errno.ENOTCONN,
                           'the dead mount to answer ENOTCONN', 10)
        mark = len(journal_text(journal))
        check(not service.start(with_pre=False), 'a start over the dead mount fails')
        said = journal_text(journal)[mark:]
        check(f"run 'fusermount3 -u -z {mountpoint}'" in said, 'and says what to run', said)
        check(service.start(), 'start with ExecStartPre (Restart=on-failure)',
              journal_text(journal))
        check(served(mailbag_stat, mountpoint), 'served after the crash')
        check(service.stop() == 0, 'the last stop exits 0', journal_text(journal))
        check(not opsupport.mounted(mountpoint), 'unmounted at the end')
    finally:
        if holder:
            holder.close()
        service.kill()
        opsupport.unmount(mountpoint)


def uninstall(log, created):
    """Removes what meson's install log lists, then the folders the
    install made."""
    for line in open(log):
        path = line.strip()
        if not path or path.startswith('#'):
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            created.append(path)  # meson logs the folders it made, too
        elif os.path.lexists(path):
            os.unlink(path)
    for path in sorted(created, key=len, reverse=True):
        if os.path.isdir(path) and not os.path.islink(path):
            try:
                os.rmdir(path)  # only when empty: nothing of anyone else
            except OSError:
                pass
        elif os.path.lexists(path):
            os.unlink(path)


def main():
    top = tempfile.mkdtemp(prefix='mailbagfs-install-')
    try:
        dest = os.path.join(top, 'dest')
        meson_install(dest)
        check_layout(dest)
        files = destdir_files(dest)
        print(f'DESTDIR install: {len(files)} files', flush=True)
        present = [path for path in files if os.path.lexists(path)]
        if os.geteuid() != 0 or not os.path.exists('/dev/fuse'):
            print('SKIP the real install: needs root and /dev/fuse')
            return finish(skipped=True)
        if present:
            print(f'SKIP the real install: {present[0]} (and {len(present) - 1} more) '
                  'already installed; not overwritten')
            return finish(skipped=True)
        for program in ('systemd-analyze', 'systemd-escape', 'fusermount3', 'mount'):
            opsupport.need_program(program)

        # Folders the install will make, to remove them again.
        created = []
        for path in files:
            parent = os.path.dirname(path)
            while not os.path.exists(parent) and parent not in created:
                created.append(parent)
                parent = os.path.dirname(parent)
        try:
            meson_install()
            log = os.path.join(ENV['MESON_BUILD_ROOT'], 'meson-logs', 'install-log.txt')
            bindir = under(None, ENV['BINDIR'])
            if ENV['MAN_PAGES'] == 'true':
                shown = opsupport.run(['man', '8', 'mailbagfs'],
                                      env={**ENV, 'MANWIDTH': '80', 'MANPAGER': 'cat'})
                check(b'mailbagfs - serve' in shown.stdout, 'man 8 mailbagfs finds the page',
                      shown.stderr.decode())
            check_mount_helper(bindir, top)
            if ENV['SYSTEMD_UNITS'] == 'true':
                check_service(ENV['SYSTEMD_UNIT_DIR'], bindir, under(None, ENV['SYSCONFDIR']),
                              top, created)
        finally:
            uninstall(log, created)
            left = [path for path in files + created if os.path.lexists(path)]
            check(not left, 'everything installed is removed again', repr(left))
    finally:
        subprocess.run(['rm', '-rf', '--one-file-system', top], check=False)
    return finish()


def finish(skipped=False):
    print(f"{checks['passed']} passed, {checks['failed']} failed" +
          (', 1 skipped' if skipped else ''))
    if checks['failed']:
        return 1
    return opsupport.SKIP if skipped else 0


if __name__ == '__main__':
    sys.exit(main())
