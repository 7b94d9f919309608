/* lease.h - one holder process at a time per named postoffice resource.
 *
 * The mail transfer programs sharing a postoffice each lock a queue their own
 * way (a DENY_ALL lock file, a DENY_READ open of the queue, Mail 2.0 lock
 * files), so none of them excludes the others. The daemon maps every such
 * open, create and unlink to a lease on a (kind, name) resource, and this
 * module makes all of them wait for each other.
 *
 * Semantics, the same for every kind:
 * - At most one holder *process* per resource. The hold is a set of
 *   references (opaque ids chosen by the caller, unique for the manager's
 *   lifetime: a file handle id, a Mail 2.0 lock file's id). It ends when the
 *   last reference is released, or when an operator breaks it.
 * - When the holder process dies, references that are open file handles
 *   stay until released (the kernel closes a dead process's files itself,
 *   and a handle passed on by fork lives on in another process); the other
 *   references (lock files) are stale, dropped and reported.
 * - The holder re-enters freely: another reference is granted at once, even
 *   while other processes are queued.
 * - Other processes wait in FIFO order up to a timeout (-EBUSY). When the
 *   resource becomes free the head waiter is granted, together with every
 *   other queued waiter of the same process.
 * - A wait that would close a cycle in the waits-for graph over processes is
 *   refused at once with -EDEADLK. A queued process waits for the holder
 *   and for every process queued ahead of its own first waiter, so cycles
 *   that only form when a queued process is granted later are refused too.
 * - Waiting never blocks a thread: lease_acquire() answers at once, a queued
 *   request completes later through its done callback.
 *
 * Processes are watched with pidfds (one per process that holds or waits,
 * not one per resource): a dead holder's lock-file references are reclaimed
 * and reported, a dead waiter is dropped from its queues with -ESRCH.
 *
 * Callbacks (done, notify) are never called with the manager's mutex held,
 * so they may call back into the manager; they must not call
 * lease_manager_free(). They run on several threads at once, and callbacks
 * collected by different calls are not ordered with each other: a
 * LEASE_EVENT_HOLD_ENDED (break, death) may overtake the done(0) of the
 * grant it ends, so a daemon that cares checks lease_holds() after its
 * backing open.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef enum {
        LEASE_SESSION,   /* name = queue mailbag ("INQUEUE3") */
        LEASE_KEY_WRITE, /* name = mailbag; write-open of KEY/<name>.KEY */
        LEASE_EXCLUSIVE, /* name = relative path ("GLB/CONTROL.GLB") */
} LeaseKind;

#define LEASE_KIND_COUNT 3

/* lease_acquire() queued the request; its done callback reports the end. */
#define LEASE_PENDING 1
/* An observing request (LeaseRequest.observe) that could not even be
 * queued (it would close a waits-for cycle): go ahead, nothing is held and
 * no callback follows. */
#define LEASE_UNTRACKED 2

/* Completion of a queued request, called exactly once per LEASE_PENDING:
 *   0           granted, the request's reference is now part of the hold
 *   -EBUSY      timed out
 *   -EINTR      cancelled with lease_cancel()
 *   -ESRCH      the waiting process died
 *   -ECANCELED  the manager is being freed
 * It runs on the manager's watch thread or on the thread of whichever
 * manager call completed the wait (a release, a cancel, a break, even
 * another lease_acquire() that noticed a dead holder), never inside the
 * lease_acquire() call that queued it. */
typedef void (*LeaseDoneFn)(void *opaque, int result);

typedef enum {
        LEASE_END_DIED,   /* the holder process exited */
        LEASE_END_BROKEN, /* lease_break() */
} LeaseEndReason;

