/* inode.c - node table keyed by node id and by backing (dev, ino).
 *
 * Invariants, all under InodeTable.mutex:
 * - every Inode is in by_nodeid; it is in by_backing unless it was
 *   displaced by a newer node for the same (dev, ino) (an inode number the
 *   backing filesystem reused after the old file lost its last name);
 * - an InodeName is in its parent's children table and in its child's
 *   names list, both or neither; it keeps its parent alive;
 * - a node is freed when nlookup is 0 and it has no children (the root is
 *   never freed).
 */
#include "inode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* RENAME_EXCHANGE */
#include <string.h>
#include <unistd.h>

#include "fd-util.h"

typedef struct Inode Inode;

typedef struct {
        Inode *parent;
        Inode *child;
        char *name;
} InodeName;

struct Inode {
        InodeKey key;
        uint64_t nlookup;     /* guarded by InodeTable.mutex */
        GList *names;         /* of InodeName*, most recent first; guarded by InodeTable.mutex */
        GHashTable *children; /* name -> InodeName*, NULL when empty; guarded by InodeTable.mutex */
        GArray *open_fds;     /* of int, NULL when none; guarded by InodeTable.mutex */
        /* Its open handles by how their I/O goes (inode_table_file_opened)
         * and the backing id its passthrough handles share (0: none);
         * guarded by InodeTable.mutex. */
        guint cached_handles;
        guint passthrough_handles;
        int backing_id;
        /* Set when the node lost its last name through the mount while the
         * kernel still held it: an O_PATH descriptor of the removed file
         * (-1 if none was kept) and the path it was removed from (NULL if
         * unknown); guarded by InodeTable.mutex. */
        int unlinked_fd;
        char *former_path;
        /* Names of it removed whose reply has not been sent yet (see
         * inode_table_removal_begin); guarded by InodeTable.mutex. */
        guint removals_unanswered;
};

struct InodeTable {
        GMutex mutex;
        GCond removals_settled; /* signalled when a removal is answered; with mutex */
        guint removal_waiters;  /* threads waiting on removals_settled; guarded by mutex */
        GHashTable *by_nodeid;  /* fuse_ino_t* -> Inode*, owns the nodes; guarded by mutex */
        GHashTable *by_backing; /* InodeBackingId* -> Inode*; guarded by mutex */
        fuse_ino_t next_nodeid; /* guarded by mutex */
        guint unlinked_fds;     /* nodes with an unlinked_fd; guarded by mutex */
        Inode *root;
};

/* Names deeper than this are refused rather than walked: a cycle can only
 * come from a bug, and must not hang a handler. */
#define INODE_PATH_DEPTH_MAX 4096

/* Removed files kept reachable at most: the kernel forgets an unlinked
 * inode once nobody uses it, so only those in use (an open file, a walk
 * that raced with the unlink) count; beyond this, they answer ESTALE. */
#define INODE_UNLINKED_FDS_MAX 256

static guint backing_id_hash(gconstpointer p)
{
        const InodeBackingId *id = p;
        return g_int64_hash(&(gint64){(gint64)id->ino}) ^ (guint)id->dev;
}

static gboolean backing_id_equal(gconstpointer a, gconstpointer b)
{
        const InodeBackingId *x = a, *y = b;
        return x->dev == y->dev && x->ino == y->ino;
}

static Inode *inode_new(InodeTable *table, const struct stat *st, bool shared)
{
        Inode *node = g_new0(Inode, 1);
        node->unlinked_fd = -1;
        node->key.nodeid = table->next_nodeid++;
        node->key.backing.dev = st->st_dev;
        node->key.backing.ino = st->st_ino;
        node->key.type = st->st_mode & S_IFMT;
        node->key.shared = shared;
        g_hash_table_insert(table->by_nodeid, &node->key.nodeid, node);
        g_hash_table_insert(table->by_backing, &node->key.backing, node);
        return node;
}

