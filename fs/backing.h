/* backing.h - the real postoffice share under the mount.
 *
 * Every access is relative to one directory descriptor opened at start and
 * resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a symlink in
 * the backing tree is served as a symlink, never followed by the daemon, and
 * no path can lead outside the backing directory. Paths are relative, '/'
 * separated; "" is the backing root itself.
 */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct {
        int root_fd; /* O_PATH directory; immutable once opened */
} Backing;

/* Opens @path as the backing root; -errno on failure. */
int backing_open(Backing *backing, const char *path);
void backing_close(Backing *backing);

/* openat2 beneath the root without following symlinks; returns a new fd or
 * -errno. With O_PATH|O_NOFOLLOW a trailing symlink is opened itself. */
int backing_openat(const Backing *backing, const char *relpath, int flags, mode_t mode);

/* An O_PATH descriptor of the directory @relpath (for the *at calls). */
int backing_open_dir(const Backing *backing, const char *relpath);

/* An O_PATH|O_NOFOLLOW descriptor of @relpath, whatever its type. */
int backing_open_node(const Backing *backing, const char *relpath);

/* "/proc/self/fd/N": the way to reach an O_PATH descriptor with calls that
 * take no descriptor (xattrs, chmod, truncate). */
#define BACKING_FD_PATH_MAX 32
void backing_fd_path(int fd, char buf[BACKING_FD_PATH_MAX]);
