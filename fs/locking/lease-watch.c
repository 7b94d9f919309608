/* lease-watch.c - the watch thread and the lease manager's life cycle.
 *
 * One thread (a LeaseWatcher) looks after any number of managers: it polls
 * an eventfd and one pidfd per process that holds or waits in any of them,
 * and wakes for the earliest waiter deadline or retry among them. A visit
 * to a manager reclaims the holds of its dead processes, fails its waiters
 * whose time is up, retries resources another daemon held, and closes its
 * retired pidfds (between two polls, so a descriptor the thread polls is
 * never closed and reused under it). A manager is visited when lease_wake()
 * marked it, when one of its pidfds fired or when its next time is due.
 *
 * LeaseWatcher.mutex guards the entries and which manager is being visited;
 * it is never held together with a manager's mutex, nor while a callback
 * runs. lease_manager_stop() takes its manager's entry out, after waiting
 * for a visit of that manager (and the callbacks it runs) to end; once out,
 * the thread never touches the manager again.
 */
#include "lease-private.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <syslog.h>
#include <unistd.h>

/* What the thread knows of one manager. pfds, pids, due_us and fired are
 * the thread's own (written only by it, between polls); the entry itself
 * lives while it is in LeaseWatcher.entries. */
typedef struct {
        LeaseManager *m;
        uint64_t serial;
        GArray *pfds;  /* struct pollfd: the manager's pidfds at the last visit */
        GArray *pids;  /* pid_t per entry of pfds */
        gint64 due_us; /* monotonic: visit again then; 0: at once */
        bool fired;    /* a pidfd of pfds showed an event in the last poll */
} LeaseWatchEntry;

/* Where an entry of the poll set came from. */
typedef struct {
        uint64_t serial;
        guint index;
} LeaseWatchOwner;

struct LeaseWatcher {
        int wake_fd;     /* eventfd; immutable */
        GThread *thread; /* immutable */
        GMutex mutex;
        GCond visit_done;         /* signalled when visiting goes back to NULL */
        GHashTable *entries;      /* guarded by mutex; &serial -> LeaseWatchEntry* (owned) */
        uint64_t next_serial;     /* guarded by mutex */
        LeaseManager *visiting;   /* guarded by mutex; the manager being visited */
        bool stopping;            /* guarded by mutex */
};

static void lease_watch_entry_free(gpointer data)
{
        LeaseWatchEntry *e = data;

        g_array_unref(e->pfds);
        g_array_unref(e->pids);
        g_free(e);
}

static void lease_watcher_wake(LeaseWatcher *w)
{
        uint64_t one = 1;
        ssize_t n = write(w->wake_fd, &one, sizeof(one));

        /* Only fails with EAGAIN when the counter is already huge, which
         * means a wake-up is pending anyway. */
        (void)n;
}

void lease_wake(LeaseManager *m)
{
        /* Off its watcher once stopped: nothing to wake. */
        if (m->watch_stopped)
                return;
        /* The mark first: the thread reads marks after consuming wake-ups. */
        atomic_store(&m->watch_dirty, true);
        lease_watcher_wake(m->watcher);
}

static gint lease_waiter_compare_id(gconstpointer a, gconstpointer b)
{
        const LeaseWaiter *x = *(LeaseWaiter *const *)a;
        const LeaseWaiter *y = *(LeaseWaiter *const *)b;

        return x->id < y->id ? -1 : x->id > y->id;
}

/* All waiters, oldest first: the shutdown fails them in queue order. */
static GPtrArray *lease_waiters_sorted(LeaseManager *m)
{
        GPtrArray *all = g_ptr_array_sized_new(g_hash_table_size(m->waiters));
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, m->waiters);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                g_ptr_array_add(all, value);
        g_ptr_array_sort(all, lease_waiter_compare_id);
        return all;
}

/* Fails the waiters whose time is up, oldest first, and computes the next
 * deadline. A linear scan: waiters are as many as blocked client requests. */
