/* mailbags.c - profile, postoffices, leases and lock files, wired together. */
#include "mailbags.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caller.h"
#include "fd-util.h"
#include "freeze.h"
#include "log.h"

/* How deep below the served folder the start-up walk looks for
 * postoffices (a share's root, a site folder, a hub folder, ...). Deeper
 * ones are found when first used. */
#define MAILBAGS_SCAN_DEPTH 4

/* A file's path inside its postoffice: its last two components. */
static const char *mailbags_inner_path(const char *relpath)
{
        g_autofree char *dir = NULL;
        const char *inner;
        return postoffices_split(relpath, &dir, &inner) ? inner : relpath;
}

static const char *mailbags_base_name(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

/* Removes the lock file @file of the postoffice at @po_path: through a
 * folder opened without following any symlink, and only if its name still
 * holds the very file that was recorded (another may have been put there
 * since). 0, or -errno; a file already gone is 0. */
static int mailbags_remove_lockfile(Mailbags *mailbags, const char *po_path, const LockFile *file)
{
        g_autofree char *relpath = po_path[0] ? g_strdup_printf("%s/%s", po_path, file->path)
                                              : g_strdup(file->path);
        g_autofree char *dir = g_path_get_dirname(relpath);
        g_autofree char *base = g_path_get_basename(relpath);
        autoclose_fd int dirfd = backing_open_dir(mailbags->backing, g_str_equal(dir, ".") ? "" : dir);
        if (dirfd < 0)
                return dirfd == -ENOENT ? 0 : dirfd;
        struct stat st;
        if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (file->ino && (st.st_dev != file->dev || st.st_ino != file->ino))
                return 0;
        if (unlinkat(dirfd, base, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/* A hold ended without its references being released: the holder died or
 * an operator broke it. A Mail 2.x lock file it left would make every other
 * -V20 program believe the queue is still locked, so it is removed, and the
 * kernel is told to forget the name. */
static void mailbags_hold_ended(Mailbags *mailbags, Postoffice *po, const char *po_path,
                                pid_t pid, const uint64_t *refs, unsigned n_refs,
                                LeaseEndReason reason)
{
        const char *why = reason == LEASE_END_DIED ? "dead process" : "broken hold of process";

        freeze_hold_ended(mailbags, po, pid);

        /* Observing, the daemon changes nothing on the share: the lock
         * files stay, as they would without it (their references go). */
        bool observe = atomic_load(&mailbags->observe);
        for (unsigned i = 0; i < n_refs; i++) {
                LockFile file;
                if (!lockfiles_take_ref(po->lockfiles, refs[i], &file))
                        continue;
                g_autofree char *shown = po_path[0] ? g_strdup_printf("%s/%s", po_path, file.path)
                                                    : g_strdup(file.path);
                if (observe) {
                        log_info("observing: lock file %s of %s %d left in place", shown, why,
                                 (int)pid);
                        continue;
                }
                int r = mailbags_remove_lockfile(mailbags, po_path, &file);
                if (r < 0) {
                        log_warning("cannot remove stale lock file %s of %s %d: %s", shown, why,
                                    (int)pid, g_strerror(-r));
                        continue;
                }
                if (pid == mailbags->daemon_pid)
                        log_warning("removed lock file %s found on the share at start (broken)",
                                    shown);
                else
                        log_warning("reclaimed stale lock file %s of %s %d", shown, why,
                                    (int)pid);
                if (mailbags->name_gone && file.parent_node)
                        mailbags->name_gone(mailbags->name_gone_data, file.parent_node,
                                            mailbags_base_name(file.path));
        }
}

/* What a postoffice's lease manager tells the daemon (LeaseNotifyFn);
 * on the thread lease.h names, without the manager's mutex. */
static void mailbags_lease_event(void *user_data, const LeaseEvent *event)
{
        Postoffice *po = user_data;
        Mailbags *mailbags = po->owner;
        g_autofree char *path = postoffices_path_of(mailbags->postoffices, po);

        switch (event->type) {
        case LEASE_EVENT_LOG:
                if (path[0])
                        log_message(event->priority, "%s: %s", path, event->message);
                else
                        log_message(event->priority, "%s", event->message);
                break;
        case LEASE_EVENT_HOLD_ENDED:
                mailbags_hold_ended(mailbags, po, path, event->pid, event->refs, event->n_refs,
                                    event->reason);
                break;
        case LEASE_EVENT_TAKEN_FROM_DEAD_NODE:
                if (!atomic_load(&mailbags->observe))
                        cluster_sweep_dead_lockfiles(po->cluster, mailbags->backing,
                                                     mailbags->profile, path, po->lockfiles,
                                                     event->name);
                break;
        case LEASE_EVENT_OVERLAP:
                /* What enforcing would have stopped, with both programs. */
                if (event->holder_pid > 0)
                        log_info("%s%soverlap on %s %s: pid %d (%s, %s) while pid %d (%s, %s) "
                                 "holds it",
                                 path, path[0] ? ": " : "", lease_kind_to_string(event->kind),
                                 event->name, (int)event->pid, event->program, event->protocol,
                                 (int)event->holder_pid, event->holder_program,
                                 event->holder_protocol);
                else
                        log_info("%s%soverlap on %s %s: pid %d (%s, %s) while another daemon "
                                 "holds it",
                                 path, path[0] ? ": " : "", lease_kind_to_string(event->kind),
                                 event->name, (int)event->pid, event->program, event->protocol);
                break;
        }
}

int mailbags_init(Mailbags *mailbags, const Backing *backing, const MailbagsConfig *config,
                  GError **error)
{
        memset(mailbags, 0, sizeof(*mailbags));
        mailbags->backing = backing;
        mailbags->v20_mode = config->v20_mode;
        atomic_init(&mailbags->observe, config->observe);
        mailbags->trail.max_bytes = config->trail_bytes;
        mailbags->trail.node = config->trail_node ? g_strdup(config->trail_node) : trail_node_name();
        mailbags->max_postoffices = config->max_postoffices ? config->max_postoffices
                                                            : MAILBAGS_POSTOFFICES_MAX;
        atomic_init(&mailbags->next_ref, 1);
        g_mutex_init(&mailbags->misconfigured_mutex);
        mailbags->misconfigured_pids = g_hash_table_new(g_direct_hash, g_direct_equal);
        g_mutex_init(&mailbags->deferred_mutex);
        mailbags->deferred = g_ptr_array_new();
        mailbags->freezes = freezes_new();

        if (config->profile_path) {
                mailbags->profile = po_profile_load(config->profile_path, error);
                if (!mailbags->profile)
                        return -EINVAL;
        } else {
                mailbags->profile = po_profile_new_default();
        }
        if (config->only_postoffices) {
                g_autoptr(GPtrArray) only = g_ptr_array_new_with_free_func(g_free);
                for (char **path = config->only_postoffices; *path; path++) {
                        char *canonical = postoffices_canonical_path(*path);
                        if (!canonical) {
                                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                                            "postoffice=%s: the path must stay inside the "
                                            "backing directory", *path);
                                return -EINVAL;
                        }
                        g_ptr_array_add(only, canonical);
                }
                g_ptr_array_add(only, NULL);
                mailbags->only_postoffices = (char **)g_ptr_array_free(g_steal_pointer(&only), FALSE);
        }

        mailbags->lease_config = (LeaseConfig){
                .session_timeout_ms = config->lock_timeout_ms,
                .key_write_timeout_ms = config->lock_timeout_ms,
                .exclusive_timeout_ms = config->exclusive_timeout_ms,
                .hold_warning_ms = config->hold_warning_ms,
                .notify = mailbags_lease_event,
                .quiet_debug = !log_enabled(LOG_DEBUG),
        };
        return 0;
}

guint mailbags_start(Mailbags *mailbags, MailbagsNameGoneFn name_gone, void *name_gone_data)
{
        mailbags->daemon_pid = getpid();
        mailbags->proc_hides_pids = caller_proc_hides_pids();
        mailbags->name_gone = name_gone;
        mailbags->name_gone_data = name_gone_data;
        PostofficesConfig config = {
                .backing = mailbags->backing,
                .profile = mailbags->profile,
                .lease_config = mailbags->lease_config,
                .only = mailbags->only_postoffices,
                .owner = mailbags,
                .daemon_pid = mailbags->daemon_pid,
                .next_ref = &mailbags->next_ref,
                .max_count = mailbags->max_postoffices,
                .trail = mailbags->trail,
        };
        mailbags->postoffices = postoffices_new(&config);
        mailbags->byte_locks = byte_locks_new();
        return postoffices_scan(mailbags->postoffices, MAILBAGS_SCAN_DEPTH);
}

void mailbags_stop(Mailbags *mailbags)
{
        /* Freed before it is cleared: the lease managers' last callbacks
         * (logs, waiters failed) still look postoffices up. */
        postoffices_free(mailbags->postoffices);
        mailbags->postoffices = NULL;
        /* Answers the lock requests still waiting, while the session can
         * still carry the replies. */
        g_clear_pointer(&mailbags->byte_locks, byte_locks_free);
}

void mailbags_clear(Mailbags *mailbags)
{
        /* The managers first: their shutdown still calls back into us. */
        mailbags_stop(mailbags);
        g_clear_pointer(&mailbags->profile, po_profile_free);
        g_clear_pointer(&mailbags->only_postoffices, g_strfreev);
        g_clear_pointer(&mailbags->misconfigured_pids, g_hash_table_unref);
        g_mutex_clear(&mailbags->misconfigured_mutex);
        g_clear_pointer(&mailbags->deferred, g_ptr_array_unref);
        g_mutex_clear(&mailbags->deferred_mutex);
        g_clear_pointer(&mailbags->freezes, freezes_free);
        g_clear_pointer(&mailbags->trail.node, g_free);
        caller_cache_clear();
}

static void mailbags_identify(pid_t thread_id, Caller *caller)
{
        caller_identify(thread_id, &caller->pid, caller->program, sizeof(caller->program));
}

/* Bounded: a long-running daemon sees many processes come and go. */
#define MAILBAGS_MISCONFIGURED_PIDS_MAX 1024

static void mailbags_note_misconfigured(Mailbags *mailbags, Postoffice *po,
                                        const PolicyPlan *plan, const Caller *caller)
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
        lease_manager_count_mixed_protocol(po->leases);
        log_warning("misconfigured MTA: process %d (%s) locks %s with %s lock files, but this "
                    "postoffice is mounted with v20=%s; set -V20 on all MTAs or on none (KB Q103960)",
                    (int)caller->pid, caller->program, plan->name,
                    plan->v20_style ? "Mail 2.x (-V20)" : "Mail 3.x",
                    mailbags->v20_mode == POLICY_V20_ALL ? "all" : "none");
}

Postoffice *mailbags_postoffice_of(Mailbags *mailbags, const char *relpath, bool recognise,
                                   const char **inner)
{
        if (!mailbags->postoffices)
                return NULL;
        g_autofree char *dir = NULL;
        if (!postoffices_split(relpath, &dir, inner))
                return NULL;
        if (!recognise)
                return postoffices_peek(mailbags->postoffices, dir);
        Postoffice *po = NULL;
        return postoffices_find(mailbags->postoffices, dir, &po) == 0 ? po : NULL;
}

/* Whether the trail follows a file of @cls: the guarded files and the
 * message's envelope and body. */
static bool mailbags_trail_follows(const PoClass *cls)
{
        switch (cls->role) {
        case PO_ROLE_MAILBAG_KEY:
        case PO_ROLE_MAILBAG_MBG:
        case PO_ROLE_SESSION_LOCK:
        case PO_ROLE_EXCLUSIVE:
        case PO_ROLE_MESSAGE:
        case PO_ROLE_ENVELOPE:
                return true;
        default:
                return false;
        }
}

/* Whether a file of @cls is one of a message's own (its envelope, body
 * or attachment): Mail's programs never lock one, they are written once
 * and read by whoever finds them queued. */
static bool mailbags_role_is_message(const PoClass *cls)
{
        return cls->role == PO_ROLE_MESSAGE || cls->role == PO_ROLE_ENVELOPE ||
               cls->role == PO_ROLE_ATTACHMENT;
}

/* The postoffice folder of @relpath when the file is one that @wanted
 * accepts: its last two components (P1/0000002A.P1, KEY/INQUEUE3.KEY) or
 * three (MAI/MA0/0000002A.MAI) inside the folder; @inner points into
 * @relpath. Costs a look at the backing store only for such files. */
static Postoffice *mailbags_role_postoffice(Mailbags *mailbags, const char *relpath,
                                            bool (*wanted)(const PoClass *cls),
                                            const char **inner)
{
        if (!mailbags->postoffices || !relpath)
                return NULL;
        for (int depth = 2; depth <= 3; depth++) {
                const char *start = relpath + strlen(relpath);
                int slashes = 0;
                while (start > relpath && slashes < depth)
                        if (*--start == '/')
                                slashes++;
                const char *in = slashes == depth ? start + 1 : start;
                if (slashes < depth - 1 || (slashes == depth - 1 && start != relpath))
                        continue;
                PoClass cls;
                po_classify(mailbags->profile, in, &cls);
                if (!wanted(&cls))
                        continue;
                g_autofree char *dir = g_strndup(relpath, (gsize)(in > relpath ? in - 1 - relpath : 0));
                Postoffice *po = NULL;
                if (postoffices_find(mailbags->postoffices, dir, &po) == 0) {
                        *inner = in;
                        return po;
                }
        }
        return NULL;
}

/* The same for the files the trail follows, in a postoffice with a
 * trail. */
static Postoffice *mailbags_trail_postoffice(Mailbags *mailbags, const char *relpath,
                                             const char **inner)
{
        Postoffice *po = mailbags_role_postoffice(mailbags, relpath, mailbags_trail_follows, inner);
        return po && po->trail ? po : NULL;
}

bool mailbags_is_message_file(Mailbags *mailbags, const char *relpath)
{
        const char *inner = NULL;
        return mailbags_role_postoffice(mailbags, relpath, mailbags_role_is_message, &inner) != NULL;
}

void mailbags_trail(Mailbags *mailbags, const MailbagsEvent *event)
{
        const char *inner = NULL, *to_inner = NULL;
        Postoffice *po = mailbags_trail_postoffice(mailbags, event->relpath, &inner);
        Postoffice *to_po = mailbags_trail_postoffice(mailbags, event->to, &to_inner);
        if (!po && !to_po)
                return;
        Caller caller;
        if (event->caller)
                caller = *event->caller;
        else
                mailbags_identify(event->thread_id, &caller);
        g_autofree char *client = caller_client(caller.pid, caller.program, event->uid);
        TrailEvent trail_event = {
                .op = event->op,
                .file = po ? inner : event->relpath,
                .to = !event->to ? NULL : to_po == po ? to_inner : event->to,
                .flags = event->flags,
                .pid = caller.pid,
                .program = caller.program,
                .uid = event->uid,
                .protocol = event->protocol,
                .outcome = event->outcome,
                .waited_ms = event->waited_ms,
                .result = event->result,
                .client = client,
        };
        trail_append(po ? po->trail : to_po->trail, &trail_event);
}

/* The plan alone, and the postoffice it is for. */
static int mailbags_plan_in(Mailbags *mailbags, const char *relpath, int flags, bool creating,
                            PolicyPlan *plan, Postoffice **po)
{
        *po = NULL;
        memset(plan, 0, sizeof(*plan));
        g_autofree char *dir = NULL;
        const char *inner;
        if (!mailbags->postoffices || !postoffices_split(relpath, &dir, &inner))
                return 0;
        PoClass cls;
        po_classify(mailbags->profile, inner, &cls);
        policy_plan_open(&cls, flags, creating, plan);
        if (!plan->needed)
                return 0;
        /* Only a file that would be guarded costs a look at its folder. */
        int r = postoffices_find(mailbags->postoffices, dir, po);
        if (r < 0) {
                plan->needed = false;
                /* Not a postoffice: plain files. A postoffice that cannot
                 * be protected: refused, never served unguarded. */
                return r == -ENOENT ? 0 : r;
        }
        return 0;
}

int mailbags_plan_only(Mailbags *mailbags, const char *relpath, int flags, bool creating,
                       PolicyPlan *plan)
{
        Postoffice *po;
        return mailbags_plan_in(mailbags, relpath, flags, creating, plan, &po);
}

int mailbags_plan(Mailbags *mailbags, const char *relpath, int flags, bool creating,
                  pid_t thread_id, Caller *caller, PolicyPlan *plan, Postoffice **po)
{
        int r = mailbags_plan_in(mailbags, relpath, flags, creating, plan, po);
        if (r < 0 || !plan->needed)
                return r;

        mailbags_identify(thread_id, caller);
        if (policy_plan_is_lockfile_reopen(plan, creating) &&
            lockfiles_held_by((*po)->lockfiles, mailbags_inner_path(relpath), caller->pid)) {
                plan->needed = false;
                return 0;
        }
        if (policy_plan_is_misconfigured(plan, mailbags->v20_mode))
                mailbags_note_misconfigured(mailbags, *po, plan, caller);
        return 0;
}

uint64_t mailbags_new_ref(Mailbags *mailbags)
{
        return atomic_fetch_add(&mailbags->next_ref, 1);
}

void mailbags_cancel_wait(Mailbags *mailbags, uint64_t waiter_id)
{
        if (!mailbags->postoffices)
                return;
        GArray *entries = postoffices_list(mailbags->postoffices);
        for (guint i = 0; i < entries->len; i++)
                if (lease_cancel(g_array_index(entries, PostofficeEntry, i).po->leases, waiter_id))
                        break;
        postoffices_entries_free(entries);
}

int mailbags_lockfile_created(Mailbags *mailbags, Postoffice *po, const char *relpath,
                              uint64_t parent_node, const struct stat *st, const PolicyPlan *plan,
                              uint64_t ref, pid_t pid, LockFilePresentFn present, void *opaque)
{
        LockFile replaced;
        cluster_mark(po->cluster, plan->name, true);
        int r = lockfiles_add(po->lockfiles, mailbags_inner_path(relpath), plan->name, ref, pid,
                              parent_node, st, &replaced, present, opaque);
        if (r == 1)
                lease_release(po->leases, LEASE_SESSION, replaced.mailbag, replaced.ref);
        return r < 0 ? r : 0;
}

int mailbags_folder_may_go(Mailbags *mailbags, const char *relpath)
{
        Postoffice *po = mailbags->postoffices ? postoffices_peek(mailbags->postoffices, relpath)
                                               : NULL;
        if (!po)
                return 0;
        g_autoptr(GPtrArray) leases = lease_manager_snapshot(po->leases);
        if (leases->len > 0 || cluster_served_elsewhere(po->cluster))
                return -EBUSY;
        return 0;
}

void mailbags_folder_removed(Mailbags *mailbags, const char *relpath)
{
        if (mailbags->postoffices)
                postoffices_retire(mailbags->postoffices, relpath);
}

void mailbags_name_removed(Mailbags *mailbags, const char *relpath)
{
        if (!mailbags->postoffices)
                return;
        /* Only a lock file's removal ends a hold; looking its folder up
         * (again, after a rename of the postoffice) costs nothing else. */
        PoClass cls;
        po_classify(mailbags->profile, mailbags_inner_path(relpath), &cls);
        if (cls.role == PO_ROLE_SESSION_LOCK) {
                const char *inner;
                Postoffice *po = mailbags_postoffice_of(mailbags, relpath, true, &inner);
                LockFile file;
                if (po && lockfiles_take_path(po->lockfiles, inner, &file))
                        lease_release(po->leases, LEASE_SESSION, file.mailbag, file.ref);
        }
        postoffices_path_removed(mailbags->postoffices, relpath);
}
