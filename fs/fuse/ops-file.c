/* ops-file.c - open files: open, create, read, write, flush, release,
 * fsync, fallocate, lseek, copy_file_range and the byte-range and flock
 * locks. Each open file keeps one backing descriptor for exactly as long
 * as the client keeps it open. */
#include "ops.h"

#include "log.h"
#include "xattr-view.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Who answers a request whose wait may end on another thread before its
 * handler registered the interrupt callback (the request could be gone by
 * then): the handler, when the wait ended first; otherwise the thread that
 * ended it. */
typedef struct {
        GMutex mutex;
        bool registered; /* guarded by mutex */
        bool completed;  /* guarded by mutex */
        int result;      /* guarded by mutex */
} WaitHandshake;

/* The wait ended with @result: whether this thread answers now (else the
 * handler does, once it registered). */
static bool wait_handshake_settled(WaitHandshake *handshake, int result)
{
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&handshake->mutex);
        handshake->completed = !handshake->registered;
        handshake->result = result;
        return handshake->registered;
}

/* The handler registered its interrupt callback: whether the wait ended
 * already, with *@result, and the handler answers. */
static bool wait_handshake_registered(WaitHandshake *handshake, int *result)
{
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&handshake->mutex);
        handshake->registered = true;
        *result = handshake->result;
        return handshake->completed;
}

/* An open or create, possibly waiting for its lease. The request is
 * answered exactly once, by whoever finishes it: the handler itself when
 * no wait was needed, or the claim's ready callback. */
typedef struct {
        fuse_req_t req;
        bool creating;
        fuse_ino_t ino; /* open: the node; create: the parent */
        char *name;     /* create only */
        char *path;     /* backing path of the file */
        mode_t mode;
        struct fuse_file_info fi;
        WaitHandshake handshake;
        Claim *claim; /* set before the handshake settles, read after it */
        /* For the trail (the request is gone once answered). */
        pid_t thread_id;
        uid_t uid;
        gint64 start_us;
        bool waited; /* set before registered */
} PendingOpen;

static void pending_open_free(PendingOpen *pending)
{
        g_mutex_clear(&pending->handshake.mutex);
        g_free(pending->name);
        g_free(pending->path);
        g_free(pending);
}

/* Registers @fd for passthrough (InodeBackingOpenFn; @opaque: the open
 * request). The first refusal turns passthrough off for the mount, so
 * that a backing store the kernel cannot pass to (a stacked one) costs
 * one attempt and one log line, not one of each per open. */
static int file_backing_open(void *opaque, int fd)
{
#if MAILBAGFS_PASSTHROUGH
        fuse_req_t req = opaque;
        Mailbagfs *fs = ops_fs(req);
        int id = fuse_passthrough_open(req, fd);
        if (id > 0) {
                log_debug("a file is passed through to the kernel (backing id %d)", id);
                return id;
        }
        if (atomic_exchange(&fs->passthrough, false))
                log_warning("the kernel refused to pass a file through to the backing store: "
                            "files are read and written through the daemon");
        return -EIO;
#else
        (void)opaque;
        (void)fd;
        return -EOPNOTSUPP;
#endif
}

/* Gives back the node's backing id when @file was its last handle passed
 * through, and forgets the handle's descriptor. */
static void file_handle_closed(fuse_req_t req, OpenFile *file)
{
        Mailbagfs *fs = ops_fs(req);
        if (!inode_table_file_closed(fs->inodes, file->ino, file->fd, file->io))
                return;
#if MAILBAGFS_PASSTHROUGH
        fuse_passthrough_close(req, file->backing_id);
#endif
}

/* How @file's reads and writes go (inode.h), decided with the node's
 * other handles; the handle's flags in @fi follow. -EBUSY: the handle
 * must reach the daemon while the kernel passes the node through. */
static int file_choose_io(fuse_req_t req, OpenFile *file, struct fuse_file_info *fi)
{
        Mailbagfs *fs = ops_fs(req);
        InodeIo io = atomic_load(&file->held_back) ? INODE_IO_DAEMON
                     : fi->direct_io             ? INODE_IO_DIRECT
                                                 : INODE_IO_CACHED;
        /* A file the kernel would cache, whose handle holds no lease, on a
         * local backing store (whose page cache is the file's): nothing of
         * its reads and writes is the daemon's, so the kernel does them on
         * the backing file itself. Mailbag and global files are direct, a
         * deferred program's new file waits in the daemon, and a message
         * file's write-only handle stays direct (a write the kernel passes
         * through asks for security.capability first: a GETXATTR for the
         * WRITE saved) unless another handle of it is passed through. */
        if (!file->claim && io == INODE_IO_CACHED && atomic_load(&fs->passthrough) &&
            backing_file_is_local(&fs->backing, file->id.dev))
                io = INODE_IO_PASSTHROUGH;
        int r = inode_table_file_opened(fs->inodes, file->ino, file->fd, &io, &file->backing_id,
                                        file_backing_open, req);
        if (r < 0)
                return r;
        file->io = io;
        if (io == INODE_IO_PASSTHROUGH) {
                /* Direct I/O would override passthrough. The kernel
                 * takes set-user-ID away on a write it passes through,
                 * as on one through its cache. */
                fi->direct_io = 0;
#if MAILBAGFS_PASSTHROUGH
                fi->backing_id = file->backing_id;
#endif
        }
        return 0;
}