static void lease_expire_waiters(LeaseManager *m, GArray *calls)
{
        g_autoptr(GPtrArray) expired = g_ptr_array_new();
        gint64 now = g_get_monotonic_time();
        gint64 next = G_MAXINT64;
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, m->waiters);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LeaseWaiter *w = value;

                if (w->deadline_us <= now)
                        g_ptr_array_add(expired, w);
                else
                        next = MIN(next, w->deadline_us);
        }
        g_ptr_array_sort(expired, lease_waiter_compare_id);
        for (guint i = 0; i < expired->len; i++) {
                LeaseWaiter *w = expired->pdata[i];
                LeaseResource *r = w->resource;

                m->stats.timeouts++;
                lease_wait_times_add(&m->stats.timeout_wait, (now - w->queued_us) / 1000);
                lease_log(m, calls, LOG_INFO,
                          "pid %d (%s, %s) gave up on %s %s after %d ms: held by pid %d (%s, %s)",
                          (int)w->process->pid, w->program, w->protocol, lease_kind_to_string(r->kind),
                          r->name, w->timeout_ms, r->holder ? (int)r->holder->pid : 0,
                          lease_or_unknown(r->program), lease_or_unknown(r->protocol));
                lease_waiter_fail(m, w, -EBUSY, calls);
        }
        m->next_deadline_us = next;
}

static void lease_close_retired(LeaseManager *m)
{
        for (guint i = 0; i < m->retired_fds->len; i++)
                close(g_array_index(m->retired_fds, int, i));
        g_array_set_size(m->retired_fds, 0);
}

/* One visit: the manager's mutex is held for the work, not for the
 * callbacks it collected. */
static void lease_watch_visit(LeaseWatchEntry *e)
{
        g_autoptr(GArray) calls = lease_calls_new();
        LeaseManager *m = e->m;
        GHashTableIter iter;
        gpointer value;

        g_mutex_lock(&m->mutex);
        atomic_store(&m->watch_dirty, false);
        if (m->stopping) {
                /* Its stop takes the entry out next. */
                g_array_set_size(e->pfds, 0);
                g_array_set_size(e->pids, 0);
                e->due_us = G_MAXINT64;
                e->fired = false;
                g_mutex_unlock(&m->mutex);
                return;
        }
        /* What the last poll saw. The record may be gone (released
         * meanwhile) or new (the pid exited and came back): only the record
         * owning the very descriptor counts. */
        for (guint i = 0; e->fired && i < e->pfds->len; i++) {
                struct pollfd *pfd = &g_array_index(e->pfds, struct pollfd, i);
                LeaseProcess *p;

                if (!pfd->revents)
                        continue;
                p = g_hash_table_lookup(m->processes,
                                        GINT_TO_POINTER(g_array_index(e->pids, pid_t, i)));
                if (p && p->pidfd == pfd->fd && lease_pidfd_exited(p->pidfd))
                        lease_process_died(m, p, calls);
        }
        e->fired = false;
        lease_expire_waiters(m, calls);
        gint64 next_us = lease_retry_remote(m, calls);
        next_us = MIN(next_us, lease_warn_long_holds(m, calls));
        next_us = MIN(next_us, cluster_keep_joined(m->config.cluster));
        lease_close_retired(m);

        g_array_set_size(e->pfds, 0);
        g_array_set_size(e->pids, 0);
        g_hash_table_iter_init(&iter, m->processes);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LeaseProcess *p = value;
                struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };

                g_array_append_val(e->pfds, pfd);
                g_array_append_val(e->pids, p->pid);
        }
        e->due_us = MIN(m->next_deadline_us, next_us);
        m->watch_unchecked = e->due_us == G_MAXINT64;
        g_mutex_unlock(&m->mutex);

        lease_calls_run(m, calls);
}

