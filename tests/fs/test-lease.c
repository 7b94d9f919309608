/* test-lease.c - the lease manager against real processes.
 *
 * Holders and waiters are this test process and forked children that only
 * block reading a pipe, because the manager watches every pid it is given
 * with a pidfd: a made-up pid would simply be refused as dead. A child
 * leaves when it is killed, when the test closes the pipe, or when the test
 * process dies (EOF on the pipe, and PR_SET_PDEATHSIG as a second line), so
 * no child outlives a failing test.
 *
 * Callbacks are awaited on a condition variable with a generous bound;
 * nothing sleeps to let things happen, and no timing is asserted beyond
 * "not before the timeout".
 */
#include "lease.h"
#include "lease-private.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#define WAIT_BOUND_US (30 * G_USEC_PER_SEC)
#define LONG_MS 60000

typedef struct {
        int calls;
        int result;
        int order; /* completion sequence number */
        /* Re-entrancy: release this ref from inside done when granted. */
        bool release_on_grant;
        LeaseKind kind;
        const char *name;
        uint64_t ref;
} Done;

typedef struct {
        LeaseKind kind;
        char *name;
        pid_t pid;
        GArray *refs;
        LeaseEndReason reason;
} GoneEvent;

static GMutex t_lock;
static GCond t_cond;
static int t_completions;       /* guarded by t_lock */
static GPtrArray *t_gone;       /* guarded by t_lock; GoneEvent* */
static GPtrArray *t_log;        /* guarded by t_lock; char* "P:message" */
static unsigned t_warnings;     /* guarded by t_lock */
static unsigned t_warnings_expected;
static LeaseManager *t_manager;
static LeaseWatcher *t_watcher; /* the watch thread every test manager shares */
static Done t_unused;           /* done of requests expected to be answered at once */
/* Done records outlive the test body: teardown's lease_manager_free() still
 * completes whatever a test (or a failed assertion) left queued. */
static Done t_done_pool[32];
static unsigned t_done_used;
static GArray *t_children;      /* pid_t */
static int t_pipe[2] = { -1, -1 };

/* ---- callbacks ------------------------------------------------------- */

static void on_done(void *opaque, int result)
{
        Done *d = opaque;

        g_mutex_lock(&t_lock);
        d->calls++;
        d->result = result;
        d->order = ++t_completions;
        g_cond_broadcast(&t_cond);
        g_mutex_unlock(&t_lock);
        /* Like a daemon whose backing open failed after the grant. */
        if (d->release_on_grant && result == 0)
                lease_release(t_manager, d->kind, d->name, d->ref);
}

static void gone_event_free(gpointer data)
{
        GoneEvent *e = data;

        g_free(e->name);
        g_array_unref(e->refs);
        g_free(e);
}

static void on_gone(void *user_data, LeaseKind kind, const char *name, pid_t pid,
                    const uint64_t *refs, unsigned n_refs, LeaseEndReason reason)
{
        GoneEvent *e = g_new0(GoneEvent, 1);

        /* Calling back into the manager must not deadlock. The references
         * reported are no longer part of any hold (a dead holder's open
         * handles may still keep the hold itself). */
        for (unsigned i = 0; i < n_refs; i++)
                cr_expect_not(lease_holds(t_manager, kind, name, refs[i]),
                              "holder_gone reports ref %" G_GUINT64_FORMAT " still held", refs[i]);

        e->kind = kind;
        e->name = g_strdup(name);
        e->pid = pid;
        e->refs = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        g_array_append_vals(e->refs, refs, n_refs);
        e->reason = reason;
        g_mutex_lock(&t_lock);
        g_ptr_array_add(t_gone, e);
        g_cond_broadcast(&t_cond);
        g_mutex_unlock(&t_lock);
}

/* Overlaps reported, as "PID PROGRAM PROTOCOL / HOLDER-PID PROGRAM PROTOCOL
 * KIND NAME". */
static GPtrArray *t_overlaps; /* guarded by t_lock; char* */

static void on_overlap(const LeaseEvent *event)
{
        g_mutex_lock(&t_lock);
        g_ptr_array_add(t_overlaps,
                        g_strdup_printf("%d %s %s / %d %s %s %s %s", (int)event->pid,
                                        event->program, event->protocol, (int)event->holder_pid,
                                        event->holder_program, event->holder_protocol,
                                        lease_kind_to_string(event->kind), event->name));
        g_mutex_unlock(&t_lock);
}

static void on_log(void *user_data, int priority, const char *message)
{
        LeaseStats stats;

        lease_manager_get_stats(t_manager, &stats); /* re-entry again */
        g_mutex_lock(&t_lock);
        g_ptr_array_add(t_log, g_strdup_printf("%d:%s", priority, message));
        if (priority <= LOG_WARNING)
                t_warnings++;
        g_mutex_unlock(&t_lock);
}

/* The manager's one way up: a single-daemon manager sends no
 * LEASE_EVENT_TAKEN_FROM_DEAD_NODE. */
static void on_event(void *user_data, const LeaseEvent *event)
{
        switch (event->type) {
        case LEASE_EVENT_LOG:
                on_log(user_data, event->priority, event->message);
                break;
        case LEASE_EVENT_HOLD_ENDED:
                on_gone(user_data, event->kind, event->name, event->pid, event->refs,
                        event->n_refs, event->reason);
                break;
        case LEASE_EVENT_TAKEN_FROM_DEAD_NODE:
                cr_expect_fail("a manager without a cluster reported a dead node's session %s",
                               event->name);
                break;
        case LEASE_EVENT_OVERLAP:
                on_overlap(event);
                break;
        }
}

static Done *new_done(void)
{
        cr_assert_lt(t_done_used, G_N_ELEMENTS(t_done_pool));
        return &t_done_pool[t_done_used++];
}

/* ---- waiting for callbacks ------------------------------------------- */

static int wait_done(Done *d)
{
        gint64 end = g_get_monotonic_time() + WAIT_BOUND_US;
        int calls, result;

        g_mutex_lock(&t_lock);
        while (d->calls == 0 && g_cond_wait_until(&t_cond, &t_lock, end))
                ;
        calls = d->calls;
        result = d->result;
        g_mutex_unlock(&t_lock);
        cr_assert_eq(calls, 1, "done called %d times", calls);
        return result;
}

static int done_calls(Done *d)
{
        int calls;

        g_mutex_lock(&t_lock);
        calls = d->calls;
        g_mutex_unlock(&t_lock);
        return calls;
}

static GoneEvent *wait_gone(guint n)
{
        gint64 end = g_get_monotonic_time() + WAIT_BOUND_US;
        GoneEvent *e = NULL;

        g_mutex_lock(&t_lock);
        while (t_gone->len < n && g_cond_wait_until(&t_cond, &t_lock, end))
                ;
        if (t_gone->len >= n)
                e = t_gone->pdata[n - 1];
        g_mutex_unlock(&t_lock);
        cr_assert_not_null(e, "holder_gone #%u never came", n);
        return e;
}

static bool log_contains(const char *needle)
{
        bool found = false;

        g_mutex_lock(&t_lock);
        for (guint i = 0; i < t_log->len && !found; i++)
                found = strstr(t_log->pdata[i], needle) != NULL;
        g_mutex_unlock(&t_lock);
        return found;
}

/* ---- child processes ------------------------------------------------- */

static pid_t spawn_child(void)
{
        pid_t parent = getpid();
        pid_t pid;

        if (t_pipe[0] < 0)
                cr_assert_eq(pipe2(t_pipe, O_CLOEXEC), 0);
        pid = fork();
        cr_assert_geq(pid, 0, "fork: %s", g_strerror(errno));
        if (pid == 0) {
                char c;

                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(0);
                close(t_pipe[1]);
                while (read(t_pipe[0], &c, 1) < 0 && errno == EINTR)
                        ;
                _exit(0);
        }
        g_array_append_val(t_children, pid);
        return pid;
}