InodeTable *inode_table_new(const struct stat *root_st)
{
        InodeTable *table = g_new0(InodeTable, 1);
        g_mutex_init(&table->mutex);
        g_cond_init(&table->removals_settled);
        table->by_nodeid = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, NULL);
        table->by_backing = g_hash_table_new(backing_id_hash, backing_id_equal);
        table->next_nodeid = FUSE_ROOT_ID;
        table->root = inode_new(table, root_st, false);
        table->root->nlookup = 1;
        return table;
}

static void inode_free(InodeTable *table, Inode *node)
{
        g_assert(node->names == NULL);
        if (node->unlinked_fd >= 0) {
                close(node->unlinked_fd);
                table->unlinked_fds--;
        }
        g_free(node->former_path);
        if (node->children)
                g_hash_table_unref(node->children);
        if (node->open_fds)
                g_array_unref(node->open_fds);
        g_free(node);
}

void inode_table_free(InodeTable *table)
{
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, table->by_nodeid);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Inode *node = value;
                g_list_free(node->names);
                node->names = NULL;
        }
        g_hash_table_iter_init(&iter, table->by_nodeid);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Inode *node = value;
                if (node->children) {
                        GHashTableIter child_iter;
                        gpointer name;
                        g_hash_table_iter_init(&child_iter, node->children);
                        while (g_hash_table_iter_next(&child_iter, NULL, &name)) {
                                g_free(((InodeName *)name)->name);
                                g_free(name);
                        }
                }
                inode_free(table, node);
        }
        g_hash_table_unref(table->by_nodeid);
        g_hash_table_unref(table->by_backing);
        g_cond_clear(&table->removals_settled);
        g_mutex_clear(&table->mutex);
        g_free(table);
}

static Inode *inode_lookup_locked(InodeTable *table, fuse_ino_t nodeid)
{
        gint64 key = (gint64)nodeid;
        return g_hash_table_lookup(table->by_nodeid, &key);
}

static void inode_maybe_free_locked(InodeTable *table, Inode *node);

static void inode_name_drop_locked(InodeTable *table, InodeName *name)
{
        Inode *parent = name->parent;
        Inode *child = name->child;

        g_hash_table_remove(parent->children, name->name);
        child->names = g_list_remove(child->names, name);
        g_free(name->name);
        g_free(name);
        inode_maybe_free_locked(table, parent);
}

static bool inode_has_children(const Inode *node)
{
        return node->children && g_hash_table_size(node->children) > 0;
}

static void inode_maybe_free_locked(InodeTable *table, Inode *node)
{
        if (node == table->root || node->nlookup > 0 || inode_has_children(node))
                return;

        while (node->names)
                inode_name_drop_locked(table, node->names->data);
        if (g_hash_table_lookup(table->by_backing, &node->key.backing) == node)
                g_hash_table_remove(table->by_backing, &node->key.backing);
        g_hash_table_remove(table->by_nodeid, &node->key.nodeid);
        inode_free(table, node);
}

int inode_table_key(InodeTable *table, fuse_ino_t nodeid, InodeKey *key)
{
        g_mutex_lock(&table->mutex);
        Inode *node = inode_lookup_locked(table, nodeid);
        if (node)
                *key = node->key;
        g_mutex_unlock(&table->mutex);
        return node ? 0 : -ESTALE;
}

/* The path of @node from the root ("" for the root), followed by
 * "/@child" when @child is given (just "@child" under the root): built in
 * one allocation, as every request asks for one. NULL with *@error
 * -ENOENT when a node on the way has no name left, -ELOOP when the walk
 * is deeper than INODE_PATH_DEPTH_MAX. */
