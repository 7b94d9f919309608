/* ops.h - helpers shared by the request handlers (ops-*.c).
 *
 * Handlers are thin: they resolve the node to a backing path or descriptor,
 * make one or two system calls, and answer through one of the reply helpers
 * below, which log failures at debug level.
 */
#pragma once

#include <fuse_lowlevel.h>

#include <string.h>

#include "claims.h"
#include "byte-locks.h"
#include "cluster.h"
#include "fd-util.h"
#include "daemon.h"

static inline Mailbagfs *ops_fs(fuse_req_t req)
{
        return fuse_req_userdata(req);
}

/* Mailbag files (.KEY, .MBG) and global files (.GLB) are rewritten in
 * place by whoever holds their lease, which may be a program on another
 * daemon's mount of the share (a cluster node) or on the backing store:
 * the kernel must not answer for them from its caches. Their attributes
 * are never cached and they are opened with direct I/O, so a size or a
 * record read after a lease is granted is the backing store's. Going by
 * the name alone errs on the side of fresh data. */
static inline bool ops_name_is_shared(const char *name)
{
        const char *dot = strrchr(name, '.');
        return dot && (g_ascii_strcasecmp(dot, ".KEY") == 0 || g_ascii_strcasecmp(dot, ".MBG") == 0 ||
                       g_ascii_strcasecmp(dot, ".GLB") == 0);
}

/* Whether @ino is a folder (the status attributes differ). */
bool ops_node_is_folder(Mailbagfs *fs, fuse_ino_t ino);

/* How long the kernel may cache @ino's attributes. */
double ops_attr_timeout(Mailbagfs *fs, fuse_ino_t ino);

/* The daemon's own lease file (cluster.h) and trail folder (trail.h) are
 * not the clients': they are hidden in every folder, and no client may
 * make a file of their names. */
static inline bool ops_name_reserved(const char *name)
{
        /* In any case: the backing store may fold case (CIFS, casefolded
         * ext4). */
        return g_ascii_strcasecmp(name, CLUSTER_FILE) == 0 ||
               g_ascii_strcasecmp(name, PO_STATUS_TRAIL_DIR) == 0;
}

/* An open file: the descriptor on the backing store, and the lease
 * reference the handle keeps alive, if any. */
typedef struct {
        int fd;
        fuse_ino_t ino;
        InodeBackingId id; /* the backing file @fd is (the node's) */
        Claim *claim; /* the lease the handle carries, released with it; or NULL */
        bool shared;  /* a mailbag or global file: read past every cache */
        /* How its reads and writes go (inode.h): direct and daemon ones
         * bypass the kernel's cache and reach the daemon. */
        InodeIo io;
        int backing_id; /* the node's passthrough backing id, when io says so */
        /* A byte-range lock or flock was asked through the handle: its
         * release must tell the lock module (set before the module is
         * called, read at the release, which no request of it outlives). */
        atomic_bool locked;
        /* Mailbagfs.privileges_given when the file was last seen with no
         * set-user-ID or set-group-ID bit a write must take away;
         * OPEN_FILE_UNCHECKED before that. */
        atomic_uint_fast64_t privileges_checked;
        /* The process whose deferred lease this handle's reads and writes
         * wait for (a file it created before that lease came), 0 when
         * none or no longer. */
        atomic_int held_back;
} OpenFile;

#define OPEN_FILE_UNCHECKED UINT64_MAX

static inline OpenFile *ops_open_file(const struct fuse_file_info *fi)
{
        return (OpenFile *)(uintptr_t)fi->fh;
}

