/* lease.c - the lease manager's holds and requests (semantics in lease.h;
 * the watch thread is in lease-watch.c, the views in lease-info.c).
 *
 * Everything below is guarded by LeaseManager.mutex, the only lock; nothing
 * here takes another lock and no callback runs while it is held (callbacks
 * are collected into a LeaseCalls array and run after unlocking).
 *
 * Invariants:
 * - A LeaseResource is in the table while it is held or awaited. A resource
 *   with waiters always has a holder: whenever a hold ends, the head waiter
 *   is granted at once. So memory follows activity, not the postoffice size.
 * - A LeaseProcess exists while its pid holds a resource or has a waiter
 *   (users counts both) and owns one pidfd while it lives. Once it has
 *   exited it leaves the process table for manager->exited, without a
 *   pidfd, for as long as its open handles keep a hold. Only the watch
 *   thread closes pidfds, between two polls, so a descriptor it polls is
 *   never closed and reused under it.
 * - A LeaseWaiter is at once in manager->waiters, its resource's queue and
 *   its process's list, or in none of them. Whoever takes it out completes
 *   it; that is what makes its done callback run exactly once, and what lets
 *   lease_cancel() race with completion safely.
 * - Waiter ids grow monotonically and waiters are appended, so every queue is
 *   sorted by id.
 */
#include "lease-private.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/pidfd.h>
#include <syslog.h>
#include <unistd.h>

/* ---- deferred callbacks ------------------------------------------------ */


static void lease_call_clear(gpointer data)
{
        LeaseCall *call = data;

        g_free(call->text);
        g_strfreev(call->texts);
        if (call->refs)
                g_array_unref(call->refs);
}

GArray *lease_calls_new(void)
{
        GArray *calls = g_array_new(FALSE, TRUE, sizeof(LeaseCall));

        g_array_set_clear_func(calls, lease_call_clear);
        return calls;
}

/* Runs without the mutex, in the order collected: a hold's end comes
 * before the grants it made possible. */
void lease_calls_run(LeaseManager *m, GArray *calls)
{
        for (guint i = 0; i < calls->len; i++) {
                LeaseCall *call = &g_array_index(calls, LeaseCall, i);

                if (call->type == LEASE_CALL_DONE)
                        call->done(call->opaque, call->value);
                else if (m->config.notify)
                        m->config.notify(m->config.user_data, &call->event);
        }
}

/* Queues @event; its @name or @message is @text, which the call takes. */
static void lease_push_event(GArray *calls, LeaseEvent event, char *text, GArray *refs)
{
        LeaseCall call = { .type = LEASE_CALL_EVENT, .event = event, .text = text, .refs = refs };

        if (event.type == LEASE_EVENT_LOG)
                call.event.message = text;
        else
                call.event.name = text;
        if (refs) {
                call.event.refs = (const uint64_t *)refs->data;
                call.event.n_refs = refs->len;
        }
        g_array_append_val(calls, call);
}

void lease_log(LeaseManager *m, GArray *calls, int priority, const char *format, ...)
{
        va_list args;

        if (!m->config.notify || (priority == LOG_DEBUG && m->config.quiet_debug))
                return;
        va_start(args, format);
        char *text = g_strdup_vprintf(format, args);
        va_end(args);
        lease_push_event(calls, (LeaseEvent){ .type = LEASE_EVENT_LOG, .priority = priority },
                         text, NULL);
}

void lease_push_done(GArray *calls, LeaseDoneFn done, void *opaque, int result)
{
        LeaseCall call = { .type = LEASE_CALL_DONE, .value = result, .done = done,
                           .opaque = opaque };

        g_array_append_val(calls, call);
}

/* ---- small helpers ------------------------------------------------------ */

const char *lease_kind_to_string(LeaseKind kind)
{
        switch (kind) {
        case LEASE_SESSION:
                return "session";
        case LEASE_KEY_WRITE:
                return "key-write";
        case LEASE_EXCLUSIVE:
                return "exclusive";
        }
        return "?";
}

const char *lease_or_unknown(const char *s)
{
        return s ? s : "?";
}

char *lease_key(LeaseKind kind, const char *name)
{
        /* "K:NAME", K the kind's digit: made for every lease call, so
         * without a format. */
        G_STATIC_ASSERT(LEASE_EXCLUSIVE < 10);
        gsize len = strlen(name);
        char *key = g_malloc(len + 3);
        key[0] = (char)('0' + (int)kind);
        key[1] = ':';
        memcpy(key + 2, name, len + 1);
        return key;
}

bool lease_pidfd_exited(int pidfd)
{
        struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

        return poll(&pfd, 1, 0) > 0;
}

/* ---- processes ---------------------------------------------------------- */


static void lease_process_unref(LeaseManager *m, LeaseProcess *p)
{
        g_assert(p->users > 0);
        if (--p->users > 0)
                return;
        /* A live process that holds nothing now is likely to come back
         * (a program takes its queue over and over): its record and pidfd
         * stay, watched, so the next hold costs no pidfd_open and no
         * wake-up of the watch thread. Bounded; the watch thread frees it
         * when the process exits. */
        if (!p->exited && g_hash_table_size(m->processes) <= LEASE_PROCESSES_KEPT_MAX)
                return;
        if (p->exited)
                m->exited = g_list_remove(m->exited, p);
        else
                g_hash_table_steal(m->processes, GINT_TO_POINTER(p->pid));
        /* Only the watch thread closes a pidfd it may be polling; once it
         * is gone, nobody polls. */
        if (p->pidfd >= 0 && m->watch_stopped)
                close(p->pidfd);
        else if (p->pidfd >= 0)
                g_array_append_val(m->retired_fds, p->pidfd);
        g_free(p);
        lease_wake(m);
}

