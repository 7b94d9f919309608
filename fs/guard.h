/* guard.h - which lease an open or a create of a postoffice file needs.
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
} GuardPlan;

/* @creating: the request creates the file (or truncates an existing one,
 * which for a lock file is the same claim). */
void guard_plan_open(const PoClass *cls, int open_flags, bool creating, GuardPlan *plan);

/* The leases that some open of the file @cls names would take, in kind
 * order (what its status shows); returns how many. */
int guard_leases_of(const PoClass *cls, LeaseKind kinds[LEASE_KIND_COUNT]);

typedef enum {
        GUARD_V20_ANY = 0, /* either protocol, no warnings */
        GUARD_V20_ALL,     /* every MTA runs with -V20 */
        GUARD_V20_NONE,    /* no MTA runs with -V20 */
} GuardV20Mode;

/* Parses "any", "all" or "none"; -EINVAL otherwise. */
int guard_v20_mode_parse(const char *text, GuardV20Mode *mode);

/* True when @plan uses the protocol that @mode says nobody should use (KB
 * Q103960: -V20 must be set on all MTAs of a postoffice or on none). */
bool guard_plan_is_misconfigured(const GuardPlan *plan, GuardV20Mode mode);

/* The errno that the caller's layer turns into a sharing violation (DOS
 * error 32). Wine's opens are made by wineserver, which maps EAGAIN to
 * STATUS_SHARING_VIOLATION but EBUSY to STATUS_FILE_LOCK_CONFLICT. smbd
 * maps EBUSY to NT_STATUS_ACCESS_DENIED (its errno table has no entry for
 * it), while an EAGAIN from open() makes it defer the client's open and
 * retry it about once a second, answering NT_STATUS_SHARING_VIOLATION
 * if the file stays taken. Everyone else gets EBUSY. */
int guard_busy_errno(const char *program);

/* Whether a refused caller may wait in the daemon's line. smbd and
 * wineserver never do: each serves many requests from one thread (every
 * program of a Wine prefix; a client's whole connection), which a blocked
 * open would freeze, and both already retry or refuse as Windows would. */
bool guard_caller_may_wait(const char *program);
