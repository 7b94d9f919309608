/* lease-private.h - the lease manager's structures, shared by its files:
 * lease.c (holds and requests), lease-watch.c (the watch thread and the
 * manager's life cycle) and lease-info.c (snapshots and counters). Nothing
 * outside those files includes it.
 *
 * Everything here is guarded by LeaseManager.mutex, the manager's only
 * lock; the invariants are listed at the top of lease.c. The watcher
 * (lease-watch.c) has its own mutex, never held together with a manager's.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster.h"
#include "lease.h"

#define LEASE_DEFAULT_SESSION_MS 10000
#define LEASE_DEFAULT_KEY_WRITE_MS 10000
#define LEASE_DEFAULT_EXCLUSIVE_MS 2000

typedef struct LeaseProcess LeaseProcess;
typedef struct LeaseResource LeaseResource;
typedef struct LeaseWaiter LeaseWaiter;

/* Records of live processes kept while nothing uses them (users 0), as
 * long as the table holds at most this many. */
#define LEASE_PROCESSES_KEPT_MAX 64

struct LeaseProcess {
        pid_t pid;
        int pidfd;      /* -1 once the process has exited */
        bool exited;    /* out of the table, kept only by holds on open handles */
        unsigned users; /* held resources + waiters (+ temporary pins); 0 for
                         * a kept record (LEASE_PROCESSES_KEPT_MAX) */
        GList *held;    /* LeaseResource* */
        GList *waiting; /* LeaseWaiter*, oldest first */
};

struct LeaseResource {
        LeaseKind kind;
        char *key; /* "kind:name", owned; the table's key */
        char *name;
        LeaseProcess *holder; /* NULL when free */
        char *program;        /* the rest describes the hold, when held */
        char *protocol;
        gint64 since_us;
        gint64 held_from_us; /* monotonic, for hold_warning_ms */
        bool hold_warned;    /* this hold was logged as long */
        pid_t admits_session; /* this session's requests join the hold */
        GArray *refs;     /* uint64_t */
        GArray *handles;  /* gboolean per entry of refs: an open file handle */
        GArray *closing;  /* gboolean per entry of refs: its opener has closed it */
        GQueue waiters;   /* LeaseWaiter*, FIFO */
        /* Free here while another daemon holds it: the head waiter asks
         * again at remote_retry_us (monotonic). */
        bool remote_busy;
        gint64 remote_retry_us;
};

struct LeaseWaiter {
        uint64_t id;
        LeaseResource *resource;
        LeaseProcess *process;
        GList *link; /* in resource->waiters */
        char *program;
        char *protocol;
        uint64_t ref;
        bool handle;
        pid_t admits_session;
        int timeout_ms;
        gint64 queued_us;   /* monotonic */
        gint64 deadline_us; /* monotonic */
        LeaseDoneFn done;
        void *opaque;
};

struct LeaseManager {
        LeaseConfig config;                   /* immutable */
        int timeout_ms[LEASE_KIND_COUNT];     /* immutable */
        LeaseWatcher *watcher;                /* immutable; config.watcher, or owned */
        bool owns_watcher;                    /* immutable */
        uint64_t watch_serial;                /* immutable; the manager's entry there */
        atomic_bool watch_dirty;              /* lease_wake() set it since the watch
                                               * thread's last visit */

        GMutex mutex;
        GHashTable *resources;   /* guarded by mutex; key -> LeaseResource* */
        GHashTable *processes;   /* guarded by mutex; pid -> LeaseProcess*, live ones */
        GList *exited;           /* guarded by mutex; LeaseProcess* whose handles still hold */
        GHashTable *waiters;     /* guarded by mutex; &id -> LeaseWaiter* */
        GHashTable *bans;        /* guarded by mutex; resource key -> LeaseBan* (owned) */
        GArray *retired_fds;     /* guarded by mutex; pidfds to close */
        gint64 next_deadline_us; /* guarded by mutex; watch thread's wake-up */
        unsigned remote_busy;    /* guarded by mutex; resources with remote_busy set */
        LeaseStats stats;        /* guarded by mutex */
        GHashTable *overlaps;    /* guarded by mutex; "kind\tname\tprotocol\tother" ->
                                  * LeaseOverlapCount* (owned) */
        bool stopping;           /* guarded by mutex */
        bool watch_stopped;      /* guarded by mutex; lease_manager_stop() took the
                                  * manager off its watcher: pidfds are closed at once */
        bool watch_unchecked;    /* guarded by mutex; the watch thread sleeps without
                                  * a time limit, so a grant must wake it to keep
                                  * the lease file joined (cluster_keep_joined) */
};

/* A lease was granted: the watch thread looks after the lease file while
 * anything is held. Under the mutex. */
void lease_watch_granted(LeaseManager *m);

/* A broken holder refused the resource for a while (lease_break_banning). */
typedef struct {
        pid_t pid;
        gint64 until_us; /* monotonic */
} LeaseBan;

/* Bans kept at once; expired ones are dropped first, then all. */
#define LEASE_BANS_MAX 4096

typedef enum {
        LEASE_CALL_DONE,
        LEASE_CALL_EVENT,
} LeaseCallType;

/* A callback collected under the mutex: a done, or an event whose
 * strings and references the call owns. */
typedef struct {
        LeaseCallType type;
        int value; /* done's result */
        LeaseDoneFn done;
        void *opaque;
        LeaseEvent event; /* LEASE_CALL_EVENT; name, message and refs point
                           * into text and refs below */
        char *text;       /* resource name or log message */
        GArray *refs;     /* uint64_t */
        GStrv texts;      /* an overlap's programs and protocols */
} LeaseCall;

/* Deferred callbacks: collected under the mutex, run after it is dropped. */
GArray *lease_calls_new(void);
void lease_calls_run(LeaseManager *m, GArray *calls);
void lease_log(LeaseManager *m, GArray *calls, int priority, const char *format, ...)
        G_GNUC_PRINTF(4, 5);
void lease_push_done(GArray *calls, LeaseDoneFn done, void *opaque, int result);

const char *lease_or_unknown(const char *s);
char *lease_key(LeaseKind kind, const char *name);
/* Makes the watch thread rebuild its poll set and deadline. */
void lease_wake(LeaseManager *m);
bool lease_pidfd_exited(int pidfd);

void lease_resource_free(gpointer data);
/* Logs each hold that has lasted longer than hold_warning_ms, once;
 * returns when to check again (G_MAXINT64 when the limit is off). */
gint64 lease_warn_long_holds(LeaseManager *m, GArray *calls);
/* Grants every resource whose remote retry is due; returns the earliest
 * retry still pending (G_MAXINT64 when none). */
gint64 lease_retry_remote(LeaseManager *m, GArray *calls);
void lease_waiter_fail(LeaseManager *m, LeaseWaiter *w, int result, GArray *calls);
void lease_process_died(LeaseManager *m, LeaseProcess *p, GArray *calls);