/* A fresh record nobody uses yet (a refused request) is let go again:
 * kept or freed as lease_process_unref decides. */
static void lease_process_drop_if_unused(LeaseManager *m, LeaseProcess *p)
{
        if (p && p->users == 0) {
                p->users = 1;
                lease_process_unref(m, p);
        }
}

/* The live record of @pid, created (and watched) if needed. A record whose
 * process has exited is reclaimed first: the pid may already belong to a
 * new process. Returns NULL and sets *@err when the process is gone or no
 * pidfd can be had. */
static LeaseProcess *lease_process_get(LeaseManager *m, pid_t pid, GArray *calls, int *err)
{
        LeaseProcess *p = g_hash_table_lookup(m->processes, GINT_TO_POINTER(pid));
        int fd;

        if (p) {
                if (!lease_pidfd_exited(p->pidfd))
                        return p;
                lease_process_died(m, p, calls);
        }

        fd = pidfd_open(pid, 0);
        if (fd < 0) {
                *err = -errno;
                if (*err != -ESRCH)
                        lease_log(m, calls, LOG_WARNING, "cannot watch pid %d: %s", (int)pid,
                                  g_strerror(errno));
                return NULL;
        }
        if (lease_pidfd_exited(fd)) {
                /* A zombie: as good as gone. */
                close(fd);
                *err = -ESRCH;
                return NULL;
        }
        p = g_new0(LeaseProcess, 1);
        p->pid = pid;
        p->pidfd = fd;
        g_hash_table_insert(m->processes, GINT_TO_POINTER(pid), p);
        lease_wake(m); /* one more descriptor to poll */
        return p;
}

/* ---- resources and holds ------------------------------------------------ */

void lease_resource_free(gpointer data)
{
        LeaseResource *r = data;

        g_assert(!r->holder && g_queue_is_empty(&r->waiters));
        g_free(r->key);
        g_free(r->name);
        g_free(r->program);
        g_free(r->protocol);
        g_array_unref(r->refs);
        g_array_unref(r->handles);
        g_array_unref(r->closing);
        g_free(r);
}

static LeaseResource *lease_resource_new(LeaseManager *m, LeaseKind kind, const char *name)
{
        LeaseResource *r = g_new0(LeaseResource, 1);

        r->kind = kind;
        r->name = g_strdup(name);
        r->key = lease_key(kind, name);
        r->refs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        r->handles = g_array_new(FALSE, FALSE, sizeof(gboolean));
        r->closing = g_array_new(FALSE, FALSE, sizeof(gboolean));
        g_queue_init(&r->waiters);
        g_hash_table_insert(m->resources, r->key, r);
        return r;
}

/* ---- the cluster's turn ------------------------------------------------ *
 * Only these three functions and lease_hold_finish() speak to the lease
 * file; the protocol itself (what a take means, when a node died) is
 * cluster.c's. */

static void lease_remote_set_busy(LeaseManager *m, LeaseResource *r, bool busy)
{
        if (r->remote_busy == busy)
                return;
        r->remote_busy = busy;
        if (busy)
                m->remote_busy++;
        else
                m->remote_busy--;
        if (m->config.cluster)
                cluster_want(m->config.cluster, r->kind, r->name, busy);
}

/* @r is held elsewhere, or yielded to another daemon: its waiters ask
 * again in @ms. The watch thread is woken to see the new time, as it may
 * be asleep until a later deadline. */
static void lease_remote_retry_in(LeaseManager *m, LeaseResource *r, int ms)
{
        r->remote_retry_us = g_get_monotonic_time() + (gint64)ms * 1000;
        lease_remote_set_busy(m, r, true);
        lease_wake(m);
}

/* Whether the free resource @r may get a holder here now: true once this
 * daemon holds it in the lease file too. Otherwise its requests ask again
 * later: in CLUSTER_RETRY_MS when another daemon holds it; in
 * CLUSTER_YIELD_MS when, with @may_yield (the resource has just become
 * free here, not after a wait for another daemon), another daemon's
 * process waits for it: its turn first, or a program here that takes the
 * queue again as soon as it let go (a consumer's next pass) would keep it
 * from the other node for as long as it comes back, as that node asks
 * only every CLUSTER_RETRY_MS. */
static bool lease_cluster_turn(LeaseManager *m, LeaseResource *r, bool may_yield, GArray *calls)
{
        Cluster *cluster = m->config.cluster;

        if (!cluster)
                return true;
        if (may_yield && cluster_wanted_elsewhere(cluster, r->kind, r->name)) {
                lease_remote_retry_in(m, r, CLUSTER_YIELD_MS);
                return false;
        }
        int taken = cluster_take(cluster, r->kind, r->name, r->remote_busy);
        if (taken < 0) {
                lease_remote_retry_in(m, r, CLUSTER_RETRY_MS);
                return false;
        }
        if (taken == CLUSTER_TAKEN_FROM_DEAD_NODE)
                lease_push_event(calls,
                                 (LeaseEvent){ .type = LEASE_EVENT_TAKEN_FROM_DEAD_NODE,
                                               .kind = r->kind },
                                 g_strdup(r->name), NULL);
        lease_remote_set_busy(m, r, false);
        return true;
}

