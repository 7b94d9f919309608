/* mailbags.h - the daemon's mailbag state: the profile that says which
 * path is what, and the postoffices of the served tree, each with its lease
 * manager and its live Mail 2.x lock files.
 *
 * Handlers ask mailbags_plan() what an open needs (and of which postoffice)
 * and tell mailbags_name_removed() when a name disappears; everything else
 * about locking (waiting, fairness, dead holders) happens in the lease
 * managers.
 */
#pragma once

#include <glib.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "backing.h"
#include "byte-locks.h"
#include "policy.h"
#include "lease.h"
#include "lockfiles.h"
#include "postoffices.h"
#include "profile.h"

/* The core's one call up into the FUSE front end: a lock file the daemon
 * removed behind the kernel's back (a dead holder's, a broken one), whose
 * name the kernel may still cache. @parent_node is the node id of its
 * folder as the kernel knows it, 0 when unknown. Runs on the thread that
 * ended the hold (a lease manager's watch thread for a death, the worker
 * of a break), with no lock of the core held. */
typedef void (*MailbagsNameGoneFn)(void *user_data, uint64_t parent_node, const char *name);

typedef struct {
        const Backing *backing; /* borrowed from the daemon */
        PoProfile *profile;
        Postoffices *postoffices; /* NULL until mailbags_start() */
        ByteLocks *byte_locks;    /* clients' byte-range locks; NULL until mailbags_start() */
        PolicyV20Mode v20_mode;
        pid_t daemon_pid; /* holder of lock files found on the share */
        bool proc_hides_pids; /* /proc has hidepid=: status shows others' pids to root only */
        atomic_uint_fast64_t next_ref; /* lease references: handles and lock files */
        LeaseConfig lease_config;      /* template for each postoffice */
        char **only_postoffices;       /* -o postoffice=, canonical; NULL: all */
        guint max_postoffices;         /* immutable */
        MailbagsNameGoneFn name_gone;
        void *name_gone_data;
        GMutex misconfigured_mutex;
        GHashTable *misconfigured_pids; /* pid -> pid already warned about; guarded by misconfigured_mutex */
        /* Creates answered before their lease came (claims.c): their
         * programs' opens wait for it. A leaf lock. */
        GMutex deferred_mutex;
        GPtrArray *deferred;          /* Claim*, waiting; guarded by deferred_mutex */
        atomic_uint deferred_waiting; /* its length, read without the lock */
        struct Freezes *freezes;      /* operators' freezes (freeze.c) */
        /* Observe mode (-o mode=observe, switched by user.mailbag.mode):
         * claims never wait and are never refused, their overlaps are
         * counted (LeaseRequest.observe), and no lock file is swept. */
        atomic_bool observe;
        TrailConfig trail; /* immutable; node owned */
} Mailbags;

/* The default bound on postoffices protected at once. */
#define MAILBAGS_POSTOFFICES_MAX 4096

typedef struct {
        char *profile_path; /* NULL: the built-in profile */
        int lock_timeout_ms;     /* sessions and KEY writes */
        int exclusive_timeout_ms;
        int hold_warning_ms;     /* log holds longer than this; 0: never */
        guint max_postoffices;   /* protected at once; 0: MAILBAGS_POSTOFFICES_MAX */
        PolicyV20Mode v20_mode;
        char **only_postoffices; /* NULL: every postoffice in the tree */
        bool observe;            /* start in observe mode */
        guint64 trail_bytes;     /* each node's trail of a postoffice; 0: none */
        const char *trail_node;  /* NULL: the host name */
} MailbagsConfig;

/* Loads the profile and checks the configuration; starts no thread, so it
 * may run before the daemon forks. 0, or -errno with a message in @error. */
int mailbags_init(Mailbags *mailbags, const Backing *backing, const MailbagsConfig *config,
                  GError **error);
/* Looks for the postoffices of the tree and starts protecting them (each
 * has a watch thread: call this in the process that serves). Returns how
 * many were found. */
guint mailbags_start(Mailbags *mailbags, MailbagsNameGoneFn name_gone, void *name_gone_data);
/* Fails every request still waiting for a lease (-ECANCELED); call while
 * the FUSE session can still carry their replies. */
