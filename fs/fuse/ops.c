/* ops.c - the operations table and the helpers every handler uses. */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/* Each request's name, and whether the kernel addresses it to a node it
 * looked up earlier rather than to a name in a directory. */
static const struct {
        const char *name;
        bool node_addressed;
} ops_table[OPS_COUNT] = {
        [OPS_COPY_FILE_RANGE] = {"copy_file_range", false},
        [OPS_CREATE] = {"create", false},
        [OPS_FALLOCATE] = {"fallocate", false},
        [OPS_FLOCK] = {"flock", false},
        [OPS_FLUSH] = {"flush", false},
        [OPS_FSYNC] = {"fsync", false},
        [OPS_FSYNCDIR] = {"fsyncdir", false},
        [OPS_GETATTR] = {"getattr", true},
        [OPS_GETLK] = {"getlk", false},
        [OPS_GETXATTR] = {"getxattr", true},
        [OPS_IOCTL] = {"ioctl", true},
        [OPS_LINK] = {"link", false},
        [OPS_LISTXATTR] = {"listxattr", true},
        [OPS_LOOKUP] = {"lookup", false},
        [OPS_LSEEK] = {"lseek", false},
        [OPS_MKDIR] = {"mkdir", false},
        [OPS_MKNOD] = {"mknod", false},
        [OPS_OPEN] = {"open", true},
        [OPS_OPENDIR] = {"opendir", true},
        [OPS_READ] = {"read", false},
        [OPS_READDIR] = {"readdir", false},
        [OPS_READLINK] = {"readlink", true},
        [OPS_RELEASE] = {"release", false},
        [OPS_RELEASEDIR] = {"releasedir", false},
        [OPS_REMOVEXATTR] = {"removexattr", true},
        [OPS_RENAME] = {"rename", false},
        [OPS_RMDIR] = {"rmdir", false},
        [OPS_SETATTR] = {"setattr", true},
        [OPS_SETLK] = {"setlk", false},
        [OPS_SETXATTR] = {"setxattr", true},
        [OPS_STATFS] = {"statfs", false},
        [OPS_SYMLINK] = {"symlink", false},
        [OPS_UNLINK] = {"unlink", false},
        [OPS_WRITE] = {"write", false},
};

const char *ops_op_name(OpsOp op)
{
        return (unsigned)op < OPS_COUNT ? ops_table[op].name : "?";
}

int ops_walk_again(int status, bool opening_node)
{
        if (status == -ENOENT || (opening_node && status == -ELOOP))
                return -ESTALE;
        return status;
}

int ops_node_status(OpsOp op, int status)
{
        /* The node exists for the kernel: a local filesystem never answers
         * ENOENT here. Its backing name went away (unlinked, renamed over,
         * or changed on the backing store) after the kernel's path walk
         * reached it; ESTALE makes the kernel walk the path once more,
         * which finds the current file or answers ENOENT for the name. */
        if (status == -ENOENT && (unsigned)op < OPS_COUNT && ops_table[op].node_addressed)
                return ops_walk_again(status, false);
        return status;
}

void ops_reply_status(fuse_req_t req, OpsOp op, int status)
{
        status = ops_node_status(op, status);
        if (status < 0)
                log_debug("%s: %s", ops_op_name(op), g_strerror(-status));
        fuse_reply_err(req, -status);
}