static void kill_child(pid_t pid)
{
        cr_assert_eq(kill(pid, SIGKILL), 0);
        cr_assert_eq(waitpid(pid, NULL, 0), pid);
        for (guint i = 0; i < t_children->len; i++) {
                if (g_array_index(t_children, pid_t, i) == pid) {
                        g_array_remove_index_fast(t_children, i);
                        break;
                }
        }
}

/* ---- fixture ---------------------------------------------------------- */

static LeaseManager *new_manager_warning(int session_ms, int exclusive_ms, int hold_warning_ms)
{
        LeaseConfig config = {
                .session_timeout_ms = session_ms,
                .key_write_timeout_ms = session_ms,
                .exclusive_timeout_ms = exclusive_ms,
                .hold_warning_ms = hold_warning_ms,
                .notify = on_event,
                .watcher = t_watcher,
        };
        g_autoptr(GError) error = NULL;
        LeaseManager *m = lease_manager_new(&config, &error);

        cr_assert_not_null(m, "%s", error ? error->message : "?");
        return m;
}

static LeaseManager *new_manager(int session_ms, int exclusive_ms)
{
        return new_manager_warning(session_ms, exclusive_ms, 0);
}

static void setup(void)
{
        t_gone = g_ptr_array_new_with_free_func(gone_event_free);
        t_log = g_ptr_array_new_with_free_func(g_free);
        t_overlaps = g_ptr_array_new_with_free_func(g_free);
        t_children = g_array_new(FALSE, FALSE, sizeof(pid_t));
        t_warnings = 0;
        t_warnings_expected = 0;
        t_completions = 0;
        memset(&t_unused, 0, sizeof(t_unused));
        memset(t_done_pool, 0, sizeof(t_done_pool));
        t_done_used = 0;
        g_autoptr(GError) error = NULL;
        t_watcher = lease_watcher_new(&error);
        cr_assert_not_null(t_watcher, "%s", error ? error->message : "?");
        t_manager = new_manager(LONG_MS, LONG_MS);
}

static void teardown(void)
{
        g_autoptr(GString) logged = g_string_new(NULL);
        unsigned warnings;

        g_clear_pointer(&t_manager, lease_manager_free);
        g_clear_pointer(&t_watcher, lease_watcher_free);
        for (guint i = 0; i < t_children->len; i++)
                kill(g_array_index(t_children, pid_t, i), SIGKILL);
        for (guint i = 0; i < t_children->len; i++)
                waitpid(g_array_index(t_children, pid_t, i), NULL, 0);
        g_array_unref(t_children);
        if (t_pipe[0] >= 0) {
                close(t_pipe[0]);
                close(t_pipe[1]);
                t_pipe[0] = t_pipe[1] = -1;
        }
        g_mutex_lock(&t_lock);
        warnings = t_warnings;
        for (guint i = 0; i < t_log->len; i++)
                g_string_append_printf(logged, "\n  %s", (char *)t_log->pdata[i]);
        g_mutex_unlock(&t_lock);
        g_ptr_array_unref(t_gone);
        g_ptr_array_unref(t_log);
        g_ptr_array_unref(t_overlaps);
        cr_expect_eq(t_unused.calls, 0, "done called for a request answered at once");
        cr_expect_eq(warnings, t_warnings_expected, "%u warnings logged, %u expected:%s", warnings,
                     t_warnings_expected, logged->str);
}

TestSuite(lease, .init = setup, .fini = teardown, .timeout = 300);

/* ---- request helpers -------------------------------------------------- */

static int acquire_full(LeaseKind kind, const char *name, pid_t pid, uint64_t ref, int timeout_ms,
                        const char *program, const char *protocol, Done *done, uint64_t *waiter)
{
        LeaseRequest req = {
                .kind = kind,
                .name = name,
                .pid = pid,
                .program = program,
                .protocol = protocol,
                .ref = ref,
                .timeout_ms = timeout_ms,
                .done = on_done,
                .opaque = done ? done : &t_unused,
        };

        return lease_acquire(t_manager, &req, waiter);
}

static int acquire(LeaseKind kind, const char *name, pid_t pid, uint64_t ref, Done *done,
                   uint64_t *waiter)
{
        return acquire_full(kind, name, pid, ref, LONG_MS, "EXTERNAL.EXE", "0LK", done, waiter);
}

static void assert_granted(LeaseKind kind, const char *name, pid_t pid, uint64_t ref)
{
        cr_assert_eq(acquire(kind, name, pid, ref, NULL, NULL), 0);
}

static uint64_t assert_queued(LeaseKind kind, const char *name, pid_t pid, uint64_t ref, Done *done)
{
        uint64_t id = 0;

        cr_assert_eq(acquire(kind, name, pid, ref, done, &id), LEASE_PENDING);
        cr_assert_neq(id, 0);
        return id;
}

static pid_t holder_of(LeaseKind kind, const char *name)
{
        g_autoptr(LeaseInfo) info = lease_manager_lookup(t_manager, kind, name);

        return info->holder;
}

/* ---- tests -------------------------------------------------------------- */

Test(lease, fifo_order_across_processes)
{
        pid_t self = getpid();
        pid_t a = spawn_child(), b = spawn_child(), c = spawn_child();
        Done *da = new_done(), *db = new_done(), *dc = new_done();

        assert_granted(LEASE_SESSION, "INQUEUE3", self, 1);
        assert_queued(LEASE_SESSION, "INQUEUE3", a, 10, da);
        assert_queued(LEASE_SESSION, "INQUEUE3", b, 20, db);
        assert_queued(LEASE_SESSION, "INQUEUE3", c, 30, dc);

        g_autoptr(LeaseInfo) info = lease_manager_lookup(t_manager, LEASE_SESSION, "INQUEUE3");
        cr_assert_eq(info->holder, self);
        cr_assert_eq(info->n_waiters, 3);
        cr_assert_eq(info->waiter_pids[0], a);
        cr_assert_eq(info->waiter_pids[1], b);
        cr_assert_eq(info->waiter_pids[2], c);

        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        cr_assert_eq(wait_done(da), 0);
        cr_assert_eq(holder_of(LEASE_SESSION, "INQUEUE3"), a);
        cr_assert(lease_holds(t_manager, LEASE_SESSION, "INQUEUE3", 10));
        cr_assert_eq(done_calls(db) + done_calls(dc), 0);

        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 10);
        cr_assert_eq(wait_done(db), 0);
        cr_assert_eq(done_calls(dc), 0);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 20);
        cr_assert_eq(wait_done(dc), 0);
        cr_assert(da->order < db->order && db->order < dc->order);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 30);

        g_autoptr(GPtrArray) snap = lease_manager_snapshot(t_manager);
        cr_assert_eq(snap->len, 0, "a free resource is forgotten");
}

Test(lease, timeout_fails_with_ebusy_and_leaves_queue)
{
        pid_t self = getpid();
        pid_t a = spawn_child(), b = spawn_child();
        Done *da = new_done(), *db = new_done();
        LeaseStats stats;

        assert_granted(LEASE_SESSION, "INQUEUE3", self, 1);
        gint64 start = g_get_monotonic_time();
        cr_assert_eq(acquire_full(LEASE_SESSION, "INQUEUE3", a, 10, 100, "PROFS.EXE", "queue-read",
                                  da, NULL),
                     LEASE_PENDING);
        assert_queued(LEASE_SESSION, "INQUEUE3", b, 20, db);

        cr_assert_eq(wait_done(da), -EBUSY);
        cr_assert_geq(g_get_monotonic_time() - start, 100 * 1000, "timed out early");
        g_autoptr(LeaseInfo) info = lease_manager_lookup(t_manager, LEASE_SESSION, "INQUEUE3");
        cr_assert_eq(info->n_waiters, 1);
        cr_assert_eq(info->waiter_pids[0], b);
        cr_assert(log_contains("gave up on session INQUEUE3"));

        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        cr_assert_eq(wait_done(db), 0);
        lease_manager_get_stats(t_manager, &stats);
        cr_assert_eq(stats.timeouts, 1);
        cr_assert_eq(stats.waits, 2);
        cr_assert_eq(stats.acquisitions, 2);
}