static char *inode_path_locked(InodeTable *table, Inode *node, const char *child, int *error)
{
        gsize child_len = child ? strlen(child) : 0;
        gsize len = 0;
        int depth = 0;
        for (Inode *n = node; n != table->root;) {
                if (!n->names || ++depth > INODE_PATH_DEPTH_MAX) {
                        *error = n->names ? -ELOOP : -ENOENT;
                        return NULL;
                }
                InodeName *name = n->names->data;
                len += strlen(name->name);
                n = name->parent;
        }
        /* One '/' between components, and one before @child unless it is
         * the whole path. */
        len += depth > 0 ? (gsize)depth - 1 : 0;
        if (child)
                len += child_len + (depth > 0 ? 1 : 0);

        char *path = g_malloc(len + 1);
        gsize at = len;
        path[at] = '\0';
        if (child) {
                at -= child_len;
                memcpy(path + at, child, child_len);
                if (depth > 0)
                        path[--at] = '/';
        }
        for (Inode *n = node; n != table->root;) {
                InodeName *name = n->names->data;
                gsize name_len = strlen(name->name);
                at -= name_len;
                memcpy(path + at, name->name, name_len);
                n = name->parent;
                if (n != table->root)
                        path[--at] = '/';
        }
        return path;
}

static char *inode_table_path_to(InodeTable *table, fuse_ino_t nodeid, const char *child,
                                 int *error)
{
        char *path = NULL;

        g_mutex_lock(&table->mutex);
        Inode *node = inode_lookup_locked(table, nodeid);
        if (node)
                path = inode_path_locked(table, node, child, error);
        else
                *error = -ESTALE;
        g_mutex_unlock(&table->mutex);
        return path;
}

char *inode_table_path(InodeTable *table, fuse_ino_t nodeid, int *error)
{
        return inode_table_path_to(table, nodeid, NULL, error);
}

char *inode_table_last_name(InodeTable *table, fuse_ino_t nodeid, InodeKey *key, InodeKey *parent)
{
        char *name = NULL;
        g_mutex_lock(&table->mutex);
        Inode *node = inode_lookup_locked(table, nodeid);
        if (node && node != table->root && node->names) {
                InodeName *first = node->names->data;
                if (key)
                        *key = node->key;
                if (parent)
                        *parent = first->parent->key;
                name = g_strdup(first->name);
        }
        g_mutex_unlock(&table->mutex);
        return name;
}

char *inode_table_child_path(InodeTable *table, fuse_ino_t parent, const char *name, int *error)
{
        return inode_table_path_to(table, parent, name, error);
}

/* Makes @name of @parent refer to @child, dropping whatever it named
 * before. */
static void inode_name_set_locked(InodeTable *table, Inode *parent, const char *name, Inode *child)
{
        if (!parent->children)
                parent->children = g_hash_table_new(g_str_hash, g_str_equal);

        InodeName *old = g_hash_table_lookup(parent->children, name);
        if (old && old->child == child) {
                /* Most recent first: this is the name to build paths from. */
                child->names = g_list_remove(child->names, old);
                child->names = g_list_prepend(child->names, old);
                return;
        }
        /* Hold the parent while the old name goes, or dropping it could
         * free the parent (a directory whose only child was renamed). */
        parent->nlookup++;
        if (old) {
                Inode *old_child = old->child;
                inode_name_drop_locked(table, old);
                inode_maybe_free_locked(table, old_child);
        }

        InodeName *entry = g_new0(InodeName, 1);
        entry->parent = parent;
        entry->child = child;
        entry->name = g_strdup(name);
        g_hash_table_insert(parent->children, entry->name, entry);
        child->names = g_list_prepend(child->names, entry);
        parent->nlookup--;
}

fuse_ino_t inode_table_remember(InodeTable *table, fuse_ino_t parent_id, const char *name,
                                const struct stat *st, bool shared)
{
        InodeBackingId id = {.dev = st->st_dev, .ino = st->st_ino};

        g_mutex_lock(&table->mutex);
        Inode *parent = inode_lookup_locked(table, parent_id);
        Inode *node = g_hash_table_lookup(table->by_backing, &id);
        if (node && node->key.type != (st->st_mode & S_IFMT)) {
                /* The backing filesystem reused the inode number for a file
                 * of another type: the old node is a different file. */
                g_hash_table_remove(table->by_backing, &id);
                node = NULL;
        }
        if (!node)
                node = inode_new(table, st, shared);
        node->nlookup++;
        if (parent)
                inode_name_set_locked(table, parent, name, node);
        fuse_ino_t nodeid = node->key.nodeid;
        g_mutex_unlock(&table->mutex);
        return nodeid;
}