/* Answers an open with @fd, which now belongs to the handle, as does
 * @claim (NULL when the handle holds nothing). @held_back: the process
 * whose deferred lease the handle's reads and writes wait for (0: none). */
static void open_file_reply(fuse_req_t req, fuse_ino_t ino, int fd, struct fuse_file_info *fi,
                            const struct fuse_entry_param *entry, Claim *claim, bool message,
                            pid_t held_back)
{
        Mailbagfs *fs = ops_fs(req);
        OpenFile *file = g_new0(OpenFile, 1);
        file->fd = fd;
        file->ino = entry ? entry->ino : ino;
        file->claim = claim;
        fi->fh = (uintptr_t)file;
        InodeKey key;
        if (inode_table_key(fs->inodes, file->ino, &key) == 0) {
                file->id = key.backing;
                if (key.shared) {
                        fi->direct_io = 1;
                        file->shared = true;
                }
        }
        /* A message file is written once, by one handle, before anyone
         * reads it: a write-only handle of one gains nothing from the page
         * cache, and with direct I/O the kernel's write skips its look for
         * a security.capability attribute to remove (a GETXATTR per
         * write); set-user-ID and set-group-ID are then the daemon's to
         * take away (file_drop_privileges). Any other file keeps the
         * cache, which a reader holding it open sees written through. */
        if (message && (fi->flags & O_ACCMODE) == O_WRONLY)
                fi->direct_io = 1;
        /* Its close needs no FLUSH either: on a local backing store there
         * is nothing to write back, no lease to end, and Mail's programs
         * take no byte-range lock on one (a program that does keeps it
         * until it closes the last descriptor of the open file it locked
         * through, not the first of its descriptors, as POSIX would). */
        if (message && !claim && backing_file_is_local(&fs->backing, file->id.dev))
                fi->noflush = 1;
        /* Every read and write of a held-back file must reach the daemon,
         * to wait there; none may be served from, or left in, the cache. */
        atomic_init(&file->held_back, held_back);
        if (held_back)
                fi->direct_io = 1;
        /* Refused only for a deferred program's create of a file others
         * hold open (no file was made: the kernel holds the folder for a
         * create, so nobody opens a file being made). */
        int r = file_choose_io(req, file, fi);
        if (r < 0) {
                log_warning("open of a file the kernel passes through refused: its reads and "
                            "writes must wait in the daemon for a deferred lease");
                close(fd);
                claim_cancel(&fs->mailbags, file->claim);
                g_free(file);
                if (entry)
                        inode_table_forget(fs->inodes, entry->ino, 1);
                ops_reply_status(req, entry ? OPS_CREATE : OPS_OPEN, r);
                return;
        }
        /* A file created just now was looked at: the kernel holds its
         * folder until the create is answered, so no chmod reached it. */
        atomic_init(&file->privileges_checked,
                    entry && !(entry->attr.st_mode & (S_ISUID | S_ISGID))
                            ? atomic_load(&fs->privileges_given)
                            : OPEN_FILE_UNCHECKED);

        r = entry ? fuse_reply_create(req, entry, fi) : fuse_reply_open(req, fi);
        if (r < 0) {
                /* Interrupted: the kernel will never release this handle. */
                file_handle_closed(req, file);
                close(fd);
                claim_cancel(&fs->mailbags, file->claim);
                g_free(file);
                if (entry)
                        inode_table_forget(fs->inodes, entry->ino, 1);
        }
}

/* Opens for real, with the client's @flags, the file of @node, an O_PATH
 * descriptor checked to be the node; a new descriptor or -errno. */
