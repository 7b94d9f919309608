/* test-caller.c - thread ids to processes and program names, from /proc. */
#include "caller.h"
#include "process-name.h"

#include <criterion/criterion.h>
#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void expect_identity(pid_t tid, pid_t want_pid, const char *want_program)
{
        pid_t pid = -1;
        char program[64] = "";
        caller_identify(tid, &pid, program, sizeof(program));
        cr_expect_eq(pid, want_pid, "thread %d: process %d, not %d", (int)tid, (int)pid,
                     (int)want_pid);
        cr_expect_str_eq(program, want_program, "thread %d", (int)tid);

        /* The two single calls agree with the combined one. */
        cr_expect_eq(caller_process_of_thread(tid), want_pid);
        char alone[64] = "";
        caller_program_name(want_pid, alone, sizeof(alone));
        cr_expect_str_eq(alone, want_program);
}

/* A thread that is gone is itself, of no known program. */
static void expect_gone(pid_t tid)
{
        pid_t pid = -1;
        char program[64] = "";
        caller_identify(tid, &pid, program, sizeof(program));
        cr_expect_eq(pid, tid);
        cr_expect_str_eq(program, "?");
}

static char *own_comm(void)
{
        g_autofree char *comm = NULL;
        cr_assert(g_file_get_contents("/proc/self/comm", &comm, NULL, NULL));
        return g_strdup(g_strchomp(comm));
}

Test(caller, the_leader_thread_is_its_process)
{
        g_autofree char *comm = own_comm();
        expect_identity(gettid(), getpid(), comm);
}

typedef struct {
        pid_t tid;
        int ready[2];
        int release[2];
} Named;

static void *named_thread(void *data)
{
        Named *named = data;
        /* A thread name of its own: the program is still the process's. */
        prctl(PR_SET_NAME, "other-name");
        named->tid = gettid();
        char c = 1;
        cr_assert_eq(write(named->ready[1], &c, 1), 1);
        cr_assert_eq(read(named->release[0], &c, 1), 1);
        return NULL;
}

Test(caller, another_thread_maps_to_its_process_and_its_program)
{
        g_autofree char *comm = own_comm();
        Named named = {0};
        cr_assert_eq(pipe(named.ready), 0);
        cr_assert_eq(pipe(named.release), 0);
        pthread_t thread;
        cr_assert_eq(pthread_create(&thread, NULL, named_thread, &named), 0);
        char c;
        cr_assert_eq(read(named.ready[0], &c, 1), 1);
        expect_identity(named.tid, getpid(), comm);
        cr_assert_eq(write(named.release[1], &c, 1), 1);
        pthread_join(thread, NULL);
}

/* /proc/PID/status escapes a backslash in a name; the name is comm's. */
Test(caller, a_name_that_status_escapes_is_read_from_comm)
{
        int ready[2], release[2];
        cr_assert_eq(pipe(ready), 0);
        cr_assert_eq(pipe(release), 0);
        pid_t child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                harness_name_process("A\\B.EXE");
                char c = 1;
                if (write(ready[1], &c, 1) != 1 || read(release[0], &c, 1) != 1)
                        _exit(1);
                _exit(0);
        }
        char c;
        cr_assert_eq(read(ready[0], &c, 1), 1);
        expect_identity(child, child, "A\\B.EXE");
        cr_assert_eq(write(release[1], &c, 1), 1);
        cr_assert_eq(waitpid(child, NULL, 0), child);
}

Test(caller, a_gone_thread_is_itself_and_unknown)
{
        pid_t child = fork();
        cr_assert_geq(child, 0);
        if (child == 0)
                _exit(0);
        cr_assert_eq(waitpid(child, NULL, 0), child);
        expect_gone(child);
}

/* A child that names itself @first, says so on @ready, renames itself
 * @second when told on @release, says so, and exits when told again. */
static pid_t renaming_child(int ready[2], int release[2], const char *first, const char *second)
{
        cr_assert_eq(pipe(ready), 0);
        cr_assert_eq(pipe(release), 0);
        pid_t child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                char c = 1;
                harness_name_process(first);
                if (write(ready[1], &c, 1) != 1 || read(release[0], &c, 1) != 1)
                        _exit(1);
                harness_name_process(second);
                if (write(ready[1], &c, 1) != 1 || read(release[0], &c, 1) != 1)
                        _exit(1);
                _exit(0);
        }
        return child;
}

