/* po-sim.h - what the po-sim parent and its worker processes share.
 *
 * The parent (po-sim.c) forks one process per simulated program; each
 * worker runs one role (po-sim-consumer.c, po-sim-producer.c,
 * po-sim-deliver.c) through the
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

#define SIM_MAX_CONSUMERS_PER_ROLE 70 /* -V20 process numbers 01..70 (Q119642) */
#define SIM_MAX_PRODUCERS 16
#define SIM_MAX_DELIVERERS 16
#define SIM_MAX_INDEX SIM_MAX_CONSUMERS_PER_ROLE /* of any role, 1-based */

/* A worker's exit status when it failed on an I/O error of the share
 * (ENOTCONN of a dead mount, EIO, ESTALE) or found its postoffice gone:
 * with --restart-workers the parent starts it again, as a supervisor
 * would (EX_TEMPFAIL). */
#define SIM_EXIT_IO 75

typedef enum {
        SIM_ROLE_EXTERNAL,  /* External 3.x: P1/INQUEUE3.0LK held open DENY_ALL */
        SIM_ROLE_V20,       /* External -V20: P1/INQUEUE3.0NN created, detected, deleted */
        SIM_ROLE_GATEWAY,   /* PROFS-like gateway: KEY/INQUEUE3.KEY open READ|DENY_READ */
        SIM_ROLE_PRODUCER,  /* MS Mail Connector adding to INQUEUE3 */
        /* An External instance or the MS Mail Connector's MTA delivering
         * mail it carries in straight into user mailbags (po-sim-deliver.c) */
        SIM_ROLE_DELIVERER,
        SIM_ROLE_COUNT,
} SimRole;

/* Messages a consumer returned to the sender because the recipient's
 * mailbag was full: remembered so that the tally does not call them lost. */
#define SIM_RETURNED_MAX 4096
/* [021] events remembered by message number, to tell those that follow a
 * consumer's death from those another consumer caused. */
#define SIM_MISSING_MAX 4096

/* A consumer's in-hand slot: SIM_IN_HAND_SET | number from just before it
 * delivers a message until the message's queue record is removed, 0
 * otherwise. A consumer that dies in between leaves the record queued and
 * the message (possibly) delivered: the next consumer delivers it again,
 * the documented order of Q136379. Those are the only duplicates a death
 * explains. */
#define SIM_IN_HAND_SET (UINT64_C(1) << 32)

/* Lives in a MAP_SHARED anonymous mapping created before the fork. The
 * counters are events the programs would log (SYSTEM.LOG); they are not
 * used to decide what was delivered. */
typedef struct {
        atomic_uint missing_routing;     /* [021] events */
        atomic_uint contention_failures; /* [008] events */
        atomic_uint refused;             /* of which producers' (never queued) */
        /* of which at a delivery into a user mailbag (consumers, deliverers) */
        atomic_uint contention_delivery;
        /* Sharing violations answered to a delivery into a user mailbag
         * (each one a retry, or the [008] after the last) */
        atomic_uint delivery_refusals;
        atomic_uint delivered_claims;    /* progress display only */
        /* Which consumers are inside a queue session now, by [role][index]:
         * the pid of the process, set by it once its session is taken and
         * cleared by it before it gives the session back or, when it died
         * inside, by the supervisor that reaps it. */
        _Atomic pid_t inside[SIM_ROLE_COUNT][SIM_MAX_INDEX + 1];
        /* The pid the supervisor is sending SIGKILL, written before it
         * does: that process no longer counts as inside, as its holds end
         * when the kernel closes its files, before it is reaped. */
        _Atomic pid_t killing[SIM_ROLE_COUNT][SIM_MAX_INDEX + 1];
        /* Sessions begun while a consumer of another role was inside:
         * the cross-protocol overlaps of KB Q103960 as the programs see
         * them (po-sim-consumer.c). */
        atomic_uint cross_protocol_overlaps;
        atomic_uint produced_attempts;   /* progress display only */
        atomic_uint returned_count;
        uint32_t returned[SIM_RETURNED_MAX];
        atomic_uint missing_count;
        uint32_t missing[SIM_MISSING_MAX]; /* numbers of [021] events */
        /* Indexed [role][index]; only consumers use theirs. */
        _Atomic uint64_t in_hand[SIM_ROLE_COUNT][SIM_MAX_INDEX + 1];
        /* Messages each producer (by index) has finished, queued or
         * refused: a restarted producer makes only the rest. */
        atomic_uint produced_done[SIM_MAX_PRODUCERS + 1];
        /* The same for deliverers: messages delivered or returned. */
        atomic_uint direct_done[SIM_MAX_DELIVERERS + 1];
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
        /* Being added to the queue: left so when the producer died in the
         * middle (the daemon went away), so the record may or may not be
         * there. */
        SIM_OUTCOME_APPENDING,
        /* A deliverer's message (never queued): being delivered (left so
         * when the deliverer died in the middle), delivered, or returned
         * to the sender with [008]. */
        SIM_OUTCOME_DIRECT_PENDING,
        SIM_OUTCOME_DIRECT,
        SIM_OUTCOME_DIRECT_RETURNED,
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
        /* A mailbagfs mount in observe mode: it enforces nothing, so the
         * same-layer locks are emulated as on a raw share. */
        bool observed;
        const char *stand_in_dir; /* raw only: where the stand-in locks live */
        /* --also: the same postoffice through another path (another
         * mailbagfs mount of the same share); even-numbered workers of
         * each role use it. NULL when not split. */
        const char *also;
        bool also_raw;
        bool also_observed;
        GPtrArray *recipients;   /* user mailbag names, sorted */
        unsigned batch;          /* records a consumer handles per session */
        unsigned poll_us;        /* a refused consumer retries within this */
        unsigned key_attempts;   /* producers' retry budget for the KEY section */
        unsigned delivery_hold_us; /* a delivery's time with the mailbag open */
        gint64 deadline_us;      /* g_get_monotonic_time() limit for everybody */
        int done_fd;             /* EOF once every producer has finished */
        SimShared *shared;
} SimContext;

