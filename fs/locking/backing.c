/* backing.c - descriptor-relative access to the backing directory. */
#include "backing.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fd-util.h"

/* Linux 6.6; the number is the same on every architecture but alpha.
 * glibc 2.36 has neither the constant nor a wrapper. */
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/* The local filesystems of Backing.local: no flush method in the kernel
 * (a duplicate closed on a client's close would be a system call for
 * nothing), and one page cache for every process on the machine. Any
 * other type is assumed to write back or report errors at close, and to
 * keep pages another node may have made stale. */
static bool backing_is_local(int fd)
{
        static const long local[] = {
                TMPFS_MAGIC, EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC, BTRFS_SUPER_MAGIC,
        };
        struct statfs sfs;
        if (fstatfs(fd, &sfs) < 0)
                return false;
        for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
                if ((long)sfs.f_type == local[i])
                        return true;
        return false;
}

int backing_open(Backing *backing, const char *path)
{
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int error = -errno;
                close(fd);
                return error;
        }
        backing->root_fd = fd;
        backing->dev = st.st_dev;
        backing->local = backing_is_local(fd);
        return 0;
}

bool backing_file_is_local(const Backing *backing, dev_t dev)
{
        return backing->local && dev == backing->dev;
}

void backing_close(Backing *backing)
{
        if (backing->root_fd >= 0)
                close(backing->root_fd);
        backing->root_fd = -1;
}

int backing_openat(const Backing *backing, const char *relpath, int flags, mode_t mode)
{
        struct open_how how = {
                .flags = (unsigned)flags | O_CLOEXEC,
                .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        /* glibc 2.36 has no openat2 wrapper. */
        long fd = syscall(SYS_openat2, backing->root_fd, relpath[0] ? relpath : ".",
                          &how, sizeof(how));
        return fd < 0 ? -errno : (int)fd;
}

int backing_open_dir(const Backing *backing, const char *relpath)
{
        return backing_openat(backing, relpath, O_PATH | O_DIRECTORY, 0);
}

int backing_open_node(const Backing *backing, const char *relpath)
{
        return backing_openat(backing, relpath, O_PATH | O_NOFOLLOW, 0);
}

void backing_fd_path(int fd, char buf[BACKING_FD_PATH_MAX])
{
        snprintf(buf, BACKING_FD_PATH_MAX, "/proc/self/fd/%d", fd);
}

int backing_fd_chmod(int fd, const struct stat *st, mode_t mode)
{
        if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0)
                return 0;
        if (errno != ENOSYS)
                return -errno;
        /* Before Linux 6.6 chmod() of the magic link does the same, except
         * that some filesystems then change a symlink's own mode, which
         * fchmodat2 refuses: refuse it here too. */
        if (S_ISLNK(st->st_mode))
                return -EOPNOTSUPP;
        char path[BACKING_FD_PATH_MAX];
        backing_fd_path(fd, path);
        return chmod(path, mode) < 0 ? -errno : 0;
}

int backing_fd_chown(int fd, uid_t uid, gid_t gid)
{
        /* With AT_EMPTY_PATH a symlink's own owner changes, as lchown. */
        return fchownat(fd, "", uid, gid, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

int backing_fd_utimens(int fd, const struct timespec times[2])
{
        /* futimens() (a NULL name) refuses O_PATH descriptors; "" with
         * AT_EMPTY_PATH takes them, symlinks included (Linux 5.8). */
        return utimensat(fd, "", times, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

int backing_fd_truncate(int fd, const struct stat *st, off_t size)
{
        /* What truncate(2) answers for the other types. Only a regular
         * file is reopened: opening a FIFO or a device has effects of its
         * own, and a symlink cannot be opened. */
        if (S_ISDIR(st->st_mode))
                return -EISDIR;
        if (!S_ISREG(st->st_mode))
                return -EINVAL;
        char path[BACKING_FD_PATH_MAX];
        backing_fd_path(fd, path);
        autoclose_fd int writable = open(path, O_WRONLY | O_CLOEXEC);
        if (writable < 0)
                return -errno;
        return ftruncate(writable, size) < 0 ? -errno : 0;
}

DIR *backing_fdopendir(int fd)
{
        if (fd < 0)
                return NULL;
        DIR *dir = fdopendir(fd);
        if (!dir)
                close(fd);
        return dir;
}