/* Visits, one at a time, each manager that asks for it. */
static void lease_watch_visit_due(LeaseWatcher *w, GArray *serials)
{
        gint64 now = g_get_monotonic_time();
        GHashTableIter iter;
        gpointer value;

        g_array_set_size(serials, 0);
        g_mutex_lock(&w->mutex);
        g_hash_table_iter_init(&iter, w->entries);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LeaseWatchEntry *e = value;

                if (e->fired || e->due_us <= now || atomic_load(&e->m->watch_dirty))
                        g_array_append_val(serials, e->serial);
        }
        g_mutex_unlock(&w->mutex);

        for (guint i = 0; i < serials->len; i++) {
                g_mutex_lock(&w->mutex);
                LeaseWatchEntry *e = g_hash_table_lookup(w->entries,
                                                         &g_array_index(serials, uint64_t, i));
                if (e)
                        w->visiting = e->m;
                g_mutex_unlock(&w->mutex);
                if (!e)
                        continue; /* stopped meanwhile */
                lease_watch_visit(e);
                g_mutex_lock(&w->mutex);
                w->visiting = NULL;
                g_cond_broadcast(&w->visit_done);
                g_mutex_unlock(&w->mutex);
        }
}

/* The poll set of every entry after the wake-up eventfd; returns the poll
 * timeout. */
static int lease_watch_poll_set(LeaseWatcher *w, GArray *pfds, GArray *owners)
{
        struct pollfd wake = { .fd = w->wake_fd, .events = POLLIN };
        LeaseWatchOwner none = { 0 };
        gint64 due_us = G_MAXINT64;
        GHashTableIter iter;
        gpointer value;

        g_array_set_size(pfds, 0);
        g_array_set_size(owners, 0);
        g_array_append_val(pfds, wake);
        g_array_append_val(owners, none);
        g_mutex_lock(&w->mutex);
        g_hash_table_iter_init(&iter, w->entries);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LeaseWatchEntry *e = value;

                for (guint i = 0; i < e->pfds->len; i++) {
                        LeaseWatchOwner owner = { .serial = e->serial, .index = i };

                        g_array_append_val(pfds, g_array_index(e->pfds, struct pollfd, i));
                        g_array_append_val(owners, owner);
                }
                due_us = MIN(due_us, e->due_us);
        }
        g_mutex_unlock(&w->mutex);
        if (due_us == G_MAXINT64)
                return -1;
        gint64 left_ms = (due_us - g_get_monotonic_time() + 999) / 1000;
        return (int)CLAMP(left_ms, 0, INT_MAX);
}

/* Hands what the poll saw to the entries still there. */
static void lease_watch_note_events(LeaseWatcher *w, GArray *pfds, GArray *owners)
{
        g_mutex_lock(&w->mutex);
        for (guint i = 1; i < pfds->len; i++) {
                short revents = g_array_index(pfds, struct pollfd, i).revents;
                LeaseWatchOwner *owner = &g_array_index(owners, LeaseWatchOwner, i);
                LeaseWatchEntry *e;

                if (!revents)
                        continue;
                e = g_hash_table_lookup(w->entries, &owner->serial);
                if (!e || owner->index >= e->pfds->len)
                        continue; /* stopped meanwhile */
                g_array_index(e->pfds, struct pollfd, owner->index).revents = revents;
                e->fired = true;
        }
        g_mutex_unlock(&w->mutex);
}

static gpointer lease_watch_thread(gpointer data)
{
        LeaseWatcher *w = data;
        g_autoptr(GArray) pfds = g_array_new(FALSE, FALSE, sizeof(struct pollfd));
        g_autoptr(GArray) owners = g_array_new(FALSE, FALSE, sizeof(LeaseWatchOwner));
        g_autoptr(GArray) serials = g_array_new(FALSE, FALSE, sizeof(uint64_t));

        for (;;) {
                g_mutex_lock(&w->mutex);
                bool stopping = w->stopping;
                g_mutex_unlock(&w->mutex);
                if (stopping)
                        break;
                lease_watch_visit_due(w, serials);
                int timeout = lease_watch_poll_set(w, pfds, owners);

                if (poll((struct pollfd *)pfds->data, pfds->len, timeout) < 0)
                        continue; /* EINTR, or ENOMEM: go round; nothing was seen */
                if (g_array_index(pfds, struct pollfd, 0).revents) {
                        uint64_t count;
                        ssize_t n = read(w->wake_fd, &count, sizeof(count));

                        (void)n; /* EAGAIN: somebody else's wake-up was already consumed */
                }
                lease_watch_note_events(w, pfds, owners);
        }
        return NULL;
}

