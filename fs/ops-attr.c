/* ops-attr.c - attributes: stat, setattr, readlink, statfs and extended
 * attributes. Names under "user.mailbag." belong to the daemon's virtual
 * attributes (xattr-view.c): they are never stored on, nor shown from, the
 * backing store. */
#include "ops.h"

#include "xattr-view.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>


void ops_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        Mailbagfs *fs = ops_fs(req);
        struct stat st;

        if (fi) {
                if (fstat(ops_open_file(fi)->fd, &st) < 0) {
                        ops_reply_status(req, "getattr", -errno);
                        return;
                }
        } else {
                autoclose_fd int fd = ops_node_open(fs, ino, &st);
                if (fd < 0) {
                        ops_reply_status(req, "getattr", fd);
                        return;
                }
        }
        fuse_reply_attr(req, &st, fs->attr_timeout);
}

static struct timespec setattr_time(const struct stat *attr, int to_set, int set_bit,
                                    int now_bit, bool mtime)
{
        if (to_set & now_bit)
                return (struct timespec){.tv_nsec = UTIME_NOW};
        if (to_set & set_bit)
                return mtime ? attr->st_mtim : attr->st_atim;
        return (struct timespec){.tv_nsec = UTIME_OMIT};
}

/* Applies @attr to the node reached by @fd (an open file) or, without one,
 * by @proc_path (which does not follow a symlink). */
static int setattr_apply(int fd, const char *proc_path, const struct stat *attr, int to_set)
{
        if (to_set & FUSE_SET_ATTR_MODE) {
                int r = fd >= 0 ? fchmod(fd, attr->st_mode) : chmod(proc_path, attr->st_mode);
                if (r < 0)
                        return -errno;
        }
        if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
                uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
                gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
                int r = fd >= 0 ? fchown(fd, uid, gid) : lchown(proc_path, uid, gid);
                if (r < 0)
                        return -errno;
        }
        if (to_set & FUSE_SET_ATTR_SIZE) {
                int r = fd >= 0 ? ftruncate(fd, attr->st_size) : truncate(proc_path, attr->st_size);
                if (r < 0)
                        return -errno;
        }
        if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
                struct timespec times[2] = {
                        setattr_time(attr, to_set, FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW, false),
                        setattr_time(attr, to_set, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW, true),
                };
                int r = fd >= 0 ? futimens(fd, times)
                                : utimensat(AT_FDCWD, proc_path, times, AT_SYMLINK_NOFOLLOW);
                if (r < 0)
                        return -errno;
        }
        return 0;
}