void inode_table_forget(InodeTable *table, fuse_ino_t nodeid, uint64_t nlookup)
{
        int closing = -1;
        g_mutex_lock(&table->mutex);
        Inode *node = inode_lookup_locked(table, nodeid);
        if (node && node != table->root) {
                node->nlookup = nlookup >= node->nlookup ? 0 : node->nlookup - nlookup;
                /* The last close of a removed file frees it in the backing
                 * store, which takes a while: not under the table's lock,
                 * which every request takes. */
                if (node->nlookup == 0 && !inode_has_children(node) && node->unlinked_fd >= 0) {
                        closing = node->unlinked_fd;
                        node->unlinked_fd = -1;
                        table->unlinked_fds--;
                }
                inode_maybe_free_locked(table, node);
        }
        g_mutex_unlock(&table->mutex);
        if (closing >= 0)
                close(closing);
}

static InodeName *inode_child_name_locked(InodeTable *table, fuse_ino_t parent_id, const char *name)
{
        Inode *parent = inode_lookup_locked(table, parent_id);
        if (!parent || !parent->children)
                return NULL;
        return g_hash_table_lookup(parent->children, name);
}

/* A node that lost its last name is no longer what its (dev, ino) names in
 * the backing store: a later file may get the same inode number. */
static void inode_orphan_check_locked(InodeTable *table, Inode *child)
{
        if (!child->names && g_hash_table_lookup(table->by_backing, &child->key.backing) == child)
                g_hash_table_remove(table->by_backing, &child->key.backing);
}

fuse_ino_t inode_table_removal_begin(InodeTable *table, fuse_ino_t parent_id, const char *name)
{
        fuse_ino_t nodeid = 0;
        g_mutex_lock(&table->mutex);
        InodeName *entry = inode_child_name_locked(table, parent_id, name);
        if (entry && entry->child->key.type != S_IFDIR) {
                entry->child->removals_unanswered++;
                nodeid = entry->child->key.nodeid;
        }
        g_mutex_unlock(&table->mutex);
        return nodeid;
}

void inode_table_removals_wait(InodeTable *table, fuse_ino_t nodeid, gint64 timeout_us)
{
        gint64 until = g_get_monotonic_time() + timeout_us;
        g_mutex_lock(&table->mutex);
        table->removal_waiters++;
        for (Inode *node; (node = inode_lookup_locked(table, nodeid)) &&
                          node->removals_unanswered > 0;)
                if (!g_cond_wait_until(&table->removals_settled, &table->mutex, until))
                        break;
        table->removal_waiters--;
        g_mutex_unlock(&table->mutex);
}

void inode_table_removal_answered(InodeTable *table, fuse_ino_t nodeid)
{
        if (nodeid == 0)
                return;
        g_mutex_lock(&table->mutex);
        Inode *node = inode_lookup_locked(table, nodeid);
        if (node && node->removals_unanswered > 0)
                node->removals_unanswered--;
        /* A broadcast is a system call even with nobody waiting. */
        if (table->removal_waiters > 0)
                g_cond_broadcast(&table->removals_settled);
        g_mutex_unlock(&table->mutex);
}

void inode_table_link_count_for_kernel(InodeTable *table, fuse_ino_t nodeid, struct stat *st)
{
        g_mutex_lock(&table->mutex);
        Inode *node = inode_lookup_locked(table, nodeid);
        if (node)
                st->st_nlink += node->removals_unanswered;
        g_mutex_unlock(&table->mutex);
}

bool inode_table_child_held(InodeTable *table, fuse_ino_t parent_id, const char *name,
                            InodeKey *key)
{
        g_mutex_lock(&table->mutex);
        InodeName *entry = inode_child_name_locked(table, parent_id, name);
        bool held = entry && entry->child->nlookup > 0;
        if (held)
                *key = entry->child->key;
        g_mutex_unlock(&table->mutex);
        return held;
}