LeaseWatcher *lease_watcher_new(GError **error)
{
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

        if (fd < 0) {
                int saved = errno;

                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
                            "lease: cannot create eventfd: %s", g_strerror(saved));
                return NULL;
        }
        LeaseWatcher *w = g_new0(LeaseWatcher, 1);
        w->wake_fd = fd;
        g_mutex_init(&w->mutex);
        g_cond_init(&w->visit_done);
        w->entries = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                           lease_watch_entry_free);
        w->thread = g_thread_try_new("lease-watch", lease_watch_thread, w, error);
        if (!w->thread) {
                g_hash_table_destroy(w->entries);
                g_cond_clear(&w->visit_done);
                g_mutex_clear(&w->mutex);
                close(fd);
                g_free(w);
                return NULL;
        }
        return w;
}

void lease_watcher_free(LeaseWatcher *w)
{
        if (!w)
                return;
        g_mutex_lock(&w->mutex);
        g_warn_if_fail(g_hash_table_size(w->entries) == 0);
        w->stopping = true;
        g_mutex_unlock(&w->mutex);
        lease_watcher_wake(w);
        g_thread_join(w->thread);
        g_hash_table_destroy(w->entries);
        g_cond_clear(&w->visit_done);
        g_mutex_clear(&w->mutex);
        close(w->wake_fd);
        g_free(w);
}

static uint64_t lease_watcher_add(LeaseWatcher *w, LeaseManager *m)
{
        LeaseWatchEntry *e = g_new0(LeaseWatchEntry, 1);

        e->m = m;
        e->pfds = g_array_new(FALSE, FALSE, sizeof(struct pollfd));
        e->pids = g_array_new(FALSE, FALSE, sizeof(pid_t));
        g_mutex_lock(&w->mutex);
        e->serial = ++w->next_serial;
        g_hash_table_insert(w->entries, &e->serial, e);
        g_mutex_unlock(&w->mutex);
        return e->serial;
}

/* Once this returns the thread neither visits @m nor polls its pidfds. */
static void lease_watcher_remove(LeaseWatcher *w, LeaseManager *m)
{
        g_mutex_lock(&w->mutex);
        /* Never from a callback of @m's visit: that would wait for itself. */
        g_assert(w->visiting != m || g_thread_self() != w->thread);
        while (w->visiting == m)
                g_cond_wait(&w->visit_done, &w->mutex);
        g_hash_table_remove(w->entries, &m->watch_serial);
        g_mutex_unlock(&w->mutex);
        /* A poll in progress may still list its pidfds, which the caller
         * closes next: woken, the thread builds a set without them. If a
         * number is reused before, an event on it names a serial no longer
         * in the table and is dropped. */
        lease_watcher_wake(w);
}

void lease_watch_granted(LeaseManager *m)
{
        if (m->watch_unchecked && m->config.cluster) {
                m->watch_unchecked = false;
                lease_wake(m);
        }
}

/* ---- life cycle --------------------------------------------------------- */

static void lease_process_free(gpointer data)
{
        LeaseProcess *p = data;

        close(p->pidfd);
        g_list_free(p->held);
        g_list_free(p->waiting);
        g_free(p);
}

