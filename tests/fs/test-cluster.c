/* test-cluster.c - two mailbagfs daemons on one backing directory, as two
 * nodes of a cluster serve one share: a lease taken through one mount
 * holds against the other, a waiter on the other node is let in when the
 * hold ends or when its daemon is killed, a dead node's -V20 lock files are
 * removed by the node that takes the queue over, a daemon of another lease
 * protocol version is refused, and the status tells of holds elsewhere.
 *
 * Each competing open is made by a forked child through one of the mounts
 * and reports its errno, so "refused" and "granted" are what a program on
 * that node would see.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "mount-fixture.h"
#include "sample-postoffice.h"

static MountHarness node_a, node_b;

/* Bounds for events that normally take milliseconds; hitting one fails. */
#define EVENT_TIMEOUT_MS 20000

#include "cluster-util.h"

static void mount_nodes(const char *lock_timeout)
{
        mount_fixture_setup(&node_a);
        mount_fixture_setup(&node_b);
        harness_make_postoffice(node_a.backing);
        /* Node B serves node A's backing directory. */
        mount_harness_set_backing(&node_b, node_a.backing);
        g_autofree char *option = g_strdup_printf("-olock_timeout=%s", lock_timeout);
        const char *const args[] = {option, NULL};
        mount_fixture_mount(&node_a, args);
        mount_fixture_mount(&node_b, args);
}

static void mount_quick(void)
{
        mount_nodes("0.3");
}

static void mount_patient(void)
{
        mount_nodes("30");
}

static void unmount_nodes(void)
{
        /* B's backing directory is A's: A's teardown removes it. */
        mount_harness_teardown(&node_b);
        mount_harness_teardown(&node_a);
}


TestSuite(cluster, .fini = unmount_nodes, .timeout = 120);

Test(cluster, a_lease_through_one_mount_holds_against_the_other, .init = mount_quick)
{
        Opener external = external_on_node_a_refuses_node_b(&node_a, &node_b);
        g_autofree char *target = g_build_filename(node_b.mnt, "KEY/INQUEUE3.KEY", NULL);
        cr_expect_eq(setxattr(target, "user.mailbag.break", "1", 1, 0), -1);
        cr_expect_eq(errno, EREMOTE, "a break on node B of node A's hold: %s", g_strerror(errno));

        opener_stop(&external);
        gateway_on_node_b_refuses_node_a(&node_a, &node_b);
}

Test(cluster, a_waiter_on_the_other_node_gets_in_when_the_hold_ends, .init = mount_patient)
{
        scenario_node_b_gets_in_when_node_a_ends(&node_a, &node_b, "two daemons", false);
}

Test(cluster, killing_a_daemon_frees_its_leases, .init = mount_patient)
{
        scenario_node_b_gets_in_when_node_a_ends(&node_a, &node_b, "two daemons", true);
}

Test(cluster, a_busy_node_lets_the_other_nodes_waiter_in, .init = mount_patient)
{
        scenario_busy_node_a_lets_node_b_in(&node_a, &node_b);
}

Test(cluster, a_dead_nodes_lock_files_are_removed_by_the_next_holder, .init = mount_patient)
{
        /* A -V20 program on node A: its lock file is the lock. */
        Opener v20 = opener_start(&node_a, "P1/INQUEUE3.005", O_WRONLY | O_CREAT | O_EXCL);
        cr_assert_eq(opener_result(&v20), 0);
        Opener gateway = opener_start(&node_b, "KEY/INQUEUE3.KEY", O_RDONLY);
        wait_until_waiting(&node_b, &gateway);

        cr_assert_eq(kill(node_a.daemon, SIGKILL), 0);
        cr_expect_eq(opener_result(&gateway), 0);
        g_autofree char *stale = g_build_filename(node_a.backing, "P1", "INQUEUE3.005", NULL);
        cr_expect_neq(access(stale, F_OK), 0,
                      "the dead node's -V20 lock file would lock the queue for every -V20 program");
        opener_stop(&gateway);
        opener_stop(&v20);
        if (mount_harness_has_log(&node_b)) {
                g_autofree char *problems = mount_harness_log_problems(&node_b);
                cr_expect(problems && strstr(problems, "removed stale lock file P1/INQUEUE3.005"),
                          "node B's log: %s", problems);
        }
}