typedef struct {
        LeaseKind kind;
        const char *name;     /* compared as given: pass canonical names */
        pid_t pid;            /* thread group id of the client process */
        const char *program;  /* for logs and snapshots; may be NULL */
        const char *protocol; /* "0LK", "V20", "queue-read", "key-write",
                               * "exclusive"...; may be NULL */
        uint64_t ref;         /* unique for the manager's lifetime */
        bool handle;          /* @ref is an open file handle: only its release
                               * ends it, not the holder's death */
        int timeout_ms;       /* < 0: the kind's default; 0: never queue */
        bool wait_if_closing; /* with timeout_ms 0: queue all the same (for
                               * the kind's default) when every reference
                               * of the hold is marked closing */
        LeaseDoneFn done;     /* required unless timeout_ms == 0 */
        void *opaque;         /* passed to done */
        /* The requester's session id (getsid), 0 when not looked up: a
         * hold that admits that session takes the request as its own
         * holder's re-entry (@ref joins the hold at once). */
        pid_t session;
        /* Set by a holder whose hold the processes of this session share
         * (an operator's freeze and the command it runs); 0: none. */
        pid_t admits_session;
        /* The daemon only observes: the request is never made to wait or
         * refused. Where it would have been (a holder here or in another
         * daemon, a ban; not a holder that has closed all its handles
         * and whose release is on its way), that is an overlap: counted (stats.overlaps,
         * lease_manager_overlaps), reported (LEASE_EVENT_OVERLAP), and the
         * request queued without a time limit, to be granted in its turn
         * like any waiter (LEASE_PENDING; the caller goes ahead at once and
         * its done callback comes later), so that requests made after a
         * switch to enforcing wait for it. One that would close a
         * waits-for cycle is not queued: LEASE_UNTRACKED. */
        bool observe;
} LeaseRequest;

/* What the manager tells the module above it (calls go down: this is the
 * one way back up). */
typedef enum {
        /* @priority (LOG_WARNING, LOG_INFO or LOG_DEBUG from <syslog.h>) and
         * @message, which names the resource, pids and programs. */
        LEASE_EVENT_LOG,
        /* A hold on (@kind, @name) by @pid ended without its references
         * being released (@reason): @refs are those it still had, so the
         * daemon can remove stale Mail 2.0 lock files. Once per resource,
         * before the done callbacks of the waiters it lets in. */
        LEASE_EVENT_HOLD_ENDED,
        /* Session @name was taken from another daemon that may have died
         * with -V20 lock files (cluster_take() said so): the daemon sweeps
         * the lock files it does not know (cluster_sweep_dead_lockfiles()).
         * Before the grants the take allows. */
        LEASE_EVENT_TAKEN_FROM_DEAD_NODE,
        /* An observing request of @pid (@program, @protocol) met the hold of
         * @holder_pid (@holder_program, @holder_protocol; pid 0: a hold of
         * another daemon, "?" for both) on (@kind, @name): enforcing would
         * have made it wait or refused it. */
        LEASE_EVENT_OVERLAP,
} LeaseEventType;

typedef struct {
        LeaseEventType type;
        int priority;          /* LOG */
        const char *message;   /* LOG */
        LeaseKind kind;        /* HOLD_ENDED, TAKEN_FROM_DEAD_NODE */
        const char *name;      /* HOLD_ENDED, TAKEN_FROM_DEAD_NODE */
        pid_t pid;             /* HOLD_ENDED */
        const uint64_t *refs;  /* HOLD_ENDED */
        unsigned n_refs;       /* HOLD_ENDED */
        LeaseEndReason reason; /* HOLD_ENDED */
        const char *program;   /* OVERLAP */
        const char *protocol;  /* OVERLAP */
        pid_t holder_pid;      /* OVERLAP */
        const char *holder_program;  /* OVERLAP */
        const char *holder_protocol; /* OVERLAP */
} LeaseEvent;

/* Runs without the manager's mutex, on the thread of the manager call
 * that produced the event (an acquire, a release, a cancel, a break) or
 * on the watch thread (a death, a timeout, a remote retry); events of
 * different calls are not ordered with each other. It may call the
 * manager, never lease_manager_free(). */
typedef void (*LeaseNotifyFn)(void *user_data, const LeaseEvent *event);

/* The postoffice's lease file, shared with the other daemons serving the
 * share (cluster.h). */
typedef struct Cluster Cluster;

/* The watch thread: one thread that polls the pidfds of the processes
 * holding or waiting in any number of managers, and wakes for their
 * deadlines and remote retries. A daemon makes one for all its
 * postoffices, so a postoffice costs no thread of its own. */
typedef struct LeaseWatcher LeaseWatcher;

/* Starts a watch thread. Returns NULL and sets @error (G_FILE_ERROR) when
 * its eventfd or thread cannot be had. */
LeaseWatcher *lease_watcher_new(GError **error);

/* Stops and joins the thread. Every manager using it must be stopped
 * first (lease_manager_stop() or lease_manager_free()). NULL is a no-op. */
void lease_watcher_free(LeaseWatcher *watcher);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LeaseWatcher, lease_watcher_free)