LeaseManager *lease_manager_new(const LeaseConfig *config, GError **error)
{
        static const int defaults[LEASE_KIND_COUNT] = {
                [LEASE_SESSION] = LEASE_DEFAULT_SESSION_MS,
                [LEASE_KEY_WRITE] = LEASE_DEFAULT_KEY_WRITE_MS,
                [LEASE_EXCLUSIVE] = LEASE_DEFAULT_EXCLUSIVE_MS,
        };
        LeaseConfig empty = { 0 };
        LeaseWatcher *watcher;
        LeaseManager *m;
        int given[LEASE_KIND_COUNT];

        if (!config)
                config = &empty;
        given[LEASE_SESSION] = config->session_timeout_ms;
        given[LEASE_KEY_WRITE] = config->key_write_timeout_ms;
        given[LEASE_EXCLUSIVE] = config->exclusive_timeout_ms;
        for (int k = 0; k < LEASE_KIND_COUNT; k++) {
                if (given[k] < 0) {
                        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                                    "lease: negative default timeout for %s leases",
                                    lease_kind_to_string(k));
                        return NULL;
                }
        }
        watcher = config->watcher ? config->watcher : lease_watcher_new(error);
        if (!watcher)
                return NULL;

        m = g_new0(LeaseManager, 1);
        m->config = *config;
        for (int k = 0; k < LEASE_KIND_COUNT; k++)
                m->timeout_ms[k] = given[k] > 0 ? given[k] : defaults[k];
        m->watcher = watcher;
        m->owns_watcher = !config->watcher;
        atomic_init(&m->watch_dirty, false);
        g_mutex_init(&m->mutex);
        m->resources = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, lease_resource_free);
        m->processes = g_hash_table_new_full(NULL, NULL, NULL, lease_process_free);
        m->waiters = g_hash_table_new(g_int64_hash, g_int64_equal);
        m->bans = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        m->overlaps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify)lease_overlap_count_free);
        m->retired_fds = g_array_new(FALSE, FALSE, sizeof(int));
        m->next_deadline_us = G_MAXINT64;
        m->watch_serial = lease_watcher_add(watcher, m);
        return m;
}

void lease_manager_stop(LeaseManager *m)
{
        g_autoptr(GArray) calls = NULL;
        g_autoptr(GPtrArray) all = NULL;

        if (!m)
                return;
        calls = lease_calls_new();
        g_mutex_lock(&m->mutex);
        if (m->watch_stopped || m->stopping) {
                g_mutex_unlock(&m->mutex);
                return;
        }
        m->stopping = true;
        all = lease_waiters_sorted(m);
        for (guint i = 0; i < all->len; i++)
                lease_waiter_fail(m, all->pdata[i], -ECANCELED, calls);
        g_mutex_unlock(&m->mutex);

        lease_watcher_remove(m->watcher, m);

        g_mutex_lock(&m->mutex);
        m->watch_stopped = true;
        /* Records kept for processes that hold nothing go with their
         * pidfds; those still holding keep theirs until released. */
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, m->processes);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                if (((LeaseProcess *)value)->users == 0)
                        g_hash_table_iter_remove(&iter);
        lease_close_retired(m);
        g_mutex_unlock(&m->mutex);
        /* Still fully alive: a done callback may release what it holds. */
        lease_calls_run(m, calls);
}

void lease_manager_free(LeaseManager *m)
{
        GHashTableIter iter;
        gpointer value;

        if (!m)
                return;
        lease_manager_stop(m);

        /* Holds left over vanish with the manager; detach them so the
         * resource destructor's invariant check holds. */
        g_hash_table_iter_init(&iter, m->resources);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LeaseResource *r = value;

                r->holder = NULL;
        }
        g_hash_table_destroy(m->resources);
        g_hash_table_destroy(m->waiters);
        g_hash_table_destroy(m->bans);
        g_hash_table_destroy(m->overlaps);
        g_hash_table_destroy(m->processes);
        for (GList *l = m->exited; l; l = l->next) {
                LeaseProcess *p = l->data;
                g_list_free(p->held);
                g_list_free(p->waiting);
                g_free(p);
        }
        g_list_free(m->exited);
        lease_close_retired(m);
        g_array_unref(m->retired_fds);
        g_mutex_clear(&m->mutex);
        if (m->owns_watcher)
                lease_watcher_free(m->watcher);
        g_free(m);
}
