/* mailbags.c - profile, leases and lock files, wired together. */
#include "mailbags.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "caller.h"
#include "log.h"

static void mailbags_lease_log(void *user_data, int priority, const char *message)
{
        log_message(priority, "%s", message);
}

/* A hold ended without its references being released: the holder died or
 * an operator broke it. A Mail 2.x lock file it left would make every other
 * -V20 program believe the queue is still locked, so it is removed. */
static void mailbags_holder_gone(void *user_data, LeaseKind kind, const char *name, pid_t pid,
                                 const uint64_t *refs, unsigned n_refs, LeaseEndReason reason)
{
        Mailbags *mailbags = user_data;
        const char *why = reason == LEASE_END_DIED ? "dead process" : "broken hold of process";

        for (unsigned i = 0; i < n_refs; i++) {
                LockFile file;
                if (!lockfiles_take_ref(mailbags->lockfiles, refs[i], &file))
                        continue;
                if (unlinkat(mailbags->backing->root_fd, file.path, 0) < 0 && errno != ENOENT)
                        log_warning("cannot remove stale lock file %s of %s %d: %s", file.path,
                                    why, (int)pid, g_strerror(errno));
                else
                        log_warning("reclaimed stale lock file %s of %s %d", file.path, why,
                                    (int)pid);
        }
}

int mailbags_init(Mailbags *mailbags, const Backing *backing, const MailbagsConfig *config,
                  GError **error)
{
        memset(mailbags, 0, sizeof(*mailbags));
        mailbags->backing = backing;
        mailbags->v20_mode = config->v20_mode;
        atomic_init(&mailbags->next_ref, 1);
        g_mutex_init(&mailbags->misconfigured_mutex);
        mailbags->misconfigured_pids = g_hash_table_new(g_direct_hash, g_direct_equal);

        if (config->profile_path[0]) {
                mailbags->profile = po_profile_load(config->profile_path, error);
                if (!mailbags->profile)
                        return -EINVAL;
        } else {
                mailbags->profile = po_profile_new_default();
        }

        LeaseConfig lease_config = {
                .session_timeout_ms = config->lock_timeout_ms,
                .key_write_timeout_ms = config->lock_timeout_ms,
                .exclusive_timeout_ms = config->exclusive_timeout_ms,
                .log = mailbags_lease_log,
                .holder_gone = mailbags_holder_gone,
                .user_data = mailbags,
        };
        mailbags->lockfiles = lockfiles_new();
        mailbags->leases = lease_manager_new(&lease_config, error);
        if (!mailbags->leases)
                return -EINVAL;
        return 0;
}

void mailbags_stop(Mailbags *mailbags)
{
        g_clear_pointer(&mailbags->leases, lease_manager_free);
}

void mailbags_clear(Mailbags *mailbags)
{
        /* The manager first: its shutdown still calls back into us. */
        mailbags_stop(mailbags);
        g_clear_pointer(&mailbags->lockfiles, lockfiles_free);
        g_clear_pointer(&mailbags->profile, po_profile_free);
        g_clear_pointer(&mailbags->misconfigured_pids, g_hash_table_unref);
        g_mutex_clear(&mailbags->misconfigured_mutex);
}

static void mailbags_identify(pid_t thread_id, Caller *caller)
{
        caller->pid = caller_process_of_thread(thread_id);
        caller_program_name(caller->pid, caller->program, sizeof(caller->program));
}

/* Bounded: a long-running daemon sees many processes come and go. */
#define MAILBAGS_MISCONFIGURED_PIDS_MAX 1024

static void mailbags_note_misconfigured(Mailbags *mailbags, const GuardPlan *plan,
                                        const Caller *caller)
{
        bool first = false;

        g_mutex_lock(&mailbags->misconfigured_mutex);
        if (g_hash_table_size(mailbags->misconfigured_pids) >= MAILBAGS_MISCONFIGURED_PIDS_MAX)
                g_hash_table_remove_all(mailbags->misconfigured_pids);
        if (!g_hash_table_contains(mailbags->misconfigured_pids, GINT_TO_POINTER(caller->pid))) {
                g_hash_table_add(mailbags->misconfigured_pids, GINT_TO_POINTER(caller->pid));
                first = true;
        }
        g_mutex_unlock(&mailbags->misconfigured_mutex);

        if (!first)
                return;
        lease_manager_count_mixed_protocol(mailbags->leases);
        log_warning("misconfigured MTA: process %d (%s) locks %s with %s lock files, but this "
                    "postoffice is mounted with v20=%s; set -V20 on all MTAs or on none (KB Q103960)",
                    (int)caller->pid, caller->program, plan->name,
                    plan->v20_style ? "Mail 2.x (-V20)" : "Mail 3.x",
                    mailbags->v20_mode == GUARD_V20_ALL ? "all" : "none");
}

void mailbags_plan(Mailbags *mailbags, const char *relpath, int flags, bool creating,
                   pid_t thread_id, Caller *caller, GuardPlan *plan)
{
        PoClass cls;
        po_classify(mailbags->profile, relpath, &cls);
        guard_plan_open(&cls, flags, creating, plan);
        if (!plan->needed)
                return;

        mailbags_identify(thread_id, caller);
        if (plan->until_unlink && !creating &&
            lockfiles_held_by(mailbags->lockfiles, relpath, caller->pid)) {
                plan->needed = false;
                return;
        }
        if (guard_plan_is_misconfigured(plan, mailbags->v20_mode))
                mailbags_note_misconfigured(mailbags, plan, caller);
}

uint64_t mailbags_new_ref(Mailbags *mailbags)
{
        return atomic_fetch_add(&mailbags->next_ref, 1);
}

void mailbags_lockfile_created(Mailbags *mailbags, const char *relpath, const GuardPlan *plan,
                               uint64_t ref, pid_t pid)
{
        LockFile replaced;
        if (lockfiles_add(mailbags->lockfiles, relpath, plan->name, ref, pid, &replaced))
                lease_release(mailbags->leases, LEASE_SESSION, replaced.mailbag, replaced.ref);
}

void mailbags_name_removed(Mailbags *mailbags, const char *relpath)
{
        LockFile file;
        if (lockfiles_take_path(mailbags->lockfiles, relpath, &file))
                lease_release(mailbags->leases, LEASE_SESSION, file.mailbag, file.ref);
}