static void lease_resource_drop_if_idle(LeaseManager *m, LeaseResource *r)
{
        if (!r->holder && g_queue_is_empty(&r->waiters)) {
                lease_remote_set_busy(m, r, false);
                g_hash_table_remove(m->resources, r->key);
        }
}

static bool lease_resource_has_ref(const LeaseResource *r, uint64_t ref, guint *index)
{
        for (guint i = 0; i < r->refs->len; i++) {
                if (g_array_index(r->refs, uint64_t, i) == ref) {
                        if (index)
                                *index = i;
                        return true;
                }
        }
        return false;
}

static void lease_ref_add(LeaseResource *r, uint64_t ref, bool handle)
{
        gboolean is_handle = handle, closing = FALSE;

        g_array_append_val(r->refs, ref);
        g_array_append_val(r->handles, is_handle);
        g_array_append_val(r->closing, closing);
}

static void lease_ref_remove(LeaseResource *r, guint index)
{
        g_array_remove_index_fast(r->refs, index);
        g_array_remove_index_fast(r->handles, index);
        g_array_remove_index_fast(r->closing, index);
}

/* Every reference of the hold is a handle its opener has closed: the
 * kernel has queued their releases, which are on their way. */
static bool lease_hold_is_closing(const LeaseResource *r)
{
        for (guint i = 0; i < r->refs->len; i++)
                if (!g_array_index(r->closing, gboolean, i))
                        return false;
        return r->refs->len > 0;
}

static void lease_hold_begin(LeaseResource *r, LeaseProcess *p, const char *program,
                             const char *protocol, uint64_t ref, bool handle, pid_t admits_session)
{
        r->holder = p;
        r->admits_session = admits_session;
        p->users++;
        p->held = g_list_prepend(p->held, r);
        r->program = g_strdup(program);
        r->protocol = g_strdup(protocol);
        r->since_us = g_get_real_time();
        r->held_from_us = g_get_monotonic_time();
        r->hold_warned = false;
        lease_ref_add(r, ref, handle);
}

/* Takes the waiter out of every structure; the caller completes it. */
static void lease_waiter_unlink(LeaseManager *m, LeaseWaiter *w)
{
        LeaseProcess *p = w->process;

        g_queue_delete_link(&w->resource->waiters, w->link);
        p->waiting = g_list_remove(p->waiting, w);
        g_hash_table_remove(m->waiters, &w->id);
        lease_process_unref(m, p);
}

static void lease_waiter_free(LeaseWaiter *w)
{
        g_free(w->program);
        g_free(w->protocol);
        g_free(w);
}

/* Completes a waiter that did not get the resource. */
void lease_waiter_fail(LeaseManager *m, LeaseWaiter *w, int result, GArray *calls)
{
        LeaseResource *r = w->resource;

        lease_waiter_unlink(m, w);
        lease_push_done(calls, w->done, w->opaque, result);
        lease_waiter_free(w);
        lease_resource_drop_if_idle(m, r);
}

/* A free resource goes to its head waiter and, as re-entries, to every
 * other waiter of the same process; @may_yield as lease_cluster_turn(). */
static void lease_grant_next(LeaseManager *m, LeaseResource *r, bool may_yield, GArray *calls)
{
        LeaseWaiter *head = g_queue_peek_head(&r->waiters);
        LeaseProcess *p;
        GList *l;

        if (r->holder || !head)
                return;
        if (r->remote_busy && g_get_monotonic_time() < r->remote_retry_us)
                return;
        if (!lease_cluster_turn(m, r, may_yield, calls))
                return;
        p = head->process;
        /* Begin the hold before unlinking: it keeps p alive. */
        lease_hold_begin(r, p, head->program, head->protocol, head->ref, head->handle,
                         head->admits_session);
        lease_watch_granted(m);
        for (l = r->waiters.head; l;) {
                LeaseWaiter *w = l->data;

                l = l->next;
                if (w->process != p)
                        continue;
                if (w != head)
                        lease_ref_add(r, w->ref, w->handle);
                lease_waiter_unlink(m, w);
                m->stats.acquisitions++;
                m->stats.waited_granted++;
                lease_wait_times_add(&m->stats.granted_wait,
                                     (g_get_monotonic_time() - w->queued_us) / 1000);
                lease_log(m, calls, LOG_DEBUG, "%s %s granted to pid %d (%s, %s) after waiting",
                          lease_kind_to_string(r->kind), r->name, (int)p->pid, w->program,
                          w->protocol);
                lease_push_done(calls, w->done, w->opaque, 0);
                lease_waiter_free(w);
        }
}

/* Ends the hold on @r, lets the next waiter in; @r may be freed. */
static void lease_hold_finish(LeaseManager *m, LeaseResource *r, GArray *calls)
{
        LeaseProcess *p = r->holder;

        r->holder = NULL;
        r->admits_session = 0;
        g_array_set_size(r->refs, 0);
        g_array_set_size(r->handles, 0);
        g_array_set_size(r->closing, 0);
        g_clear_pointer(&r->program, g_free);
        g_clear_pointer(&r->protocol, g_free);
        r->since_us = 0;
        p->held = g_list_remove(p->held, r);
        lease_process_unref(m, p);
        if (m->config.cluster)
                cluster_drop(m->config.cluster, r->kind, r->name);
        lease_grant_next(m, r, true, calls);
        lease_resource_drop_if_idle(m, r);
}