typedef enum {
        OPS_COPY_FILE_RANGE,
        OPS_CREATE,
        OPS_FALLOCATE,
        OPS_FLOCK,
        OPS_FLUSH,
        OPS_FSYNC,
        OPS_FSYNCDIR,
        OPS_GETATTR,
        OPS_GETLK,
        OPS_GETXATTR,
        OPS_IOCTL,
        OPS_LINK,
        OPS_LISTXATTR,
        OPS_LOOKUP,
        OPS_LSEEK,
        OPS_MKDIR,
        OPS_MKNOD,
        OPS_OPEN,
        OPS_OPENDIR,
        OPS_READ,
        OPS_READDIR,
        OPS_READLINK,
        OPS_RELEASE,
        OPS_RELEASEDIR,
        OPS_REMOVEXATTR,
        OPS_RENAME,
        OPS_RMDIR,
        OPS_SETATTR,
        OPS_SETLK,
        OPS_SETXATTR,
        OPS_STATFS,
        OPS_SYMLINK,
        OPS_UNLINK,
        OPS_WRITE,
        OPS_COUNT,
} OpsOp;

/* "getattr", "rename"...: the request's name, for logs. */
const char *ops_op_name(OpsOp op);

/* Answers @status (0 or -errno) to a request that returns no data. A
 * request addressed to a node (getattr, setattr, readlink, open, opendir,
 * the xattr calls) never answers ENOENT: see ops_node_status. */
void ops_reply_status(fuse_req_t req, OpsOp op, int status);

/* @status as request @op answers it: -ESTALE for -ENOENT when @op is
 * addressed to a node whose backing name is gone, else @status. */
int ops_node_status(OpsOp op, int status);

/* Answers an entry for @name in @dirfd (a lookup or a creation). */
void ops_reply_entry(fuse_req_t req, OpsOp op, fuse_ino_t parent, int dirfd,
                     const char *name);

/* Fills @entry for @name in @dirfd and counts a kernel reference. */
int ops_make_entry(Mailbagfs *fs, fuse_ino_t parent, int dirfd, const char *name,
                   struct fuse_entry_param *entry);

/* The backing path of @ino (caller frees) or NULL and -errno in @error. */
char *ops_node_path(Mailbagfs *fs, fuse_ino_t ino, int *error);

/* fstat() of @fd, a descriptor of node @ino, with the link count the
 * kernel expects (inode_table_link_count_for_kernel): what an attribute
 * reply for an open file carries. 0 or a negative errno. */
int ops_file_stat(Mailbagfs *fs, fuse_ino_t ino, int fd, struct stat *st);

/* An O_PATH|O_NOFOLLOW descriptor of @ino, checked to be the file the
 * kernel means (-ESTALE if the backing name now holds another file); @st
 * receives its attributes. For an unlinked file that is still open, a
 * duplicate of its open descriptor. */
int ops_node_open(Mailbagfs *fs, fuse_ino_t ino, struct stat *st);

/* -ESTALE unless @st is the backing file of @ino. */
int ops_node_verify(Mailbagfs *fs, fuse_ino_t ino, const struct stat *st);
/* The same for a node whose key is at hand. */
bool ops_key_is(const InodeKey *key, const struct stat *st);

/* The one answer for "this node's backing name is gone or leads elsewhere
 * now": -ESTALE, so the kernel walks the path again and finds the current
 * file, or answers ENOENT for the name as a local filesystem would. That
 * is -ENOENT from a walk of the node table's path, and, when the request
 * opens the node itself (@opening_node: open, opendir), -ELOOP: a symlink
 * now stands at its name, which the kernel, not the daemon, may follow.
 * A lookup or a change below a folder that became a symlink keeps ELOOP.
 * Any other status is returned as it is. */
int ops_walk_again(int status, bool opening_node);

/* Open-and-verify: @fd was just opened by the path the node table gives
 * @ino, under the names lock (a negative errno is returned as it is).
 * Returns it when it is the backing file of @ino, with its attributes in
 * @st; otherwise closes it and returns -errno (-ESTALE when the name holds
 * another file now). */
int ops_node_check(Mailbagfs *fs, fuse_ino_t ino, int fd, struct stat *st);

/* An O_PATH descriptor of node @ino, checked like ops_node_open() when
 * opened, in .fd (or -errno there); the node cache's (node-cache.h) while
 * fresh. Released with node_ref_release (autorelease_node). */
