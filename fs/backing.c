/* backing.c - descriptor-relative access to the backing directory. */
#include "backing.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int backing_open(Backing *backing, const char *path)
{
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        backing->root_fd = fd;
        return 0;
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
