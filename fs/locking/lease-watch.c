/* lease-watch.c - the lease manager's watch thread and life cycle.
 *
 * One thread polls an eventfd, one pidfd per process that holds or waits,
 * and the earliest waiter deadline: it reclaims the holds of dead
 * processes, fails waiters whose time is up, and is the only closer of
 * pidfds (between two polls, so a descriptor it polls is never reused under
 * it). lease_manager_new() starts it, lease_manager_stop() (or
 * lease_manager_free()) stops it.
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

static gpointer lease_watch_thread(gpointer data)
{
        LeaseManager *m = data;
        g_autoptr(GArray) pfds = g_array_new(FALSE, FALSE, sizeof(struct pollfd));
        g_autoptr(GArray) pids = g_array_new(FALSE, FALSE, sizeof(pid_t));

        for (;;) {
                g_autoptr(GArray) calls = lease_calls_new();
                struct pollfd wake = { .fd = m->wake_fd, .events = POLLIN };
                GHashTableIter iter;
                gpointer value;
                int timeout;

                g_mutex_lock(&m->mutex);
                if (m->stopping) {
                        g_mutex_unlock(&m->mutex);
                        break;
                }
                /* What the last poll saw. The record may be gone (released
                 * meanwhile) or new (the pid exited and came back): only the
                 * record owning the very descriptor counts. */
                for (guint i = 1; i < pfds->len; i++) {
                        struct pollfd *pfd = &g_array_index(pfds, struct pollfd, i);
                        LeaseProcess *p;

                        if (!pfd->revents)
                                continue;
                        p = g_hash_table_lookup(m->processes,
                                                GINT_TO_POINTER(g_array_index(pids, pid_t, i)));
                        if (p && p->pidfd == pfd->fd && lease_pidfd_exited(p->pidfd))
                                lease_process_died(m, p, calls);
                }
                lease_expire_waiters(m, calls);
                gint64 next_retry_us = lease_retry_remote(m, calls);
                next_retry_us = MIN(next_retry_us, lease_warn_long_holds(m, calls));
                next_retry_us = MIN(next_retry_us, cluster_keep_joined(m->config.cluster));
                lease_close_retired(m);

                g_array_set_size(pfds, 0);
                g_array_set_size(pids, 0);
                g_array_append_val(pfds, wake);
                g_array_append_val(pids, (pid_t){ 0 });
                g_hash_table_iter_init(&iter, m->processes);
                while (g_hash_table_iter_next(&iter, NULL, &value)) {
                        LeaseProcess *p = value;
                        struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };

                        g_array_append_val(pfds, pfd);
                        g_array_append_val(pids, p->pid);
                }
                gint64 wake_us = MIN(m->next_deadline_us, next_retry_us);
                m->watch_unchecked = wake_us == G_MAXINT64;
                if (wake_us == G_MAXINT64) {
                        timeout = -1;
                } else {
                        gint64 left_ms = (wake_us - g_get_monotonic_time() + 999) / 1000;

                        timeout = (int)CLAMP(left_ms, 0, INT_MAX);
                }
                g_mutex_unlock(&m->mutex);

                lease_calls_run(m, calls);

                if (poll((struct pollfd *)pfds->data, pfds->len, timeout) < 0) {
                        /* EINTR, or ENOMEM: go round; nothing was seen. */
                        for (guint i = 0; i < pfds->len; i++)
                                g_array_index(pfds, struct pollfd, i).revents = 0;
                        continue;
                }
                if (g_array_index(pfds, struct pollfd, 0).revents) {
                        uint64_t count;
                        ssize_t n = read(m->wake_fd, &count, sizeof(count));

                        (void)n; /* EAGAIN: somebody else's wake-up was already consumed */
                }
        }
        return NULL;
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
        LeaseManager *m;
        int given[LEASE_KIND_COUNT];
        int fd;

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

        fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) {
                int saved = errno;

                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
                            "lease: cannot create eventfd: %s", g_strerror(saved));
                return NULL;
        }

        m = g_new0(LeaseManager, 1);
        m->config = *config;
        for (int k = 0; k < LEASE_KIND_COUNT; k++)
                m->timeout_ms[k] = given[k] > 0 ? given[k] : defaults[k];
        m->wake_fd = fd;
        g_mutex_init(&m->mutex);
        m->resources = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, lease_resource_free);
        m->processes = g_hash_table_new_full(NULL, NULL, NULL, lease_process_free);
        m->waiters = g_hash_table_new(g_int64_hash, g_int64_equal);
        m->bans = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        m->retired_fds = g_array_new(FALSE, FALSE, sizeof(int));
        m->next_deadline_us = G_MAXINT64;

        m->watch_thread = g_thread_try_new("lease-watch", lease_watch_thread, m, error);
        if (!m->watch_thread) {
                g_hash_table_destroy(m->bans);
                g_hash_table_destroy(m->waiters);
                g_hash_table_destroy(m->processes);
                g_hash_table_destroy(m->resources);
                g_array_unref(m->retired_fds);
                g_mutex_clear(&m->mutex);
                close(fd);
                g_free(m);
                return NULL;
        }
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
        if (m->watch_stopped) {
                g_mutex_unlock(&m->mutex);
                return;
        }
        m->stopping = true;
        all = lease_waiters_sorted(m);
        for (guint i = 0; i < all->len; i++)
                lease_waiter_fail(m, all->pdata[i], -ECANCELED, calls);
        g_mutex_unlock(&m->mutex);

        lease_wake(m);
        g_thread_join(m->watch_thread);

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
        close(m->wake_fd);
        m->wake_fd = -1;
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
        g_free(m);
}