NodeRef ops_node_ref(Mailbagfs *fs, fuse_ino_t ino);

/* @error of a call made in @dir, folder node @ino's descriptor: ESTALE
 * instead of ENOENT when @dir was a kept descriptor of a folder since
 * removed (the folder may have been made again under its name, outside
 * the mount): the kernel then looks the name up again. */
int ops_dir_gone(Mailbagfs *fs, fuse_ino_t ino, const NodeRef *dir, int error);

/* The kept descriptor (node-cache.h) of the folder holding @ino's last
 * name, that name in *@name (caller frees; NULL for the root and a node
 * with no name left) and, when it has one, the node's key in @key; .fd is
 * -1 when the folder is not kept. The caller holds the names lock, so that
 * name and folder go together. */
NodeRef ops_kept_folder_of(Mailbagfs *fs, fuse_ino_t ino, char **name, InodeKey *key);

/* The attributes of node @ino, as ops_node_open() gives them, without a
 * descriptor: through its folder's cached descriptor when there is one.
 * 0 or -errno. */
int ops_node_stat(Mailbagfs *fs, fuse_ino_t ino, struct stat *st);

/* An O_PATH descriptor of directory @ino, checked like ops_node_open()
 * when opened (-ESTALE if its name now holds another directory), in
 * .fd (or -errno there); the folder cache's (node-cache.h) while fresh.
 * Released with node_ref_release (autorelease_node). */
NodeRef ops_dir_open(Mailbagfs *fs, fuse_ino_t ino);

/* Between begin and end, files this thread creates belong to the caller
 * of @req (its uid, and its gid unless a set-group-id directory decides),
 * with the daemon's capabilities kept: the kernel has checked permissions
 * already. Nothing changes when the daemon is not root or the caller is.
 * Creating the file owned instead of chowning it afterwards leaves no
 * moment at which its name could be swapped for another file to give
 * away. begin returns 0 or -errno (then nothing changed); end keeps
 * errno. */
typedef struct {
        bool switched;
} OpsCaller;
int ops_as_caller_begin(Mailbagfs *fs, fuse_req_t req, OpsCaller *saved);
void ops_as_caller_end(OpsCaller *saved);

/* Before @name of @parent (open as @dirfd) is unlinked or renamed over: an
 * O_PATH descriptor of it for inode_table_unlinked/renamed when the kernel
 * holds its node, else -1: the node cache's descriptor of the node, taken
 * out of the cache, when it has one no request uses; else one opened by
 * the name. */
int ops_victim_open(Mailbagfs *fs, fuse_ino_t parent, int dirfd, const char *name);

/* The handlers, in ops-entry.c, ops-attr.c, ops-file.c and ops-dir.c. */
void ops_init(void *userdata, struct fuse_conn_info *conn);
void ops_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void ops_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void ops_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void ops_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void ops_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void ops_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void ops_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void ops_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void ops_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void ops_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                const char *newname, unsigned int flags);
void ops_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ops_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                 struct fuse_file_info *fi);
void ops_readlink(fuse_req_t req, fuse_ino_t ino);
void ops_statfs(fuse_req_t req, fuse_ino_t ino);
void ops_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                  size_t size, int flags);
void ops_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void ops_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void ops_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void ops_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ops_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                struct fuse_file_info *fi);
void ops_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void ops_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
                   struct fuse_file_info *fi);
void ops_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ops_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ops_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void ops_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                   struct fuse_file_info *fi);
void ops_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
void ops_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock);
void ops_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock,
               int sleep);
void ops_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);
void ops_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                         struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                         struct fuse_file_info *fi_out, size_t len, int flags);
void ops_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ops_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void ops_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ops_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
/* PO_FREEZE_IOCTL on a postoffice folder, by root (freeze.h); nothing else. */
void ops_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
               struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
               size_t out_bufsz);