static int acquire_observing(LeaseKind kind, const char *name, pid_t pid, uint64_t ref,
                             int timeout_ms, const char *program, const char *protocol,
                             Done *done, uint64_t *waiter)
{
        LeaseRequest req = {
                .kind = kind,
                .name = name,
                .pid = pid,
                .program = program,
                .protocol = protocol,
                .ref = ref,
                .timeout_ms = timeout_ms,
                .done = on_done,
                .opaque = done ? done : &t_unused,
                .observe = true,
        };
        return lease_acquire(t_manager, &req, waiter);
}

/* Observing, nobody waits and nobody is refused, not even a request that
 * may not wait: each meeting with a hold is counted and reported with both
 * programs, and the request is queued without a time limit, so it is
 * granted in its turn and whoever comes after it (enforced again) waits. */
Test(lease, an_observing_request_overlaps_and_is_granted_in_its_turn)
{
        pid_t self = getpid();
        pid_t a = spawn_child(), b = spawn_child(), c = spawn_child();
        Done *da = new_done(), *db = new_done(), *dc = new_done();
        uint64_t id = 0;

        assert_granted(LEASE_SESSION, "INQUEUE3", self, 1);
        /* Would have been refused at once (smbd's timeout 0). */
        cr_assert_eq(acquire_observing(LEASE_SESSION, "INQUEUE3", a, 10, 0, "smbd", "queue-read",
                                       da, &id),
                     LEASE_PENDING);
        cr_assert_neq(id, 0);
        cr_assert_eq(acquire_observing(LEASE_SESSION, "INQUEUE3", b, 20, 100, "EXTERNAL.EXE", "V20",
                                       db, NULL),
                     LEASE_PENDING);
        /* A free resource is simply granted: no overlap. */
        cr_assert_eq(acquire_observing(LEASE_SESSION, "SYSTEM", a, 11, 0, "smbd", "queue-read", NULL,
                                       NULL),
                     0);
        /* Enforced again: waits behind both. */
        assert_queued(LEASE_SESSION, "INQUEUE3", c, 30, dc);

        /* No deadline: still queued after the 100 ms b asked for. */
        g_usleep(300 * 1000);
        cr_assert_eq(done_calls(db), 0);

        LeaseStats stats;
        lease_manager_get_stats(t_manager, &stats);
        cr_expect_eq(stats.overlaps, 2);
        cr_expect_eq(stats.refused, 0);
        cr_expect_eq(stats.timeouts, 0);
        g_mutex_lock(&t_lock);
        cr_assert_eq(t_overlaps->len, 2);
        g_autofree char *first = g_strdup_printf("%d smbd queue-read / %d EXTERNAL.EXE 0LK session "
                                                 "INQUEUE3",
                                                 (int)a, (int)self);
        g_autofree char *second = g_strdup_printf("%d EXTERNAL.EXE V20 / %d EXTERNAL.EXE 0LK "
                                                  "session INQUEUE3",
                                                  (int)b, (int)self);
        cr_expect_str_eq(t_overlaps->pdata[0], first);
        cr_expect_str_eq(t_overlaps->pdata[1], second);
        g_mutex_unlock(&t_lock);

        g_autoptr(GPtrArray) counts = lease_manager_overlaps(t_manager);
        cr_assert_eq(counts->len, 2);
        const LeaseOverlapCount *c0 = counts->pdata[0], *c1 = counts->pdata[1];
        cr_expect_str_eq(c0->name, "INQUEUE3");
        cr_expect_str_eq(c0->protocol, "V20");
        cr_expect_str_eq(c0->other_protocol, "0LK");
        cr_expect_eq(c0->count, 1);
        cr_expect_str_eq(c1->protocol, "queue-read");

        /* Turns, in order: a, b, then the enforced c. */
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        cr_assert_eq(wait_done(da), 0);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 10);
        cr_assert_eq(wait_done(db), 0);
        cr_assert_eq(done_calls(dc), 0);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 20);
        cr_assert_eq(wait_done(dc), 0);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 30);
        lease_release(t_manager, LEASE_SESSION, "SYSTEM", 11);
}

/* An observing request that would close a waits-for cycle is not queued:
 * it goes ahead untracked, still counted as an overlap. */
Test(lease, an_observing_request_that_would_deadlock_goes_untracked)
{
        pid_t self = getpid();
        pid_t a = spawn_child();
        Done *d = new_done();

        assert_granted(LEASE_SESSION, "INQUEUE3", self, 1);
        assert_granted(LEASE_SESSION, "SYSTEM", a, 2);
        assert_queued(LEASE_SESSION, "SYSTEM", self, 3, d);
        cr_assert_eq(acquire_observing(LEASE_SESSION, "INQUEUE3", a, 4, LONG_MS, "MS.EXE", "0LK",
                                       NULL, NULL),
                     LEASE_UNTRACKED);
        LeaseStats stats;
        lease_manager_get_stats(t_manager, &stats);
        cr_expect_eq(stats.overlaps, 1);
        cr_expect_eq(stats.deadlocks, 0);
        cr_expect_not(lease_holds(t_manager, LEASE_SESSION, "INQUEUE3", 4));
        lease_release(t_manager, LEASE_SESSION, "SYSTEM", 2);
        cr_assert_eq(wait_done(d), 0);
        lease_release(t_manager, LEASE_SESSION, "SYSTEM", 3);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
}

Test(lease, timeout_zero_fails_at_once)
{
        pid_t a = spawn_child();
        uint64_t id = 42;
        LeaseStats stats;

        assert_granted(LEASE_SESSION, "INQUEUE3", getpid(), 1);
        cr_assert_eq(acquire_full(LEASE_SESSION, "INQUEUE3", a, 10, 0, "PROFS.EXE", "queue-read",
                                  NULL, &id),
                     -EBUSY);
        cr_assert_eq(id, 0);
        /* ...while a free resource is granted even with timeout 0. */
        cr_assert_eq(acquire_full(LEASE_SESSION, "SYSTEM", a, 11, 0, NULL, NULL, NULL, NULL), 0);
        lease_manager_get_stats(t_manager, &stats);
        cr_assert_eq(stats.refused, 1, "a refusal at once is not a wait that ran out");
        cr_assert_eq(stats.timeouts, 0);
        cr_assert_eq(stats.waits, 0);
}

Test(lease, default_timeout_comes_from_kind)
{
        Done *d = new_done();
        pid_t a = spawn_child();

        lease_manager_free(t_manager);
        t_manager = new_manager(LONG_MS, 150);
        assert_granted(LEASE_EXCLUSIVE, "GLB/CONTROL.GLB", getpid(), 1);
        gint64 start = g_get_monotonic_time();
        cr_assert_eq(acquire_full(LEASE_EXCLUSIVE, "GLB/CONTROL.GLB", a, 2, -1, NULL, "exclusive", d,
                                  NULL),
                     LEASE_PENDING);
        cr_assert_eq(wait_done(d), -EBUSY);
        cr_assert_geq(g_get_monotonic_time() - start, 150 * 1000);
}

Test(lease, holder_reenters_while_others_wait)
{
        pid_t self = getpid();
        pid_t a = spawn_child();
        Done *da = new_done();

        assert_granted(LEASE_SESSION, "INQUEUE3", self, 1);
        assert_queued(LEASE_SESSION, "INQUEUE3", a, 10, da);
        assert_granted(LEASE_SESSION, "INQUEUE3", self, 2);
        cr_assert_eq(acquire(LEASE_SESSION, "INQUEUE3", self, 2, NULL, NULL), -EEXIST);

        g_autoptr(LeaseInfo) info = lease_manager_lookup(t_manager, LEASE_SESSION, "INQUEUE3");
        cr_assert_eq(info->refs, 2);
        cr_assert_eq(info->n_waiters, 1);

        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        cr_assert_eq(holder_of(LEASE_SESSION, "INQUEUE3"), self);
        cr_assert_eq(done_calls(da), 0);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 2);
        cr_assert_eq(wait_done(da), 0);
}

