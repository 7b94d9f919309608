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

void ops_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        if (ops_name_reserved(name)) {
                ops_reply_status(req, "lookup", -ENOENT);
                return;
        }
        autoclose_fd int dirfd = ops_dir_open(ops_fs(req), parent);
        if (dirfd < 0) {
                ops_reply_status(req, "lookup", dirfd);
                return;
        }
        ops_reply_entry(req, "lookup", parent, dirfd, name);
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

/* The common tail of mknod, mkdir and symlink: @status is the backing
 * call's result. The entry was created as the caller (ops_as_caller_begin),
 * so it is the caller's already. */
static void entry_created(fuse_req_t req, const char *op, fuse_ino_t parent, int dirfd,
                          const char *name, int status)
{
        if (status < 0) {
                ops_reply_status(req, op, status);
                return;
        }
        ops_reply_entry(req, op, parent, dirfd, name);
}

/* Whether @name in @parent may be made by @op (mknod, mkdir, symlink,
 * link, rename): -EACCES for the daemon's reserved names, and for a Mail
 * 2.x lock file's name. Such a file is its queue's lock by its mere
 * existence, and its hold begins with the create that makes it
 * (ops_create): made any other way it would be a lock that nobody holds,
 * which other -V20 programs wait for and the other protocols ignore. */
static int entry_name_refused(Mailbagfs *fs, const char *op, fuse_ino_t parent, const char *name)
{
        if (ops_name_reserved(name))
                return -EACCES;
        int error = 0;
        g_autofree char *path = inode_table_child_path(fs->inodes, parent, name, &error);
        /* No path: the request fails on its own (its folder is gone). */
        if (!path || claim_is_lockfile_name(&fs->mailbags, path) != 1)
                return 0;
        log_info("%s onto %s refused: a lock file is made by creating it", op, path);
        return -EACCES;
}

void ops_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
        int refused = entry_name_refused(ops_fs(req), "mknod", parent, name);
        if (refused < 0) {
                ops_reply_status(req, "mknod", refused);
                return;
        }
        autoclose_fd int dirfd = ops_dir_open(ops_fs(req), parent);
        OpsCaller caller;
        int r = dirfd < 0 ? dirfd : ops_as_caller_begin(ops_fs(req), req, &caller);
        if (r == 0) {
                r = mknodat(dirfd, name, mode, rdev) < 0 ? -errno : 0;
                ops_as_caller_end(&caller);
        }
        entry_created(req, "mknod", parent, dirfd, name, r);
}

void ops_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        int refused = entry_name_refused(ops_fs(req), "mkdir", parent, name);
        if (refused < 0) {
                ops_reply_status(req, "mkdir", refused);
                return;
        }
        autoclose_fd int dirfd = ops_dir_open(ops_fs(req), parent);
        OpsCaller caller;
        int r = dirfd < 0 ? dirfd : ops_as_caller_begin(ops_fs(req), req, &caller);
        if (r == 0) {
                r = mkdirat(dirfd, name, mode) < 0 ? -errno : 0;
                ops_as_caller_end(&caller);
        }
        entry_created(req, "mkdir", parent, dirfd, name, r);
}

void ops_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
        int refused = entry_name_refused(ops_fs(req), "symlink", parent, name);
        if (refused < 0) {
                ops_reply_status(req, "symlink", refused);
                return;
        }
        autoclose_fd int dirfd = ops_dir_open(ops_fs(req), parent);
        OpsCaller caller;
        int r = dirfd < 0 ? dirfd : ops_as_caller_begin(ops_fs(req), req, &caller);
        if (r == 0) {
                r = symlinkat(link, dirfd, name) < 0 ? -errno : 0;
                ops_as_caller_end(&caller);
        }
        entry_created(req, "symlink", parent, dirfd, name, r);
}