typedef struct {
        /* Optional, borrowed: the watch thread this manager shares with
         * others; it must outlive the manager's stop. NULL: the manager
         * starts a thread of its own. */
        LeaseWatcher *watcher;
        /* Default waits per kind in milliseconds; 0 picks the built-in
         * defaults (10 s, 10 s, 2 s). */
        int session_timeout_ms;
        int key_write_timeout_ms;
        int exclusive_timeout_ms;
        /* A hold that lasts longer than this is logged once, as a warning
         * naming its holder and the waiters (a hung program, or one that
         * keeps every queue); 0: never. */
        int hold_warning_ms;
        /* Optional: every hold is also held in this lease file, so other
         * daemons honour it (borrowed; outlives the manager). A resource
         * another daemon holds makes its requests wait (asked again every
         * CLUSTER_RETRY_MS, up to their timeout) or, with timeout_ms 0,
         * fail with -EBUSY; when another daemon waits for a resource that
         * becomes free here, it gets CLUSTER_YIELD_MS to take it first.
         * NULL: this daemon alone serves the share. */
        Cluster *cluster;
        /* Optional. */
        LeaseNotifyFn notify;
        void *user_data;
        /* No LEASE_EVENT_LOG of priority LOG_DEBUG is made: its text is
         * formatted for every grant and release, for a log that would
         * drop it. */
        bool quiet_debug;
} LeaseConfig;

typedef struct LeaseManager LeaseManager;

/* Creates a manager, watched by config->watcher or by a thread of its own.
 * @config is copied. Returns NULL and sets @error (G_FILE_ERROR) when the
 * config is invalid or its own watch thread cannot be started. */
LeaseManager *lease_manager_new(const LeaseConfig *config, GError **error);

/* Fails every waiter with -ECANCELED, takes the manager off its watch
 * thread (waiting for a callback of this manager running there, if any)
 * and closes the descriptors it needs (the pidfds of processes holding
 * nothing), for a postoffice that is gone. The manager stays valid: every
 * call is safe, a new request answers -ECANCELED, holds left (if any) can
 * still be released. Idempotent; lease_manager_free() calls it. Never from
 * one of this manager's callbacks. */
void lease_manager_stop(LeaseManager *manager);

/* Fails every remaining waiter with -ECANCELED (on the calling thread),
 * stops the manager (and its own watch thread, if it has one), and frees
 * everything. Remaining holds simply vanish: no LEASE_EVENT_HOLD_ENDED. No
 * other thread may use the manager once this is called, except the done
 * callbacks it runs. NULL is a no-op. */
void lease_manager_free(LeaseManager *manager);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LeaseManager, lease_manager_free)

/* Asks for @req->ref to become part of the hold on (kind, name) for
 * @req->pid. Never sleeps. Returns
 *   0             granted now (done is not called)
 *   LEASE_PENDING queued; *@waiter_id (unique across all managers) is set
 *                 for lease_cancel() and done will be called exactly once
 *   -EBUSY        not grantable and timeout_ms == 0
 *   -EDEADLK      waiting would deadlock (counted and logged)
 *   -ESRCH        the process does not exist any more
 *   -EEXIST       @req->ref is already part of this hold
 *   -EINVAL       bad request; -ECANCELED while the manager is being freed
 *   other         pidfd_open() failed (-EMFILE...): a hold that could not
 *                 be watched would never be reclaimed, so it is refused
 * @waiter_id may be NULL; it is set to 0 unless LEASE_PENDING. */
int lease_acquire(LeaseManager *manager, const LeaseRequest *req, uint64_t *waiter_id);

/* Withdraws a queued request (an interrupted or killed client). If it was
 * still waiting, calls its done(-EINTR) before returning and returns true.
 * Returns false and does nothing when the id is unknown or the request has
 * already completed (its done has been or is being called elsewhere). */
bool lease_cancel(LeaseManager *manager, uint64_t waiter_id);

/* Drops @ref from the hold on (kind, name); the last reference ends the
 * hold and lets the next waiter in. An unknown reference (never granted,
 * already released, or dropped by a break or a holder's death) is a no-op.
 * A reference that is still queued is not released: cancel the waiter. */
void lease_release(LeaseManager *manager, LeaseKind kind, const char *name, uint64_t ref);

/* The process that opened handle @ref has closed its descriptor: the
 * release will follow (unless a copy of the descriptor lives on). See
 * LeaseRequest.wait_if_closing. Unknown references are ignored. */
void lease_mark_closing(LeaseManager *manager, LeaseKind kind, const char *name, uint64_t ref);