Test(lease, queued_requests_of_one_process_are_granted_together)
{
        pid_t self = getpid();
        pid_t h = spawn_child(), b = spawn_child();
        Done *d1 = new_done(), *d2 = new_done(), *db = new_done();

        assert_granted(LEASE_SESSION, "INQUEUE3", h, 1);
        assert_queued(LEASE_SESSION, "INQUEUE3", self, 10, d1);
        assert_queued(LEASE_SESSION, "INQUEUE3", b, 20, db);
        /* Not a deadlock with itself, although b is queued ahead. */
        assert_queued(LEASE_SESSION, "INQUEUE3", self, 11, d2);

        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        cr_assert_eq(wait_done(d1), 0);
        cr_assert_eq(wait_done(d2), 0);
        cr_assert_eq(done_calls(db), 0);
        g_autoptr(LeaseInfo) info = lease_manager_lookup(t_manager, LEASE_SESSION, "INQUEUE3");
        cr_assert_eq(info->holder, self);
        cr_assert_eq(info->refs, 2);
        cr_assert_eq(info->n_waiters, 1);
}

Test(lease, v20_ref_outlives_file_handles)
{
        pid_t self = getpid();
        pid_t a = spawn_child();
        Done *da = new_done();

        /* A -V20 program creates its lock file, then opens the queue. */
        cr_assert_eq(acquire_full(LEASE_SESSION, "INQUEUE3", self, 100, LONG_MS, "EXTERNAL.EXE", "V20",
                                  NULL, NULL),
                     0);
        assert_granted(LEASE_SESSION, "INQUEUE3", self, 1);
        assert_granted(LEASE_SESSION, "INQUEUE3", self, 2);
        assert_queued(LEASE_SESSION, "INQUEUE3", a, 10, da);

        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 2);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 2); /* twice: no-op */
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 999);
        cr_assert(lease_holds(t_manager, LEASE_SESSION, "INQUEUE3", 100));
        g_autoptr(LeaseInfo) info = lease_manager_lookup(t_manager, LEASE_SESSION, "INQUEUE3");
        cr_assert_eq(info->holder, self);
        cr_assert_str_eq(info->protocol, "V20");
        cr_assert_eq(info->refs, 1);
        cr_assert_eq(done_calls(da), 0);

        /* The lock file is unlinked: the session ends. */
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 100);
        cr_assert_eq(wait_done(da), 0);
        cr_assert_not(lease_holds(t_manager, LEASE_SESSION, "INQUEUE3", 100));
}

Test(lease, dead_holder_is_reclaimed)
{
        pid_t self = getpid();
        pid_t h = spawn_child();
        Done *d = new_done();
        LeaseStats stats;

        cr_assert_eq(acquire_full(LEASE_SESSION, "INQUEUE3", h, 7, LONG_MS, "EXTERNAL.EXE", "V20", NULL,
                                  NULL),
                     0);
        assert_granted(LEASE_SESSION, "INQUEUE3", h, 8);
        assert_granted(LEASE_EXCLUSIVE, "GLB/CONTROL.GLB", h, 9);
        assert_queued(LEASE_SESSION, "INQUEUE3", self, 1, d);

        t_warnings_expected = 2;
        kill_child(h);
        cr_assert_eq(wait_done(d), 0);
        cr_assert_eq(holder_of(LEASE_SESSION, "INQUEUE3"), self);
        cr_assert_not(lease_holds(t_manager, LEASE_SESSION, "INQUEUE3", 7));

        GoneEvent *first = wait_gone(1);
        GoneEvent *second = wait_gone(2);
        GoneEvent *session = first->kind == LEASE_SESSION ? first : second;
        GoneEvent *exclusive = first->kind == LEASE_SESSION ? second : first;

        cr_assert_eq(session->kind, LEASE_SESSION);
        cr_assert_str_eq(session->name, "INQUEUE3");
        cr_assert_eq(session->pid, h);
        cr_assert_eq(session->reason, LEASE_END_DIED);
        cr_assert_eq(session->refs->len, 2);
        cr_assert_eq(g_array_index(session->refs, uint64_t, 0), 7);
        cr_assert_eq(g_array_index(session->refs, uint64_t, 1), 8);
        cr_assert_eq(exclusive->kind, LEASE_EXCLUSIVE);
        cr_assert_str_eq(exclusive->name, "GLB/CONTROL.GLB");
        cr_assert_eq(exclusive->refs->len, 1);
        cr_assert(log_contains("stale hold reclaimed: session INQUEUE3 held by dead pid"));

        /* Nobody waited for CONTROL.GLB: it is forgotten. */
        g_autoptr(GPtrArray) snap = lease_manager_snapshot(t_manager);
        cr_assert_eq(snap->len, 1);
        lease_manager_get_stats(t_manager, &stats);
        cr_assert_eq(stats.stale_reclaimed, 2);
}

Test(lease, dead_process_is_refused)
{
        pid_t zombie = spawn_child();
        siginfo_t info;

        cr_assert_eq(kill(zombie, SIGKILL), 0);
        /* Wait until it has exited, but leave it unreaped: the pid exists. */
        cr_assert_eq(waitid(P_PID, zombie, &info, WEXITED | WNOWAIT), 0);
        cr_assert_eq(acquire(LEASE_SESSION, "INQUEUE3", zombie, 1, NULL, NULL), -ESRCH);
        kill_child(zombie);
        cr_assert_eq(acquire(LEASE_SESSION, "INQUEUE3", zombie, 1, NULL, NULL), -ESRCH);
        g_autoptr(GPtrArray) snap = lease_manager_snapshot(t_manager);
        cr_assert_eq(snap->len, 0);
}

Test(lease, dead_waiter_leaves_queue)
{
        pid_t self = getpid();
        pid_t w = spawn_child(), b = spawn_child();
        Done *dw = new_done(), *db = new_done();

        assert_granted(LEASE_SESSION, "INQUEUE3", self, 1);
        assert_queued(LEASE_SESSION, "INQUEUE3", w, 10, dw);
        assert_queued(LEASE_SESSION, "INQUEUE3", b, 20, db);
        kill_child(w);
        cr_assert_eq(wait_done(dw), -ESRCH);
        g_autoptr(LeaseInfo) info = lease_manager_lookup(t_manager, LEASE_SESSION, "INQUEUE3");
        cr_assert_eq(info->n_waiters, 1);
        cr_assert_eq(info->waiter_pids[0], b);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        cr_assert_eq(wait_done(db), 0);
}

Test(lease, two_process_deadlock_is_refused)
{
        pid_t a = spawn_child(), b = spawn_child();
        Done *da = new_done();
        LeaseStats stats;

        assert_granted(LEASE_SESSION, "X", a, 1);
        assert_granted(LEASE_SESSION, "Y", b, 2);
        uint64_t id = assert_queued(LEASE_SESSION, "Y", a, 3, da);
        cr_assert_eq(acquire(LEASE_SESSION, "X", b, 4, NULL, NULL), -EDEADLK);
        cr_assert(log_contains("deadlock refused"));
        lease_manager_get_stats(t_manager, &stats);
        cr_assert_eq(stats.deadlocks, 1);
        cr_assert_eq(stats.waits, 1);
        /* The refused request left nothing behind. */
        g_autoptr(LeaseInfo) x = lease_manager_lookup(t_manager, LEASE_SESSION, "X");
        cr_assert_eq(x->n_waiters, 0);
        cr_assert(lease_cancel(t_manager, id));
}

