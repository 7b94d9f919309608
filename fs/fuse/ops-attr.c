/* ops-attr.c - attributes: stat, setattr, readlink, statfs and extended
 * attributes. Names under "user.mailbag." belong to the daemon's virtual
 * attributes (xattr-view.c): they are never stored on, nor shown from, the
 * backing store. */
#include "ops.h"

#include "caller.h"
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


/* How long an attribute request waits for the kernel to count a removal
 * the daemon answered (inode_table_removals_wait): it takes the kernel
 * microseconds unless another request holds the folder. */
#define OPS_REMOVAL_SETTLE_US (200 * 1000)

void ops_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        Mailbagfs *fs = ops_fs(req);
        struct stat st;

        inode_table_removals_wait(fs->inodes, ino, OPS_REMOVAL_SETTLE_US);
        if (fi) {
                int r = ops_file_stat(fs, ino, ops_open_file(fi)->fd, &st);
                if (r < 0) {
                        ops_reply_status(req, OPS_GETATTR, r);
                        return;
                }
        } else {
                int r = ops_node_stat(fs, ino, &st);
                if (r < 0) {
                        ops_reply_status(req, OPS_GETATTR, r);
                        return;
                }
        }
        fuse_reply_attr(req, &st, ops_attr_timeout(fs, ino));
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

/* Applies @attr to the node behind @fd: the client's open file when
 * @opened, otherwise the node's checked O_PATH descriptor, whose
 * attributes are @st. No name is looked up on the way. */
static int setattr_apply(int fd, bool opened, const struct stat *st, const struct stat *attr,
                         int to_set)
{
        int r = 0;
        if (to_set & FUSE_SET_ATTR_MODE) {
                r = opened ? (fchmod(fd, attr->st_mode) < 0 ? -errno : 0)
                           : backing_fd_chmod(fd, st, attr->st_mode);
                if (r < 0)
                        return r;
        }
        if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
                uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
                gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
                r = opened ? (fchown(fd, uid, gid) < 0 ? -errno : 0)
                           : backing_fd_chown(fd, uid, gid);
                if (r < 0)
                        return r;
        }
        if (to_set & FUSE_SET_ATTR_SIZE) {
                r = opened ? (ftruncate(fd, attr->st_size) < 0 ? -errno : 0)
                           : backing_fd_truncate(fd, st, attr->st_size);
                if (r < 0)
                        return r;
        }
        if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
                struct timespec times[2] = {
                        setattr_time(attr, to_set, FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW, false),
                        setattr_time(attr, to_set, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW, true),
                };
                r = opened ? (futimens(fd, times) < 0 ? -errno : 0)
                           : backing_fd_utimens(fd, times);
        }
        return r;
}

void ops_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                 struct fuse_file_info *fi)
{
        Mailbagfs *fs = ops_fs(req);
        struct stat st = {0};
        /* Without an open file, the node's own descriptor, checked to be
         * the node: a name could be swapped for a symlink between a check
         * and a chmod() or truncate() by name. A file server sets times
         * and attributes of the file it just made or asked about: the
         * node cache's descriptor serves. */
        autorelease_node NodeRef node = {.fd = -1};
        if (!fi) {
                node = ops_node_ref(fs, ino);
                int r = node.fd < 0 ? node.fd : fstat(node.fd, &st) < 0 ? -errno : 0;
                if (r < 0) {
                        ops_reply_status(req, OPS_SETATTR, r);
                        return;
                }
        }
        int fd = fi ? ops_open_file(fi)->fd : node.fd;
        bool mode = (to_set & FUSE_SET_ATTR_MODE) != 0;
        if (mode)
                g_mutex_lock(&fs->privileges_lock);
        int r = setattr_apply(fd, fi != NULL, &st, attr, to_set);
        /* Counted once made and before the answer: any write that starts
         * after the chmod returned looks at the file again. */
        if (mode && (attr->st_mode & (S_ISUID | S_ISGID)))
                atomic_fetch_add(&fs->privileges_given, 1);
        if (mode)
                g_mutex_unlock(&fs->privileges_lock);
        if (r == 0)
                r = ops_file_stat(fs, ino, fd, &st);
        if (r < 0) {
                ops_reply_status(req, OPS_SETATTR, r);
                return;
        }
        fuse_reply_attr(req, &st, ops_attr_timeout(fs, ino));
}

void ops_readlink(fuse_req_t req, fuse_ino_t ino)
{
        struct stat st;
        autoclose_fd int fd = ops_node_open(ops_fs(req), ino, &st);
        if (fd < 0) {
                ops_reply_status(req, OPS_READLINK, fd);
                return;
        }
        char target[PATH_MAX + 1];
        ssize_t len = readlinkat(fd, "", target, sizeof(target));
        if (len < 0) {
                ops_reply_status(req, OPS_READLINK, -errno);
                return;
        }
        if (len >= (ssize_t)sizeof(target)) {
                ops_reply_status(req, OPS_READLINK, -ENAMETOOLONG);
                return;
        }
        target[len] = '\0';
        fuse_reply_readlink(req, target);
}

