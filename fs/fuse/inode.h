/* inode.h - the kernel's inodes, known by name, holding no descriptors.
 *
 * The kernel refers to files by node id. Each node remembers the backing
 * (dev, ino), its type and the names (parent node + entry name) under which
 * the kernel looked it up; its path is rebuilt from those names when an
 * operation needs it. No file descriptor is kept per node, so the daemon's
 * descriptors are bounded by the files clients hold open, however many
 * files the postoffice has (node-cache.h keeps a bounded few of the nodes
 * served lately, apart from this table).
 *
 * A node lives while the kernel holds a lookup count on it or while one of
 * its names is the parent of another living node. Node ids are never
 * reused during a mount.
 */
#pragma once

#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdbool.h>
#include <sys/stat.h>

typedef struct InodeTable InodeTable;

/* Which backing file a node is. */
typedef struct {
        dev_t dev;
        ino_t ino;
} InodeBackingId;

/* An immutable view of a node, safe to use without the table lock. */
typedef struct {
        fuse_ino_t nodeid;
        InodeBackingId backing;
        mode_t type; /* S_IFMT bits */
        /* Its first name is a mailbag or global file (ops_name_is_shared):
         * the kernel must not cache its attributes or data. */
        bool shared;
} InodeKey;

InodeTable *inode_table_new(const struct stat *root_st);
void inode_table_free(InodeTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(InodeTable, inode_table_free)

/* Fills @key for @nodeid; -ESTALE when the node is unknown (a confused or
 * hostile kernel request must not crash the daemon). */
int inode_table_key(InodeTable *table, fuse_ino_t nodeid, InodeKey *key);

/* The node's path relative to the backing root ("" for the root), or NULL
 * with -ENOENT in @error when the node has no name left (unlinked): the
 * handlers answer that ESTALE for a request addressed to the node itself
 * and ENOENT for a name in it (a removed directory). */
char *inode_table_path(InodeTable *table, fuse_ino_t nodeid, int *error);

/* The node's most recent name (the one its path ends with), with, read
 * under the same lock, the node's key in @key and the key of the folder
 * node it is in in @parent (either may be NULL); NULL for the root and for
 * a node with no name left (caller frees). */
char *inode_table_last_name(InodeTable *table, fuse_ino_t nodeid, InodeKey *key, InodeKey *parent);

/* The path of entry @name in directory @parent. */
char *inode_table_child_path(InodeTable *table, fuse_ino_t parent, const char *name, int *error);

/* A lookup of @name in @parent found @st: returns the node id for it and
 * counts one kernel reference. */
fuse_ino_t inode_table_remember(InodeTable *table, fuse_ino_t parent, const char *name,
                                const struct stat *st, bool shared);

/* The kernel dropped @nlookup references. */
void inode_table_forget(InodeTable *table, fuse_ino_t nodeid, uint64_t nlookup);

/* Whether the kernel holds the node that @name of @parent names (filling
 * @key with it): only then is it worth opening the file before removing
 * that name (see below). */
bool inode_table_child_held(InodeTable *table, fuse_ino_t parent, const char *name,
                            InodeKey *key);

/* The link count the kernel expects in an attribute reply. The kernel
 * lowers its cached count of a file by one when the reply to an unlink (or
 * a rename over it) reaches the caller; an attribute reply read after the
 * backing name went but applied before that would lower it a second time,
 * and a count of 0 makes the kernel itself refuse link() with ENOENT. So,
 * from the removal until the kernel has lowered its count, replies count
 * the removed name still. inode_table_removal_begin() is called, under the
 * lock that orders removals against attribute reads, once @name of @parent
 * is removed from the backing store; it returns the node to pass to
 * inode_table_removal_answered() (0: none, a directory or a node the
 * kernel does not know). The caller knows when the kernel is done: for a
 * file that keeps other names, after the removing request has left the
 * folder's lock in the kernel (ops-entry.c); otherwise once the reply is
 * sent, as a count of 0 cannot go lower. */
fuse_ino_t inode_table_removal_begin(InodeTable *table, fuse_ino_t parent, const char *name);
void inode_table_removal_answered(InodeTable *table, fuse_ino_t nodeid);

/* Waits, at most @timeout_us, until no removal of a name of @nodeid is
 * left unanswered: an attribute request made after an unlink() returned
 * (a stat of the file's other name) then gets the count the backing store
 * has, not one more. A wait that runs out (the kernel's folder lock held
 * by another request for longer) leaves the count one higher, which is
 * safe. */
void inode_table_removals_wait(InodeTable *table, fuse_ino_t nodeid, gint64 timeout_us);
/* Adds to @st->st_nlink the removals of @nodeid not yet answered. */
void inode_table_link_count_for_kernel(InodeTable *table, fuse_ino_t nodeid, struct stat *st);

/* Entry @name of @parent was removed from the backing store. @victim_fd
 * (may be NULL or point to -1) is an O_PATH descriptor of the removed file,
 * had before the removal (ops_victim_open): if the node lost its last name
 * while the kernel still holds it, the node takes the descriptor (and sets
 * *victim_fd to -1), so it stays reachable until the kernel forgets it, as
 * a local filesystem's unlinked inode does. @victim_st is the remover's fstat of
 * it after the removal (NULL: not looked at; looked at here). */
void inode_table_unlinked(InodeTable *table, fuse_ino_t parent, const char *name,
                          int *victim_fd, const struct stat *victim_st);

/* Entry @name of @parent is now @newname of @newparent; with RENAME_EXCHANGE
 * the two entries swapped. @victim_fd and @victim_st: as for
 * inode_table_unlinked, the file that @newname named before, which the
 * rename removed. */
void inode_table_renamed(InodeTable *table, fuse_ino_t parent, const char *name,
                         fuse_ino_t newparent, const char *newname, unsigned flags,
                         int *victim_fd, const struct stat *victim_st);

/* Open files of a node: an unlinked file that a client still holds open
 * has no path, and the kernel asks for its attributes by node alone
 * (fstat, fchmod), so such requests go through one of its descriptors.
 *
 * They also decide how each handle's reads and writes go, which the kernel
 * checks per node: through its page cache (cached), straight to the
 * daemon (direct), or, where libfuse and the kernel have it, straight to
 * the backing file by the kernel itself (passthrough: no request reaches
 * the daemon). While the kernel passes one handle of a node through, it
 * fails (EIO) any open of that node that is not passed through too, by
 * the same backing id; while it has a cached handle of it, it fails a
 * passthrough open. So the table keeps, per node, its cached and
 * passthrough handles and the backing id they share, registered by the
 * first and given back after the last. */
typedef enum {
        INODE_IO_CACHED,
        INODE_IO_DIRECT,
        /* Direct, and every read and write must reach the daemon (it waits
         * there): never passed through. */
        INODE_IO_DAEMON,
        INODE_IO_PASSTHROUGH,
} InodeIo;

/* Registers @fd with the kernel for passthrough: a backing id > 0, or
 * -errno (the open then goes on without). */
typedef int (*InodeBackingOpenFn)(void *opaque, int fd);

/* A handle of @nodeid was opened as @fd. *@io is how its reads and writes
 * would go; INODE_IO_PASSTHROUGH asks for passthrough, which
 * @backing_open (NULL: none) registers for the node's first such handle.
 * *@io is set to how they will go: passthrough, with the node's backing
 * id in *@backing_id, whenever the node has a handle passed through
 * already, and asked for only when it has no cached one; otherwise as
 * asked, or cached/direct when passthrough was asked for and not given.
 * -EBUSY, recording nothing, for INODE_IO_DAEMON while the node has a
 * handle passed through. */
int inode_table_file_opened(InodeTable *table, fuse_ino_t nodeid, int fd, InodeIo *io,
                            int *backing_id, InodeBackingOpenFn backing_open, void *opaque);
/* The handle opened as @fd with @io was released: true when it was the
 * node's last one passed through, whose backing id the caller gives back
 * to the kernel. */
bool inode_table_file_closed(InodeTable *table, fuse_ino_t nodeid, int fd, InodeIo io);
/* A duplicate of one of the node's open descriptors, or -ENOENT. */
int inode_table_dup_open_file(InodeTable *table, fuse_ino_t nodeid);

/* For a node with no name left: a duplicate of one of its open
 * descriptors, else of the O_PATH descriptor kept when it was removed, or
 * -ENOENT. @former_path (may be NULL) receives the path it was removed
 * from, or NULL when unknown (caller frees). */
int inode_table_dup_unlinked(InodeTable *table, fuse_ino_t nodeid, char **former_path);

/* Number of nodes the table holds (for tests and stats). */
guint inode_table_size(InodeTable *table);