Test(lease, three_process_deadlock_is_refused)
{
        pid_t a = spawn_child(), b = spawn_child(), c = spawn_child();
        Done *da = new_done(), *db = new_done(), *dc = new_done();

        assert_granted(LEASE_SESSION, "X", a, 1);
        assert_granted(LEASE_KEY_WRITE, "Y", b, 2);
        assert_granted(LEASE_EXCLUSIVE, "GLB/Z", c, 3);
        assert_queued(LEASE_KEY_WRITE, "Y", a, 4, da);
        assert_queued(LEASE_EXCLUSIVE, "GLB/Z", b, 5, db);
        cr_assert_eq(acquire(LEASE_SESSION, "X", c, 6, NULL, NULL), -EDEADLK);
        /* A chain without a cycle is fine. */
        assert_queued(LEASE_SESSION, "X", getpid(), 7, dc);
}

Test(lease, deadlock_through_queue_order_is_refused)
{
        pid_t h = spawn_child(), p = spawn_child(), q = spawn_child();
        Done *dq = new_done(), *dp = new_done();

        assert_granted(LEASE_SESSION, "R", h, 1);
        assert_granted(LEASE_SESSION, "S", p, 2);
        assert_queued(LEASE_SESSION, "R", q, 3, dq);
        assert_queued(LEASE_SESSION, "R", p, 4, dp);
        /* q gets R before p does; q then waiting for S (held by p, which
         * waits for R) could never end. */
        cr_assert_eq(acquire(LEASE_SESSION, "S", q, 5, NULL, NULL), -EDEADLK);
        /* h may not wait for S either (p waits for h), but a bystander may. */
        cr_assert_eq(acquire(LEASE_SESSION, "S", h, 6, NULL, NULL), -EDEADLK);
        Done *dz = new_done();
        assert_queued(LEASE_SESSION, "S", spawn_child(), 7, dz);
}

Test(lease, cancel)
{
        pid_t self = getpid();
        pid_t a = spawn_child(), b = spawn_child();
        Done *da = new_done(), *db = new_done();
        LeaseStats stats;

        assert_granted(LEASE_SESSION, "INQUEUE3", self, 1);
        uint64_t ia = assert_queued(LEASE_SESSION, "INQUEUE3", a, 10, da);
        uint64_t ib = assert_queued(LEASE_SESSION, "INQUEUE3", b, 20, db);

        cr_assert(lease_cancel(t_manager, ia));
        /* done ran before lease_cancel returned. */
        cr_assert_eq(done_calls(da), 1);
        cr_assert_eq(da->result, -EINTR);
        cr_assert_not(lease_cancel(t_manager, ia));
        cr_assert_not(lease_cancel(t_manager, 0));
        cr_assert_not(lease_cancel(t_manager, 987654321));

        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        cr_assert_eq(wait_done(db), 0);
        cr_assert_not(lease_cancel(t_manager, ib), "completed: too late to cancel");
        cr_assert_eq(done_calls(db), 1);
        cr_assert(lease_holds(t_manager, LEASE_SESSION, "INQUEUE3", 20));

        lease_manager_get_stats(t_manager, &stats);
        cr_assert_eq(stats.cancellations, 1);
}

Test(lease, break_hung_session)
{
        pid_t self = getpid();
        pid_t h = spawn_child();
        Done *d = new_done();
        LeaseStats stats;

        cr_assert_eq(lease_break(t_manager, LEASE_SESSION, "INQUEUE3"), -ENOENT);
        assert_granted(LEASE_SESSION, "INQUEUE3", h, 1);
        assert_granted(LEASE_SESSION, "INQUEUE3", h, 2);
        assert_queued(LEASE_SESSION, "INQUEUE3", self, 10, d);

        t_warnings_expected = 1;
        cr_assert_eq(lease_break(t_manager, LEASE_SESSION, "INQUEUE3"), 0);
        cr_assert_eq(wait_done(d), 0);
        GoneEvent *e = wait_gone(1);
        cr_assert_eq(e->reason, LEASE_END_BROKEN);
        cr_assert_eq(e->pid, h);
        cr_assert_eq(e->refs->len, 2);
        cr_assert(log_contains("hold broken: session INQUEUE3"));

        /* The broken holder closing its files changes nothing. */
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 2);
        cr_assert_eq(holder_of(LEASE_SESSION, "INQUEUE3"), self);
        cr_assert(lease_holds(t_manager, LEASE_SESSION, "INQUEUE3", 10));

        lease_manager_get_stats(t_manager, &stats);
        cr_assert_eq(stats.breaks, 1);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 10);
        cr_assert_eq(lease_break(t_manager, LEASE_SESSION, "INQUEUE3"), -ENOENT);
}

/* A break that bans: the broken holder cannot take the queue again for
 * the ban, even when it is free; others can, and the ban ends. */
Test(lease, a_banning_break_keeps_its_holder_out_for_a_while)
{
        pid_t h = spawn_child(), other = spawn_child();

        t_warnings_expected = 3; /* the ban, its break, the plain break */
        assert_granted(LEASE_SESSION, "INQUEUE3", h, 1);
        cr_assert_eq(lease_break_banning(t_manager, LEASE_SESSION, "INQUEUE3", 400), 0);
        cr_assert(log_contains("refused to pid"));
        cr_assert_not_null(wait_gone(1));

        /* Free, but not for the holder it was broken for, not even with a
         * wait (refused at once, not queued), nor another of its queues'. */
        cr_assert_eq(acquire_full(LEASE_SESSION, "INQUEUE3", h, 2, 0, NULL, NULL, NULL, NULL),
                     -EBUSY);
        Done *done = new_done();
        cr_assert_eq(acquire(LEASE_SESSION, "INQUEUE3", h, 3, done, NULL), -EBUSY);
        assert_granted(LEASE_KEY_WRITE, "INQUEUE3", h, 4);
        assert_granted(LEASE_SESSION, "OUTQUEUE", h, 5);
        lease_release(t_manager, LEASE_KEY_WRITE, "INQUEUE3", 4);
        lease_release(t_manager, LEASE_SESSION, "OUTQUEUE", 5);

        /* Another process takes it as usual. */
        assert_granted(LEASE_SESSION, "INQUEUE3", other, 6);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 6);

        /* The ban ends. */
        g_usleep(500 * 1000);
        assert_granted(LEASE_SESSION, "INQUEUE3", h, 7);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 7);
        /* A plain break bans nobody. */
        assert_granted(LEASE_SESSION, "INQUEUE3", h, 8);
        cr_assert_eq(lease_break(t_manager, LEASE_SESSION, "INQUEUE3"), 0);
        assert_granted(LEASE_SESSION, "INQUEUE3", h, 9);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 9);
}

/* A hold longer than hold_warning_ms is logged once, with its waiters,
 * though nothing else wakes the watch thread; a short one is not. */
Test(lease, a_long_hold_is_logged_once)
{
        pid_t h = spawn_child(), w = spawn_child();

        lease_manager_free(t_manager);
        t_manager = new_manager_warning(LONG_MS, LONG_MS, 300);
        t_warnings_expected = 1;
        assert_granted(LEASE_SESSION, "OUTQUEUE", h, 1);
        lease_release(t_manager, LEASE_SESSION, "OUTQUEUE", 1);
        assert_granted(LEASE_SESSION, "INQUEUE3", h, 2);
        Done *done = new_done();
        assert_queued(LEASE_SESSION, "INQUEUE3", w, 3, done);
        const char *line = "4:session INQUEUE3 held by pid";
        for (int i = 0; i < 300 && !log_contains(line); i++)
                g_usleep(10 * 1000);
        cr_assert(log_contains(line), "the long hold was never logged");
        cr_expect(log_contains("for more than 0.3 s, 1 waiting"), "no waiter count");
        cr_expect_not(log_contains("4:session OUTQUEUE held by pid"), "a short hold was logged");
        guint warnings = t_warnings;
        g_usleep(700 * 1000);
        cr_expect_eq(t_warnings, warnings, "the hold was logged again");
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 2);
        cr_assert_eq(done_calls(done), 1);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 3);
}