/* @child's name @name in @parent is about to go. If it is the last one
 * and the kernel still holds @child, the node keeps @victim_fd (when that
 * is the same file) and the path it had, so a request that reached it by
 * a racing walk or through /proc/PID/fd can still be served. */
static void inode_keep_unlinked_locked(InodeTable *table, Inode *parent, const char *name,
                                       Inode *child, int *victim_fd,
                                       const struct stat *victim_st)
{
        if (child->names->next || child->nlookup == 0)
                return;
        g_free(child->former_path);
        int error = 0;
        child->former_path = inode_path_locked(table, parent, name, &error);

        if (!victim_fd || *victim_fd < 0 || child->unlinked_fd >= 0 ||
            table->unlinked_fds >= INODE_UNLINKED_FDS_MAX)
                return;
        struct stat looked;
        if (!victim_st && fstat(*victim_fd, &looked) == 0)
                victim_st = &looked;
        if (!victim_st || victim_st->st_dev != child->key.backing.dev ||
            victim_st->st_ino != child->key.backing.ino)
                return;
        child->unlinked_fd = *victim_fd;
        *victim_fd = -1;
        table->unlinked_fds++;
}

void inode_table_unlinked(InodeTable *table, fuse_ino_t parent_id, const char *name,
                          int *victim_fd, const struct stat *victim_st)
{
        g_mutex_lock(&table->mutex);
        InodeName *entry = inode_child_name_locked(table, parent_id, name);
        if (entry) {
                Inode *child = entry->child;
                inode_keep_unlinked_locked(table, entry->parent, name, child, victim_fd, victim_st);
                child->nlookup++; /* keep it while we look at it */
                inode_name_drop_locked(table, entry);
                inode_orphan_check_locked(table, child);
                child->nlookup--;
                inode_maybe_free_locked(table, child);
        }
        g_mutex_unlock(&table->mutex);
}

void inode_table_renamed(InodeTable *table, fuse_ino_t parent_id, const char *name,
                         fuse_ino_t newparent_id, const char *newname, unsigned flags,
                         int *victim_fd, const struct stat *victim_st)
{
        g_mutex_lock(&table->mutex);
        Inode *parent = inode_lookup_locked(table, parent_id);
        Inode *newparent = inode_lookup_locked(table, newparent_id);
        InodeName *from = inode_child_name_locked(table, parent_id, name);
        InodeName *to = inode_child_name_locked(table, newparent_id, newname);
        Inode *moved = from ? from->child : NULL;
        Inode *other = to ? to->child : NULL;

        /* Pin all four while names move between them: dropping a name may
         * otherwise free its parent or its child. */
        if (parent)
                parent->nlookup++;
        if (newparent)
                newparent->nlookup++;
        if (moved)
                moved->nlookup++;
        if (other)
                other->nlookup++;
        if (to && other != moved && !(flags & RENAME_EXCHANGE)) {
                other->nlookup--; /* only the kernel's references count here */
                inode_keep_unlinked_locked(table, newparent, newname, other, victim_fd, victim_st);
                other->nlookup++;
        }
        if (from)
                inode_name_drop_locked(table, from);
        if (to)
                inode_name_drop_locked(table, to);

        if (moved && newparent)
                inode_name_set_locked(table, newparent, newname, moved);
        if (other && (flags & RENAME_EXCHANGE) && parent)
                inode_name_set_locked(table, parent, name, other);

        if (moved) {
                inode_orphan_check_locked(table, moved);
                moved->nlookup--;
                inode_maybe_free_locked(table, moved);
        }
        if (other) {
                inode_orphan_check_locked(table, other);
                other->nlookup--;
                inode_maybe_free_locked(table, other);
        }
        if (newparent) {
                newparent->nlookup--;
                inode_maybe_free_locked(table, newparent);
        }
        if (parent) {
                parent->nlookup--;
                inode_maybe_free_locked(table, parent);
        }
        g_mutex_unlock(&table->mutex);
}