int ops_make_entry(Mailbagfs *fs, fuse_ino_t parent, int dirfd, const char *name,
                   struct fuse_entry_param *entry)
{
        memset(entry, 0, sizeof(*entry));
        /* What the name holds and the table's record of it must agree: an
         * unlink or rename between the two would leave the table naming a
         * file the name no longer holds. */
        g_autoptr(GRWLockReaderLocker) names = g_rw_lock_reader_locker_new(&fs->names_lock);
        if (fstatat(dirfd, name, &entry->attr, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        bool shared = ops_name_is_shared(name);
        entry->ino = inode_table_remember(fs->inodes, parent, name, &entry->attr, shared);
        inode_table_link_count_for_kernel(fs->inodes, entry->ino, &entry->attr);
        entry->attr_timeout = shared ? 0 : fs->attr_timeout;
        entry->entry_timeout = fs->entry_timeout;
        return 0;
}

void ops_reply_entry(fuse_req_t req, OpsOp op, fuse_ino_t parent, int dirfd,
                     const char *name)
{
        Mailbagfs *fs = ops_fs(req);
        struct fuse_entry_param entry;
        int r = ops_make_entry(fs, parent, dirfd, name, &entry);
        if (r < 0) {
                ops_reply_status(req, op, r);
                return;
        }
        /* A failed reply (the request was interrupted) means the kernel
         * never got the reference it would later forget. */
        if (fuse_reply_entry(req, &entry) < 0)
                inode_table_forget(fs->inodes, entry.ino, 1);
}

bool ops_node_is_folder(Mailbagfs *fs, fuse_ino_t ino)
{
        InodeKey key;
        return inode_table_key(fs->inodes, ino, &key) == 0 && key.type == S_IFDIR;
}

double ops_attr_timeout(Mailbagfs *fs, fuse_ino_t ino)
{
        InodeKey key;
        return inode_table_key(fs->inodes, ino, &key) == 0 && key.shared ? 0 : fs->attr_timeout;
}

char *ops_node_path(Mailbagfs *fs, fuse_ino_t ino, int *error)
{
        return inode_table_path(fs->inodes, ino, error);
}

bool ops_key_is(const InodeKey *key, const struct stat *st)
{
        return key->backing.dev == st->st_dev && key->backing.ino == st->st_ino;
}

int ops_node_verify(Mailbagfs *fs, fuse_ino_t ino, const struct stat *st)
{
        InodeKey key;
        int r = inode_table_key(fs->inodes, ino, &key);
        if (r < 0)
                return r;
        return ops_key_is(&key, st) ? 0 : -ESTALE;
}

int ops_node_check(Mailbagfs *fs, fuse_ino_t ino, int fd, struct stat *st)
{
        if (fd < 0)
                return fd;
        autoclose_fd int owned = fd;
        int r = fstat(fd, st) < 0 ? -errno : ops_node_verify(fs, ino, st);
        if (r < 0)
                return r;
        return fd_steal(&owned);
}

int ops_file_stat(Mailbagfs *fs, fuse_ino_t ino, int fd, struct stat *st)
{
        /* Under the names lock, as ops_node_open: a removal and its count
         * (inode_table_removal_begin) are seen together or not at all. */
        g_autoptr(GRWLockReaderLocker) names = g_rw_lock_reader_locker_new(&fs->names_lock);
        if (fstat(fd, st) < 0)
                return -errno;
        inode_table_link_count_for_kernel(fs->inodes, ino, st);
        return 0;
}

int ops_node_open(Mailbagfs *fs, fuse_ino_t ino, struct stat *st)
{
        g_autoptr(GRWLockReaderLocker) names = g_rw_lock_reader_locker_new(&fs->names_lock);
        int error = 0;
        g_autofree char *path = ops_node_path(fs, ino, &error);
        if (!path && error == -ENOENT) {
                /* Unlinked but still open or in use: reach it through its
                 * handle or the descriptor kept at its removal. */
                int fd = inode_table_dup_unlinked(fs->inodes, ino, NULL);
                if (fd >= 0 && fstat(fd, st) < 0) {
                        close(fd);
                        return -errno;
                }
                return fd >= 0 ? fd : error;
        }
        if (!path)
                return error;

        int fd = ops_node_check(fs, ino, backing_open_node(&fs->backing, path), st);
        if (fd >= 0)
                inode_table_link_count_for_kernel(fs->inodes, ino, st);
        return fd;
}

NodeRef ops_kept_folder_of(Mailbagfs *fs, fuse_ino_t ino, char **name, InodeKey *key)
{
        InodeKey parent;
        *name = inode_table_last_name(fs->inodes, ino, key, &parent);
        if (!*name)
                return (NodeRef){.fd = -1, .cache = fs->dirs};
        return node_cache_get(fs->dirs, parent.nodeid, parent.backing);
}

/* The attributes of @ino read by its last name in its folder, when that
 * folder's descriptor is cached: one fstatat() of one name, not followed,
 * the answer taken only when it is the node. False otherwise. */
static bool ops_node_stat_cached(Mailbagfs *fs, fuse_ino_t ino, struct stat *st)
{
        g_autoptr(GRWLockReaderLocker) names = g_rw_lock_reader_locker_new(&fs->names_lock);
        g_autofree char *name = NULL;
        InodeKey key;
        autorelease_node NodeRef dir = ops_kept_folder_of(fs, ino, &name, &key);
        if (dir.fd < 0 || fstatat(dir.fd, name, st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !ops_key_is(&key, st))
                return false;
        inode_table_link_count_for_kernel(fs->inodes, ino, st);
        return true;
}

int ops_node_stat(Mailbagfs *fs, fuse_ino_t ino, struct stat *st)
{
        if (ops_node_stat_cached(fs, ino, st))
                return 0;
        /* By its path, which also tells why the name failed. */
        autoclose_fd int fd = ops_node_open(fs, ino, st);
        return fd < 0 ? fd : 0;
}

/* Node @ino's descriptor from @cache while fresh, else opened by @open
 * (a checked descriptor or -errno) and kept there. */
static NodeRef ops_cached_ref(Mailbagfs *fs, NodeCache *cache, fuse_ino_t ino,
                              int (*open)(Mailbagfs *fs, fuse_ino_t ino))
{
        InodeKey key;
        int r = inode_table_key(fs->inodes, ino, &key);
        if (r < 0)
                return (NodeRef){.fd = r, .cache = cache};
        NodeRef cached = node_cache_get(cache, ino, key.backing);
        if (cached.fd >= 0)
                return cached;
        return node_cache_add(cache, ino, key.backing, open(fs, ino));
}

/* ops_node_open, the attributes left unread. */
static int ops_node_open_plain(Mailbagfs *fs, fuse_ino_t ino)
{
        struct stat st;
        return ops_node_open(fs, ino, &st);
}

NodeRef ops_node_ref(Mailbagfs *fs, fuse_ino_t ino)
{
        /* A node with no name left is reached through a duplicate of a
         * client's open file (or of the descriptor kept at its removal):
         * never kept, so that it ends when the client's does. */
        g_autofree char *name = inode_table_last_name(fs->inodes, ino, NULL, NULL);
        if (!name && ino != FUSE_ROOT_ID)
                return (NodeRef){.fd = ops_node_open_plain(fs, ino), .cache = fs->nodes};
        return ops_cached_ref(fs, fs->nodes, ino, ops_node_open_plain);
}

/* The folder descriptor of @ino opened by its path and checked. */
static int ops_dir_open_by_path(Mailbagfs *fs, fuse_ino_t ino)
{
        g_autoptr(GRWLockReaderLocker) names = g_rw_lock_reader_locker_new(&fs->names_lock);
        int error = 0;
        g_autofree char *path = ops_node_path(fs, ino, &error);
        if (!path)
                return error;
        /* A directory the table still names but the backing store no longer
         * has there was renamed under this request: walk again. (A node
         * with no name, above, is a removed directory: ENOENT.) The *at
         * calls made in it trust it to be the directory whose permissions
         * the kernel checked, not one swapped in by name. */
        struct stat st;
        return ops_node_check(fs, ino, ops_walk_again(backing_open_dir(&fs->backing, path), false),
                              &st);
}

NodeRef ops_dir_open(Mailbagfs *fs, fuse_ino_t ino)
{
        return ops_cached_ref(fs, fs->dirs, ino, ops_dir_open_by_path);
}

int ops_dir_gone(Mailbagfs *fs, fuse_ino_t ino, const NodeRef *dir, int error)
{
        struct stat st;
        if (error != -ENOENT || !dir->entry || fstat(dir->fd, &st) < 0 || st.st_nlink > 0)
                return error;
        node_cache_forget(fs->dirs, ino);
        return -ESTALE;
}

int ops_victim_open(Mailbagfs *fs, fuse_ino_t parent, int dirfd, const char *name)
{
        InodeKey key;
        if (!inode_table_child_held(fs->inodes, parent, name, &key))
                return -1;
        /* The node's kept descriptor is its file already, checked when it
         * was opened: the name is about to go, so it is taken, not opened
         * again (inode_table_unlinked keeps only the node's own file). */
        int fd = node_cache_take(fs->nodes, key.nodeid, key.backing);
        if (fd >= 0)
                return fd;
        /* One component, not followed: nothing here can lead elsewhere. */
        fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? -1 : fd;
}

/* The file capabilities a change of fsuid away from 0 drops
 * (cap_drop_fs_set in the kernel). */
static bool ops_caps_get(struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3])
{
        struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
        return syscall(SYS_capget, &header, caps) == 0;
}

static bool ops_caps_set(struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3])
{
        struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
        return syscall(SYS_capset, &header, caps) == 0;
}

int ops_as_caller_begin(Mailbagfs *fs, fuse_req_t req, OpsCaller *saved)
{
        saved->switched = false;
        if (!fs->chown_created)
                return 0;
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        if (ctx->uid == 0 && ctx->gid == 0)
                return 0;

        struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
        if (!ops_caps_get(caps))
                return -errno;
        /* setfsuid/setfsgid are per thread (glibc does not spread them to
         * the other threads as it does setuid): only this request's calls
         * see the caller's ids. */
        setfsgid(ctx->gid);
        setfsuid(ctx->uid);
        saved->switched = true;
        if ((uid_t)setfsuid((uid_t)-1) != ctx->uid || (gid_t)setfsgid((gid_t)-1) != ctx->gid) {
                ops_as_caller_end(saved);
                return -EPERM;
        }
        /* The kernel has checked the caller's permissions already; the
         * ids only decide who owns what is created, so take back the
         * capabilities the fsuid change dropped. */
        if (!ops_caps_set(caps)) {
                int error = -errno;
                ops_as_caller_end(saved);
                return error;
        }
        return 0;
}

void ops_as_caller_end(OpsCaller *saved)
{
        if (!saved->switched)
                return;
        int saved_errno = errno;
        /* Back to fsuid 0, the kernel raises the file capabilities again. */
        setfsuid(0);
        setfsgid(0);
        errno = saved_errno;
        saved->switched = false;
}

void ops_init(void *userdata, struct fuse_conn_info *conn)
{
        /* O_TRUNC arrives with the open instead of as a separate truncate,
         * so the backing file sees the client's own open. */
        if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
                conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
        if (conn->capable & FUSE_CAP_SPLICE_READ)
                conn->want |= FUSE_CAP_SPLICE_READ;
        if (conn->capable & FUSE_CAP_SPLICE_WRITE)
                conn->want |= FUSE_CAP_SPLICE_WRITE;
        /* Byte-range and flock locks go to the backing store (byte-locks.h):
         * other daemons on the share and processes on the backing directory
         * see them, as they see leases. */
        if (conn->capable & FUSE_CAP_POSIX_LOCKS)
                conn->want |= FUSE_CAP_POSIX_LOCKS;
        if (conn->capable & FUSE_CAP_FLOCK_LOCKS)
                conn->want |= FUSE_CAP_FLOCK_LOCKS;
        /* Files passed through (inode.h): backing files on a stacked
         * filesystem are refused, and this mount may be stacked on (the
         * default depth). */
        Mailbagfs *fs = userdata;
#if MAILBAGFS_PASSTHROUGH
        if (atomic_load(&fs->passthrough) && (conn->capable & FUSE_CAP_PASSTHROUGH)) {
                conn->want |= FUSE_CAP_PASSTHROUGH;
                log_info("files that hold no lease are read and written by the kernel on "
                         "the backing store (passthrough)");
        } else if (atomic_exchange(&fs->passthrough, false)) {
                log_info("the kernel has no passthrough: files are read and written through "
                         "the daemon");
        }
#else
        atomic_store(&fs->passthrough, false);
#endif
}

const struct fuse_lowlevel_ops mailbagfs_ops = {
        .init = ops_init,
        .lookup = ops_lookup,
        .forget = ops_forget,
        .forget_multi = ops_forget_multi,
        .getattr = ops_getattr,
        .setattr = ops_setattr,
        .readlink = ops_readlink,
        .mknod = ops_mknod,
        .mkdir = ops_mkdir,
        .symlink = ops_symlink,
        .link = ops_link,
        .unlink = ops_unlink,
        .rmdir = ops_rmdir,
        .rename = ops_rename,
        .open = ops_open,
        .create = ops_create,
        .read = ops_read,
        .write_buf = ops_write_buf,
        .flush = ops_flush,
        .release = ops_release,
        .fsync = ops_fsync,
        .fallocate = ops_fallocate,
        .lseek = ops_lseek,
        .copy_file_range = ops_copy_file_range,
        .getlk = ops_getlk,
        .setlk = ops_setlk,
        .flock = ops_flock,
        .opendir = ops_opendir,
        .readdir = ops_readdir,
        .releasedir = ops_releasedir,
        .fsyncdir = ops_fsyncdir,
        .ioctl = ops_ioctl,
        .statfs = ops_statfs,
        .setxattr = ops_setxattr,
        .getxattr = ops_getxattr,
        .listxattr = ops_listxattr,
        .removexattr = ops_removexattr,
};