gint64 lease_warn_long_holds(LeaseManager *m, GArray *calls)
{
        gint64 limit_us = (gint64)m->config.hold_warning_ms * 1000;
        gint64 now = g_get_monotonic_time();
        /* A hold that begins after this check is due no sooner than a
         * whole limit from now: checking again then is never late, and a
         * grant need not wake this thread. */
        gint64 next = now + limit_us;
        GHashTableIter iter;
        gpointer value;

        if (limit_us <= 0)
                return G_MAXINT64;
        g_hash_table_iter_init(&iter, m->resources);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LeaseResource *r = value;
                if (!r->holder || r->hold_warned)
                        continue;
                gint64 due = r->held_from_us + limit_us;
                if (due > now) {
                        next = MIN(next, due);
                        continue;
                }
                r->hold_warned = true;
                lease_log(m, calls, LOG_WARNING,
                          "%s %s held by pid %d (%s, %s) for more than %g s, %u waiting",
                          lease_kind_to_string(r->kind), r->name, (int)r->holder->pid, r->program,
                          r->protocol, m->config.hold_warning_ms / 1000.0, r->waiters.length);
        }
        return next;
}

gint64 lease_retry_remote(LeaseManager *m, GArray *calls)
{
        if (m->remote_busy == 0)
                return G_MAXINT64;
        g_autoptr(GPtrArray) due = g_ptr_array_new();
        gint64 now = g_get_monotonic_time();
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, m->resources);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LeaseResource *r = value;
                if (r->remote_busy && r->remote_retry_us <= now)
                        g_ptr_array_add(due, r);
        }
        for (guint i = 0; i < due->len; i++)
                lease_grant_next(m, due->pdata[i], false, calls);

        gint64 next = G_MAXINT64;
        g_hash_table_iter_init(&iter, m->resources);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LeaseResource *r = value;
                if (r->remote_busy)
                        next = MIN(next, r->remote_retry_us);
        }
        return next;
}

/* An operator ends a hold whose references were not released; the daemon
 * is told which. */
/* Queues the report of @r's hold ending unreleased; takes a reference on
 * @refs. */
static void lease_push_gone(GArray *calls, const LeaseResource *r, LeaseEndReason reason,
                            GArray *refs)
{
        lease_push_event(calls,
                         (LeaseEvent){ .type = LEASE_EVENT_HOLD_ENDED, .kind = r->kind,
                                       .pid = r->holder->pid, .reason = reason },
                         g_strdup(r->name), g_array_ref(refs));
}

static void lease_hold_break(LeaseManager *m, LeaseResource *r, GArray *calls)
{
        g_autoptr(GArray) refs = g_array_copy(r->refs);
        gint64 held_s = (g_get_real_time() - r->since_us) / G_USEC_PER_SEC;

        m->stats.breaks++;
        lease_log(m, calls, LOG_WARNING,
                  "hold broken: %s %s held by pid %d (%s, %s) for %" G_GINT64_FORMAT
                  " s, %u refs dropped, %u waiting",
                  lease_kind_to_string(r->kind), r->name, (int)r->holder->pid, r->program,
                  r->protocol, held_s, r->refs->len, r->waiters.length);
        lease_push_gone(calls, r, LEASE_END_BROKEN, refs);
        lease_hold_finish(m, r, calls);
}

/* The holder of @r died: drops its lock-file references (reported as
 * stale) and ends the hold if no open handle is left in it. */
static void lease_hold_drop_lockfile_refs(LeaseManager *m, LeaseResource *r, GArray *calls)
{
        g_autoptr(GArray) stale = g_array_new(FALSE, FALSE, sizeof(uint64_t));

        for (guint i = 0; i < r->refs->len; i++)
                if (!g_array_index(r->handles, gboolean, i))
                        g_array_append_val(stale, g_array_index(r->refs, uint64_t, i));
        for (guint i = r->refs->len; i > 0; i--)
                if (!g_array_index(r->handles, gboolean, i - 1))
                        lease_ref_remove(r, i - 1);
        if (stale->len > 0) {
                m->stats.stale_reclaimed++;
                lease_log(m, calls, LOG_WARNING,
                          "stale hold reclaimed: %s %s held by dead pid %d (%s, %s), %u refs "
                          "that were no open file (lock files, a freeze) dropped, %u open "
                          "handles left",
                          lease_kind_to_string(r->kind), r->name, (int)r->holder->pid, r->program,
                          r->protocol, stale->len, r->refs->len);
                lease_push_gone(calls, r, LEASE_END_DIED, stale);
        } else {
                lease_log(m, calls, LOG_DEBUG,
                          "%s %s: holder pid %d (%s) exited; its %u open handles hold it until closed",
                          lease_kind_to_string(r->kind), r->name, (int)r->holder->pid, r->program,
                          r->refs->len);
        }
        if (r->refs->len == 0)
                lease_hold_finish(m, r, calls);
}

