/* ops-entry.c - requests on names: lookup, creation of non-regular files,
 * links, removal and rename. Each keeps the node table's names in step
 * with the backing directory once the backing call has succeeded. */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "trail.h"

void ops_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        if (ops_name_reserved(name)) {
                ops_reply_status(req, OPS_LOOKUP, -ENOENT);
                return;
        }
        autorelease_node NodeRef parent_dir = ops_dir_open(ops_fs(req), parent);
        int dirfd = parent_dir.fd;
        if (dirfd < 0) {
                ops_reply_status(req, OPS_LOOKUP, dirfd);
                return;
        }
        ops_reply_entry(req, OPS_LOOKUP, parent, dirfd, name);
}

void ops_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
        inode_table_forget(ops_fs(req)->inodes, ino, nlookup);
        fuse_reply_none(req);
}

void ops_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
        for (size_t i = 0; i < count; i++)
                inode_table_forget(ops_fs(req)->inodes, forgets[i].ino, forgets[i].nlookup);
        fuse_reply_none(req);
}

/* Whether @name in @parent may be made by @op (mknod, mkdir, symlink,
 * link, rename): -EACCES for the daemon's reserved names and for a name
 * that only a create may make (the policy's). */
static int entry_name_refused(Mailbagfs *fs, OpsOp op, fuse_ino_t parent, const char *name)
{
        if (ops_name_reserved(name))
                return -EACCES;
        int error = 0;
        g_autofree char *path = inode_table_child_path(fs->inodes, parent, name, &error);
        /* No path: the request fails on its own (its folder is gone). */
        return path ? claim_name_may_be_made(&fs->mailbags, path, ops_op_name(op)) : 0;
}

/* What mknod, mkdir and symlink make. */
typedef struct {
        mode_t mode;
        dev_t rdev;
        const char *link;
} EntrySpec;

/* mknod, mkdir and symlink: the name checked, the entry made in the
 * parent's folder as the caller (ops_as_caller_begin), its entry answered. */
static void entry_make(fuse_req_t req, OpsOp op, fuse_ino_t parent, const char *name,
                       const EntrySpec *spec)
{
        int refused = entry_name_refused(ops_fs(req), op, parent, name);
        if (refused < 0) {
                ops_reply_status(req, op, refused);
                return;
        }
        autorelease_node NodeRef parent_dir = ops_dir_open(ops_fs(req), parent);
        int dirfd = parent_dir.fd;
        OpsCaller caller;
        int r = dirfd < 0 ? dirfd : ops_as_caller_begin(ops_fs(req), req, &caller);
        if (r == 0) {
                switch (op) {
                case OPS_MKDIR:
                        r = mkdirat(dirfd, name, spec->mode);
                        break;
                case OPS_SYMLINK:
                        r = symlinkat(spec->link, dirfd, name);
                        break;
                default:
                        r = mknodat(dirfd, name, spec->mode, spec->rdev);
                        break;
                }
                r = r < 0 ? ops_dir_gone(ops_fs(req), parent, &parent_dir, -errno) : 0;
                ops_as_caller_end(&caller);
        }
        /* Made as the caller, so it is the caller's already. */
        if (r < 0)
                ops_reply_status(req, op, r);
        else
                ops_reply_entry(req, op, parent, dirfd, name);
}

void ops_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
        entry_make(req, OPS_MKNOD, parent, name, &(EntrySpec){.mode = mode, .rdev = rdev});
}

void ops_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        entry_make(req, OPS_MKDIR, parent, name, &(EntrySpec){.mode = mode});
}

void ops_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
        entry_make(req, OPS_SYMLINK, parent, name, &(EntrySpec){.link = link});
}

void ops_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
        Mailbagfs *fs = ops_fs(req);
        int refused = entry_name_refused(fs, OPS_LINK, newparent, newname);
        if (refused < 0) {
                ops_reply_status(req, OPS_LINK, refused);
                return;
        }
        struct stat st;
        autoclose_fd int fd = ops_node_open(fs, ino, &st);
        if (fd < 0) {
                ops_reply_status(req, OPS_LINK, fd);
                return;
        }
        autorelease_node NodeRef parent_dir = ops_dir_open(fs, newparent);
        int dirfd = parent_dir.fd;
        if (dirfd < 0) {
                ops_reply_status(req, OPS_LINK, dirfd);
                return;
        }
        /* linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; following the
         * /proc link of an O_PATH descriptor does not, and links a symlink
         * itself rather than its target. */
        char proc_path[BACKING_FD_PATH_MAX];
        backing_fd_path(fd, proc_path);
        if (linkat(AT_FDCWD, proc_path, dirfd, newname, AT_SYMLINK_FOLLOW) < 0) {
                ops_reply_status(req, OPS_LINK, -errno);
                return;
        }
        ops_reply_entry(req, OPS_LINK, newparent, dirfd, newname);
}