/* Someone with access to the backing store removes the lease file while
 * node A holds INQUEUE3. Node B, opening the queue, must not make a new
 * file and grant through it: node A joins the new file with its hold, and
 * node B's gateway gets the queue only when node A's lets go. Both logs
 * say what happened. */
static void lease_file_removed_while_node_a_holds(const char *how)
{
        Opener holder = opener_start(&node_a, "KEY/INQUEUE3.KEY", O_RDONLY);
        cr_assert_eq(opener_result(&holder), 0);
        g_autofree char *lease_file = g_build_filename(node_a.backing, ".mailbagfs-leases", NULL);
        cr_assert_eq(unlink(lease_file), 0);
        if (strcmp(how, "replaced") == 0)
                cr_assert(g_file_set_contents(lease_file, "", 0, NULL));

        Opener other = opener_start(&node_b, "KEY/INQUEUE3.KEY", O_RDONLY);
        /* Past the rejoin grace: node B would have granted by now. */
        struct pollfd pfd = {.fd = other.report, .events = POLLIN};
        if (poll(&pfd, 1, 3000) != 0) {
                int early = opener_result(&other);
                g_autofree char *log_b = mount_harness_log_problems(&node_b);
                cr_expect_fail("node B's gateway was answered (%s) while node A held the queue "
                               "(%s lease file); node B's log: %s", g_strerror(early), how, log_b);
        }
        opener_stop(&holder);
        cr_expect_eq(opener_result(&other), 0, "node B's gateway once node A let go");
        opener_stop(&other);

        g_autofree char *log_a = mount_harness_log_problems(&node_a);
        cr_expect(log_a && strstr(log_a, "was removed or replaced on the backing store; joined"),
                  "node A's log: %s", log_a);
        cr_expect(log_a && !strstr(log_a, "held through another daemon too"),
                  "node A's log: %s", log_a);
}

Test(cluster, a_removed_lease_file_does_not_split_the_lock, .init = mount_patient)
{
        lease_file_removed_while_node_a_holds("removed");
}

Test(cluster, a_replaced_lease_file_does_not_split_the_lock, .init = mount_patient)
{
        lease_file_removed_while_node_a_holds("replaced");
}

/* The DOS program @dos gets no answer while @holder, on the other node,
 * holds the file @raw, and the file keeps its 5 bytes; once @holder lets
 * go, the program gets the file. Stops both. */
static void expect_dos_waits_for_holder(Opener *dos, Opener *holder, const char *raw)
{
        struct pollfd pfd = {.fd = dos->report, .events = POLLIN};
        cr_expect_eq(poll(&pfd, 1, 500), 0, "the DOS program's create was answered while node B "
                                            "holds the file");
        struct stat st;
        cr_expect_eq(stat(raw, &st), 0);
        cr_expect_eq(st.st_size, 5, "node B's file was truncated under its hold");
        opener_stop(holder);
        int result = opener_result(dos);
        cr_expect_eq(result, 0, "the DOS program's open: %s", g_strerror(result));
        opener_stop(dos);
}

/* A DOS program's create of a new file is answered at once and its lease
 * deferred (the kernel holds the folder while a create waits). When node B
 * made the file after node A's kernel last saw the name missing and holds
 * it, node A's kernel finds the file when it looks the name up for the
 * create (a missing name is not cached), so the program's create-or-
 * truncate is an open that waits in line: node B's contents stay until it
 * lets go. */