void lease_process_died(LeaseManager *m, LeaseProcess *p, GArray *calls)
{
        /* Pinned: the loops below drop the last real users. */
        p->users++;
        /* Waits first, so the holds dropped below do not go to the dead
         * process's own queued requests. */
        while (p->waiting) {
                LeaseWaiter *w = p->waiting->data;

                lease_log(m, calls, LOG_INFO, "pid %d (%s) died waiting for %s %s",
                          (int)p->pid, w->program, lease_kind_to_string(w->resource->kind),
                          w->resource->name);
                lease_waiter_fail(m, w, -ESRCH, calls);
        }
        /* The kernel releases a dead process's open files by itself (the
         * release may still be on its way), and a handle the process
         * passed on, by fork or over a socket, lives on in another one:
         * such references end only with their release. What ends with the
         * process are the references nothing else will release, the Mail
         * 2.x lock files: those holds are stale. */
        for (GList *l = p->held; l;) {
                LeaseResource *r = l->data;

                l = l->next;
                lease_hold_drop_lockfile_refs(m, r, calls);
        }
        p->exited = true;
        if (g_hash_table_lookup(m->processes, GINT_TO_POINTER(p->pid)) == p)
                g_hash_table_steal(m->processes, GINT_TO_POINTER(p->pid));
        m->exited = g_list_prepend(m->exited, p);
        g_array_append_val(m->retired_fds, p->pidfd);
        p->pidfd = -1;
        lease_wake(m);
        lease_process_unref(m, p);
}

/* ---- deadlock detection ------------------------------------------------- */

typedef struct {
        LeaseProcess *self;
        GHashTable *seen; /* LeaseProcess* already pushed */
        GPtrArray *stack;
} LeaseWalk;

static bool lease_walk_push(LeaseWalk *walk, LeaseProcess *p)
{
        if (!p)
                return false;
        if (p == walk->self)
                return true;
        if (g_hash_table_add(walk->seen, p))
                g_ptr_array_add(walk->stack, p);
        return false;
}

/* Would @self waiting for @r close a cycle? A waiting process waits for the
 * holder and for every process queued ahead of its own first waiter (those
 * get the resource before it; later waiters of its own are granted along
 * with the first). Each queue is scanned at most once per walk: @scanned
 * remembers how far, which keeps a walk linear in the number of waiters. */
static bool lease_would_deadlock(LeaseManager *m, LeaseResource *r, LeaseProcess *self)
{
        g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
        g_autoptr(GHashTable) scanned = g_hash_table_new(NULL, NULL);
        g_autoptr(GPtrArray) stack = g_ptr_array_new();
        LeaseWalk walk = { .self = self, .seen = seen, .stack = stack };

        if (lease_walk_push(&walk, r->holder))
                return true;
        for (GList *l = r->waiters.head; l; l = l->next) {
                if (lease_walk_push(&walk, ((LeaseWaiter *)l->data)->process))
                        return true;
        }
        g_hash_table_insert(scanned, r, NULL);

        while (stack->len > 0) {
                LeaseProcess *p = g_ptr_array_steal_index_fast(stack, stack->len - 1);

                for (GList *wl = p->waiting; wl; wl = wl->next) {
                        LeaseResource *wr = ((LeaseWaiter *)wl->data)->resource;
                        gpointer resume;
                        GList *l;

                        if (lease_walk_push(&walk, wr->holder))
                                return true;
                        if (g_hash_table_lookup_extended(scanned, wr, NULL, &resume))
                                l = resume;
                        else
                                l = wr->waiters.head;
                        for (; l; l = l->next) {
                                LeaseWaiter *ahead = l->data;

                                if (ahead->process == p)
                                        break;
                                if (lease_walk_push(&walk, ahead->process))
                                        return true;
                        }
                        g_hash_table_insert(scanned, wr, l);
                }
        }
        return false;
}

/* ---- acquire, release, cancel, break ------------------------------------ */

static atomic_uint_fast64_t lease_next_waiter_id = 1;

/* A request, with its defaults applied, as lease_acquire()'s steps see it. */
typedef struct {
        const LeaseRequest *req;
        const char *key;
        const char *program;  /* never NULL */
        const char *protocol; /* never NULL */
        int timeout_ms;       /* the kind's default applied */
} LeaseAsk;

/* The holder asks again: another reference, at once, even past waiters.
 * 0 or -EEXIST. */
static int lease_acquire_reenter(LeaseManager *m, LeaseResource *r, const LeaseAsk *ask,
                                 GArray *calls)
{
        const LeaseRequest *req = ask->req;

        if (lease_resource_has_ref(r, req->ref, NULL))
                return -EEXIST;
        lease_ref_add(r, req->ref, req->handle);
        m->stats.acquisitions++;
        lease_log(m, calls, LOG_DEBUG, "%s %s re-entered by pid %d (%s, %s), %u refs",
                  lease_kind_to_string(req->kind), req->name, (int)req->pid, ask->program,
                  ask->protocol, r->refs->len);
        return 0;
}

/* @r is free here and in the cluster: @p holds it now. */
static int lease_acquire_grant(LeaseManager *m, LeaseResource *r, LeaseProcess *p,
                               const LeaseAsk *ask, GArray *calls)
{
        const LeaseRequest *req = ask->req;

        lease_hold_begin(r, p, ask->program, ask->protocol, req->ref, req->handle,
                         req->admits_session);
        lease_watch_granted(m);
        m->stats.acquisitions++;
        lease_log(m, calls, LOG_DEBUG, "%s %s granted to pid %d (%s, %s)",
                  lease_kind_to_string(req->kind), req->name, (int)req->pid, ask->program,
                  ask->protocol);
        return 0;
}