/* The path of a name about to go away, taken while the table still has
 * it; NULL if it has none. */
static char *entry_path(Mailbagfs *fs, fuse_ino_t parent, const char *name)
{
        int error = 0;
        return inode_table_child_path(fs->inodes, parent, name, &error);
}

/* A name went away: if it was a Mail 2.x lock file, its hold ends. Called
 * without the names lock: ending a hold may grant a waiting open at once,
 * on this thread, and that open builds a path. */
static void entry_name_removed(Mailbagfs *fs, const char *path)
{
        if (path)
                mailbags_name_removed(&fs->mailbags, path);
}

/* A postoffice folder emptied by its client still holds the daemon's
 * hidden lease file: it goes with the folder, unless a lease of that
 * postoffice is held or awaited (here or through another daemon). Like
 * unlinkat(): 0, or -1 with errno. */
static int entry_rmdir_postoffice(Mailbagfs *fs, fuse_ino_t parent, int dirfd, const char *name)
{
        autoclose_fd int child = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *dir = backing_fdopendir(child >= 0 ? fd_dup(child) : -1);
        if (!dir) {
                errno = ENOTEMPTY;
                return -1;
        }
        bool only_leases = true;
        for (struct dirent *entry; only_leases && (entry = readdir(dir));)
                only_leases = g_str_equal(entry->d_name, ".") || g_str_equal(entry->d_name, "..") ||
                              ops_name_reserved(entry->d_name);
        closedir(dir);
        g_autofree char *path = entry_path(fs, parent, name);
        if (!only_leases || !path) {
                errno = ENOTEMPTY;
                return -1;
        }
        int r = mailbags_folder_may_go(&fs->mailbags, path);
        if (r < 0) {
                errno = -r;
                return -1;
        }
        if (unlinkat(child, CLUSTER_FILE, 0) < 0 && errno != ENOENT)
                return -1;
        r = trail_remove(child);
        if (r < 0) {
                errno = -r;
                return -1;
        }
        return unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* Looks at the file @victim (ops_victim_open) after its name went: NULL
 * when there is none to look at, else @st filled. */
static const struct stat *entry_victim_stat(int victim, struct stat *st)
{
        return victim >= 0 && fstat(victim, st) == 0 ? st : NULL;
}

/* Whether the removed file @victim_st still has names: only then can the
 * kernel's count of them drift (see inode_table_link_count_for_kernel). */
static bool entry_keeps_names(const struct stat *victim_st)
{
        return victim_st && victim_st->st_nlink > 0;
}

static void entry_removal_counted(void *inodes, uint64_t nodeid)
{
        inode_table_removal_answered(inodes, nodeid);
}

/* The removal of @name of @parent (by @removed_node, which @keeps_names)
 * has been answered. The kernel lowers its count of the file's names when
 * the caller reads that reply, still inside the folder's lock: replies
 * count the removed name until an invalidation of that name, which waits
 * for the lock, went through. */
static void entry_removal_settle(Mailbagfs *fs, fuse_ino_t parent, const char *name,
                                 fuse_ino_t removed_node, bool keeps_names)
{
        if (removed_node == 0)
                return;
        if (keeps_names)
                kernel_cache_forget_name_then(fs->kernel_cache, parent, name, entry_removal_counted,
                                              fs->inodes, removed_node);
        else
                inode_table_removal_answered(fs->inodes, removed_node);
}

/* The trail's line for an unlink or rename of @path (mailbags_trail),
 * written before the answer. */
static void entry_trail(Mailbagfs *fs, const char *op, const char *path, const char *to,
                        pid_t thread_id, uid_t uid, int result)
{
        if (!path)
                return;
        MailbagsEvent event = {
                .op = op,
                .relpath = path,
                .to = to,
                .thread_id = thread_id,
                .uid = uid,
                .waited_ms = -1,
                .result = result,
        };
        mailbags_trail(&fs->mailbags, &event);
}

static void entry_remove(fuse_req_t req, OpsOp op, fuse_ino_t parent, const char *name,
                         int flags)
{
        Mailbagfs *fs = ops_fs(req);
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        pid_t thread_id = ctx->pid;
        uid_t uid = ctx->uid;
        autorelease_node NodeRef parent_dir = ops_dir_open(fs, parent);
        int dirfd = parent_dir.fd;
        if (dirfd < 0) {
                ops_reply_status(req, op, dirfd);
                return;
        }
        g_rw_lock_writer_lock(&fs->names_lock);
        autoclose_fd int victim = ops_victim_open(fs, parent, dirfd, name);
        int r = unlinkat(dirfd, name, flags);
        if (r < 0 && errno == ENOTEMPTY && (flags & AT_REMOVEDIR))
                r = entry_rmdir_postoffice(fs, parent, dirfd, name);
        if (r < 0) {
                int error = errno;
                g_rw_lock_writer_unlock(&fs->names_lock);
                /* A message file already gone is the trace of an [021]. */
                if (!(flags & AT_REMOVEDIR)) {
                        g_autofree char *path = entry_path(fs, parent, name);
                        entry_trail(fs, "unlink", path, NULL, thread_id, uid, -error);
                }
                ops_reply_status(req, op, -error);
                return;
        }
        g_autofree char *removed = entry_path(fs, parent, name);
        fuse_ino_t removed_node = inode_table_removal_begin(fs->inodes, parent, name);
        struct stat victim_looked;
        const struct stat *victim_st = entry_victim_stat(victim, &victim_looked);
        bool keeps_names = entry_keeps_names(victim_st);
        inode_table_unlinked(fs->inodes, parent, name, &victim, victim_st);
        /* A folder gone: no cached descriptor serves it any more. */
        if (flags & AT_REMOVEDIR)
                node_cache_drop_all(fs->dirs);
        g_rw_lock_writer_unlock(&fs->names_lock);
        /* A postoffice's folder gone: its descriptors go too, and it
         * leaves the watch thread (found by its path, before the path is
         * forgotten). */
        if ((flags & AT_REMOVEDIR) && removed)
                mailbags_folder_removed(&fs->mailbags, removed);
        entry_name_removed(fs, removed);
        if (!(flags & AT_REMOVEDIR))
                entry_trail(fs, "unlink", removed, NULL, thread_id, uid, 0);
        ops_reply_status(req, op, 0);
        /* The name is gone: no kept descriptor holds the file on. */
        if (removed_node)
                node_cache_forget(fs->nodes, removed_node);
        entry_removal_settle(fs, parent, name, removed_node, keeps_names);
}

void ops_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        entry_remove(req, OPS_UNLINK, parent, name, 0);
}