static int file_reopen_node(int node, int flags)
{
        char proc_path[BACKING_FD_PATH_MAX];
        backing_fd_path(node, proc_path);
        int fd = open(proc_path, (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* The short way to file_open_verified's answer, for a file in a folder
 * whose descriptor is kept: its last name looked up in that folder alone
 * (no walk from the root). A file opened often (a KEY file, a mailbag)
 * keeps its O_PATH descriptor in the node cache: the name is then only
 * stat'ed, and opened for real through that descriptor when the name
 * still holds the node. Otherwise the name is opened as an O_PATH
 * descriptor, checked to be the node before it is opened for real (as the
 * long way does) and kept. Either way the name led to the node when it
 * was checked, and what is opened is the node, never what the name holds
 * later. -EAGAIN when the folder is not kept or the name holds something
 * else: the caller goes the long way, which also says why. The names lock
 * is held by the caller. */
static int file_open_in_kept_folder(Mailbagfs *fs, fuse_ino_t ino, int flags)
{
        g_autofree char *name = NULL;
        InodeKey key;
        autorelease_node NodeRef dir = ops_kept_folder_of(fs, ino, &name, &key);
        if (dir.fd < 0)
                return -EAGAIN;
        autorelease_node NodeRef node = node_cache_get(fs->nodes, ino, key.backing);
        struct stat st;
        if (node.fd >= 0) {
                if (fstatat(dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !ops_key_is(&key, &st) ||
                    S_ISLNK(st.st_mode))
                        return -EAGAIN;
                return file_reopen_node(node.fd, flags);
        }
        int path_fd = openat(dir.fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        autoclose_fd int checked = ops_node_check(fs, ino, path_fd < 0 ? -EAGAIN : path_fd, &st);
        if (checked < 0 || S_ISLNK(st.st_mode))
                return -EAGAIN;
        node = node_cache_add(fs->nodes, ino, key.backing, fd_steal(&checked));
        return file_reopen_node(node.fd, flags);
}

/* Opens @path, which the names lock (held by the caller) keeps the name of
 * @ino. */
static int file_open_verified(Mailbagfs *fs, fuse_ino_t ino, const char *path, int flags)
{
        int kept = file_open_in_kept_folder(fs, ino, flags);
        if (kept != -EAGAIN)
                return kept;
        /* The kernel resolves symlinks itself and never opens one: a
         * symlink here means the backing name changed under us. */
        struct stat st;
        autoclose_fd int node = ops_node_check(
                fs, ino, ops_walk_again(backing_open_node(&fs->backing, path), true), &st);
        if (node < 0)
                return node;
        if (S_ISLNK(st.st_mode))
                return ops_walk_again(-ELOOP, true);
        return file_reopen_node(node, flags);
}

/* Whether an open planned for @planned may go ahead by @path, another name
 * the node has now. A rename may have happened while the open waited for
 * its lease, and the claim was planned for the old name, which may want
 * another lease (or none). But a node's path is built from its most
 * recent name, which for a file with several links changes whenever one
 * of them is looked up or removed: when neither name is guarded, the plan
 * (no claim) is the same for both. */
static bool file_plan_holds(Mailbagfs *fs, const char *planned, const char *path, int flags)
{
        return claim_needed(&fs->mailbags, planned, flags) == 0 &&
               claim_needed(&fs->mailbags, path, flags) == 0;
}

/* Opens @ino, which has no name left, through one of its descriptors (an
 * open file, or the one kept when it was removed): the kernel reached it
 * by a walk that raced with its unlink or rename-over, or through
 * /proc/PID/fd/N of a client; a local filesystem opens the inode in both
 * cases. /proc/self/fd/N is a link to the inode, not a name anyone can
 * change. The kernel already dropped O_CREAT and O_EXCL; O_NOFOLLOW would
 * refuse the link itself; O_TRUNC stays: it truncates the file the client
 * reached, as it would locally. A file whose former name is guarded
 * (a lock file, a KEY file) is not reopened: its lease is taken by name,
 * so the kernel must walk again (ESTALE), as it must when nothing holds
 * the node (-ENOENT, answered as ESTALE). */
static int file_reopen_unlinked(Mailbagfs *fs, fuse_ino_t ino, int flags)
{
        g_autofree char *former_path = NULL;
        autoclose_fd int held = inode_table_dup_unlinked(fs->inodes, ino, &former_path);
        if (held < 0)
                return held;
        if (!former_path)
                return -ESTALE;
        int guarded = claim_needed(&fs->mailbags, former_path, flags);
        if (guarded < 0)
                return guarded;
        if (guarded)
                return -ESTALE;
        char proc_path[BACKING_FD_PATH_MAX];
        backing_fd_path(held, proc_path);
        int fd = open(proc_path, (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY)) | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* Opens the backing file of @ino at @planned, or by the name it has now
 * (file_plan_holds). It is checked to be that node before it is opened for
 * real, through its O_PATH descriptor: opening a name first would let a
 * file renamed over it be truncated by O_TRUNC, a FIFO block a worker, or a
 * device be opened, before the check. */
static int file_open_backing(Mailbagfs *fs, fuse_ino_t ino, const char *planned, int flags)
{
        /* The name now, under the names lock, is @planned (the common case)
         * or one already found to hold the plan. That check asks the
         * policy, which is never done under the names lock: the new name
         * is checked outside it and taken again; names that keep changing
         * in between make the kernel walk again. */
        g_autofree char *replanned = NULL;
        /* The name as planned, then up to four others checked. */
        for (int attempt = 0; attempt < 5; attempt++) {
                int error = 0;
                g_autofree char *path = NULL;
                {
                        g_autoptr(GRWLockReaderLocker) names =
                                g_rw_lock_reader_locker_new(&fs->names_lock);
                        path = ops_node_path(fs, ino, &error);
                        if (!path && error != -ENOENT)
                                return ops_walk_again(error, false);
                        if (path && (strcmp(path, planned) == 0 ||
                                     (replanned && strcmp(path, replanned) == 0)))
                                return file_open_verified(fs, ino, path, flags);
                }
                /* Its last name went while the open was on its way (a
                 * rename over it, an unlink): opened as itself, as a local
                 * filesystem opens what the walk reached. */
                if (!path)
                        return file_reopen_unlinked(fs, ino, flags);
                if (!file_plan_holds(fs, planned, path, flags))
                        return -ESTALE;
                g_free(replanned);
                replanned = g_steal_pointer(&path);
        }
        return -ESTALE;
}

/* Opens @name in @dirfd for a create with @flags: made exclusively first,
 * so that *@made tells whether this call made the file; an existing file
 * is opened instead unless the caller asked for O_EXCL, or (@new_only) the
 * create may make a file but not open one: -EEXIST then. */
static int file_create_at(int dirfd, const char *name, mode_t mode, int flags, bool new_only,
                          bool *made)
{
        *made = false;
        /* A file removed between the two opens is made again, a few times. */
        for (int attempt = 0; attempt < 4; attempt++) {
                int fd = openat(dirfd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
                if (fd >= 0) {
                        *made = true;
                        return fd;
                }
                if (errno != EEXIST || (flags & O_EXCL) || new_only)
                        return -errno;
                fd = openat(dirfd, name, (flags & ~O_CREAT) | O_NOFOLLOW | O_CLOEXEC);
                if (fd >= 0 || errno != ENOENT)
                        return fd >= 0 ? fd : -errno;
        }
        return -EAGAIN;
}

/* Creates @name in directory @parent; fills @entry, and *@made (see
 * file_create_at, which says what @new_only does). */
static int file_create_backing(Mailbagfs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
                               mode_t mode, int flags, bool new_only,
                               struct fuse_entry_param *entry, bool *made)
{
        *made = false;
        autorelease_node NodeRef parent_dir = ops_dir_open(fs, parent);
        int dirfd = parent_dir.fd;
        if (dirfd < 0)
                return dirfd;
        /* Made by the caller's fsuid and fsgid, so it is the caller's from
         * its first moment: no chown by name afterwards. */
        OpsCaller caller;
        int r = ops_as_caller_begin(fs, req, &caller);
        if (r < 0)
                return r;
        autoclose_fd int fd = file_create_at(dirfd, name, mode, flags, new_only, made);
        ops_as_caller_end(&caller);
        if (fd < 0)
                return ops_dir_gone(fs, parent, &parent_dir, fd);
        r = ops_make_entry(fs, parent, dirfd, name, entry);
        if (r < 0)
                return r;
        return fd_steal(&fd);
}

/* A create refused after it made its file (the lease ended between the
 * grant and the open: a break, or the caller's death): the file goes again
 * if its name still leads to it, so that no lock file that nobody holds
 * is left for other programs to take as a lock. */
static void file_create_undo(Mailbagfs *fs, fuse_ino_t parent, const char *name,
                             const char *path, int fd)
{
        autorelease_node NodeRef parent_dir = ops_dir_open(fs, parent);
        int dirfd = parent_dir.fd;
        struct stat made, now;
        if (dirfd < 0 || fstat(fd, &made) < 0)
                return;
        g_rw_lock_writer_lock(&fs->names_lock);
        bool same = fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
                    now.st_dev == made.st_dev && now.st_ino == made.st_ino;
        autoclose_fd int victim = same ? ops_victim_open(fs, parent, dirfd, name) : -1;
        int r = same ? (unlinkat(dirfd, name, 0) < 0 ? -errno : 0) : -ESTALE;
        if (r == 0)
                inode_table_unlinked(fs->inodes, parent, name, &victim, NULL);
        g_rw_lock_writer_unlock(&fs->names_lock);
        if (r == 0)
                log_info("create of %s refused after its file was made: removed it again", path);
        else
                log_warning("create of %s refused after its file was made; it stays: %s", path,
                            r == -ESTALE ? "the name leads to another file now" : g_strerror(-r));
}

/* The trail's line for @pending (mailbags_trail), just before it is
 * answered (@result 0 or the -errno it gets). @claim, when given, names
 * the process already (its lease needed it). */
static void pending_open_trail(Mailbagfs *fs, const PendingOpen *pending, const Claim *claim,
                               const char *outcome, const char *protocol, int result)
{
        MailbagsEvent event = {
                .op = pending->creating ? "create" : "open",
                .relpath = pending->path,
                .flags = pending->fi.flags,
                .thread_id = pending->thread_id,
                .caller = claim ? claim_caller(claim) : NULL,
                .uid = pending->uid,
                .protocol = protocol,
                .outcome = outcome,
                .waited_ms = pending->waited ? (g_get_monotonic_time() - pending->start_us) / 1000
                                             : -1,
                .result = result,
        };
        mailbags_trail(&fs->mailbags, &event);
}

/* The claim is settled (@result 0: go ahead): do the open and answer.
 * Runs on the FUSE worker that took the request when the claim needed no
 * wait, and otherwise on whichever thread settled the wait: a worker
 * handling another client's RELEASE, UNLINK or interrupt, a lease
 * manager's watch thread (a timeout, a dead holder, a remote retry), or
 * the thread that stops the daemon. It takes no lock that such a thread
 * may hold (HACKING.md, lock order), and the lease manager calls it
 * without its mutex. */
static void pending_open_finish(PendingOpen *pending, Claim *claim, int result)
{
        fuse_req_t req = pending->req;
        Mailbagfs *fs = ops_fs(req);
        OpsOp op = pending->creating ? OPS_CREATE : OPS_OPEN;

        if (result < 0) {
                pending_open_trail(fs, pending, NULL, "refused", NULL, result);
                ops_reply_status(req, op, result);
                return;
        }
        const char *outcome = claim ? claim_outcome(claim, pending->waited) : "none";
        g_autofree char *protocol = claim ? g_strdup(claim_protocol(claim)) : NULL;
        struct fuse_entry_param entry;
        bool made = false;
        /* A create answered before its lease (a deferred claim) may make
         * its file, never open one that is there: the file was made after
         * the kernel looked the name up (by another node, or on the share),
         * and its maker may hold it; the program's O_TRUNC would empty it
         * under that hold. ESTALE makes the kernel look the name up again
         * and send an open, which waits in line. */
        bool new_only = pending->creating && claim_is_deferred(claim);
        int fd = pending->creating
                         ? file_create_backing(fs, req, pending->ino, pending->name, pending->mode,
                                               pending->fi.flags, new_only, &entry, &made)
                         : file_open_backing(fs, pending->ino, pending->path, pending->fi.flags);
        if (fd == -EEXIST && new_only && !(pending->fi.flags & O_EXCL)) {
                log_info("create of %s: the file appeared after its name was looked up, while "
                         "this program's lease waits; the kernel looks it up again and opens it "
                         "in line",
                         pending->path);
                fd = -ESTALE;
        }
        if (fd < 0) {
                claim_cancel(&fs->mailbags, claim);
                pending_open_trail(fs, pending, NULL, outcome, protocol, fd);
                ops_reply_status(req, op, fd);
                return;
        }
        int r = claim_confirm(&fs->mailbags, &claim, pending->creating ? pending->ino : 0, fd);
        if (r < 0) {
                if (pending->creating) {
                        inode_table_forget(fs->inodes, entry.ino, 1);
                        if (made)
                                file_create_undo(fs, pending->ino, pending->name, pending->path, fd);
                }
                close(fd);
                pending_open_trail(fs, pending, NULL, "refused", protocol, r);
                ops_reply_status(req, op, r);
                return;
        }
        /* A create is never kept waiting (the kernel holds its folder):
         * by a program whose lease is still deferred, it is answered, but
         * the file is that program's only once its lease comes. */
        pid_t held_back =
                pending->creating ? claim_deferred_process(&fs->mailbags, pending->thread_id) : 0;
        /* Written before the answer: every open a program saw succeed is
         * in the trail by then. */
        pending_open_trail(fs, pending, claim, outcome, protocol, 0);
        open_file_reply(req, pending->ino, fd, &pending->fi, pending->creating ? &entry : NULL,
                        claim, mailbags_is_message_file(&fs->mailbags, pending->path), held_back);
}

static void pending_open_ready(void *opaque, Claim *claim, int result)
{
        PendingOpen *pending = opaque;
        pending->claim = claim;
        if (!wait_handshake_settled(&pending->handshake, result))
                return;
        pending_open_finish(pending, claim, result);
        pending_open_free(pending);
}

static void claim_wait_interrupted(fuse_req_t req, void *data)
{
        /* Only the wait id is used: it stays valid after completion, and
         * withdrawing a settled wait does nothing. */
        claim_interrupt(&ops_fs(req)->mailbags, (uint64_t)(uintptr_t)data);
}

/* Runs @pending under its claim: at once, or when the claim is granted,
 * times out or the client gives up. Takes ownership of @pending. */
static void pending_open_start(PendingOpen *pending)
{
        Mailbagfs *fs = ops_fs(pending->req);
        ClaimRequest request = {
                .relpath = pending->path,
                .flags = pending->fi.flags,
                .creating = pending->creating,
                .thread_id = fuse_req_ctx(pending->req)->pid,
                .ready = pending_open_ready,
                .opaque = pending,
        };
        Claim *claim = NULL;
        uint64_t wait_id = 0;
        int r = claim_begin(&fs->mailbags, &request, &claim, &wait_id);
        if (r != CLAIM_PENDING) {
                pending_open_finish(pending, claim, r);
                pending_open_free(pending);
                return;
        }
        pending->waited = true;

        /* @claim may be settled, even freed, by now: only the id is used. */
        log_debug("%s %s waits for its lease", pending->creating ? "create" : "open",
                  pending->path);
        fuse_req_interrupt_func(pending->req, claim_wait_interrupted, (void *)(uintptr_t)wait_id);
        int result = 0;
        if (wait_handshake_registered(&pending->handshake, &result)) {
                pending_open_finish(pending, pending->claim, result);
                pending_open_free(pending);
        }
}

static PendingOpen *pending_open_new(fuse_req_t req, bool creating, fuse_ino_t ino,
                                     struct fuse_file_info *fi)
{
        PendingOpen *pending = g_new0(PendingOpen, 1);
        pending->req = req;
        pending->creating = creating;
        pending->ino = ino;
        pending->fi = *fi;
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        pending->thread_id = ctx->pid;
        pending->uid = ctx->uid;
        pending->start_us = g_get_monotonic_time();
        g_mutex_init(&pending->handshake.mutex);
        return pending;
}

void ops_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        Mailbagfs *fs = ops_fs(req);
        int error = 0;
        g_autofree char *path = ops_node_path(fs, ino, &error);
        if (!path && error == -ENOENT) {
                int fd = file_reopen_unlinked(fs, ino, fi->flags);
                if (fd < 0)
                        ops_reply_status(req, OPS_OPEN, fd);
                else
                        open_file_reply(req, ino, fd, fi, NULL, NULL, false, 0);
                return;
        }
        if (!path) {
                ops_reply_status(req, OPS_OPEN, error);
                return;
        }
        PendingOpen *pending = pending_open_new(req, false, ino, fi);
        pending->path = g_steal_pointer(&path);
        pending_open_start(pending);
}

void ops_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                struct fuse_file_info *fi)
{
        if (ops_name_reserved(name)) {
                ops_reply_status(req, OPS_CREATE, -EACCES);
                return;
        }
        Mailbagfs *fs = ops_fs(req);
        int error = 0;
        g_autofree char *path = inode_table_child_path(fs->inodes, parent, name, &error);
        if (!path) {
                ops_reply_status(req, OPS_CREATE, error);
                return;
        }
        PendingOpen *pending = pending_open_new(req, true, parent, fi);
        pending->path = g_steal_pointer(&path);
        pending->name = g_strdup(name);
        pending->mode = mode;
        pending_open_start(pending);
}

/* Answers a read of @file. */
static void file_read(fuse_req_t req, OpenFile *file, size_t size, off_t off)
{
        /* Hand the descriptor to libfuse, which splices when it can. A
         * mailbag or global file another node may have rewritten: the
         * backing filesystem's page cache (a cluster client's keeps pages
         * across opens) must not answer with what this node read before.
         * A local filesystem's page cache is the file itself. */
        if (file->shared && !backing_file_is_local(&ops_fs(req)->backing, file->id.dev))
                posix_fadvise(file->fd, 0, 0, POSIX_FADV_DONTNEED);
        struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
        buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        buf.buf[0].fd = file->fd;
        buf.buf[0].pos = off;
        fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

/* What the kernel does itself on a write through its cache: a write by
 * anyone but root takes set-user-ID away, and set-group-ID when group
 * execute is set. On a direct-I/O handle the kernel asks the filesystem
 * to (a write flag libfuse 3.14 does not pass on): done here, before the
 * write, for every writer but root. A file seen without such bits since
 * the last chmod that gave some is not looked at again. 0 or -errno. */
static int file_drop_privileges(Mailbagfs *fs, OpenFile *file, uid_t uid)
{
        if ((file->io != INODE_IO_DIRECT && file->io != INODE_IO_DAEMON) || uid == 0)
                return 0;
        if (atomic_load(&file->privileges_checked) == atomic_load(&fs->privileges_given))
                return 0;
        /* A chmod through the mount waits: the mode looked at is the one
         * changed, and the owner's own chmod is not undone. */
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&fs->privileges_lock);
        uint_fast64_t given = atomic_load(&fs->privileges_given);
        struct stat st;
        if (fstat(file->fd, &st) < 0)
                return -errno;
        mode_t drop = st.st_mode & S_ISUID;
        if ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
                drop |= S_ISGID;
        if (drop && fchmod(file->fd, st.st_mode & 07777 & ~drop) < 0)
                return -errno;
        atomic_store(&file->privileges_checked, given);
        return 0;
}

/* Answers a write of @bufv to @file. */
static void file_write(fuse_req_t req, OpenFile *file, struct fuse_bufvec *bufv, off_t off)
{
        int r = file_drop_privileges(ops_fs(req), file, fuse_req_ctx(req)->uid);
        if (r < 0) {
                ops_reply_status(req, OPS_WRITE, r);
                return;
        }
        struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(bufv));
        out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        out.buf[0].fd = file->fd;
        out.buf[0].pos = off;

        ssize_t written = fuse_buf_copy(&out, bufv, 0);
        if (written < 0)
                ops_reply_status(req, OPS_WRITE, (int)written);
        else
                fuse_reply_write(req, (size_t)written);
}

/* A read or write of a file created by a program whose lease was still
 * deferred (open_file_reply's @held_back), waiting for that lease. The
 * handle outlives it: the kernel releases a file only after every request
 * made through it was answered. */
typedef struct {
        fuse_req_t req;
        OpenFile *file;
        bool write;
        size_t size;
        off_t off;
        void *data; /* a write's bytes, copied: the request's buffer is libfuse's */
        WaitHandshake handshake;
} HeldBackIo;

static void held_back_io_free(HeldBackIo *io)
{
        g_mutex_clear(&io->handshake.mutex);
        g_free(io->data);
        g_free(io);
}

static void held_back_io_finish(HeldBackIo *io, int result)
{
        if (result < 0) {
                ops_reply_status(io->req, io->write ? OPS_WRITE : OPS_READ, result);
        } else {
                /* The lease came: the handle's later requests go straight on. */
                atomic_store(&io->file->held_back, 0);
                if (io->write) {
                        struct fuse_bufvec in = FUSE_BUFVEC_INIT(io->size);
                        in.buf[0].mem = io->data;
                        file_write(io->req, io->file, &in, io->off);
                } else {
                        file_read(io->req, io->file, io->size, io->off);
                }
        }
        held_back_io_free(io);
}

static void held_back_io_ready(void *opaque, int result)
{
        HeldBackIo *io = opaque;
        if (wait_handshake_settled(&io->handshake, result))
                held_back_io_finish(io, result);
}

/* Whether the read (@bufv NULL) or write of @file waits for the deferred
 * lease it is held back by: then it is answered when that lease comes (or
 * with EINTR when the program gives up first), else at once by the
 * caller. */
static bool file_held_back(fuse_req_t req, OpenFile *file, size_t size, off_t off,
                           struct fuse_bufvec *bufv)
{
        pid_t pid = atomic_load(&file->held_back);
        if (pid == 0)
                return false;
        HeldBackIo *io = g_new0(HeldBackIo, 1);
        io->req = req;
        io->file = file;
        io->write = bufv != NULL;
        io->size = bufv ? fuse_buf_size(bufv) : size;
        io->off = off;
        g_mutex_init(&io->handshake.mutex);
        if (bufv) {
                /* Copied before the wait can end on another thread. */
                io->data = g_malloc(io->size);
                struct fuse_bufvec copy = FUSE_BUFVEC_INIT(io->size);
                copy.buf[0].mem = io->data;
                ssize_t copied = fuse_buf_copy(&copy, bufv, 0);
                if (copied < 0) {
                        ops_reply_status(req, OPS_WRITE, (int)copied);
                        held_back_io_free(io);
                        return true;
                }
                io->size = (size_t)copied;
        }
        uint64_t wait_id = 0;
        int r = claim_await_deferred(&ops_fs(req)->mailbags, pid, io->write ? "write" : "read",
                                     NULL, held_back_io_ready, io, &wait_id);
        if (r != CLAIM_PENDING) {
                atomic_store(&file->held_back, 0);
                held_back_io_free(io);
                return false;
        }
        fuse_req_interrupt_func(req, claim_wait_interrupted, (void *)(uintptr_t)wait_id);
        int result = 0;
        if (wait_handshake_registered(&io->handshake, &result))
                held_back_io_finish(io, result);
        return true;
}

void ops_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
        if (!file_held_back(req, ops_open_file(fi), size, off, NULL))
                file_read(req, ops_open_file(fi), size, off);
}

void ops_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
                   struct fuse_file_info *fi)
{
        if (!file_held_back(req, ops_open_file(fi), 0, off, bufv))
                file_write(req, ops_open_file(fi), bufv, off);
}

void ops_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        /* Marked before close() returns, so an open made after it waits for
         * the release that follows instead of being refused. */
        claim_closing(&ops_fs(req)->mailbags, ops_open_file(fi)->claim, fuse_req_ctx(req)->pid);
        /* A close() of any descriptor of the file ends the closing
         * process's byte-range locks on it, as on a local filesystem; the
         * kernel names that process's lock owner. */
        byte_locks_owner_closed(ops_fs(req)->mailbags.byte_locks, ops_open_file(fi)->id.dev,
                                ops_open_file(fi)->id.ino, fi->lock_owner);
        /* A client's close() flushes; closing a duplicate gives the backing
         * filesystem (NFS, CIFS) its close-time write-back and errors. A
         * local one has neither. */
        int r = 0;
        if (!backing_file_is_local(&ops_fs(req)->backing, ops_open_file(fi)->id.dev)) {
                int dup_fd = fd_dup(ops_open_file(fi)->fd);
                r = dup_fd < 0 ? -errno : close(dup_fd) < 0 ? -errno : 0;
        }
        ops_reply_status(req, OPS_FLUSH, r);
}

void ops_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        Mailbagfs *fs = ops_fs(req);
        OpenFile *file = ops_open_file(fi);
        /* Its flock, and the OFD locks taken through it, end with it. A
         * handle that never locked has none: the lock module's mutex,
         * which the client's next lock request may want already, is left
         * alone. */
        if (atomic_load(&file->locked))
                byte_locks_handle_released(ops_fs(req)->mailbags.byte_locks, file->fd, fi->fh);
        file_handle_closed(req, file);
        close(file->fd);
        claim_release(&fs->mailbags, file->claim);
        g_free(file);
        ops_reply_status(req, OPS_RELEASE, 0);
}