void ops_statfs(fuse_req_t req, fuse_ino_t ino)
{
        struct statvfs st;
        if (fstatvfs(ops_fs(req)->backing.root_fd, &st) < 0) {
                ops_reply_status(req, OPS_STATFS, -errno);
                return;
        }
        fuse_reply_statfs(req, &st);
}

/* Extended attributes go through "/proc/self/fd/N" of the node's checked
 * O_PATH descriptor (the f*xattr calls refuse O_PATH descriptors). The
 * calls that follow links are the right ones here: they follow the magic
 * link to the node itself and stop there, so a symlink node gets its own
 * attributes, as with l*xattr on a local file, never its target's. */

/* The node's checked descriptor (the node cache's while fresh: a file
 * server asks a file for several attributes in a row) and its /proc path
 * in @path; .fd is -errno on failure. */
static NodeRef xattr_node_open(fuse_req_t req, fuse_ino_t ino, char path[BACKING_FD_PATH_MAX])
{
        NodeRef node = ops_node_ref(ops_fs(req), ino);
        if (node.fd >= 0)
                backing_fd_path(node.fd, path);
        return node;
}

void ops_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                  size_t size, int flags)
{
        if (xattr_view_reserved(name)) {
                int error = 0;
                g_autofree char *relpath = ops_node_path(ops_fs(req), ino, &error);
                const struct fuse_ctx *ctx = fuse_req_ctx(req);
                int r = relpath ? xattr_view_set(&ops_fs(req)->mailbags, relpath, name, value, size,
                                                 ctx->uid, caller_process_of_thread(ctx->pid))
                                : error;
                ops_reply_status(req, OPS_SETXATTR, r);
                return;
        }
        char path[BACKING_FD_PATH_MAX];
        autorelease_node NodeRef node = xattr_node_open(req, ino, path);
        int fd = node.fd;
        if (fd < 0) {
                ops_reply_status(req, OPS_SETXATTR, fd);
                return;
        }
        int r = setxattr(path, name, value, size, flags) < 0 ? -errno : 0;
        ops_reply_status(req, OPS_SETXATTR, r);
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
                r = xattr_view_get(&ops_fs(req)->mailbags, relpath, ops_node_is_folder(ops_fs(req), ino),
                                   name, &caller, &value);
        }
        if (r < 0) {
                ops_reply_status(req, OPS_GETXATTR, r);
                return;
        }
        size_t len = strlen(value);
        if (size == 0)
                fuse_reply_xattr(req, len);
        else if (len > size)
                ops_reply_status(req, OPS_GETXATTR, -ERANGE);
        else
                fuse_reply_buf(req, value, len);
}

void ops_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
        if (xattr_view_reserved(name)) {
                getxattr_virtual(req, ino, name, size);
                return;
        }
        char path[BACKING_FD_PATH_MAX];
        autorelease_node NodeRef node = xattr_node_open(req, ino, path);
        int fd = node.fd;
        if (fd < 0) {
                ops_reply_status(req, OPS_GETXATTR, fd);
                return;
        }
        g_autofree char *value = size ? g_malloc(size) : NULL;
        ssize_t len = getxattr(path, name, value, size);
        if (len < 0)
                ops_reply_status(req, OPS_GETXATTR, -errno);
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
        char path[BACKING_FD_PATH_MAX];
        autorelease_node NodeRef node = xattr_node_open(req, ino, path);
        int fd = node.fd;
        if (fd < 0) {
                ops_reply_status(req, OPS_LISTXATTR, fd);
                return;
        }
        /* The list is filtered, so fetch all of it even when the client
         * only asks for the size. */
        ssize_t len = listxattr(path, NULL, 0);
        if (len < 0) {
                ops_reply_status(req, OPS_LISTXATTR, -errno);
                return;
        }
        g_autofree char *list = g_malloc(len ? (size_t)len : 1);
        len = listxattr(path, list, (size_t)len);
        if (len < 0) {
                ops_reply_status(req, OPS_LISTXATTR, -errno);
                return;
        }
        size_t filtered = xattr_list_filter(list, (size_t)len);
        g_autoptr(GString) names = g_string_new_len(list, (gssize)filtered);
        int error = 0;
        g_autofree char *relpath = ops_node_path(ops_fs(req), ino, &error);
        if (relpath)
                xattr_view_list(&ops_fs(req)->mailbags, relpath,
                                ops_node_is_folder(ops_fs(req), ino), names);
        if (size == 0)
                fuse_reply_xattr(req, names->len);
        else if (names->len > size)
                ops_reply_status(req, OPS_LISTXATTR, -ERANGE);
        else
                fuse_reply_buf(req, names->str, names->len);
}

void ops_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
        if (xattr_view_reserved(name)) {
                ops_reply_status(req, OPS_REMOVEXATTR, -EPERM);
                return;
        }
        char path[BACKING_FD_PATH_MAX];
        autorelease_node NodeRef node = xattr_node_open(req, ino, path);
        int fd = node.fd;
        if (fd < 0) {
                ops_reply_status(req, OPS_REMOVEXATTR, fd);
                return;
        }
        int r = removexattr(path, name) < 0 ? -errno : 0;
        ops_reply_status(req, OPS_REMOVEXATTR, r);
}
