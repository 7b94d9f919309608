/* po-sim.h - what the po-sim parent and its worker processes share.
 *
 * The parent (po-sim.c) forks one process per simulated program; each
 * worker runs one role (po-sim-consumer.c, po-sim-producer.c) through the
 * file access layer (po-sim-layer.c) and reports events through a shared
 * anonymous mapping (SimShared). What happened to the mail is not taken
 * from those reports but counted from the postoffice's files at the end
 * (po-sim-tally.c).
 */
#pragma once

#include <glib.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "naming.h"
#include "profile.h"

#define SIM_QUEUE "INQUEUE3"

typedef enum {
        SIM_ROLE_EXTERNAL,  /* External 3.x: P1/INQUEUE3.0LK held open DENY_ALL */
        SIM_ROLE_V20,       /* External -V20: P1/INQUEUE3.0NN created, detected, deleted */
        SIM_ROLE_GATEWAY,   /* PROFS-like gateway: KEY/INQUEUE3.KEY open READ|DENY_READ */
        SIM_ROLE_PRODUCER,  /* MS Mail Connector adding to INQUEUE3 */
        SIM_ROLE_COUNT,
} SimRole;

/* Messages a consumer returned to the sender because the recipient's
 * mailbag was full: remembered so that the tally does not call them lost. */
#define SIM_RETURNED_MAX 4096

/* Lives in a MAP_SHARED anonymous mapping created before the fork. The
 * counters are events the programs would log (SYSTEM.LOG); they are not
 * used to decide what was delivered. */
typedef struct {
        atomic_uint missing_routing;     /* [021] events */
        atomic_uint contention_failures; /* [008] events */
        atomic_uint refused;             /* of which producers' (never queued) */
        atomic_uint delivered_claims;    /* progress display only */
        atomic_uint produced_attempts;   /* progress display only */
        atomic_uint returned_count;
        uint32_t returned[SIM_RETURNED_MAX];
        /* Producers' outcomes, indexed by message number - first_number:
         * SIM_OUTCOME_*. Numbers come from CONTROL.GLB, which nobody else
         * increments during a run. */
        uint32_t first_number;
        uint32_t capacity;
        _Atomic uint8_t outcome[];
} SimShared;

enum {
        SIM_OUTCOME_NONE = 0,
        SIM_OUTCOME_QUEUED,   /* record added to INQUEUE3 */
        SIM_OUTCOME_REFUSED,  /* [008]: not queued, files removed, NDR to the sender */
};

typedef struct {
        const char *root;        /* the postoffice (raw directory or mount) */
        int root_fd;             /* O_PATH descriptor of @root */
        const PoProfile *profile; /* where the postoffice's files are */
        /* SIM_QUEUE's files, from the profile: "KEY/INQUEUE3.KEY", its MBG
         * and the External session lock "P1/INQUEUE3.0LK". */
        const char *queue_key;
        const char *queue_mbg;
        const char *queue_session_lock;
        bool raw;                /* no mailbagfs: emulate the same-layer locks */
        const char *stand_in_dir; /* raw only: where the stand-in locks live */
        GPtrArray *recipients;   /* user mailbag names, sorted */
        unsigned batch;          /* records a consumer handles per session */
        unsigned poll_us;        /* a refused consumer retries within this */
        unsigned key_attempts;   /* producers' retry budget for the KEY section */
        gint64 deadline_us;      /* g_get_monotonic_time() limit for everybody */
        int done_fd;             /* EOF once every producer has finished */
        SimShared *shared;
} SimContext;

typedef struct {
        const SimContext *ctx;
        SimRole role;
        unsigned index;      /* 1-based within its role */
        unsigned messages;   /* producers: how many to add */
        GRand *rand;
} SimWorker;

const char *sim_role_name(SimRole role);

/* po-sim-layer.c */

/* openat() under the postoffice root with O_CLOEXEC. Returns the fd or a
 * negative errno; a sharing violation (mailbagfs' EBUSY after its wait,
 * EAGAIN for callers that may not wait, EDEADLK) is -EBUSY. */
int sim_open(const SimContext *ctx, const char *relpath, int flags);
int sim_unlink(const SimContext *ctx, const char *relpath);

/* A raw-mode stand-in for a lock a single network layer (Samba, Wine)
 * enforces among programs using the same protocol; through mailbagfs it is
 * never taken (the daemon does the excluding). -1 when not held. */
typedef struct {
        int fd;
} SimStandIn;

#define SIM_STAND_IN_INIT { .fd = -1 }

/* Tries once, without waiting, as a share-mode conflict is refused at
 * once: 0 (held, or not needed) or -EBUSY. */
int sim_stand_in_try(const SimContext *ctx, const char *name, SimStandIn *stand_in);
void sim_stand_in_release(SimStandIn *stand_in);

/* Sleeps a random 0.1..@max_us microseconds (how a DOS program retries after
 * a sharing violation). False once the run's deadline has passed. */
bool sim_backoff(SimWorker *worker, unsigned max_us);
bool sim_deadline_passed(const SimContext *ctx);
/* Whether every producer has finished (the done pipe reads EOF). */
bool sim_producers_done(const SimContext *ctx);

/* Opens KEY/<mailbag>.KEY for writing: the one-writer-at-a-time section
 * of a mailbag (delivery opens the KEY read/write DENY_ALL, inferred). One
 * attempt: the fd (>= 0, with @stand_in held on a raw directory) or -EBUSY. */
int sim_key_section_try(const SimContext *ctx, const char *mailbag, SimStandIn *stand_in);

/* po-sim-consumer.c, po-sim-producer.c: run a worker; 0 or a negative
 * errno (the message is already printed). */
int sim_consumer_run(SimWorker *worker);
int sim_producer_run(SimWorker *worker);

/* po-sim-tally.c */

typedef struct {
        GHashTable *baseline; /* number -> copies already in user mailbags at start */
        GArray *initial;      /* uint32 numbers queued at start */
} SimBefore;

typedef struct {
        unsigned queued;
        unsigned delivered;        /* exactly once */
        unsigned duplicates;       /* messages delivered more than once */
        unsigned duplicate_copies; /* copies beyond the first */
        unsigned lost;             /* never delivered, no longer queued */
        unsigned still_queued;
        unsigned returned;         /* [008] at delivery, returned to the sender */
        unsigned full_mailbags;    /* mailbags at the 4096-record limit */
} SimTally;

/* Reads the queue and the recipients' mailbags before the run. */
bool sim_tally_before(const SimContext *ctx, SimBefore *before, GError **error);
void sim_before_clear(SimBefore *before);
/* Counts every tracked message's copies in the user mailbags after the run. */
bool sim_tally_after(const SimContext *ctx, const SimBefore *before, SimTally *tally,
                     GError **error);
/* User mailbags of the postoffice (8 hex digits, not 00000000), sorted. */
GPtrArray *sim_list_recipients(const char *root, GError **error);