void ops_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        entry_remove(req, OPS_RMDIR, parent, name, AT_REMOVEDIR);
}

void ops_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                const char *newname, unsigned int flags)
{
        Mailbagfs *fs = ops_fs(req);
        int refused = ops_name_reserved(name) ? -EACCES
                                              : entry_name_refused(fs, OPS_RENAME, newparent, newname);
        /* An exchange puts a file at both names. */
        if (refused == 0 && (flags & RENAME_EXCHANGE))
                refused = entry_name_refused(fs, OPS_RENAME, parent, name);
        if (refused < 0) {
                ops_reply_status(req, OPS_RENAME, refused);
                return;
        }
        autorelease_node NodeRef parent_dir = ops_dir_open(fs, parent);
        int dirfd = parent_dir.fd;
        if (dirfd < 0) {
                ops_reply_status(req, OPS_RENAME, dirfd);
                return;
        }
        autorelease_node NodeRef newparent_dir = ops_dir_open(fs, newparent);
        int newdirfd = newparent_dir.fd;
        if (newdirfd < 0) {
                ops_reply_status(req, OPS_RENAME, newdirfd);
                return;
        }
        g_rw_lock_writer_lock(&fs->names_lock);
        autoclose_fd int victim = (flags & RENAME_EXCHANGE)
                                          ? -1
                                          : ops_victim_open(fs, newparent, newdirfd, newname);
        if (renameat2(dirfd, name, newdirfd, newname, flags) < 0) {
                int error = errno;
                g_rw_lock_writer_unlock(&fs->names_lock);
                ops_reply_status(req, OPS_RENAME, -error);
                return;
        }
        g_autofree char *from = entry_path(fs, parent, name);
        g_autofree char *to = entry_path(fs, newparent, newname);
        /* The file renamed over lost a name, as by an unlink. */
        fuse_ino_t replaced_node =
                (flags & RENAME_EXCHANGE) ? 0
                                          : inode_table_removal_begin(fs->inodes, newparent, newname);
        struct stat victim_looked;
        const struct stat *victim_st = entry_victim_stat(victim, &victim_looked);
        bool keeps_names = entry_keeps_names(victim_st);
        inode_table_renamed(fs->inodes, parent, name, newparent, newname, flags, &victim,
                            victim_st);
        /* What was renamed may be a folder, with folders under it: none
         * is reached by a descriptor kept under its old path. */
        node_cache_drop_all(fs->dirs);
        g_rw_lock_writer_unlock(&fs->names_lock);
        /* A lock file renamed away, replaced or swapped no longer holds. */
        entry_name_removed(fs, from);
        entry_name_removed(fs, to);
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        entry_trail(fs, "rename", from, to, ctx->pid, ctx->uid, 0);
        ops_reply_status(req, OPS_RENAME, 0);
        if (replaced_node)
                node_cache_forget(fs->nodes, replaced_node);
        entry_removal_settle(fs, newparent, newname, replaced_node, keeps_names);
}