void ops_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                 struct fuse_file_info *fi)
{
        Mailbagfs *fs = ops_fs(req);
        autoclose_fd int dirfd = -1;
        autoclose_fd int unlinked_fd = -1;
        g_autofree char *proc_path = NULL;
        struct stat st;
        int r = 0;

        if (!fi) {
                proc_path = ops_node_proc_path(fs, ino, &dirfd, &r);
                /* An unlinked file still open (fchmod after unlink) has no
                 * path: reach it through one of its descriptors. */
                if (!proc_path && r == -ENOENT)
                        r = unlinked_fd = inode_table_dup_open_file(fs->inodes, ino);
        }

        int fd = fi ? ops_open_file(fi)->fd : unlinked_fd;
        if (r >= 0 && fd >= 0) {
                r = setattr_apply(fd, NULL, attr, to_set);
                if (r == 0 && fstat(fd, &st) < 0)
                        r = -errno;
        } else if (r >= 0) {
                if (fstatat(AT_FDCWD, proc_path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        r = -errno;
                if (r == 0)
                        r = ops_node_verify(fs, ino, &st);
                if (r == 0)
                        r = setattr_apply(-1, proc_path, attr, to_set);
                if (r == 0 && fstatat(AT_FDCWD, proc_path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        r = -errno;
        }
        if (r < 0) {
                ops_reply_status(req, "setattr", r);
                return;
        }
        fuse_reply_attr(req, &st, fs->attr_timeout);
}

void ops_readlink(fuse_req_t req, fuse_ino_t ino)
{
        struct stat st;
        autoclose_fd int fd = ops_node_open(ops_fs(req), ino, &st);
        if (fd < 0) {
                ops_reply_status(req, "readlink", fd);
                return;
        }
        char target[PATH_MAX + 1];
        ssize_t len = readlinkat(fd, "", target, sizeof(target));
        if (len < 0) {
                ops_reply_status(req, "readlink", -errno);
                return;
        }
        if (len >= (ssize_t)sizeof(target)) {
                ops_reply_status(req, "readlink", -ENAMETOOLONG);
                return;
        }
        target[len] = '\0';
        fuse_reply_readlink(req, target);
}

void ops_statfs(fuse_req_t req, fuse_ino_t ino)
{
        struct statvfs st;
        if (fstatvfs(ops_fs(req)->backing.root_fd, &st) < 0) {
                ops_reply_status(req, "statfs", -errno);
                return;
        }
        fuse_reply_statfs(req, &st);
}

/* Extended attributes go through "/proc/self/fd/<dir>/<name>" with the
 * l*xattr calls, so a symlink's own attributes are read, not its target's. */

void ops_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                  size_t size, int flags)
{
        if (xattr_view_reserved(name)) {
                int error = 0;
                g_autofree char *relpath = ops_node_path(ops_fs(req), ino, &error);
                int r = relpath ? xattr_view_set(&ops_fs(req)->mailbags, relpath, name, value, size,
                                                 fuse_req_ctx(req)->uid)
                                : error;
                ops_reply_status(req, "setxattr", r);
                return;
        }
        autoclose_fd int dirfd = -1;
        int error = 0;
        g_autofree char *path = ops_node_proc_path(ops_fs(req), ino, &dirfd, &error);
        if (!path) {
                ops_reply_status(req, "setxattr", error);
                return;
        }
        int r = lsetxattr(path, name, value, size, flags) < 0 ? -errno : 0;
        ops_reply_status(req, "setxattr", r);
}

static void getxattr_virtual(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
        int r = 0;
        g_autofree char *relpath = ops_node_path(ops_fs(req), ino, &r);
        g_autofree char *value = NULL;
        if (relpath) {
                /* Values that read files are checked against the caller's
                 * own groups, as the kernel would check a read. */
                const struct fuse_ctx *ctx = fuse_req_ctx(req);
                gid_t groups[64];
                int n_groups = fuse_req_getgroups(req, G_N_ELEMENTS(groups), groups);
                XattrViewCaller caller = {
                        .uid = ctx->uid,
                        .gid = ctx->gid,
                        .groups = groups,
                        .n_groups = CLAMP(n_groups, 0, (int)G_N_ELEMENTS(groups)),
                };
                r = xattr_view_get(&ops_fs(req)->mailbags, relpath, name, &caller, &value);
        }
        if (r < 0) {
                ops_reply_status(req, "getxattr", r);
                return;
        }
        size_t len = strlen(value);
        if (size == 0)
                fuse_reply_xattr(req, len);
        else if (len > size)
                ops_reply_status(req, "getxattr", -ERANGE);
        else
                fuse_reply_buf(req, value, len);
}

void ops_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
        if (xattr_view_reserved(name)) {
                getxattr_virtual(req, ino, name, size);
                return;
        }
        autoclose_fd int dirfd = -1;
        int error = 0;
        g_autofree char *path = ops_node_proc_path(ops_fs(req), ino, &dirfd, &error);
        if (!path) {
                ops_reply_status(req, "getxattr", error);
                return;
        }
        g_autofree char *value = size ? g_malloc(size) : NULL;
        ssize_t len = lgetxattr(path, name, value, size);
        if (len < 0)
                ops_reply_status(req, "getxattr", -errno);
        else if (size == 0)
                fuse_reply_xattr(req, (size_t)len);
        else
                fuse_reply_buf(req, value, (size_t)len);
}

/* Removes reserved names from a NUL-separated list in place; returns the
 * new length. */
static size_t xattr_list_filter(char *list, size_t len)
{
        size_t out = 0;
        for (size_t at = 0; at < len;) {
                size_t entry_len = strnlen(list + at, len - at) + 1;
                if (!xattr_view_reserved(list + at)) {
                        memmove(list + out, list + at, entry_len);
                        out += entry_len;
                }
                at += entry_len;
        }
        return out;
}

void ops_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        autoclose_fd int dirfd = -1;
        int error = 0;
        g_autofree char *path = ops_node_proc_path(ops_fs(req), ino, &dirfd, &error);
        if (!path) {
                ops_reply_status(req, "listxattr", error);
                return;
        }
        /* The list is filtered, so fetch all of it even when the client
         * only asks for the size. */
        ssize_t len = llistxattr(path, NULL, 0);
        if (len < 0) {
                ops_reply_status(req, "listxattr", -errno);
                return;
        }
        g_autofree char *list = g_malloc(len ? (size_t)len : 1);
        len = llistxattr(path, list, (size_t)len);
        if (len < 0) {
                ops_reply_status(req, "listxattr", -errno);
                return;
        }
        size_t filtered = xattr_list_filter(list, (size_t)len);
        g_autoptr(GString) names = g_string_new_len(list, (gssize)filtered);
        g_autofree char *relpath = ops_node_path(ops_fs(req), ino, &error);
        if (relpath)
                xattr_view_list(&ops_fs(req)->mailbags, relpath, names);
        if (size == 0)
                fuse_reply_xattr(req, names->len);
        else if (names->len > size)
                ops_reply_status(req, "listxattr", -ERANGE);
        else
                fuse_reply_buf(req, names->str, names->len);
}

void ops_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
        if (xattr_view_reserved(name)) {
                ops_reply_status(req, "removexattr", -EPERM);
                return;
        }
        autoclose_fd int dirfd = -1;
        int error = 0;
        g_autofree char *path = ops_node_proc_path(ops_fs(req), ino, &dirfd, &error);
        if (!path) {
                ops_reply_status(req, "removexattr", error);
                return;
        }
        int r = lremovexattr(path, name) < 0 ? -errno : 0;
        ops_reply_status(req, "removexattr", r);
}
