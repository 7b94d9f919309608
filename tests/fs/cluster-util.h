/* cluster-util.h - programs on two nodes of one share, for the cluster
 * suites (test-cluster.c: two daemons on one directory; test-gluster.c:
 * two daemons on two GlusterFS client mounts). A suite defines
 * EVENT_TIMEOUT_MS, the bound for events that normally take milliseconds,
 * before including this. */
#pragma once

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "mount-harness.h"

static inline long long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

typedef struct {
        pid_t pid;
        int report; /* the child writes its errno (0: opened) as one byte */
} Opener;

/* A program named @program (NULL: the test's own name) on @node opens
 * @relpath with @flags; it keeps the file open (or, for a -V20 create, the
 * file itself) until killed. */
static inline Opener opener_start_as(const MountHarness *node, const char *relpath, int flags,
                                     const char *program)
{
        int report[2];
        cr_assert_eq(pipe2(report, O_CLOEXEC), 0);
        g_autofree char *path = g_build_filename(node->mnt, relpath, NULL);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (program)
                        prctl(PR_SET_NAME, program);
                int fd = open(path, flags, 0644);
                unsigned char result = fd < 0 ? (unsigned char)errno : 0;
                if (write(report[1], &result, 1) != 1)
                        _exit(3);
                for (;;)
                        pause();
        }
        close(report[1]);
        return (Opener){.pid = pid, .report = report[0]};
}

static inline Opener opener_start(const MountHarness *node, const char *relpath, int flags)
{
        return opener_start_as(node, relpath, flags, NULL);
}

/* The opener's errno, 0 when it got the file. */
static inline int opener_result(Opener *o)
{
        struct pollfd pfd = {.fd = o->report, .events = POLLIN};
        cr_assert_gt(poll(&pfd, 1, EVENT_TIMEOUT_MS), 0, "opener %d never answered", o->pid);
        unsigned char result = 255;
        cr_assert_eq(read(o->report, &result, 1), 1);
        return result;
}

static inline void opener_stop(Opener *o)
{
        if (o->pid > 0) {
                kill(o->pid, SIGKILL);
                waitpid(o->pid, NULL, 0);
                close(o->report);
                o->pid = 0;
        }
}

/* One open through @node, closed again: 0 or its errno. */
static inline int open_once(const MountHarness *node, const char *relpath, int flags)
{
        Opener o = opener_start(node, relpath, flags);
        int result = opener_result(&o);
        opener_stop(&o);
        return result;
}

static inline char *lock_of(const MountHarness *node, const char *relpath)
{
        g_autofree char *path = g_build_filename(node->mnt, relpath, NULL);
        return harness_attribute(path, "user.mailbag.lock");
}

/* Waits until @node lists @o as waiting for the session of INQUEUE3:
 * true. False when @o answered first (its answer is left for
 * opener_result). */
static inline bool waiting_or_answered(const MountHarness *node, Opener *o)
{
        g_autofree char *needle = g_strdup_printf("waiting=%d", o->pid);
        for (long long deadline = now_ms() + EVENT_TIMEOUT_MS; now_ms() < deadline;) {
                g_autofree char *lock = lock_of(node, "KEY/INQUEUE3.KEY");
                if (lock && strstr(lock, needle))
                        return true;
                struct pollfd pfd = {.fd = o->report, .events = POLLIN};
                if (poll(&pfd, 1, 5) > 0)
                        return false;
        }
        cr_assert_fail("process %d neither answered nor showed up as a waiter", o->pid);
        return false;
}

/* Waits until @node lists @o as waiting; @o must not get an answer
 * first (whoever holds the queue holds it throughout). */
static inline void wait_until_waiting(const MountHarness *node, Opener *o)
{
        if (!waiting_or_answered(node, o))
                cr_assert_fail("process %d answered %s before it showed up as a waiter", o->pid,
                               g_strerror(opener_result(o)));
}

/* The scenarios both suites run on their two nodes, labelled @where in
 * the timing they print. */

/* External holds INQUEUE3 through node A: a gateway and another External
 * on node B are refused, and node B's view names the holder as another
 * daemon. Returns External, still holding. */
static inline Opener external_on_node_a_refuses_node_b(const MountHarness *a,
                                                        const MountHarness *b)
{
        Opener external = opener_start(a, "P1/INQUEUE3.0LK", O_RDWR | O_CREAT);
        cr_assert_eq(opener_result(&external), 0);
        cr_expect_eq(open_once(b, "KEY/INQUEUE3.KEY", O_RDONLY), EBUSY,
                     "a gateway on node B must not get the queue External holds on node A");
        cr_expect_eq(open_once(b, "P1/INQUEUE3.0LK", O_RDWR | O_CREAT), EBUSY);
        g_autofree char *lock = lock_of(b, "KEY/INQUEUE3.KEY");
        cr_expect(lock && strstr(lock, "session INQUEUE3 held ") &&
                  strstr(lock, " holder=other-daemon"), "node B's view: %s", lock);
        return external;
}

/* Once node A's External has let go, the other way round: a gateway on
 * node B gets the queue and holds it against External on node A until it
 * lets go. */