Test(cluster, a_dos_create_of_a_file_held_on_the_other_node_waits_and_truncates_nothing,
     .init = mount_patient)
{
        g_autofree char *on_a = g_build_filename(node_a.mnt, "KEY/NEWUSER.KEY", NULL);
        g_autofree char *raw = g_build_filename(node_a.backing, "KEY/NEWUSER.KEY", NULL);
        struct stat st;
        cr_assert_eq(stat(on_a, &st), -1, "KEY/NEWUSER.KEY exists already");
        cr_assert_eq(errno, ENOENT);

        Opener holder = opener_start(&node_b, "KEY/NEWUSER.KEY", O_RDWR | O_CREAT);
        cr_assert_eq(opener_result(&holder), 0);
        cr_assert(g_file_set_contents(raw, "INDEX", 5, NULL));

        Opener dos = opener_start_as(&node_a, "KEY/NEWUSER.KEY", O_WRONLY | O_CREAT | O_TRUNC,
                                     "dosbox");
        expect_dos_waits_for_holder(&dos, &holder, raw);
}

/* strace, attached to @daemon, holds each of its fcntl calls @delay_us
 * before making it: the way a test widens the window between a lookup and
 * the lease that a create following it asks for (its first fcntl, on the
 * lease file). Killed with the test. */
static pid_t fcntl_delayed(pid_t daemon, long delay_us)
{
        g_autofree char *pid = g_strdup_printf("%d", (int)daemon);
        g_autofree char *inject = g_strdup_printf("inject=fcntl:delay_enter=%ld", delay_us);
        cr_assert_gt(daemon, 0, "no daemon of ours to trace");
        pid_t tracer = fork();
        cr_assert_geq(tracer, 0);
        if (tracer == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                execlp("strace", "strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fcntl", "-e",
                       inject, "-p", pid, (char *)NULL);
                _exit(127);
        }
        /* Attached once the daemon's status names the tracer. */
        g_autofree char *status_path = g_strdup_printf("/proc/%d/status", (int)daemon);
        long long until = now_ms() + EVENT_TIMEOUT_MS;
        for (;;) {
                g_autofree char *status = NULL;
                cr_assert(g_file_get_contents(status_path, &status, NULL, NULL));
                const char *line = strstr(status, "\nTracerPid:");
                if (line && strtol(line + strlen("\nTracerPid:"), NULL, 10) == tracer)
                        break;
                cr_assert_eq(waitpid(tracer, NULL, WNOHANG), 0,
                             "strace ended before it attached (Debian package strace)");
                cr_assert_lt(now_ms(), until, "strace never attached to the daemon");
                g_usleep(10 * 1000);
        }
        return tracer;
}

static void fcntl_delayed_end(pid_t tracer)
{
        kill(tracer, SIGINT);
        waitpid(tracer, NULL, 0);
}

/* Whether the trail of the postoffice at @backing has a line with each of
 * @words. */
static bool trail_has_line(const char *backing, const char *const *words)
{
        g_autofree char *trail = harness_trail_text(backing);
        if (!trail)
                return false;
        g_auto(GStrv) lines = g_strsplit(trail, "\n", -1);
        for (char **line = lines; *line; line++) {
                bool all = true;
                for (const char *const *word = words; *word && all; word++)
                        all = strstr(*line, *word) != NULL;
                if (all)
                        return true;
        }
        return false;
}

/* Waits (at most EVENT_TIMEOUT_MS) until the trail at @backing has a line
 * with each of @words, or one with each of @or_words; true for the
 * first. */
static bool trail_wait_line(const char *backing, const char *const *words,
                            const char *const *or_words)
{
        long long until = now_ms() + EVENT_TIMEOUT_MS;
        for (;;) {
                if (trail_has_line(backing, words))
                        return true;
                if (trail_has_line(backing, or_words))
                        return false;
                cr_assert_lt(now_ms(), until, "no trail line for %s %s", words[0], words[1]);
                g_usleep(10 * 1000);
        }
}

/* The window the test above cannot reach: node B makes and holds the file
 * after node A's kernel looked the name up and found nothing, before node
 * A's create asks for its lease (held 300 ms there by a tracer). The
 * create of the DOS program, whose lease is deferred, may make a file but
 * must not open (and truncate) node B's: ESTALE has the kernel look the
 * name up again, and the program's create-or-truncate becomes an open
 * that waits in line. A try whose create came too late for the window (a
 * host that held the program up for the tracer's 300 ms: the kernel found
 * the file and sent an open) is made again with another file. */
