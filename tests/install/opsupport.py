"""What the operator suite's scripts share: a real mount of a private
directory, started as the service starts it, and cleaned up whatever
happens."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77  # meson's exit status for a skipped test


def need_root():
    if os.geteuid() != 0 or not os.path.exists('/dev/fuse'):
        print('SKIP: needs root and /dev/fuse')
        sys.exit(SKIP)


def need_program(name):
    path = shutil.which(name)
    if path is None:
        print(f'SKIP: {name} is not installed (tools/install-deps.sh test)')
        sys.exit(SKIP)
    return path


def mounted(path):
    """Whether a filesystem is mounted exactly at @path (mountinfo)."""
    target = os.fsencode(os.path.abspath(path))
    with open('/proc/self/mountinfo', 'rb') as info:
        for line in info:
            fields = line.split(b' ')
            point = fields[4].replace(b'\\040', b' ').replace(b'\\134', b'\\')
            if point == target:
                return True
    return False


def unmount(path):
    """Lazily unmounts @path if anything is mounted there."""
    while mounted(path):
        if subprocess.run(['fusermount3', '-u', '-z', path], check=False,
                          stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run(['umount', '-l', path], check=False, stderr=subprocess.DEVNULL)
            if mounted(path):
                break


class Daemon:
    """mailbagfs -f BACKING MNT with -o ready_fd: started() returns once
    the mount is up, no sleeping."""

    def __init__(self, program, backing, mnt, options=()):
        self.mnt = mnt
        read_end, write_end = os.pipe()
        args = [program, '-f', backing, mnt, '-o', f'ready_fd={write_end}']
        for option in options:
            args += ['-o', option]
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(args, pass_fds=(write_end,), stderr=self.log)
        os.close(write_end)
        ready = os.read(read_end, 1)
        os.close(read_end)
        if ready != b'R':
            self.process.wait()
            raise RuntimeError(f'mailbagfs did not start: {self.log_text()}')

    def log_text(self):
        self.log.seek(0)
        return self.log.read().decode(errors='replace')

    def stop(self):
        """Unmounts, as the service's ExecStop does; the exit status."""
        unmount(self.mnt)
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return -1
        return self.process.returncode



def wait_for(condition, what, seconds=30):
    """Polls @condition until it holds; fails after @seconds (a deadline
    against hanging, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'gave up waiting for {what}')
        time.sleep(0.05)


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, check=False, **kwargs)