typedef struct {
        const SimContext *ctx;
        SimRole role;
        unsigned index;      /* 1-based within its role */
        unsigned messages;   /* producers: how many to add; deliverers: to deliver */
        GRand *rand;
} SimWorker;

const char *sim_role_name(SimRole role);

/* po-sim-supervise.c: runs the workers to the end (see there). */
typedef struct {
        const unsigned *counts;  /* workers per role */
        unsigned messages;       /* what the producers add in all */
        unsigned direct_messages; /* what the deliverers deliver in all */
        guint64 seed;
        int done_pipe[2];        /* consumers see EOF once producers are done */
        bool restart_workers;    /* restart a worker that exits with SIM_EXIT_IO */
        unsigned kill_every_ms;  /* SIGKILL a random consumer about this often, 0: never */
} SimPlan;

typedef struct {
        const char *failure;     /* NULL when the run completed */
        double seconds;
        unsigned kills;          /* consumers killed with SIGKILL */
        unsigned kills_in_hand;  /* of which had a message in hand */
        unsigned io_exits;       /* workers restarted after an I/O failure */
        unsigned io_in_hand;     /* of which (consumers) had a message in hand */
        unsigned restarts;       /* workers started again, for either reason */
        /* number -> times a dead consumer had it in hand (explains that
         * many extra copies) */
        GHashTable *in_hand_at_death;
} SimOutcome;

void sim_run(const SimContext *ctx, const SimPlan *plan, SimOutcome *outcome);
void sim_outcome_clear(SimOutcome *outcome);

/* Whether a worker failing with @error (negative errno) failed on the
 * share rather than on the mail: restartable. */
bool sim_error_is_io(int error);

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

/* po-sim-consumer.c, po-sim-producer.c, po-sim-deliver.c: run a worker;
 * 0 or a negative errno (the message is already printed). */
int sim_consumer_run(SimWorker *worker);
int sim_producer_run(SimWorker *worker);
int sim_deliverer_run(SimWorker *worker);

/* po-sim-producer.c: the next message number from GLB/CONTROL.GLB and its
 * outcome slot (SIM_OUTCOME_*): 0, -ERANGE (printed) when CONTROL.GLB gave
 * a number outside the run's range, or another negative errno; and a .MAI
 * or .P1 of random bytes (their formats are unpublished). */
int sim_take_message(SimWorker *worker, uint32_t *number, _Atomic uint8_t **outcome);
int sim_write_opaque(SimWorker *worker, const char *relpath, gsize min, gsize spread);

/* po-sim-deliver.c: one delivery of @record into the user mailbag
 * @mailbag, in the documented order of POSTOFFICE.md (see there). 0,
 * -EBUSY when the mailbag stayed contended through every retry, -ENOSPC
 * when it is full (both [008], counted here), or another negative errno. */
#define SIM_DELIVERY_RETRIES 5
int sim_deliver(SimWorker *worker, const char *mailbag, const uint8_t *record);

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
        /* Of the duplicates: explained by a consumer that died with the
         * message in hand (no more extra copies than deaths), and not. */
        unsigned duplicates_explained;
        unsigned duplicates_unexplained;
        unsigned missing_other;    /* [021] events not following a death */
        unsigned lost;             /* never delivered, no longer queued */
        unsigned still_queued;
        unsigned returned;         /* [008] at delivery, returned to the sender */
        /* Deliverers' messages (never queued): delivered exactly once,
         * more than once, returned with [008], nowhere without a [008]. */
        unsigned direct;
        unsigned direct_delivered;
        unsigned direct_duplicates;
        unsigned direct_returned;
        unsigned direct_lost;
        unsigned full_mailbags;    /* mailbags at the 4096-record limit */
        /* Messages whose producer died while queueing them and that are
         * nowhere now: the record never reached the queue. */
        unsigned interrupted;
} SimTally;

/* Reads the queue and the recipients' mailbags before the run. */
bool sim_tally_before(const SimContext *ctx, SimBefore *before, GError **error);
void sim_before_clear(SimBefore *before);
/* Counts every tracked message's copies in the user mailbags after the run. */
bool sim_tally_after(const SimContext *ctx, const SimBefore *before,
                     GHashTable *in_hand_at_death, SimTally *tally, GError **error);
/* User mailbags of the postoffice (8 hex digits, not 00000000), sorted. */
GPtrArray *sim_list_recipients(const char *root, GError **error);