/* A request that may not wait meets a holder, here or elsewhere. */
static int lease_acquire_busy(LeaseManager *m, LeaseResource *r, const LeaseAsk *ask,
                              GArray *calls)
{
        const LeaseRequest *req = ask->req;

        m->stats.refused++;
        if (r->holder)
                lease_log(m, calls, LOG_DEBUG, "%s %s busy for pid %d (%s, %s): held by pid %d (%s)",
                          lease_kind_to_string(req->kind), req->name, (int)req->pid, ask->program,
                          ask->protocol, (int)r->holder->pid, r->program);
        else
                lease_log(m, calls, LOG_DEBUG,
                          "%s %s busy for pid %d (%s, %s): held through another daemon",
                          lease_kind_to_string(req->kind), req->name, (int)req->pid, ask->program,
                          ask->protocol);
        lease_resource_drop_if_idle(m, r);
        return -EBUSY;
}

/* Whether @p already has a request queued for @r: another one adds no
 * edge to the waits-for graph. */
static bool lease_process_waits_for(const LeaseProcess *p, const LeaseResource *r)
{
        for (GList *l = p->waiting; l; l = l->next)
                if (((LeaseWaiter *)l->data)->resource == r)
                        return true;
        return false;
}

/* Whether @p waiting for @r would close a cycle: -EDEADLK (counted and
 * logged) or 0. A process already queued for @r adds no edge. */
static int lease_acquire_deadlock_check(LeaseManager *m, LeaseResource *r, LeaseProcess *p,
                                        const LeaseAsk *ask, GArray *calls)
{
        if (lease_process_waits_for(p, r) || !lease_would_deadlock(m, r, p))
                return 0;
        m->stats.deadlocks++;
        /* Info, not warning: the refused program takes it as a sharing
         * violation and tries again, and with the kernel's releases
         * arriving after close() returns, a cycle can be over by the time
         * it is seen. The deadlocks counter keeps the tally. */
        lease_log(m, calls, LOG_INFO,
                  "deadlock refused: pid %d (%s, %s) waiting for %s %s held by pid %d (%s) "
                  "would close a waits-for cycle",
                  (int)ask->req->pid, ask->program, ask->protocol,
                  lease_kind_to_string(ask->req->kind), ask->req->name, (int)r->holder->pid,
                  r->program);
        return -EDEADLK;
}

/* Queues @p's request behind @r's holder (here or elsewhere):
 * LEASE_PENDING, *@waiter_id set. */
static int lease_acquire_enqueue(LeaseManager *m, LeaseResource *r, LeaseProcess *p,
                                 const LeaseAsk *ask, int timeout_ms, uint64_t *waiter_id,
                                 GArray *calls)
{
        const LeaseRequest *req = ask->req;
        LeaseWaiter *w = g_new0(LeaseWaiter, 1);

        /* Unique across managers, so a daemon with several can cancel a
         * wait by its id alone. */
        w->id = atomic_fetch_add(&lease_next_waiter_id, 1);
        w->resource = r;
        w->process = p;
        w->program = g_strdup(ask->program);
        w->protocol = g_strdup(ask->protocol);
        w->ref = req->ref;
        w->handle = req->handle;
        w->admits_session = req->admits_session;
        w->timeout_ms = timeout_ms;
        w->queued_us = g_get_monotonic_time();
        w->deadline_us = w->queued_us + (gint64)timeout_ms * 1000;
        w->done = req->done;
        w->opaque = req->opaque;
        g_queue_push_tail(&r->waiters, w);
        w->link = r->waiters.tail;
        p->waiting = g_list_append(p->waiting, w);
        p->users++;
        g_hash_table_insert(m->waiters, &w->id, w);
        m->stats.waits++;
        lease_log(m, calls, LOG_DEBUG, "pid %d (%s, %s) waits for %s %s held by %s %d (%s), position %u",
                  (int)req->pid, ask->program, ask->protocol, lease_kind_to_string(req->kind),
                  req->name, r->holder ? "pid" : "another daemon, here",
                  r->holder ? (int)r->holder->pid : 0, r->holder ? r->program : "-",
                  r->waiters.length);
        if (w->deadline_us < m->next_deadline_us) {
                m->next_deadline_us = w->deadline_us;
                lease_wake(m);
        }
        if (waiter_id)
                *waiter_id = w->id;
        return LEASE_PENDING;
}

/* An observing request met a hold (here or in another daemon) or a ban:
 * counted and reported, then queued without a time limit (LEASE_PENDING),
 * or, where waiting would close a waits-for cycle, let through untracked
 * (LEASE_UNTRACKED). */