Test(cluster, a_dos_create_of_a_file_made_after_its_lookup_truncates_nothing,
     .init = mount_patient)
{
        g_autofree char *key_folder = g_build_filename(node_a.mnt, "KEY", NULL);
        bool reached = false;
        for (int attempt = 0; attempt < 3 && !reached; attempt++) {
                g_autofree char *relpath = g_strdup_printf("KEY/NEWUSR%d.KEY", attempt);
                g_autofree char *raw = g_build_filename(node_a.backing, relpath, NULL);
                g_autofree char *file_word = g_strdup_printf("file=%s", relpath);
                struct stat st;
                cr_assert_eq(stat(key_folder, &st), 0);
                pid_t tracer = fcntl_delayed(node_a.daemon, 300 * 1000);

                Opener dos = opener_start_as(&node_a, relpath, O_WRONLY | O_CREAT | O_TRUNC,
                                             "dosbox");
                /* Its lookup has found no file, and its create waits for
                 * its first fcntl. */
                g_usleep(100 * 1000);
                Opener holder = opener_start(&node_b, relpath, O_RDWR | O_CREAT);
                cr_expect_eq(opener_result(&holder), 0);
                cr_expect(g_file_set_contents(raw, "INDEX", 5, NULL));

                const char *const create[] = {"op=create", file_word, "program=dosbox", NULL};
                const char *const open_only[] = {"op=open", file_word, "program=dosbox", NULL};
                reached = trail_wait_line(node_a.backing, create, open_only);
                fcntl_delayed_end(tracer);
                if (reached) {
                        expect_dos_waits_for_holder(&dos, &holder, raw);
                } else {
                        opener_stop(&holder);
                        opener_result(&dos);
                        opener_stop(&dos);
                }
        }
        cr_expect(reached, "node A's kernel found the file in every try: the window was missed");
}

Test(cluster, lease_files_of_live_nodes_are_not_touched, .init = mount_quick)
{
        Opener v20 = opener_start(&node_a, "P1/INQUEUE3.005", O_WRONLY | O_CREAT | O_EXCL);
        cr_assert_eq(opener_result(&v20), 0);
        cr_expect_eq(open_once(&node_b, "KEY/INQUEUE3.KEY", O_RDONLY), EBUSY);
        g_autofree char *lock = g_build_filename(node_a.backing, "P1", "INQUEUE3.005", NULL);
        cr_expect_eq(access(lock, F_OK), 0);
        g_autofree char *through_a = g_build_filename(node_a.mnt, "P1", "INQUEUE3.005", NULL);
        cr_assert_eq(unlink(through_a), 0);
        cr_expect_eq(open_once(&node_b, "KEY/INQUEUE3.KEY", O_RDONLY), 0);
        opener_stop(&v20);
}

/* A daemon of another lease protocol version holds its version byte: this
 * one must refuse the postoffice rather than serve it with leases the
 * other does not see. */
Test(cluster, another_protocol_version_is_refused)
{
        mount_fixture_setup(&node_a);
        harness_make_postoffice(node_a.backing);
        g_autofree char *lease_file = g_build_filename(node_a.backing, ".mailbagfs-leases", NULL);
        int fd = open(lease_file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        cr_assert_geq(fd, 0);
        struct flock version2 = {.l_type = F_RDLCK, .l_whence = SEEK_SET,
                                 .l_start = ((off_t)1 << 40) + 2, .l_len = 1};
        cr_assert_eq(fcntl(fd, F_OFD_SETLK, &version2), 0);
        mount_fixture_mount(&node_a, NULL);

        cr_expect_eq(open_once(&node_a, "KEY/INQUEUE3.KEY", O_RDONLY), EPROTO);
        close(fd);
        if (mount_harness_has_log(&node_a)) {
                g_autofree char *problems = mount_harness_log_problems(&node_a);
                cr_expect(problems && strstr(problems, "another lease protocol version"),
                          "log: %s", problems);
        }
}