Test(lease, kinds_are_independent)
{
        pid_t self = getpid();
        pid_t a = spawn_child(), b = spawn_child();

        /* A consumer holds the queue's session... */
        assert_granted(LEASE_SESSION, "INQUEUE3", a, 1);
        /* ...a producer still gets to write the KEY file... */
        cr_assert_eq(acquire_full(LEASE_KEY_WRITE, "INQUEUE3", self, 2, LONG_MS, "SMTP.EXE", "key-write",
                                  NULL, NULL),
                     0);
        /* ...and the one-at-a-time global file. */
        assert_granted(LEASE_EXCLUSIVE, "GLB/CONTROL.GLB", self, 3);
        /* But only one process at a time within a kind. */
        cr_assert_eq(acquire_full(LEASE_KEY_WRITE, "INQUEUE3", b, 4, 0, NULL, NULL, NULL, NULL), -EBUSY);
        cr_assert_eq(acquire_full(LEASE_EXCLUSIVE, "GLB/CONTROL.GLB", a, 5, 0, NULL, NULL, NULL, NULL),
                     -EBUSY);
        /* Another mailbag's KEY is another resource. */
        cr_assert_eq(acquire_full(LEASE_KEY_WRITE, "0000001F", b, 6, 0, NULL, NULL, NULL, NULL), 0);
}

Test(lease, many_waiters_of_distinct_processes)
{
        enum { N = 1000 };
        static pid_t pids[N];
        static Done dones[N];
        pid_t self = getpid();

        assert_granted(LEASE_SESSION, "INQUEUE3", self, 1);
        for (int i = 0; i < N; i++) {
                pids[i] = spawn_child();
                assert_queued(LEASE_SESSION, "INQUEUE3", pids[i], 1000 + i, &dones[i]);
        }
        g_autoptr(LeaseInfo) info = lease_manager_lookup(t_manager, LEASE_SESSION, "INQUEUE3");
        cr_assert_eq(info->n_waiters, N);
        for (int i = 0; i < N; i++)
                cr_assert_eq(info->waiter_pids[i], pids[i]);

        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        for (int i = 0; i < N; i++) {
                cr_assert_eq(wait_done(&dones[i]), 0);
                if (i + 1 < N)
                        cr_assert_eq(done_calls(&dones[i + 1]), 0);
                cr_assert_eq(holder_of(LEASE_SESSION, "INQUEUE3"), pids[i]);
                lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1000 + i);
        }
        g_autoptr(GPtrArray) snap = lease_manager_snapshot(t_manager);
        cr_assert_eq(snap->len, 0);
}

Test(lease, snapshot_and_lookup)
{
        pid_t self = getpid();
        pid_t a = spawn_child(), b = spawn_child();
        Done *da = new_done();
        gint64 before = g_get_real_time();

        cr_assert_eq(acquire_full(LEASE_SESSION, "INQUEUE3", self, 1, LONG_MS, "EXTERNAL.EXE", "0LK", NULL,
                                  NULL),
                     0);
        gint64 after = g_get_real_time();
        assert_queued(LEASE_SESSION, "INQUEUE3", a, 2, da);
        cr_assert_eq(acquire_full(LEASE_EXCLUSIVE, "GLB/CONTROL.GLB", b, 3, LONG_MS, "ADMIN.EXE",
                                  "exclusive", NULL, NULL),
                     0);
        cr_assert_eq(acquire_full(LEASE_KEY_WRITE, "0000001F", self, 4, LONG_MS, NULL, NULL, NULL, NULL),
                     0);

        g_autoptr(GPtrArray) snap = lease_manager_snapshot(t_manager);
        cr_assert_eq(snap->len, 3);
        LeaseInfo *s = snap->pdata[0], *k = snap->pdata[1], *x = snap->pdata[2];
        cr_assert_eq(s->kind, LEASE_SESSION);
        cr_assert_str_eq(s->name, "INQUEUE3");
        cr_assert_eq(s->holder, self);
        cr_assert_str_eq(s->program, "EXTERNAL.EXE");
        cr_assert_str_eq(s->protocol, "0LK");
        cr_assert(s->since_us >= before && s->since_us <= after);
        cr_assert_eq(s->refs, 1);
        cr_assert_eq(s->n_waiters, 1);
        cr_assert_eq(s->waiter_pids[0], a);
        cr_assert_eq(k->kind, LEASE_KEY_WRITE);
        cr_assert_str_eq(k->program, "?");
        cr_assert_eq(k->n_waiters, 0);
        cr_assert_null(k->waiter_pids);
        cr_assert_eq(x->kind, LEASE_EXCLUSIVE);
        cr_assert_str_eq(x->name, "GLB/CONTROL.GLB");
        cr_assert_eq(x->holder, b);
        cr_assert_str_eq(x->program, "ADMIN.EXE");

        g_autoptr(LeaseInfo) free_one = lease_manager_lookup(t_manager, LEASE_SESSION, "INQUEUE");
        cr_assert_eq(free_one->holder, 0);
        cr_assert_str_eq(free_one->name, "INQUEUE");
        cr_assert_null(free_one->program);
        cr_assert_eq(free_one->refs, 0);
        cr_assert_eq(free_one->n_waiters, 0);
        cr_assert_str_eq(lease_kind_to_string(LEASE_KEY_WRITE), "key-write");
}

Test(lease, stats)
{
        pid_t self = getpid();
        pid_t a = spawn_child();
        Done *da = new_done();
        LeaseStats stats;

        assert_granted(LEASE_SESSION, "INQUEUE3", self, 1);
        assert_granted(LEASE_SESSION, "INQUEUE3", self, 2);
        assert_queued(LEASE_SESSION, "INQUEUE3", a, 3, da);
        lease_manager_count_mixed_protocol(t_manager);
        lease_manager_count_mixed_protocol(t_manager);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 2);
        cr_assert_eq(wait_done(da), 0);

        lease_manager_get_stats(t_manager, &stats);
        cr_assert_eq(stats.acquisitions, 3);
        cr_assert_eq(stats.waits, 1);
        cr_assert_eq(stats.timeouts, 0);
        cr_assert_eq(stats.deadlocks, 0);
        cr_assert_eq(stats.stale_reclaimed, 0);
        cr_assert_eq(stats.breaks, 0);
        cr_assert_eq(stats.cancellations, 0);
        cr_assert_eq(stats.mixed_protocol, 2);
}

Test(lease, free_cancels_every_waiter)
{
        pid_t a = spawn_child(), b = spawn_child();
        Done *da = new_done(), *db = new_done();

        assert_granted(LEASE_SESSION, "INQUEUE3", getpid(), 1);
        assert_granted(LEASE_EXCLUSIVE, "GLB/CONTROL.GLB", getpid(), 2);
        assert_queued(LEASE_SESSION, "INQUEUE3", a, 3, da);
        assert_queued(LEASE_EXCLUSIVE, "GLB/CONTROL.GLB", b, 4, db);
        g_clear_pointer(&t_manager, lease_manager_free);
        cr_assert_eq(done_calls(da), 1);
        cr_assert_eq(da->result, -ECANCELED);
        cr_assert_eq(done_calls(db), 1);
        cr_assert_eq(db->result, -ECANCELED);
        cr_assert(da->order < db->order, "failed in queue order");
}

