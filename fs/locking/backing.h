/* backing.h - the real postoffice share under the mount.
 *
 * Every access is relative to one directory descriptor opened at start and
 * resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a symlink in
 * the backing tree is served as a symlink, never followed by the daemon, and
 * no path can lead outside the backing directory. Paths are relative, '/'
 * separated; "" is the backing root itself.
 */
#pragma once

#include <dirent.h>

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct {
        int root_fd; /* O_PATH directory; immutable once opened */
        /* A local filesystem (tmpfs, ext2-4, xfs, btrfs): closing one of
         * several descriptors writes nothing back and reports nothing, and
         * its page cache is the file's (no other node writes past it).
         * False for NFS, CIFS, FUSE and any other type. Set at open,
         * immutable. */
        bool local;
        dev_t dev; /* the root's filesystem; immutable */
} Backing;

/* Opens @path as the backing root; -errno on failure. */
int backing_open(Backing *backing, const char *path);
void backing_close(Backing *backing);

/* Whether a file on filesystem @dev is on the root's own filesystem and
 * that one is local (Backing.local): a filesystem mounted under the root
 * (a cluster client's, NFS) is not, whatever the root is. */
bool backing_file_is_local(const Backing *backing, dev_t dev);

/* openat2 beneath the root without following symlinks; returns a new fd or
 * -errno. With O_PATH|O_NOFOLLOW a trailing symlink is opened itself. */
int backing_openat(const Backing *backing, const char *relpath, int flags, mode_t mode);

/* An O_PATH descriptor of the directory @relpath (for the *at calls). */
int backing_open_dir(const Backing *backing, const char *relpath);

/* An O_PATH|O_NOFOLLOW descriptor of @relpath, whatever its type. */
int backing_open_node(const Backing *backing, const char *relpath);

/* "/proc/self/fd/N": the way to reach an O_PATH descriptor with calls that
 * take no descriptor (xattrs, link, reopening). It is a magic link to the
 * descriptor's inode, not a name: resolving it lands on that inode even
 * if it is a symlink, whose target is then not followed (unlike a
 * "/proc/self/fd/<dir>/<name>" path, which looks the name up again). */
#define BACKING_FD_PATH_MAX 32
void backing_fd_path(int fd, char buf[BACKING_FD_PATH_MAX]);

/* Changes to the file behind @fd, an O_PATH (or open) descriptor whose
 * attributes are @st; none of them looks a name up, so they act on the
 * file that was checked, whatever its name holds now. 0 or -errno. */
int backing_fd_chmod(int fd, const struct stat *st, mode_t mode);
int backing_fd_chown(int fd, uid_t uid, gid_t gid);
int backing_fd_utimens(int fd, const struct timespec times[2]);
int backing_fd_truncate(int fd, const struct stat *st, off_t size);

/* A directory stream over @fd, which it takes over (and closes on
 * failure); NULL on failure. */
DIR *backing_fdopendir(int fd);