/* The passthrough part of inode_table_file_opened, under the table lock:
 * whether the handle is passed through (and *@io set to say so). */
static bool inode_passthrough_locked(Inode *node, int fd, InodeIo *io, int *backing_id,
                                     InodeBackingOpenFn backing_open, void *opaque)
{
        if (node->passthrough_handles > 0) {
                node->passthrough_handles++;
        } else {
                if (*io != INODE_IO_PASSTHROUGH || node->cached_handles > 0 || !backing_open)
                        return false;
                int id = backing_open(opaque, fd);
                if (id <= 0)
                        return false;
                node->backing_id = id;
                node->passthrough_handles = 1;
        }
        *backing_id = node->backing_id;
        *io = INODE_IO_PASSTHROUGH;
        return true;
}

int inode_table_file_opened(InodeTable *table, fuse_ino_t nodeid, int fd, InodeIo *io,
                            int *backing_id, InodeBackingOpenFn backing_open, void *opaque)
{
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->mutex);
        Inode *node = inode_lookup_locked(table, nodeid);
        *backing_id = 0;
        if (!node) {
                if (*io == INODE_IO_PASSTHROUGH)
                        *io = INODE_IO_CACHED;
                return 0;
        }
        if (*io == INODE_IO_DAEMON && node->passthrough_handles > 0)
                return -EBUSY;
        if (!inode_passthrough_locked(node, fd, io, backing_id, backing_open, opaque)) {
                if (*io == INODE_IO_PASSTHROUGH)
                        *io = INODE_IO_CACHED;
                if (*io == INODE_IO_CACHED)
                        node->cached_handles++;
        }
        if (!node->open_fds)
                node->open_fds = g_array_new(FALSE, FALSE, sizeof(int));
        g_array_append_val(node->open_fds, fd);
        return 0;
}

bool inode_table_file_closed(InodeTable *table, fuse_ino_t nodeid, int fd, InodeIo io)
{
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->mutex);
        Inode *node = inode_lookup_locked(table, nodeid);
        if (!node)
                return io == INODE_IO_PASSTHROUGH;
        for (guint i = 0; node->open_fds && i < node->open_fds->len; i++) {
                if (g_array_index(node->open_fds, int, i) == fd) {
                        g_array_remove_index_fast(node->open_fds, i);
                        break;
                }
        }
        if (io == INODE_IO_CACHED && node->cached_handles > 0)
                node->cached_handles--;
        if (io != INODE_IO_PASSTHROUGH || node->passthrough_handles == 0)
                return false;
        if (--node->passthrough_handles > 0)
                return false;
        node->backing_id = 0;
        return true;
}

int inode_table_dup_unlinked(InodeTable *table, fuse_ino_t nodeid, char **former_path)
{
        int fd = inode_table_dup_open_file(table, nodeid);
        g_mutex_lock(&table->mutex);
        Inode *node = inode_lookup_locked(table, nodeid);
        if (fd == -ENOENT && node && node->unlinked_fd >= 0) {
                fd = fd_dup(node->unlinked_fd);
                if (fd < 0)
                        fd = -errno;
        }
        if (former_path)
                *former_path = node ? g_strdup(node->former_path) : NULL;
        g_mutex_unlock(&table->mutex);
        return fd;
}

int inode_table_dup_open_file(InodeTable *table, fuse_ino_t nodeid)
{
        int fd = -ENOENT;

        /* Duplicated under the lock: a release removes the descriptor from
         * the list before it closes it. */
        g_mutex_lock(&table->mutex);
        Inode *node = inode_lookup_locked(table, nodeid);
        if (node && node->open_fds && node->open_fds->len > 0) {
                fd = fd_dup(g_array_index(node->open_fds, int, 0));
                if (fd < 0)
                        fd = -errno;
        }
        g_mutex_unlock(&table->mutex);
        return fd;
}

guint inode_table_size(InodeTable *table)
{
        g_mutex_lock(&table->mutex);
        guint size = g_hash_table_size(table->by_nodeid);
        g_mutex_unlock(&table->mutex);
        return size;
}