Test(lease, callbacks_may_call_back_in)
{
        pid_t self = getpid();
        pid_t a = spawn_child(), b = spawn_child();
        /* a's backing open fails after the grant: it releases from done. */
        Done *da = new_done();
        *da = (Done){ .release_on_grant = true, .kind = LEASE_SESSION, .name = "INQUEUE3", .ref = 10 };
        Done *db = new_done();

        assert_granted(LEASE_SESSION, "INQUEUE3", self, 1);
        assert_queued(LEASE_SESSION, "INQUEUE3", a, 10, da);
        assert_queued(LEASE_SESSION, "INQUEUE3", b, 20, db);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        cr_assert_eq(wait_done(da), 0);
        cr_assert_eq(wait_done(db), 0);
        cr_assert(da->order < db->order);
        cr_assert_eq(holder_of(LEASE_SESSION, "INQUEUE3"), b);

        /* The same from the watch thread (a death) and from free. */
        pid_t h = spawn_child();
        Done *dc = new_done();
        *dc = (Done){ .release_on_grant = true, .kind = LEASE_SESSION, .name = "SYSTEM", .ref = 31 };
        assert_granted(LEASE_SESSION, "SYSTEM", h, 30);
        assert_queued(LEASE_SESSION, "SYSTEM", self, 31, dc);
        t_warnings_expected = 1;
        kill_child(h);
        cr_assert_eq(wait_done(dc), 0);
        wait_gone(1);
        /* on_done signals before it releases: give the release its moment. */
        pid_t holder = -1;
        for (int tries = 0; tries < 200 && holder != 0; tries++) {
                g_autoptr(LeaseInfo) info = lease_manager_lookup(t_manager, LEASE_SESSION, "SYSTEM");
                holder = info ? info->holder : 0;
                if (holder != 0)
                        g_usleep(10 * 1000);
        }
        cr_assert_eq(holder, 0);
}

Test(lease, bad_requests)
{
        Done *d = new_done();
        LeaseRequest req = { .kind = LEASE_SESSION, .name = "INQUEUE3", .pid = getpid(), .ref = 1,
                             .timeout_ms = 100 };

        cr_assert_eq(lease_acquire(t_manager, &req, NULL), -EINVAL, "no done callback");
        req.done = on_done;
        req.opaque = d;
        req.name = "";
        cr_assert_eq(lease_acquire(t_manager, &req, NULL), -EINVAL);
        req.name = "INQUEUE3";
        req.pid = 0;
        cr_assert_eq(lease_acquire(t_manager, &req, NULL), -EINVAL);
        req.pid = getpid();
        req.kind = (LeaseKind)7;
        cr_assert_eq(lease_acquire(t_manager, &req, NULL), -EINVAL);
        cr_assert_str_eq(lease_kind_to_string((LeaseKind)7), "?");
        cr_assert_eq(done_calls(d), 0);

        LeaseConfig bad = { .exclusive_timeout_ms = -1 };
        g_autoptr(GError) error = NULL;
        cr_assert_null(lease_manager_new(&bad, &error));
        cr_assert_not_null(error);
}

static unsigned count_open_fds(void)
{
        g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
        unsigned n = 0;

        cr_assert_not_null(dir);
        while (g_dir_read_name(dir))
                n++;
        return n;
}

Test(lease, no_descriptor_left_behind)
{
        pid_t a = spawn_child(), b = spawn_child();
        Done *da = new_done(), *db = new_done();
        unsigned before;

        g_clear_pointer(&t_manager, lease_manager_free);
        before = count_open_fds();
        t_manager = new_manager(LONG_MS, LONG_MS);
        assert_granted(LEASE_SESSION, "INQUEUE3", a, 1);
        assert_queued(LEASE_SESSION, "INQUEUE3", b, 2, da);
        assert_queued(LEASE_SESSION, "INQUEUE3", getpid(), 3, db);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        cr_assert_eq(wait_done(da), 0);
        t_warnings_expected = 1;
        kill_child(b);
        cr_assert_eq(wait_done(db), 0);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 3);
        g_clear_pointer(&t_manager, lease_manager_free);
        cr_assert_eq(count_open_fds(), before);
}

static int acquire_handle(LeaseKind kind, const char *name, pid_t pid, uint64_t ref)
{
        LeaseRequest req = {
                .kind = kind,
                .name = name,
                .pid = pid,
                .program = "EXTERNAL.EXE",
                .protocol = "0LK",
                .ref = ref,
                .handle = true,
                .timeout_ms = LONG_MS,
                .done = on_done,
                .opaque = &t_unused,
        };
        return lease_acquire(t_manager, &req, NULL);
}

/* An open file handle outlives its process (the kernel's release is on its
 * way, or a child inherited the handle): the hold stays until released,
 * and nothing is reported stale. */
Test(lease, handle_refs_outlive_their_holder)
{
        pid_t self = getpid();
        pid_t h = spawn_child();
        Done *d = new_done();

        cr_assert_eq(acquire_handle(LEASE_SESSION, "INQUEUE3", h, 40), 0);
        assert_queued(LEASE_SESSION, "INQUEUE3", self, 41, d);
        kill_child(h);

        /* Wait for the watch thread to see the death: it says so at debug
         * level, and must leave the hold with its one handle. */
        g_autofree char *noticed = g_strdup_printf("holder pid %d (EXTERNAL.EXE) exited", h);
        for (int i = 0; i < 20000 && !log_contains(noticed); i++)
                g_usleep(1000);
        cr_assert(log_contains(noticed), "the death was never noticed");
        cr_assert(lease_holds(t_manager, LEASE_SESSION, "INQUEUE3", 40));
        cr_assert_eq(done_calls(d), 0, "the waiter got in while the handle was open");

        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 40);
        cr_assert_eq(wait_done(d), 0);
        cr_assert_eq(holder_of(LEASE_SESSION, "INQUEUE3"), self);
        LeaseStats stats;
        lease_manager_get_stats(t_manager, &stats);
        cr_assert_eq(stats.stale_reclaimed, 0);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 41);
}

/* A dead holder with both a lock file and an open handle: the lock file
 * is stale and reported at once, the handle keeps the hold. */
Test(lease, dead_holder_loses_lock_files_keeps_handles)
{
        pid_t self = getpid();
        pid_t h = spawn_child();
        Done *d = new_done();

        cr_assert_eq(acquire_full(LEASE_SESSION, "INQUEUE3", h, 50, LONG_MS, "EXTERNAL.EXE", "V20",
                                  NULL, NULL),
                     0);
        cr_assert_eq(acquire_handle(LEASE_SESSION, "INQUEUE3", h, 51), 0);
        assert_queued(LEASE_SESSION, "INQUEUE3", self, 52, d);

        t_warnings_expected = 1;
        kill_child(h);
        GoneEvent *gone = wait_gone(1);
        cr_assert_eq(gone->reason, LEASE_END_DIED);
        cr_assert_eq(gone->refs->len, 1);
        cr_assert_eq(g_array_index(gone->refs, uint64_t, 0), 50);
        cr_assert(lease_holds(t_manager, LEASE_SESSION, "INQUEUE3", 51));
        cr_assert_eq(done_calls(d), 0);

        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 51);
        cr_assert_eq(wait_done(d), 0);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 52);
        LeaseStats stats;
        lease_manager_get_stats(t_manager, &stats);
        cr_assert_eq(stats.stale_reclaimed, 1);
}

/* The kernel sends a file's release after close() has returned: a request
 * that may not wait still waits for a hold whose every handle its opener
 * has closed, and only for such a hold. */
Test(lease, closing_hold_is_awaited_by_requests_that_do_not_wait)
{
        Done *d = new_done();
        pid_t a = spawn_child();
        LeaseRequest held = {
                .kind = LEASE_SESSION, .name = "INQUEUE3", .pid = getpid(),
                .program = "wineserver", .protocol = "0LK", .ref = 1, .handle = true,
        };
        LeaseRequest lockfile = held;
        lockfile.ref = 2;
        lockfile.handle = false;
        LeaseRequest req = {
                .kind = LEASE_SESSION, .name = "INQUEUE3", .pid = a, .program = "wineserver",
                .protocol = "queue-read", .ref = 10, .handle = true, .wait_if_closing = true,
                .done = on_done, .opaque = d,
        };

        cr_assert_eq(lease_acquire(t_manager, &held, NULL), 0);
        cr_assert_eq(lease_acquire(t_manager, &lockfile, NULL), 0);
        lease_mark_closing(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        lease_mark_closing(t_manager, LEASE_SESSION, "INQUEUE3", 2);
        cr_assert_eq(lease_acquire(t_manager, &req, NULL), -EBUSY,
                     "a lock file is no handle: nothing is on its way");
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 2);
        req.wait_if_closing = false;
        cr_assert_eq(lease_acquire(t_manager, &req, NULL), -EBUSY);
        req.wait_if_closing = true;
        cr_assert_eq(lease_acquire(t_manager, &req, NULL), LEASE_PENDING);
        cr_assert_eq(d->calls, 0);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        cr_assert_eq(wait_done(d), 0);
        cr_assert_eq(holder_of(LEASE_SESSION, "INQUEUE3"), a);
}