void ops_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        int fd = ops_open_file(fi)->fd;
        int r = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
        ops_reply_status(req, OPS_FSYNC, r);
}

void ops_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                   struct fuse_file_info *fi)
{
        int r = fallocate(ops_open_file(fi)->fd, mode, offset, length) < 0 ? -errno : 0;
        ops_reply_status(req, OPS_FALLOCATE, r);
}

void ops_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
        off_t result = lseek(ops_open_file(fi)->fd, off, whence);
        if (result < 0)
                ops_reply_status(req, OPS_LSEEK, -errno);
        else
                fuse_reply_lseek(req, result);
}

void ops_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                         struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                         struct fuse_file_info *fi_out, size_t len, int flags)
{
        ssize_t copied = copy_file_range(ops_open_file(fi_in)->fd, &off_in,
                                         ops_open_file(fi_out)->fd, &off_out, len,
                                         (unsigned)flags);
        if (copied < 0)
                ops_reply_status(req, OPS_COPY_FILE_RANGE, -errno);
        else
                fuse_reply_write(req, (size_t)copied);
}

/* Locks. A blocking request that must wait is parked in the lock module
 * and answered from its thread: no worker waits. The interrupt callback is
 * registered before the wait is armed, so an answer never races with the
 * registration; the callback passes only the waiter id, which stays
 * harmless after the wait ended, and never answers itself (libfuse holds
 * the request's lock while it runs). */