void mailbags_stop(Mailbags *mailbags);
void mailbags_clear(Mailbags *mailbags);

/* The process behind a request and its program name. */
typedef struct {
        pid_t pid;
        char program[64];
} Caller;

/* Classifies @relpath and says which lease an open with @flags needs, and
 * in which postoffice (@po). Only when one is needed is the caller (thread
 * @thread_id) identified into @caller, which costs a read of /proc: most
 * opens need none. Rewriting a lock file the caller already holds claims
 * nothing new. Warns once per process about a -V20 misconfiguration.
 * Returns 0, or -errno when the file belongs to a postoffice that cannot
 * be protected (the open must be refused). */
int mailbags_plan(Mailbags *mailbags, const char *relpath, int flags, bool creating,
                  pid_t thread_id, Caller *caller, PolicyPlan *plan, Postoffice **po);

/* The plan of such an open without identifying its caller. */
int mailbags_plan_only(Mailbags *mailbags, const char *relpath, int flags, bool creating,
                       PolicyPlan *plan);

uint64_t mailbags_new_ref(Mailbags *mailbags);

/* Withdraws the queued lease request @waiter_id, whichever postoffice it
 * waits in (an interrupted client). */
void mailbags_cancel_wait(Mailbags *mailbags, uint64_t waiter_id);

/* A V20 lock file at @relpath (in folder node @parent_node) was created by
 * @caller and carries @ref. With @present (lockfiles_add), only if it is
 * still there: 0, or -ENOENT when it is not (nothing recorded; the hold of
 * @ref is the caller's to end). */
int mailbags_lockfile_created(Mailbags *mailbags, Postoffice *po, const char *relpath,
                              uint64_t parent_node, const struct stat *st, const PolicyPlan *plan,
                              uint64_t ref, pid_t pid, LockFilePresentFn present, void *opaque);

/* @relpath was unlinked or renamed away: a lock file's hold ends, and a
 * postoffice folder at or below it is looked for again. */
void mailbags_name_removed(Mailbags *mailbags, const char *relpath);

/* Folder @relpath was removed through the mount (after
 * mailbags_folder_may_go() let it): a postoffice there is forgotten. */
void mailbags_folder_removed(Mailbags *mailbags, const char *relpath);

/* Folder @relpath is about to be removed and holds nothing but the
 * daemon's lease file: 0 when that file may go with it (no lease of the
 * postoffice is held or awaited, here or through another daemon), -EBUSY
 * otherwise. */
int mailbags_folder_may_go(Mailbags *mailbags, const char *relpath);

/* A create, open, rename or unlink through the mount, as the trail keeps
 * it (trail.h); the paths are from the backing root. */
typedef struct {
        const char *op;       /* "create", "open", "rename", "unlink" */
        const char *relpath;
        const char *to;       /* a rename's new path, else NULL */
        int flags;            /* open and create */
        pid_t thread_id;      /* FUSE's caller */
        const Caller *caller; /* its process, when already identified; or NULL */
        uid_t uid;
        const char *protocol; /* the lease's, NULL: none */
        const char *outcome;  /* see TrailEvent */
        gint64 waited_ms;     /* < 0: did not wait */
        int result;           /* 0 or -errno */
} MailbagsEvent;

/* Whether @relpath is a message's envelope, body or attachment in a known
 * postoffice (P1/<n>.P1, MAI/MA?/<n>.MAI, ATT/AT?/<n>.ATT): files no
 * program of Mail locks. */
bool mailbags_is_message_file(Mailbags *mailbags, const char *relpath);

/* Writes @event to the trail of the postoffice holding its file, when the
 * file (or a rename's new name) is a guarded or message file of it. */
void mailbags_trail(Mailbags *mailbags, const MailbagsEvent *event);

/* The postoffice of file @relpath and the file's path inside it (a pointer
 * into @relpath); NULL when the file is in no known postoffice. With
 * @recognise, a folder not yet known is looked at. */
Postoffice *mailbags_postoffice_of(Mailbags *mailbags, const char *relpath, bool recognise,
                                   const char **inner);