/* Longer than a name read is answered again for. */
static void past_name_reuse(void)
{
        g_usleep(2 * CALLER_NAME_REUSE_US);
}

/* The answer for a thread asked about before is read afresh once the
 * reuse time is over: a process that changed its name (an exec does) is
 * named anew. */
Test(caller, a_second_ask_sees_a_new_name)
{
        int ready[2], release[2];
        pid_t child = renaming_child(ready, release, "FIRST.EXE", "SECOND.EXE");
        char c;
        cr_assert_eq(read(ready[0], &c, 1), 1);
        expect_identity(child, child, "FIRST.EXE");
        cr_assert_eq(write(release[1], &c, 1), 1);
        cr_assert_eq(read(ready[0], &c, 1), 1);
        past_name_reuse();
        expect_identity(child, child, "SECOND.EXE");
        cr_assert_eq(write(release[1], &c, 1), 1);
        cr_assert_eq(waitpid(child, NULL, 0), child);
        /* Gone now: what was known of it is not answered any more. */
        past_name_reuse();
        expect_gone(child);
}

/* Names @tid into @program; returns the clock after. */
static gint64 identify_at(pid_t tid, char *program, size_t size)
{
        pid_t pid;
        caller_identify(tid, &pid, program, size);
        return g_get_monotonic_time();
}

/* Asked again within the reuse time, the name read before is the answer
 * (no read of /proc): a rename that soon is not seen yet; after it, it
 * is. Whether the two asks fell within the reuse time is measured (from
 * before the first to after the second, which bounds the time between the
 * read and the second ask), and a try that was held up longer (a busy
 * host) is made again. The process renamed is this one (a process may
 * rename only itself). */
Test(caller, a_name_read_just_before_is_answered_again_without_a_read)
{
        harness_name_process("BEFORE.EXE");
        int within = 0;
        for (int attempt = 0; attempt < 50 && within == 0; attempt++) {
                past_name_reuse();
                char fresh[64], again[64], after[64];
                gint64 started_at = g_get_monotonic_time();
                identify_at(gettid(), fresh, sizeof(fresh));
                cr_expect_str_eq(fresh, "BEFORE.EXE", "read afresh after the reuse time");
                harness_name_process("RENAMED.EXE");
                gint64 asked_at = identify_at(gettid(), again, sizeof(again));
                if (asked_at - started_at < CALLER_NAME_REUSE_US) {
                        within++;
                        cr_expect_str_eq(again, "BEFORE.EXE", "asked again within %lld us of the read",
                                         (long long)(asked_at - started_at));
                }
                past_name_reuse();
                identify_at(gettid(), after, sizeof(after));
                cr_expect_str_eq(after, "RENAMED.EXE", "read afresh after the reuse time");
                harness_name_process("BEFORE.EXE");
        }
        cr_expect_eq(within, 1, "never asked twice within %d us in 50 tries", CALLER_NAME_REUSE_US);
        caller_cache_clear();
}

/* More callers than the daemon keeps descriptors for: each is still
 * named right, and the descriptors kept stay bounded. */
Test(caller, many_callers_are_each_named_and_descriptors_stay_bounded)
{
        int before = 0;
        g_autoptr(GDir) fds = g_dir_open("/proc/self/fd", 0, NULL);
        cr_assert_not_null(fds);
        while (g_dir_read_name(fds))
                before++;
        for (int i = 0; i < 200; i++) {
                int ready[2], release[2];
                char first[16], second[16];
                snprintf(first, sizeof(first), "CALLER%d", i);
                snprintf(second, sizeof(second), "AFTER%d", i);
                pid_t child = renaming_child(ready, release, first, second);
                char c;
                cr_assert_eq(read(ready[0], &c, 1), 1);
                expect_identity(child, child, first);
                cr_assert_eq(write(release[1], &c, 1), 1);
                cr_assert_eq(read(ready[0], &c, 1), 1);
                cr_assert_eq(write(release[1], &c, 1), 1);
                cr_assert_eq(waitpid(child, NULL, 0), child);
                for (int p = 0; p < 2; p++) {
                        close(ready[p]);
                        close(release[p]);
                }
        }
        int after = 0;
        g_dir_rewind(fds);
        while (g_dir_read_name(fds))
                after++;
        cr_expect_leq(after - before, 64, "%d descriptors more than before 200 callers",
                      after - before);
        caller_cache_clear();
}
