/* mailbags.h - the daemon's mailbag state: the profile that says which
 * path is what, the lease manager, and the live Mail 2.x lock files.
 *
 * Handlers ask mailbags_plan() what an open needs and tell
 * mailbags_name_removed() when a name disappears; everything else about
 * locking (waiting, fairness, dead holders) happens in the lease manager.
 */
#pragma once

#include <glib.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "backing.h"
#include "guard.h"
#include "lease.h"
#include "lockfiles.h"
#include "profile.h"

typedef struct {
        const Backing *backing; /* borrowed from the daemon */
        PoProfile *profile;
        LeaseManager *leases;
        LockFiles *lockfiles;
        GuardV20Mode v20_mode;
        atomic_uint_fast64_t next_ref; /* lease references: handles and lock files */
        GMutex misconfigured_mutex;
        GHashTable *misconfigured_pids; /* pid -> pid already warned about; guarded by misconfigured_mutex */
} Mailbags;

typedef struct {
        char profile_path[4096]; /* empty: the built-in profile */
        int lock_timeout_ms;     /* sessions and KEY writes */
        int exclusive_timeout_ms;
        GuardV20Mode v20_mode;
} MailbagsConfig;

/* 0, or -errno with a message in @error. */
int mailbags_init(Mailbags *mailbags, const Backing *backing, const MailbagsConfig *config,
                  GError **error);
/* Fails every request still waiting for a lease (-ECANCELED); call while
 * the FUSE session can still carry their replies. */
void mailbags_stop(Mailbags *mailbags);
void mailbags_clear(Mailbags *mailbags);

/* The process behind a request and its program name. */
typedef struct {
        pid_t pid;
        char program[64];
} Caller;

/* Classifies @relpath and says which lease an open with @flags needs.
 * Only when one is needed is the caller (thread @thread_id) identified into
 * @caller, which costs two reads of /proc: most opens need none. Rewriting
 * a lock file the caller already holds claims nothing new. Warns once per
 * process about a -V20 misconfiguration. */
void mailbags_plan(Mailbags *mailbags, const char *relpath, int flags, bool creating,
                   pid_t thread_id, Caller *caller, GuardPlan *plan);

uint64_t mailbags_new_ref(Mailbags *mailbags);

/* A V20 lock file at @relpath was created by @caller and carries @ref. */
void mailbags_lockfile_created(Mailbags *mailbags, const char *relpath, const GuardPlan *plan,
                               uint64_t ref, pid_t pid);

/* @relpath was unlinked or renamed away: a lock file's hold ends. */
void mailbags_name_removed(Mailbags *mailbags, const char *relpath);
