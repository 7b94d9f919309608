/* test-caller.c - thread ids to processes and program names, from /proc. */
#include "caller.h"

#include <criterion/criterion.h>
#include <glib.h>
#include <pthread.h>
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
                prctl(PR_SET_NAME, "A\\B.EXE");
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
        pid_t pid = -1;
        char program[64] = "";
        caller_identify(child, &pid, program, sizeof(program));
        cr_expect_eq(pid, child);
        cr_expect_str_eq(program, "?");
}