static int lease_acquire_overlap(LeaseManager *m, LeaseResource *r, LeaseProcess *p,
                                 const LeaseAsk *ask, uint64_t *waiter_id, GArray *calls)
{
        const LeaseRequest *req = ask->req;
        /* A holder that has closed every handle already is out: only its
         * release, which the kernel sends after close() returned, is on
         * its way. No overlap, though the request still takes its place. */
        if (r->holder && lease_hold_is_closing(r))
                return lease_acquire_enqueue(m, r, p, ask, INT_MAX, waiter_id, calls);
        const char *holder_program = r->holder ? r->program : "?";
        const char *holder_protocol = r->holder ? r->protocol : "?";
        g_autofree char *key = g_strdup_printf("%s\t%s\t%s\t%s", lease_kind_to_string(req->kind),
                                               req->name, ask->protocol, holder_protocol);
        LeaseOverlapCount *count = g_hash_table_lookup(m->overlaps, key);
        if (!count) {
                count = g_new0(LeaseOverlapCount, 1);
                count->kind = req->kind;
                count->name = g_strdup(req->name);
                count->protocol = g_strdup(ask->protocol);
                count->other_protocol = g_strdup(holder_protocol);
                g_hash_table_insert(m->overlaps, g_steal_pointer(&key), count);
        }
        count->count++;
        m->stats.overlaps++;
        if (m->config.notify) {
                LeaseCall call = {
                        .type = LEASE_CALL_EVENT,
                        .event = {.type = LEASE_EVENT_OVERLAP,
                                  .kind = req->kind,
                                  .pid = req->pid,
                                  .holder_pid = r->holder ? r->holder->pid : 0},
                        .text = g_strdup(req->name),
                        .texts = g_new0(char *, 5),
                };
                call.texts[0] = g_strdup(ask->program);
                call.texts[1] = g_strdup(ask->protocol);
                call.texts[2] = g_strdup(holder_program);
                call.texts[3] = g_strdup(holder_protocol);
                call.event.name = call.text;
                call.event.program = call.texts[0];
                call.event.protocol = call.texts[1];
                call.event.holder_program = call.texts[2];
                call.event.holder_protocol = call.texts[3];
                g_array_append_val(calls, call);
        }

        if (!lease_process_waits_for(p, r) && r->holder && lease_would_deadlock(m, r, p)) {
                lease_resource_drop_if_idle(m, r);
                return LEASE_UNTRACKED;
        }
        return lease_acquire_enqueue(m, r, p, ask, INT_MAX, waiter_id, calls);
}

/* Whether the asking process is refused the resource since its hold on it
 * was broken (lease_break_banning); an expired ban is dropped. */
static bool lease_acquire_banned(LeaseManager *m, const LeaseAsk *ask, GArray *calls)
{
        LeaseBan *ban = g_hash_table_lookup(m->bans, ask->key);

        if (!ban)
                return false;
        if (ban->until_us <= g_get_monotonic_time()) {
                g_hash_table_remove(m->bans, ask->key);
                return false;
        }
        if (ban->pid != ask->req->pid)
                return false;
        m->stats.refused++;
        lease_log(m, calls, LOG_DEBUG, "%s %s refused to pid %d (%s, %s): its hold was broken",
                  lease_kind_to_string(ask->req->kind), ask->req->name, (int)ask->req->pid,
                  ask->program, ask->protocol);
        return true;
}

/* lease_acquire() under the mutex: each outcome is one of the steps
 * above. *@p receives the process record it pinned, if any. */
static int lease_acquire_locked(LeaseManager *m, const LeaseAsk *ask, uint64_t *waiter_id,
                                LeaseProcess **p, GArray *calls)
{
        const LeaseRequest *req = ask->req;
        int ret;

        if (m->stopping)
                return -ECANCELED;
        if (!req->observe && lease_acquire_banned(m, ask, calls))
                return -EBUSY;
        LeaseResource *r = g_hash_table_lookup(m->resources, ask->key);
        /* Do not make anybody wait for a holder that is already dead but not
         * yet noticed by the watch thread. */
        if (r && r->holder && !r->holder->exited && r->holder->pid != req->pid &&
            lease_pidfd_exited(r->holder->pidfd)) {
                lease_process_died(m, r->holder, calls);
                r = g_hash_table_lookup(m->resources, ask->key);
        }
        if (r && r->holder && !r->holder->exited && r->holder->pid == req->pid &&
            !lease_pidfd_exited(r->holder->pidfd))
                return lease_acquire_reenter(m, r, ask, calls);
        /* A process of the session the hold admits (the command an
         * operator's freeze runs) works under the holder's hold. */
        if (r && r->holder && r->admits_session > 0 && req->session == r->admits_session)
                return lease_acquire_reenter(m, r, ask, calls);

        /* Reclaims a dead record of this pid, possibly freeing r. */
        *p = lease_process_get(m, req->pid, calls, &ret);
        if (!*p)
                return ret;
        r = g_hash_table_lookup(m->resources, ask->key);
        if (!r || (!r->holder && !r->remote_busy)) {
                if (!r)
                        r = lease_resource_new(m, req->kind, req->name);
                if (lease_cluster_turn(m, r, true, calls))
                        return lease_acquire_grant(m, r, *p, ask, calls);
        }

        if (req->observe)
                return lease_acquire_overlap(m, r, *p, ask, waiter_id, calls);
        int timeout_ms = ask->timeout_ms;
        /* The release of a handle closed before this request was made may
         * not have been handled yet (the kernel sends it after close()
         * returns, and another worker may be quicker): wait for it, when
         * the request says so (the policy decides who does). */
        if (timeout_ms == 0 && req->wait_if_closing && lease_hold_is_closing(r))
                timeout_ms = m->timeout_ms[req->kind];
        if (timeout_ms == 0)
                return lease_acquire_busy(m, r, ask, calls);
        ret = lease_acquire_deadlock_check(m, r, *p, ask, calls);
        if (ret < 0)
                return ret;
        return lease_acquire_enqueue(m, r, *p, ask, timeout_ms, waiter_id, calls);
}