/* A process that lets go of its last lease keeps its record, and so its
 * pidfd, for its next take; the records kept are bounded, and a kept
 * one goes (its pidfd closed) once its process exits. */
Test(lease, kept_process_records_are_bounded_and_end_with_their_process)
{
        enum { CHILDREN = LEASE_PROCESSES_KEPT_MAX + 16 };
        pid_t children[CHILDREN];

        /* The pipe the children wait on exists before the count. */
        children[0] = spawn_child();
        unsigned before = count_open_fds();
        for (int i = 1; i < CHILDREN; i++)
                children[i] = spawn_child();
        for (int i = 0; i < CHILDREN; i++) {
                assert_granted(LEASE_SESSION, "INQUEUE3", children[i], (uint64_t)i + 1);
                lease_release(t_manager, LEASE_SESSION, "INQUEUE3", (uint64_t)i + 1);
        }
        /* The watch thread closes the pidfds of records let go. */
        unsigned kept = count_open_fds() - before;
        for (int tries = 0; tries < 500 && kept > LEASE_PROCESSES_KEPT_MAX + 1; tries++) {
                g_usleep(10 * 1000);
                kept = count_open_fds() - before;
        }
        cr_assert_leq(kept, LEASE_PROCESSES_KEPT_MAX + 1, "%u pidfds kept", kept);
        cr_assert_geq(kept, LEASE_PROCESSES_KEPT_MAX, "%u pidfds kept", kept);

        /* Taken again by a kept process: its record is reused. */
        assert_granted(LEASE_SESSION, "INQUEUE3", children[0], 1000);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1000);
        cr_assert_eq(count_open_fds() - before, kept);

        for (int i = 0; i < CHILDREN; i++)
                kill_child(children[i]);
        /* The watch thread sees each pidfd readable and frees its record. */
        for (int tries = 0; tries < 500 && count_open_fds() > before; tries++)
                g_usleep(10 * 1000);
        cr_assert_eq(count_open_fds(), before, "pidfds of exited processes left open");
}

static long thread_count(void)
{
        g_autofree char *status = NULL;
        cr_assert(g_file_get_contents("/proc/self/status", &status, NULL, NULL));
        const char *t = strstr(status, "Threads:");
        cr_assert_not_null(t);
        return strtol(t + strlen("Threads:"), NULL, 10);
}

/* One watch thread serves many managers: each manager's dead holders,
 * timeouts and stop stay its own, and a manager costs no thread. */
Test(lease, managers_sharing_one_watch_thread_are_watched_apart)
{
        enum { MANAGERS = 24 }; /* t_done_pool bounds the waits */
        LeaseManager *others[MANAGERS];
        long threads0 = thread_count();
        pid_t holder = spawn_child();
        pid_t waiter = spawn_child();

        for (int i = 0; i < MANAGERS; i++) {
                others[i] = new_manager(LONG_MS, LONG_MS);
                LeaseRequest hold = { .kind = LEASE_SESSION, .name = "INQUEUE3", .pid = holder,
                                      .ref = 1000 + i, .timeout_ms = LONG_MS, .done = on_done,
                                      .opaque = &t_unused };
                cr_assert_eq(lease_acquire(others[i], &hold, NULL), 0);
        }
        cr_expect_eq(thread_count(), threads0, "%d managers started threads: %ld -> %ld",
                     MANAGERS, threads0, thread_count());

        /* In each other manager a waiter; in t_manager one that times out. */
        Done *waits[MANAGERS];
        for (int i = 0; i < MANAGERS; i++) {
                waits[i] = new_done();
                LeaseRequest ask = { .kind = LEASE_SESSION, .name = "INQUEUE3", .pid = waiter,
                                     .ref = 2000 + i, .timeout_ms = LONG_MS, .done = on_done,
                                     .opaque = waits[i] };
                cr_assert_eq(lease_acquire(others[i], &ask, NULL), LEASE_PENDING);
        }
        assert_granted(LEASE_SESSION, "INQUEUE3", holder, 1);
        Done *late = new_done();
        cr_assert_eq(acquire_full(LEASE_SESSION, "INQUEUE3", waiter, 2, 200, "PROFS.EXE",
                                  "queue-read", late, NULL),
                     LEASE_PENDING);

        /* Half the other managers stop while they wait: theirs fail at once. */
        for (int i = 0; i < MANAGERS / 2; i++) {
                g_clear_pointer(&others[i], lease_manager_free);
                cr_assert_eq(wait_done(waits[i]), -ECANCELED);
        }
        /* The holder dies: in each manager still there its waiter gets in
         * (t_manager's holder ref 1 is a lock file: reclaimed, logged). */
        t_warnings_expected = 1 + MANAGERS / 2;
        cr_assert_eq(wait_done(late), -EBUSY, "t_manager's waiter did not time out");
        kill_child(holder);
        for (int i = MANAGERS / 2; i < MANAGERS; i++) {
                cr_assert_eq(wait_done(waits[i]), 0, "manager %d", i);
                g_autoptr(LeaseInfo) info = lease_manager_lookup(others[i], LEASE_SESSION,
                                                                 "INQUEUE3");
                cr_assert_eq(info->holder, waiter);
                lease_release(others[i], LEASE_SESSION, "INQUEUE3", 2000 + i);
                g_clear_pointer(&others[i], lease_manager_free);
        }
        cr_assert_eq(wait_gone(1 + MANAGERS / 2)->reason, LEASE_END_DIED);
        cr_expect_eq(thread_count(), threads0);
}

/* A hold that admits a session (an operator's freeze) takes the requests
 * of that session's processes as its holder's own; nobody else's. */
Test(lease, a_hold_admits_the_processes_of_its_session)
{
        pid_t freezer = spawn_child(), command = spawn_child(), stranger = spawn_child();
        pid_t session = getsid(0);
        LeaseRequest hold = { .kind = LEASE_SESSION, .name = "INQUEUE3", .pid = freezer,
                              .program = "po-freeze", .protocol = "freeze", .ref = 1,
                              .timeout_ms = 0, .admits_session = session };
        cr_assert_eq(lease_acquire(t_manager, &hold, NULL), 0);

        LeaseRequest joins = { .kind = LEASE_SESSION, .name = "INQUEUE3", .pid = command,
                               .program = "tar", .protocol = "queue-read", .ref = 2,
                               .handle = true, .timeout_ms = 0, .session = session };
        cr_assert_eq(lease_acquire(t_manager, &joins, NULL), 0, "the command had to wait");
        cr_assert_eq(holder_of(LEASE_SESSION, "INQUEUE3"), freezer);

        LeaseRequest outside = joins;
        outside.pid = stranger;
        outside.ref = 3;
        outside.session = session + 1;
        cr_assert_eq(lease_acquire(t_manager, &outside, NULL), -EBUSY);
        outside.session = 0; /* not looked up */
        cr_assert_eq(lease_acquire(t_manager, &outside, NULL), -EBUSY);

        /* The freezer lets go: the command's open handle keeps the hold
         * until it is closed, then the queue is free. */
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 1);
        cr_assert_eq(lease_acquire(t_manager, &outside, NULL), -EBUSY);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 2);
        cr_assert_eq(lease_acquire(t_manager, &outside, NULL), 0);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 3);

        /* A new hold admits nobody unless it says so. */
        LeaseRequest plain = hold;
        plain.admits_session = 0;
        plain.ref = 4;
        cr_assert_eq(lease_acquire(t_manager, &plain, NULL), 0);
        joins.ref = 5;
        cr_assert_eq(lease_acquire(t_manager, &joins, NULL), -EBUSY);
        lease_release(t_manager, LEASE_SESSION, "INQUEUE3", 4);
}