static inline void gateway_on_node_b_refuses_node_a(const MountHarness *a,
                                                    const MountHarness *b)
{
        cr_expect_eq(open_once(b, "KEY/INQUEUE3.KEY", O_RDONLY), 0);
        Opener gateway = opener_start(b, "KEY/INQUEUE3.KEY", O_RDONLY);
        cr_assert_eq(opener_result(&gateway), 0);
        cr_expect_eq(open_once(a, "P1/INQUEUE3.0LK", O_RDWR | O_CREAT), EBUSY);
        opener_stop(&gateway);
        cr_expect_eq(open_once(a, "P1/INQUEUE3.0LK", O_RDWR | O_CREAT), 0);
}

/* External holds INQUEUE3 on node A, a gateway on node B waits for it, and
 * node A's hold ends: External lets go (@kill_daemon false) or node A's
 * daemon is killed, whose locks go with it. The gateway must get in. */
static inline void scenario_node_b_gets_in_when_node_a_ends(const MountHarness *a,
                                                           const MountHarness *b,
                                                           const char *where, bool kill_daemon)
{
        Opener external = opener_start(a, "P1/INQUEUE3.0LK", O_RDWR | O_CREAT);
        cr_assert_eq(opener_result(&external), 0);
        Opener gateway = opener_start(b, "KEY/INQUEUE3.KEY", O_RDONLY);
        wait_until_waiting(b, &gateway);
        long long ended = now_ms();
        if (kill_daemon)
                cr_assert_eq(kill(a->daemon, SIGKILL), 0);
        else
                opener_stop(&external);
        cr_expect_eq(opener_result(&gateway), 0);
        cr_log_info("%s: node B's waiter got the queue %lld ms after node A's %s", where,
                    now_ms() - ended, kill_daemon ? "daemon was killed" : "holder ended");
        opener_stop(&gateway);
        if (kill_daemon)
                opener_stop(&external);
}

/* A gateway on node A takes INQUEUE3 over and over, letting go for only a
 * moment between passes, as a busy consumer does; a gateway on node B
 * asks for it too. The waiter must get its turn before the gateway's next
 * pass: the other node's request is only seen when it asks again (every
 * few milliseconds), so a node that took the queue whenever it was free
 * here kept it from the other node for seconds at a time. */
static inline void scenario_busy_node_a_lets_node_b_in(const MountHarness *a,
                                                       const MountHarness *b)
{
        int passes[2];
        cr_assert_eq(pipe2(passes, O_CLOEXEC), 0);
        g_autofree char *key = g_build_filename(a->mnt, "KEY", "INQUEUE3.KEY", NULL);
        pid_t gateway = fork();
        cr_assert_geq(gateway, 0);
        if (gateway == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                for (;;) {
                        int fd = open(key, O_RDONLY);
                        unsigned char result = fd < 0 ? (unsigned char)errno : 0;
                        if (write(passes[1], &result, 1) != 1)
                                _exit(3);
                        g_usleep(20000); /* its pass */
                        if (fd >= 0)
                                close(fd);
                        g_usleep(1000); /* and at it again */
                }
        }
        close(passes[1]);
        unsigned char result = 255;
        cr_assert_eq(read(passes[0], &result, 1), 1);
        cr_assert_eq(result, 0, "the gateway's first pass: %s", g_strerror(result));

        /* Node A's gateway lets go for about a millisecond between passes:
         * an open on node B that lands in that gap gets in without waiting.
         * That is right, but not this scenario: try again. */
        Opener other = {0};
        for (int tries = 0;; tries++) {
                other = opener_start(b, "KEY/INQUEUE3.KEY", O_RDONLY);
                if (waiting_or_answered(b, &other))
                        break;
                cr_assert_eq(opener_result(&other), 0, "node B's gateway was refused");
                cr_log_info("node B's gateway got in between node A's passes; again");
                opener_stop(&other);
                cr_assert_lt(tries, 20, "node B's gateway never met node A's holding the queue");
        }
        long long waiting_since = now_ms();
        /* Passes made before the waiter showed up do not count. */
        struct pollfd ready = {.fd = passes[0], .events = POLLIN};
        while (poll(&ready, 1, 0) > 0)
                cr_assert_eq(read(passes[0], &result, 1), 1);
        /* Passes that began after the waiter showed up, before it got in. */
        int passes_before = 0;
        struct pollfd pfd[2] = {{.fd = other.report, .events = POLLIN},
                                {.fd = passes[0], .events = POLLIN}};
        for (long long deadline = now_ms() + EVENT_TIMEOUT_MS; now_ms() < deadline;) {
                cr_assert_geq(poll(pfd, 2, 100), 0);
                if (pfd[0].revents)
                        break;
                if (pfd[1].revents) {
                        cr_assert_eq(read(passes[0], &result, 1), 1);
                        if (result == 0)
                                passes_before++;
                }
        }
        cr_expect_eq(opener_result(&other), 0, "node B's gateway never got the queue");
        cr_log_info("node A's gateway made %d passes while node B's waited (%lld ms)",
                    passes_before, now_ms() - waiting_since);
        cr_expect_leq(passes_before, 1, "node A's gateway took the queue %d times while node "
                      "B's waited", passes_before);
        opener_stop(&other);
        kill(gateway, SIGKILL);
        waitpid(gateway, NULL, 0);
        close(passes[0]);
}