void ops_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
        Mailbagfs *fs = ops_fs(req);
        int refused = entry_name_refused(fs, "link", newparent, newname);
        if (refused < 0) {
                ops_reply_status(req, "link", refused);
                return;
        }
        struct stat st;
        autoclose_fd int fd = ops_node_open(fs, ino, &st);
        if (fd < 0) {
                ops_reply_status(req, "link", fd);
                return;
        }
        autoclose_fd int dirfd = ops_dir_open(fs, newparent);
        if (dirfd < 0) {
                ops_reply_status(req, "link", dirfd);
                return;
        }
        /* linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; following the
         * /proc link of an O_PATH descriptor does not, and links a symlink
         * itself rather than its target. */
        char proc_path[BACKING_FD_PATH_MAX];
        backing_fd_path(fd, proc_path);
        if (linkat(AT_FDCWD, proc_path, dirfd, newname, AT_SYMLINK_FOLLOW) < 0) {
                ops_reply_status(req, "link", -errno);
                return;
        }
        ops_reply_entry(req, "link", newparent, dirfd, newname);
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
        DIR *dir = backing_fdopendir(child >= 0 ? dup(child) : -1);
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
        return unlinkat(dirfd, name, AT_REMOVEDIR);
}

static void entry_remove(fuse_req_t req, const char *op, fuse_ino_t parent, const char *name,
                         int flags)
{
        Mailbagfs *fs = ops_fs(req);
        autoclose_fd int dirfd = ops_dir_open(fs, parent);
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
                ops_reply_status(req, op, -error);
                return;
        }
        g_autofree char *removed = entry_path(fs, parent, name);
        fuse_ino_t removed_node = inode_table_removal_begin(fs->inodes, parent, name);
        inode_table_unlinked(fs->inodes, parent, name, &victim);
        g_rw_lock_writer_unlock(&fs->names_lock);
        entry_name_removed(fs, removed);
        ops_reply_status(req, op, 0);
        inode_table_removal_answered(fs->inodes, removed_node);
}

void ops_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        entry_remove(req, "unlink", parent, name, 0);
}

void ops_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        entry_remove(req, "rmdir", parent, name, AT_REMOVEDIR);
}

void ops_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                const char *newname, unsigned int flags)
{
        Mailbagfs *fs = ops_fs(req);
        int refused = ops_name_reserved(name) ? -EACCES
                                              : entry_name_refused(fs, "rename", newparent, newname);
        /* An exchange puts a file at both names. */
        if (refused == 0 && (flags & RENAME_EXCHANGE))
                refused = entry_name_refused(fs, "rename", parent, name);
        if (refused < 0) {
                ops_reply_status(req, "rename", refused);
                return;
        }
        autoclose_fd int dirfd = ops_dir_open(fs, parent);
        if (dirfd < 0) {
                ops_reply_status(req, "rename", dirfd);
                return;
        }
        autoclose_fd int newdirfd = ops_dir_open(fs, newparent);
        if (newdirfd < 0) {
                ops_reply_status(req, "rename", newdirfd);
                return;
        }
        g_rw_lock_writer_lock(&fs->names_lock);
        autoclose_fd int victim = (flags & RENAME_EXCHANGE)
                                          ? -1
                                          : ops_victim_open(fs, newparent, newdirfd, newname);
        if (renameat2(dirfd, name, newdirfd, newname, flags) < 0) {
                int error = errno;
                g_rw_lock_writer_unlock(&fs->names_lock);
                ops_reply_status(req, "rename", -error);
                return;
        }
        g_autofree char *from = entry_path(fs, parent, name);
        g_autofree char *to = entry_path(fs, newparent, newname);
        /* The file renamed over lost a name, as by an unlink. */
        fuse_ino_t replaced_node =
                (flags & RENAME_EXCHANGE) ? 0
                                          : inode_table_removal_begin(fs->inodes, newparent, newname);
        inode_table_renamed(fs->inodes, parent, name, newparent, newname, flags, &victim);
        g_rw_lock_writer_unlock(&fs->names_lock);
        /* A lock file renamed away, replaced or swapped no longer holds. */
        entry_name_removed(fs, from);
        entry_name_removed(fs, to);
        ops_reply_status(req, "rename", 0);
        inode_table_removal_answered(fs->inodes, replaced_node);
}
