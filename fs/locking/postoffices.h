/* postoffices.h - the postoffices in the served tree, found by their folders.
 *
 * A share may hold several postoffices (PO1, HUB/PO2, or the served folder
 * itself), each used by its own mail programs, so each gets its own lease
 * manager and lock-file registry: INQUEUE3 of one postoffice and INQUEUE3
 * of another are different queues, held and waited for separately.
 *
 * The rule: a folder is a postoffice when it holds both the KEY folder and
 * the profile's lock folder (P1), spelled as the profile spells them. Those
 * two are where every locking protocol acts (the queue's KEY file, the
 * .0LK and .0NN lock files), so a folder that has only one of them yet (a
 * postoffice being made) is served as plain files until the other appears;
 * that is noted once in the log.
 *
 * Recognition is lazy: the daemon asks only for the folder of a path whose
 * last two components are a guarded file (po_classify), so other files cost
 * nothing. A folder found to be a postoffice is remembered by its path and
 * by its backing identity (dev, ino): after a rename through the mount the
 * next request finds the same postoffice, leases included, under its new
 * path. Folders renamed or removed behind the daemon's back (on the backing
 * store itself) are seen only when their old path stops resolving.
 *
 * With -o postoffice=PATH[,PATH...] only the named folders are protected.
 *
 * Lock order: a Postoffices mutex is never held while calling a lease
 * manager or a callback.
 */
#pragma once

#include <glib.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "backing.h"
#include "cluster.h"
#include "lease.h"
#include "lockfiles.h"
#include "profile.h"
#include "trail.h"

typedef struct Postoffices Postoffices;

typedef struct {
        dev_t dev; /* the folder's backing identity; immutable */
        ino_t ino;
        Cluster *cluster; /* the lease file other daemons honour; immutable */
        LeaseManager *leases; /* immutable once published */
        LockFiles *lockfiles; /* immutable once published */
        void *owner;          /* the Postoffices' owner, for lease callbacks */
        /* Operators' freezes of it held now (freeze.c): while 0, no open
         * needs its caller's session looked up. */
        atomic_uint frozen;
        /* This node's stream of the postoffice's trail (trail.h); NULL when
         * off or not to be had. Immutable once published. */
        Trail *trail;
} Postoffice;

typedef struct {
        const Backing *backing;     /* borrowed */
        const PoProfile *profile;   /* borrowed */
        /* Template for each postoffice's lease manager: its cluster and
         * user_data are set per postoffice (user_data is the Postoffice,
         * whose owner field is @owner). */
        LeaseConfig lease_config;
        char **only;                /* canonical folder paths, or NULL: every folder */
        void *owner;
        /* -V20 lock files already on the share when a postoffice is first
         * seen are held by @daemon_pid, with references from @next_ref
         * (shared with the daemon's other lease references). */
        pid_t daemon_pid;
        atomic_uint_fast64_t *next_ref;
        /* At most this many are protected at once (each has a thread and
         * descriptors); another one's guarded files are refused (EMFILE),
         * logged. */
        guint max_count;
        /* Each postoffice's trail; node borrowed. */
        TrailConfig trail;
} PostofficesConfig;

/* @config is copied (@only included). Never fails. */
Postoffices *postoffices_new(const PostofficesConfig *config);
/* Frees every postoffice; their lease managers fail remaining waiters. */
void postoffices_free(Postoffices *registry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Postoffices, postoffices_free)

/* "HUB/PO2" from " /HUB//PO2/ "; "" for the served folder ("." or "/"). NULL
 * when the path leaves the tree (".." components). */
char *postoffices_canonical_path(const char *path);

/* The postoffice whose folder is @dir_relpath ("" for the served folder),
 * recognising it now if need be; 0 with *@po set, -ENOENT when the folder is
 * not a postoffice (or not one of -o postoffice=), another -errno when it is
 * one that cannot be protected (its lease file cannot be opened, a daemon
 * of another lease protocol serves it): its guarded files must then be
 * refused, not served unguarded. */
int postoffices_find(Postoffices *registry, const char *dir_relpath, Postoffice **po);

/* Like postoffices_find(), but never looks at the backing store: only
 * postoffices already known under that path. */
Postoffice *postoffices_peek(Postoffices *registry, const char *dir_relpath);

/* The folder of the postoffice holding file @relpath by the rule above
 * (everything before the last two components), in @dir (caller frees), and
 * a pointer to those two components inside @relpath; false when @relpath
 * has fewer than two components. */
bool postoffices_split(const char *relpath, char **dir, const char **inner);

/* @relpath was removed or renamed through the mount: forget the paths of
 * the postoffices at or below it (they are found again by identity). */
void postoffices_path_removed(Postoffices *registry, const char *relpath);

/* The folder @dir_relpath was removed through the mount: if it was a
 * postoffice, it is forgotten: out of the listings, its lease manager's
 * thread stopped, its descriptors closed. Call only when nothing of it is
 * held or awaited (mailbags_folder_may_go). A folder made again at that
 * path is a new postoffice. */
void postoffices_retire(Postoffices *registry, const char *dir_relpath);

/* Walks the tree for postoffices (at most @max_depth folders deep, not
 * into a postoffice's own folders) and recognises each. Returns how many
 * are known afterwards. */
guint postoffices_scan(Postoffices *registry, guint max_depth);

/* The known postoffices and their current paths, sorted by path. */
typedef struct {
        Postoffice *po; /* lives as long as the registry */
        char *path;
} PostofficeEntry;
/* Array of PostofficeEntry; free with postoffices_entries_free(). */
GArray *postoffices_list(Postoffices *registry);
void postoffices_entries_free(GArray *entries);

/* The current path of @po, "" for the served folder (caller frees). */
char *postoffices_path_of(Postoffices *registry, const Postoffice *po);