/* Whether @ref is currently part of the hold on (kind, name). */
bool lease_holds(LeaseManager *manager, LeaseKind kind, const char *name, uint64_t ref);

/* Forcibly ends the current hold on (kind, name) (an operator clearing a hung
 * session): logs, counts, sends LEASE_EVENT_HOLD_ENDED with LEASE_END_BROKEN and grants
 * the next waiter. Returns 0, or -ENOENT when nobody holds it. */
int lease_break(LeaseManager *manager, LeaseKind kind, const char *name);

/* lease_break(), and for @ban_ms the broken holder's process is refused
 * the resource (-EBUSY at once, logged at debug level), so a hung or
 * hostile program that would take it again at once cannot. One ban per
 * resource: a later break replaces it. */
int lease_break_banning(LeaseManager *manager, LeaseKind kind, const char *name, int ban_ms);

typedef struct {
        LeaseKind kind;
        char *name;
        pid_t holder;       /* 0 when free */
        char *program;      /* holder's; NULL when free */
        char *protocol;     /* holder's first request's; NULL when free */
        gint64 since_us;    /* g_get_real_time() at grant; 0 when free */
        unsigned refs;      /* references in the hold */
        unsigned n_waiters;
        pid_t *waiter_pids; /* n_waiters entries, FIFO order; NULL if none */
        bool held_elsewhere; /* free here, but waiting for another daemon's hold */
} LeaseInfo;

void lease_info_free(LeaseInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LeaseInfo, lease_info_free)

/* Every held or awaited resource, as LeaseInfo* (the array frees them),
 * sorted by kind, then name. */
GPtrArray *lease_manager_snapshot(LeaseManager *manager);

/* One resource, held or free (holder 0, no waiters). Never NULL. */
LeaseInfo *lease_manager_lookup(LeaseManager *manager, LeaseKind kind, const char *name);

/* Upper bounds of the wait-time buckets, in milliseconds; the last
 * bucket holds longer waits. */
#define LEASE_WAIT_BUCKET_BOUNDS_MS {1, 10, 100, 1000, 10000, 60000}
#define LEASE_WAIT_BUCKETS 7

/* How long the waits that ended one way took. */
typedef struct {
        guint64 count[LEASE_WAIT_BUCKETS]; /* per bucket, not cumulative */
        guint64 sum_ms;
} LeaseWaitTimes;

typedef struct {
        guint64 acquisitions;    /* grants, at once or after waiting */
        guint64 waits;           /* requests that were queued */
        guint64 refused;         /* -EBUSY at once: a request that may not wait
                                  * (timeout_ms 0) met a holder, or a ban */
        guint64 waited_granted;  /* queued, then granted */
        guint64 timeouts;        /* queued, then -EBUSY when their time ran out */
        guint64 deadlocks;       /* -EDEADLK refusals */
        guint64 stale_reclaimed; /* holds whose dead holder left lock-file refs */
        guint64 breaks;          /* holds ended by lease_break() */
        guint64 cancellations;   /* waits withdrawn by lease_cancel() */
        guint64 mixed_protocol;  /* lease_manager_count_mixed_protocol() */
        guint64 overlaps;        /* observing requests that met a hold */
        LeaseWaitTimes granted_wait; /* waited_granted's waits */
        LeaseWaitTimes timeout_wait; /* timeouts' waits */
} LeaseStats;

/* Adds a wait of @waited_ms to @times. */
void lease_wait_times_add(LeaseWaitTimes *times, gint64 waited_ms);

void lease_manager_get_stats(LeaseManager *manager, LeaseStats *out);

/* Overlaps of one resource between two protocols. */
typedef struct {
        LeaseKind kind;
        char *name;
        char *protocol;       /* the observing request's */
        char *other_protocol; /* the hold's; "?" for another daemon's */
        guint64 count;
} LeaseOverlapCount;

void lease_overlap_count_free(LeaseOverlapCount *count);

/* The overlaps counted so far, as LeaseOverlapCount* (the array frees
 * them), sorted by kind, name and protocols. */
GPtrArray *lease_manager_overlaps(LeaseManager *manager);

/* The daemon saw two locking protocols used on one queue. */
void lease_manager_count_mixed_protocol(LeaseManager *manager);

/* "session", "key-write", "exclusive"; "?" for anything else. */
const char *lease_kind_to_string(LeaseKind kind);

G_END_DECLS
