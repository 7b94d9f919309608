/* policy.h - which lease an open or a create of a postoffice file needs.
 *
 * This is the daemon's whole locking policy, in one place (KB Q103960,
 * Q237695; POSTOFFICE.md):
 * - a queue's session is taken by opening or creating P1/<queue>.0LK or
 *   .OLK (External 3.x), by creating or writing P1/<queue>.0NN (Mail 2.x
 *   and -V20: held until that file is unlinked), or by a read-only open of
 *   the queue's KEY or MBG file (gateways that open the queue READ with
 *   DENY_READ);
 * - a write open of any mailbag's KEY file is a short critical section of
 *   its own, so producers keep delivering while a consumer holds the
 *   queue's session (otherwise they return [008]);
 * - the one-process-at-a-time files (CONTROL.GLB, TID.GLB, FLAG.GLB,
 *   MASTER.GLB) are exclusive while open.
 * Everything else passes through unguarded.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "lease.h"
#include "profile.h"

typedef struct {
        bool needed;
        LeaseKind kind;
        char name[PO_NAME_MAX];
        const char *protocol;  /* static label: "0LK", "V20", "queue-read", ... */
        bool until_unlink;     /* a Mail 2.x lock file: the hold outlives the handle */
        bool v20_style;        /* the lock-file protocol, for -o v20= checks */
        bool os_lock_style;    /* the network-OS lock protocol (.0LK) */
} PolicyPlan;

/* @creating: the request creates the file (or truncates an existing one,
 * which for a lock file is the same claim). */
void policy_plan_open(const PoClass *cls, int open_flags, bool creating, PolicyPlan *plan);

/* The leases that some open of the file @cls names would take, in kind
 * order (what its status shows); returns how many. */
int policy_leases_of(const PoClass *cls, LeaseKind kinds[LEASE_KIND_COUNT]);

typedef enum {
        POLICY_V20_ANY = 0, /* either protocol, no warnings */
        POLICY_V20_ALL,     /* every MTA runs with -V20 */
        POLICY_V20_NONE,    /* no MTA runs with -V20 */
} PolicyV20Mode;

/* Re-entry: a -V20 program reopening (not re-creating) a lock file it
 * holds already (to write its pid, to check it) claims nothing new: the
 * file is the hold. True when @plan is such a reopen, provided the caller
 * holds the file (the lock-file registry knows). */
bool policy_plan_is_lockfile_reopen(const PolicyPlan *plan, bool creating);

/* Lock-file names are made only by a create: @plan is what an exclusive
 * create of the name would need. A Mail 2.x lock file is its queue's lock
 * by its mere existence, and its hold begins with the create that makes
 * it; made by a rename, link, symlink, mkdir or mknod it would be a lock
 * that nobody holds, which other -V20 programs wait for and the other
 * protocols ignore. 0, or -EACCES for such a name. */
int policy_name_refusal(const PolicyPlan *plan);

/* Parses "any", "all" or "none"; -EINVAL otherwise. */
int policy_v20_mode_parse(const char *text, PolicyV20Mode *mode);

/* True when @plan uses the protocol that @mode says nobody should use (KB
 * Q103960: -V20 must be set on all MTAs of a postoffice or on none). */
bool policy_plan_is_misconfigured(const PolicyPlan *plan, PolicyV20Mode mode);

/* How each client layer must hear "busy". A refused open reaches a program
 * through its layer, which turns the errno into its own answer:
 * - smbd maps ETXTBSY to NT_STATUS_SHARING_VIOLATION (its errno table);
 *   SMB2 clients get it at once, SMB1 clients after smbd's own retries of
 *   up to a second, as from Windows. EAGAIN would make smbd defer the open
 *   and retry it for up to 70 s (its kernel oplock path); EBUSY has no
 *   entry and becomes NT_STATUS_ACCESS_DENIED.
 * - wineserver maps EAGAIN to STATUS_SHARING_VIOLATION, EBUSY to
 *   STATUS_FILE_LOCK_CONFLICT.
 * - DOSBox (0.74, DOSBox-X, staging) ignores the errno of a failed host
 *   open: a read-only open and every create report DOS error 2 (3 when the
 *   folder is missing), a write open 5 only when a second read-only open of
 *   the same file succeeds. A DOS program under it must not be refused, so
 *   its opens wait in line without a time limit. Its creates never wait:
 *   the kernel holds the folder's lock meanwhile, which would stop the
 *   holder's own work in that folder. A create is answered at once and its
 *   lease follows (deferred): until it comes, every open the program makes
 *   waits for it, so it reaches the queue only after the holder.
 * - dosemu reports any failed open or create of an existing name as error
 *   5 (access denied), which Mail programs take for "busy": refused at once.
 * - Everyone else waits up to the lock timeout, then gets EBUSY.
 * smbd, wineserver and the emulators each serve many requests or a whole
 * program from one thread, which a wait in the daemon freezes. */
typedef enum {
        POLICY_WAIT_NEVER,     /* refused at once */
        POLICY_WAIT_LIMITED,   /* waits up to the lock timeout */
        POLICY_WAIT_UNLIMITED, /* waits until granted (or a deadlock) */
} PolicyWait;

/* The errno for a refused claim of @program (its /proc comm, may be NULL). */
int policy_busy_errno(const char *program);

/* How long a refused claim of @program waits; @creating: a create, which
 * never waits: POLICY_WAIT_UNLIMITED (deferred: policy_lease_wait) for a
 * program whose layer cannot report busy for it, otherwise
 * POLICY_WAIT_NEVER. */
PolicyWait policy_caller_wait(const char *program, bool creating);

/* Whether a refused open (not a create) of @program may wait at all. */
bool policy_caller_may_wait(const char *program);

/* How a claim of @program (@creating: a create) asks the lease manager:
 * its lease timeout (0 never queues, -1 the kind's default, INT_MAX until
 * granted), whether it queues all the same for a hold whose every handle
 * its opener has closed (LeaseRequest.wait_if_closing), and whether a
 * create that must queue is answered at once, its lease following
 * (deferred; see DOSBox above). */
typedef struct {
        int timeout_ms;
        bool wait_if_closing;
        bool deferred;
} PolicyLeaseWait;
PolicyLeaseWait policy_lease_wait(const char *program, bool creating);

/* What @program must hear for a lease result (0 or -errno from lease.h):
 * busy as its layer hears it, EINTR for a waiter that died or a daemon
 * that stops. */
int policy_refusal_errno(const char *program, int lease_result);

/* Adds or replaces a rule from "PROGRAM:ANSWER" (-o busy_answer=): PROGRAM
 * is a /proc comm name, or a prefix ending in '*'; ANSWER is "wait"
 * (without a limit; creates deferred), "queue" (up to the
 * lock timeout, then EBUSY: the default) or an errno name (EAGAIN, EBUSY,
 * ETXTBSY, EACCES, EPERM) given at once. Later rules win. Call before any
 * claim is made: the table is read without a lock afterwards. 0 or
 * -EINVAL. */
int policy_busy_answer_add(const char *spec);

/* Forgets the rules added, back to the built-in ones (for tests). */
void policy_busy_answers_reset(void);