/* Who asks: @path receives the file's path when @naming (for the status
 * of a lock being taken; caller frees). */
static ByteLockRequest lock_request(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                                    bool naming, char **path)
{
        if (naming) {
                int error = 0;
                *path = ops_node_path(ops_fs(req), ino, &error);
        }
        return (ByteLockRequest){
                .fd = ops_open_file(fi)->fd,
                .dev = ops_open_file(fi)->id.dev,
                .ino = ops_open_file(fi)->id.ino,
                .handle = fi->fh,
                .owner = fi->lock_owner,
                .thread_id = fuse_req_ctx(req)->pid,
                .path = naming ? *path : NULL,
        };
}

static void lock_wait_done(void *opaque, int result)
{
        ops_reply_status(opaque, OPS_SETLK, result);
}

static void lock_wait_interrupted(fuse_req_t req, void *data)
{
        byte_locks_cancel(ops_fs(req)->mailbags.byte_locks, (uint64_t)(uintptr_t)data);
}

/* Answers @r, or leaves a parked request to the lock module. */
static void lock_reply(fuse_req_t req, OpsOp op, int r, uint64_t waiter_id)
{
        if (r != BYTE_LOCKS_PENDING) {
                ops_reply_status(req, op, r);
                return;
        }
        fuse_req_interrupt_func(req, lock_wait_interrupted, (void *)(uintptr_t)waiter_id);
        /* From here on the request belongs to the lock module. */
        byte_locks_arm(ops_fs(req)->mailbags.byte_locks, waiter_id);
}

