/* fd-util.h - close a file descriptor when it goes out of scope (glib 2.74
 * has no g_autofd), and duplicate one the only way a root daemon should:
 * close-on-exec (every descriptor the daemon makes is; pidfds are by
 * nature). */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* dup() with FD_CLOEXEC set: a descriptor, or -1 with errno. */
static inline int fd_dup(int fd)
{
        return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

static inline void fd_closep(int *fd)
{
        if (*fd >= 0) {
                int saved_errno = errno;
                close(*fd);
                errno = saved_errno;
        }
}

#define autoclose_fd __attribute__((cleanup(fd_closep)))

/* Hands the descriptor over and leaves -1 behind, like g_steal_pointer. */
static inline int fd_steal(int *fd)
{
        int stolen = *fd;
        *fd = -1;
        return stolen;
}