int lease_acquire(LeaseManager *m, const LeaseRequest *req, uint64_t *waiter_id)
{
        if (waiter_id)
                *waiter_id = 0;
        if (!req || (unsigned)req->kind >= LEASE_KIND_COUNT || !req->name || !req->name[0] ||
            req->pid <= 0 || (req->timeout_ms != 0 && !req->done))
                return -EINVAL;

        g_autoptr(GArray) calls = lease_calls_new();
        g_autofree char *key = lease_key(req->kind, req->name);
        LeaseAsk ask = {
                .req = req,
                .key = key,
                .program = lease_or_unknown(req->program),
                .protocol = lease_or_unknown(req->protocol),
                .timeout_ms = req->timeout_ms < 0 ? m->timeout_ms[req->kind] : req->timeout_ms,
        };
        LeaseProcess *p = NULL;

        g_mutex_lock(&m->mutex);
        int ret = lease_acquire_locked(m, &ask, waiter_id, &p, calls);
        lease_process_drop_if_unused(m, p);
        g_mutex_unlock(&m->mutex);
        lease_calls_run(m, calls);
        return ret;
}

bool lease_cancel(LeaseManager *m, uint64_t waiter_id)
{
        g_autoptr(GArray) calls = lease_calls_new();
        LeaseWaiter *w;
        bool found;

        g_mutex_lock(&m->mutex);
        w = g_hash_table_lookup(m->waiters, &waiter_id);
        found = w != NULL;
        if (found) {
                m->stats.cancellations++;
                lease_log(m, calls, LOG_INFO, "pid %d (%s) stopped waiting for %s %s (cancelled)",
                          (int)w->process->pid, w->program, lease_kind_to_string(w->resource->kind),
                          w->resource->name);
                lease_waiter_fail(m, w, -EINTR, calls);
        }
        g_mutex_unlock(&m->mutex);
        lease_calls_run(m, calls);
        return found;
}

void lease_release(LeaseManager *m, LeaseKind kind, const char *name, uint64_t ref)
{
        g_autoptr(GArray) calls = lease_calls_new();
        g_autofree char *key = lease_key(kind, name);
        LeaseResource *r;
        guint index;

        g_mutex_lock(&m->mutex);
        r = g_hash_table_lookup(m->resources, key);
        if (r && r->holder && lease_resource_has_ref(r, ref, &index)) {
                lease_ref_remove(r, index);
                if (r->refs->len == 0) {
                        lease_log(m, calls, LOG_DEBUG, "%s %s released by pid %d (%s)",
                                  lease_kind_to_string(kind), name, (int)r->holder->pid, r->program);
                        lease_hold_finish(m, r, calls);
                }
        }
        g_mutex_unlock(&m->mutex);
        lease_calls_run(m, calls);
}

void lease_mark_closing(LeaseManager *m, LeaseKind kind, const char *name, uint64_t ref)
{
        g_autofree char *key = lease_key(kind, name);
        guint index;

        g_mutex_lock(&m->mutex);
        LeaseResource *r = g_hash_table_lookup(m->resources, key);
        if (r && r->holder && lease_resource_has_ref(r, ref, &index) &&
            g_array_index(r->handles, gboolean, index))
                g_array_index(r->closing, gboolean, index) = TRUE;
        g_mutex_unlock(&m->mutex);
}

bool lease_holds(LeaseManager *m, LeaseKind kind, const char *name, uint64_t ref)
{
        g_autofree char *key = lease_key(kind, name);
        LeaseResource *r;
        bool held;

        g_mutex_lock(&m->mutex);
        r = g_hash_table_lookup(m->resources, key);
        held = r && r->holder && lease_resource_has_ref(r, ref, NULL);
        g_mutex_unlock(&m->mutex);
        return held;
}

int lease_break(LeaseManager *m, LeaseKind kind, const char *name)
{
        return lease_break_banning(m, kind, name, 0);
}

static void lease_ban(LeaseManager *m, const char *key, pid_t pid, int ban_ms)
{
        gint64 now = g_get_monotonic_time();

        if (g_hash_table_size(m->bans) >= LEASE_BANS_MAX) {
                GHashTableIter iter;
                gpointer value;
                g_hash_table_iter_init(&iter, m->bans);
                while (g_hash_table_iter_next(&iter, NULL, &value))
                        if (((LeaseBan *)value)->until_us <= now)
                                g_hash_table_iter_remove(&iter);
                if (g_hash_table_size(m->bans) >= LEASE_BANS_MAX)
                        g_hash_table_remove_all(m->bans);
        }
        LeaseBan *ban = g_new(LeaseBan, 1);
        ban->pid = pid;
        ban->until_us = now + (gint64)ban_ms * 1000;
        g_hash_table_replace(m->bans, g_strdup(key), ban);
}

int lease_break_banning(LeaseManager *m, LeaseKind kind, const char *name, int ban_ms)
{
        g_autoptr(GArray) calls = lease_calls_new();
        g_autofree char *key = lease_key(kind, name);
        LeaseResource *r;
        int ret = -ENOENT;

        g_mutex_lock(&m->mutex);
        r = g_hash_table_lookup(m->resources, key);
        if (r && r->holder) {
                if (ban_ms > 0) {
                        lease_ban(m, key, r->holder->pid, ban_ms);
                        lease_log(m, calls, LOG_WARNING,
                                  "%s %s refused to pid %d (%s) for %g s after its break",
                                  lease_kind_to_string(kind), name, (int)r->holder->pid,
                                  r->program, ban_ms / 1000.0);
                }
                lease_hold_break(m, r, calls);
                ret = 0;
        }
        g_mutex_unlock(&m->mutex);
        lease_calls_run(m, calls);
        return ret;
}