void ops_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock)
{
        if (!ops_fs(req)->mailbags.byte_locks) {
                ops_reply_status(req, OPS_GETLK, -ENOLCK);
                return;
        }
        ByteLockRequest who = lock_request(req, ino, fi, false, NULL);
        struct flock result = *lock;
        int r = byte_locks_test(ops_fs(req)->mailbags.byte_locks, &who, &result);
        if (r < 0)
                ops_reply_status(req, OPS_GETLK, r);
        else
                fuse_reply_lock(req, &result);
}

void ops_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock,
               int sleep)
{
        if (!ops_fs(req)->mailbags.byte_locks) {
                ops_reply_status(req, OPS_SETLK, -ENOLCK);
                return;
        }
        g_autofree char *path = NULL;
        ByteLockRequest who = lock_request(req, ino, fi, lock->l_type != F_UNLCK, &path);
        atomic_store(&ops_open_file(fi)->locked, true);
        uint64_t waiter_id = 0;
        int r = byte_locks_set(ops_fs(req)->mailbags.byte_locks, &who, lock, sleep != 0, lock_wait_done, req,
                               &waiter_id);
        lock_reply(req, OPS_SETLK, r, waiter_id);
}

void ops_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
        if (!ops_fs(req)->mailbags.byte_locks) {
                ops_reply_status(req, OPS_FLOCK, -ENOLCK);
                return;
        }
        g_autofree char *path = NULL;
        ByteLockRequest who = lock_request(req, ino, fi, (op & ~LOCK_NB) != LOCK_UN, &path);
        atomic_store(&ops_open_file(fi)->locked, true);
        uint64_t waiter_id = 0;
        int r = byte_locks_flock(ops_fs(req)->mailbags.byte_locks, &who, op, lock_wait_done, req, &waiter_id);
        lock_reply(req, OPS_FLOCK, r, waiter_id);
}
