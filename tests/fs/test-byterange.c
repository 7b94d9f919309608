/* test-byterange.c - fcntl and flock locks through a mount, held on the
 * backing store: two processes through one mount conflict, merge and
 * split like on a local filesystem, lose their locks when they close any
 * descriptor of the file, wait in F_SETLKW until granted or interrupted,
 * and get EDEADLK for a cycle; a lock through one mount holds against a
 * second mailbagfs daemon on the same backing directory and against
 * processes on the backing directory itself; user.mailbag.ranges shows
 * them, and mailbag-stat tables them.
 *
 * Every lock is taken by a forked peer process that runs the commands it
 * is sent and answers each with its errno, so a result is what a program
 * would see. A wait is known to have begun when the status attribute
 * lists it: no sleeping.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mount-fixture.h"
#include "tool-run.h"

static MountHarness node_a, node_b;

/* Bounds for events that normally take milliseconds; hitting one fails. */
#define EVENT_TIMEOUT_MS 20000
#define FILE_NAME "shared.dat"
#define RANGES "user.mailbag.ranges"

enum { CMD_OPEN, CMD_CLOSE, CMD_SETLK, CMD_SETLKW, CMD_GETLK, CMD_OFD_SETLK, CMD_OFD_GETLK,
       CMD_FLOCK };

typedef struct {
        int op;
        int slot;
        int arg; /* open flags, flock op */
        short type;
        long long start, len;
        char path[512];
} Cmd;

typedef struct {
        int error; /* 0 or errno */
        int slot;  /* open: the new slot */
        short type;
        long long start, len;
        int pid;
} Reply;

typedef struct {
        pid_t pid;
        int cmd;
        int reply;
} Peer;

static void on_usr1(int signum)
{
        (void)signum;
}

static void peer_run(int cmd_fd, int reply_fd)
{
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* No SA_RESTART: an interrupted wait returns EINTR. */
        struct sigaction sa = {.sa_handler = on_usr1};
        sigaction(SIGUSR1, &sa, NULL);
        int fds[16];
        int n_fds = 0;
        Cmd c;
        while (read(cmd_fd, &c, sizeof(c)) == sizeof(c)) {
                Reply r = {0};
                struct flock lock = {.l_type = c.type, .l_whence = SEEK_SET,
                                     .l_start = c.start, .l_len = c.len};
                int res = 0;
                switch (c.op) {
                case CMD_OPEN:
                        res = open(c.path, c.arg);
                        if (res >= 0 && n_fds < 16) {
                                fds[n_fds] = res;
                                r.slot = n_fds++;
                                res = 0;
                        }
                        break;
                case CMD_CLOSE:
                        res = close(fds[c.slot]);
                        break;
                case CMD_SETLK:
                case CMD_SETLKW:
                case CMD_GETLK:
                case CMD_OFD_SETLK:
                case CMD_OFD_GETLK: {
                        static const int cmds[] = {[CMD_SETLK] = F_SETLK, [CMD_SETLKW] = F_SETLKW,
                                                   [CMD_GETLK] = F_GETLK,
                                                   [CMD_OFD_SETLK] = F_OFD_SETLK,
                                                   [CMD_OFD_GETLK] = F_OFD_GETLK};
                        res = fcntl(fds[c.slot], cmds[c.op], &lock);
                        r.type = lock.l_type;
                        r.start = lock.l_start;
                        r.len = lock.l_len;
                        r.pid = lock.l_pid;
                        break;
                }
                case CMD_FLOCK:
                        res = flock(fds[c.slot], c.arg);
                        break;
                }
                r.error = res < 0 ? errno : 0;
                if (write(reply_fd, &r, sizeof(r)) != sizeof(r))
                        _exit(3);
        }
        _exit(0);
}

static Peer peer_start(void)
{
        int cmd[2], reply[2];
        cr_assert_eq(pipe2(cmd, O_CLOEXEC), 0);
        cr_assert_eq(pipe2(reply, O_CLOEXEC), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                close(cmd[1]);
                close(reply[0]);
                peer_run(cmd[0], reply[1]);
        }
        close(cmd[0]);
        close(reply[1]);
        return (Peer){.pid = pid, .cmd = cmd[1], .reply = reply[0]};
}

static void peer_stop(Peer *p)
{
        if (p->pid <= 0)
                return;
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        close(p->cmd);
        close(p->reply);
        p->pid = 0;
}

static void peer_send(Peer *p, const Cmd *c)
{
        cr_assert_eq(write(p->cmd, c, sizeof(*c)), (ssize_t)sizeof(*c));
}

static Reply peer_wait(Peer *p)
{
        struct pollfd pfd = {.fd = p->reply, .events = POLLIN};
        cr_assert_gt(poll(&pfd, 1, EVENT_TIMEOUT_MS), 0, "peer %d never answered", p->pid);
        Reply r;
        cr_assert_eq(read(p->reply, &r, sizeof(r)), (ssize_t)sizeof(r));
        return r;
}

/* Whether an answer is there already (never waits). */
static bool peer_answered(Peer *p)
{
        struct pollfd pfd = {.fd = p->reply, .events = POLLIN};
        return poll(&pfd, 1, 0) > 0;
}

static Reply peer_call(Peer *p, const Cmd *c)
{
        peer_send(p, c);
        return peer_wait(p);
}

/* Opens @dir/FILE_NAME in @p: the slot. */
static int peer_open(Peer *p, const char *dir, int flags)
{
        Cmd c = {.op = CMD_OPEN, .arg = flags};
        g_snprintf(c.path, sizeof(c.path), "%s/%s", dir, FILE_NAME);
        Reply r = peer_call(p, &c);
        cr_assert_eq(r.error, 0, "open %s: %s", c.path, strerror(r.error));
        return r.slot;
}

static int peer_close(Peer *p, int slot)
{
        Cmd c = {.op = CMD_CLOSE, .slot = slot};
        return peer_call(p, &c).error;
}

static Cmd lock_cmd(int op, int slot, short type, long long start, long long len)
{
        return (Cmd){.op = op, .slot = slot, .type = type, .start = start, .len = len};
}

static int peer_lock(Peer *p, int op, int slot, short type, long long start, long long len)
{
        Cmd c = lock_cmd(op, slot, type, start, len);
        return peer_call(p, &c).error;
}

static int peer_flock(Peer *p, int slot, int op)
{
        Cmd c = {.op = CMD_FLOCK, .slot = slot, .arg = op};
        return peer_call(p, &c).error;
}

static char *ranges_of(const char *path)
{
        char *value = harness_attribute(path, RANGES);
        cr_assert_not_null(value, "%s of %s: %s", RANGES, path, strerror(errno));
        return value;
}

static char *file_ranges(const MountHarness *node)
{
        g_autofree char *path = g_build_filename(node->mnt, FILE_NAME, NULL);
        return ranges_of(path);
}

/* Waits until the file's status of @node shows (@present) or stops
 * showing a line holding @needle. */
static void wait_for_ranges(const MountHarness *node, const char *needle, bool present)
{
        for (int elapsed = 0; elapsed < EVENT_TIMEOUT_MS; elapsed += 5) {
                g_autofree char *value = file_ranges(node);
                if ((strstr(value, needle) != NULL) == present)
                        return;
                g_usleep(5000);
        }
        g_autofree char *value = file_ranges(node);
        cr_assert_fail("%s %s \"%s\": %s", RANGES, present ? "never showed" : "still shows",
                       needle, value);
}

/* Waits until @p's request shows as waiting on the file of @node. */
static void wait_until_waiting(const MountHarness *node, const Peer *p)
{
        g_autofree char *needle = g_strdup_printf("pid=%d", p->pid);
        for (int elapsed = 0; elapsed < EVENT_TIMEOUT_MS; elapsed += 5) {
                g_autofree char *value = file_ranges(node);
                g_auto(GStrv) lines = g_strsplit(value, "\n", -1);
                for (char **line = lines; *line; line++)
                        if (strstr(*line, "state=waiting") && strstr(*line, needle))
                                return;
                g_usleep(5000);
        }
        cr_assert_fail("peer %d never showed up as waiting", p->pid);
}

static void make_share(const char *root)
{
        const char *folders[] = {"P1", "KEY", "MBG", "GLB"};
        for (size_t i = 0; i < G_N_ELEMENTS(folders); i++) {
                g_autofree char *dir = g_build_filename(root, folders[i], NULL);
                cr_assert_eq(mkdir(dir, 0755), 0);
        }
        g_autofree char *file = g_build_filename(root, FILE_NAME, NULL);
        cr_assert(g_file_set_contents(file, "0123456789abcdefghij", -1, NULL));
}

static void mount_one(void)
{
        mount_fixture_setup(&node_a);
        make_share(node_a.backing);
        mount_fixture_mount(&node_a, NULL);
}

static void mount_two(void)
{
        mount_one();
        mount_fixture_setup(&node_b);
        /* Node B serves node A's backing directory. */
        mount_harness_set_backing(&node_b, node_a.backing);
        mount_fixture_mount(&node_b, NULL);
}

static void unmount_all(void)
{
        mount_fixture_expect_quiet(&node_b);
        mount_fixture_expect_quiet(&node_a);
        /* B's backing directory is A's: A's teardown removes it. */
        mount_harness_teardown(&node_b);
        mount_harness_teardown(&node_a);
}

TestSuite(byterange, .fini = unmount_all, .timeout = 60);

Test(byterange, two_processes_conflict_and_getlk_names_the_range, .init = mount_one)
{
        Peer a = peer_start(), b = peer_start();
        int fa = peer_open(&a, node_a.mnt, O_RDWR);
        int fb = peer_open(&b, node_a.mnt, O_RDWR);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_WRLCK, 0, 10), 0);
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_WRLCK, 5, 1), EAGAIN);
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_RDLCK, 9, 1), EAGAIN);
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_WRLCK, 10, 5), 0);
        /* A's own locks never conflict with A. */
        cr_expect_eq(peer_lock(&a, CMD_SETLK, fa, F_RDLCK, 2, 2), 0);

        Cmd test = lock_cmd(CMD_GETLK, fb, F_RDLCK, 0, 0);
        Reply r = peer_call(&b, &test);
        cr_assert_eq(r.error, 0);
        cr_expect_eq(r.type, F_WRLCK);
        cr_expect_eq(r.start, 0);
        cr_expect_eq(r.len, 2, "the first conflict is [0,2) (A's split write lock): %lld+%lld",
                     r.start, r.len);
        cr_expect_eq(r.pid, a.pid, "F_GETLK names the holder: %d, not %d", r.pid, a.pid);
        Cmd test_read = lock_cmd(CMD_GETLK, fb, F_WRLCK, 2, 2);
        r = peer_call(&b, &test_read);
        cr_expect_eq(r.type, F_RDLCK);
        cr_expect(r.start == 2 && r.len == 2);
        /* F_OFD_GETLK reports no pid, as the kernel does. */
        Cmd ofd = lock_cmd(CMD_OFD_GETLK, fb, F_RDLCK, 5, 1);
        r = peer_call(&b, &ofd);
        cr_expect_eq(r.type, F_WRLCK);
        cr_expect_eq(r.pid, -1);
        /* Free space tests free. */
        Cmd free_test = lock_cmd(CMD_GETLK, fa, F_WRLCK, 100, 10);
        r = peer_call(&a, &free_test);
        cr_expect_eq(r.type, F_UNLCK);
        peer_stop(&a);
        peer_stop(&b);
}

/* DOSBox-X emulates DOS share modes with fcntl locks on byte 2^32 of the
 * host file (F_GETLK to test, F_SETLK to take): two DOSBox-X processes on
 * two mounts of a share, or on one, see each other's only if a lock that
 * far out holds through the mount and F_GETLK reports it. */
Test(byterange, a_lock_at_byte_2_32_conflicts_as_dosbox_x_share_modes_need, .init = mount_two)
{
        const long long share_byte = 1LL << 32;
        Peer a = peer_start(), b = peer_start(), c = peer_start();
        int fa = peer_open(&a, node_a.mnt, O_RDWR);
        int fb = peer_open(&b, node_a.mnt, O_RDWR);
        int fc = peer_open(&c, node_b.mnt, O_RDWR);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_WRLCK, share_byte, 1), 0);
        Cmd test = lock_cmd(CMD_GETLK, fb, F_RDLCK, share_byte, 1);
        Reply r = peer_call(&b, &test);
        cr_assert_eq(r.error, 0);
        cr_expect_eq(r.type, F_WRLCK, "F_GETLK must report the share lock");
        cr_expect_eq(r.start, share_byte);
        cr_expect_eq(r.pid, a.pid);
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_RDLCK, share_byte, 1), EAGAIN);
        cr_expect_eq(peer_lock(&c, CMD_SETLK, fc, F_RDLCK, share_byte, 1), EAGAIN,
                     "the share lock holds through the second daemon too");
        /* The file's bytes below are not touched by it. */
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_WRLCK, 0, 512), 0);
        peer_stop(&a);
        cr_expect_eq(peer_lock(&c, CMD_SETLK, fc, F_WRLCK, share_byte, 1), 0);
        peer_stop(&b);
        peer_stop(&c);
}

Test(byterange, an_owner_s_ranges_merge_and_split, .init = mount_one)
{
        Peer a = peer_start(), b = peer_start();
        int fa = peer_open(&a, node_a.mnt, O_RDWR);
        int fb = peer_open(&b, node_a.mnt, O_RDWR);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_WRLCK, 0, 10), 0);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_WRLCK, 10, 10), 0);
        g_autofree char *merged = file_ranges(&node_a);
        cr_expect(g_str_has_prefix(merged, "range 0 20 type=write kind=posix state=held") &&
                  strchr(merged, '\n') == merged + strlen(merged) - 1,
                  "one merged range: %s", merged);

        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_UNLCK, 5, 5), 0);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_RDLCK, 15, 5), 0);
        g_autofree char *split = file_ranges(&node_a);
        cr_expect(strstr(split, "range 0 5 type=write") && strstr(split, "range 10 5 type=write") &&
                  strstr(split, "range 15 5 type=read"), "split: %s", split);
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_WRLCK, 5, 5), 0, "the unlocked hole");
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_WRLCK, 4, 1), EAGAIN);
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_RDLCK, 16, 2), 0, "a downgraded part");
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_RDLCK, 12, 1), EAGAIN);
        peer_stop(&a);
        peer_stop(&b);
}

Test(byterange, closing_any_descriptor_releases_the_process_s_locks, .init = mount_one)
{
        Peer a = peer_start(), b = peer_start();
        int fa1 = peer_open(&a, node_a.mnt, O_RDWR);
        int fa2 = peer_open(&a, node_a.mnt, O_RDONLY);
        int fb = peer_open(&b, node_a.mnt, O_RDWR);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa1, F_WRLCK, 0, 0), 0);
        cr_assert_eq(peer_lock(&b, CMD_SETLK, fb, F_RDLCK, 3, 1), EAGAIN);
        /* The other descriptor, never used to lock. */
        cr_assert_eq(peer_close(&a, fa2), 0);
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_WRLCK, 0, 0), 0,
                     "closing any descriptor of the file ends the process's locks");
        g_autofree char *value = file_ranges(&node_a);
        g_autofree char *a_pid = g_strdup_printf("pid=%d", a.pid);
        cr_expect_null(strstr(value, a_pid), "A's lock is gone: %s", value);
        /* And the process that is killed loses them too. */
        peer_stop(&b);
        cr_expect_eq(peer_lock(&a, CMD_SETLK, fa1, F_WRLCK, 0, 0), 0);
        peer_stop(&a);
}

Test(byterange, setlkw_waits_until_granted, .init = mount_one)
{
        Peer a = peer_start(), b = peer_start();
        int fa = peer_open(&a, node_a.mnt, O_RDWR);
        int fb = peer_open(&b, node_a.mnt, O_RDWR);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_WRLCK, 0, 10), 0);
        Cmd wait = lock_cmd(CMD_SETLKW, fb, F_WRLCK, 5, 10);
        peer_send(&b, &wait);
        wait_until_waiting(&node_a, &b);
        cr_expect_not(peer_answered(&b), "granted while A holds the range");
        /* Waiting requests occupy no worker: the mount still answers. */
        Peer c = peer_start();
        int fc = peer_open(&c, node_a.mnt, O_RDWR);
        cr_expect_eq(peer_lock(&c, CMD_SETLK, fc, F_WRLCK, 50, 1), 0);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_UNLCK, 0, 10), 0);
        cr_expect_eq(peer_wait(&b).error, 0);
        g_autofree char *value = file_ranges(&node_a);
        g_autofree char *held = g_strdup_printf("range 5 10 type=write kind=posix state=held");
        cr_expect(strstr(value, held), "B holds its range: %s", value);
        peer_stop(&a);
        peer_stop(&b);
        peer_stop(&c);
}

Test(byterange, an_interrupted_wait_gives_eintr, .init = mount_one)
{
        Peer a = peer_start(), b = peer_start();
        int fa = peer_open(&a, node_a.mnt, O_RDWR);
        int fb = peer_open(&b, node_a.mnt, O_RDWR);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_WRLCK, 0, 1), 0);
        Cmd wait = lock_cmd(CMD_SETLKW, fb, F_WRLCK, 0, 1);
        peer_send(&b, &wait);
        wait_until_waiting(&node_a, &b);
        cr_assert_eq(kill(b.pid, SIGUSR1), 0);
        cr_expect_eq(peer_wait(&b).error, EINTR);
        wait_for_ranges(&node_a, "state=waiting", false);
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_WRLCK, 0, 1), EAGAIN, "A still holds it");
        /* A blocking flock is interrupted the same way. */
        cr_assert_eq(peer_flock(&a, fa, LOCK_EX), 0);
        Cmd flock_wait = {.op = CMD_FLOCK, .slot = fb, .arg = LOCK_EX};
        peer_send(&b, &flock_wait);
        wait_until_waiting(&node_a, &b);
        cr_assert_eq(kill(b.pid, SIGUSR1), 0);
        cr_expect_eq(peer_wait(&b).error, EINTR);
        peer_stop(&a);
        peer_stop(&b);
}

Test(byterange, a_wait_that_closes_a_cycle_gets_edeadlk, .init = mount_one)
{
        Peer a = peer_start(), b = peer_start();
        int fa = peer_open(&a, node_a.mnt, O_RDWR);
        int fb = peer_open(&b, node_a.mnt, O_RDWR);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_WRLCK, 0, 1), 0);
        cr_assert_eq(peer_lock(&b, CMD_SETLK, fb, F_WRLCK, 1, 1), 0);
        Cmd a_waits = lock_cmd(CMD_SETLKW, fa, F_WRLCK, 1, 1);
        peer_send(&a, &a_waits);
        wait_until_waiting(&node_a, &a);
        cr_expect_eq(peer_lock(&b, CMD_SETLKW, fb, F_WRLCK, 0, 1), EDEADLK);
        cr_expect_not(peer_answered(&a));
        cr_assert_eq(peer_lock(&b, CMD_SETLK, fb, F_UNLCK, 1, 1), 0);
        cr_expect_eq(peer_wait(&a).error, 0, "A gets B's range once B lets go");
        peer_stop(&a);
        peer_stop(&b);
}

Test(byterange, a_lock_holds_against_a_second_daemon_on_the_share, .init = mount_two)
{
        Peer a = peer_start(), b = peer_start();
        int fa = peer_open(&a, node_a.mnt, O_RDWR);
        int fb = peer_open(&b, node_b.mnt, O_RDWR);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_WRLCK, 0, 10), 0);
        cr_expect_eq(peer_lock(&b, CMD_SETLK, fb, F_RDLCK, 5, 1), EAGAIN);
        Cmd test = lock_cmd(CMD_GETLK, fb, F_WRLCK, 8, 100);
        Reply r = peer_call(&b, &test);
        cr_expect(r.type == F_WRLCK && r.start == 0 && r.len == 10,
                  "node B sees node A's range: type %d %lld+%lld", r.type, r.start, r.len);
        cr_expect_eq(r.pid, 0, "a holder through another daemon has no pid here");
        /* And B's lock the other way round. */
        cr_assert_eq(peer_lock(&b, CMD_SETLK, fb, F_WRLCK, 20, 5), 0);
        cr_expect_eq(peer_lock(&a, CMD_SETLK, fa, F_WRLCK, 22, 1), EAGAIN);

        /* A wait on node B ends when node A's holder lets go. */
        Cmd wait = lock_cmd(CMD_SETLKW, fb, F_WRLCK, 0, 10);
        peer_send(&b, &wait);
        wait_until_waiting(&node_b, &b);
        g_autofree char *on_a = file_ranges(&node_a);
        g_autofree char *b_pid = g_strdup_printf("pid=%d", b.pid);
        cr_expect_null(strstr(on_a, b_pid), "node A lists only its own clients: %s", on_a);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_UNLCK, 0, 0), 0);
        cr_expect_eq(peer_wait(&b).error, 0);
        peer_stop(&a);
        peer_stop(&b);
}

Test(byterange, a_lock_holds_against_processes_on_the_backing_directory, .init = mount_one)
{
        Peer a = peer_start(), local = peer_start();
        int fa = peer_open(&a, node_a.mnt, O_RDWR);
        int fl = peer_open(&local, node_a.backing, O_RDWR);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_WRLCK, 0, 10), 0);
        cr_expect_eq(peer_lock(&local, CMD_SETLK, fl, F_WRLCK, 9, 1), EAGAIN, "fcntl");
        cr_expect_eq(peer_lock(&local, CMD_OFD_SETLK, fl, F_RDLCK, 0, 1), EAGAIN, "OFD");
        cr_expect_eq(peer_lock(&local, CMD_SETLK, fl, F_WRLCK, 10, 1), 0);
        /* The backing process's plain POSIX lock holds against the mount,
         * and F_GETLK through the mount names it. */
        cr_expect_eq(peer_lock(&a, CMD_SETLK, fa, F_RDLCK, 10, 1), EAGAIN);
        Cmd test = lock_cmd(CMD_GETLK, fa, F_RDLCK, 10, 5);
        Reply r = peer_call(&a, &test);
        cr_expect(r.type == F_WRLCK && r.start == 10 && r.len == 1 && r.pid == local.pid,
                  "type %d %lld+%lld pid %d (the local process is %d)", r.type, r.start, r.len,
                  r.pid, local.pid);
        /* A client's own OFD lock through the mount holds too; it survives
         * the close of another descriptor of the file. */
        Peer c = peer_start();
        int fc1 = peer_open(&c, node_a.mnt, O_RDWR);
        int fc2 = peer_open(&c, node_a.mnt, O_RDONLY);
        cr_assert_eq(peer_lock(&c, CMD_OFD_SETLK, fc1, F_WRLCK, 100, 1), 0);
        cr_expect_eq(peer_lock(&local, CMD_OFD_SETLK, fl, F_WRLCK, 100, 1), EAGAIN);
        cr_assert_eq(peer_close(&c, fc2), 0);
        cr_expect_eq(peer_lock(&local, CMD_SETLK, fl, F_WRLCK, 100, 1), EAGAIN,
                     "an OFD lock outlives the close of another descriptor");
        cr_assert_eq(peer_close(&c, fc1), 0);
        /* The kernel sends the release of a FUSE file after close()
         * returns, not within it: wait for that event. */
        int result = EAGAIN;
        for (int elapsed = 0; elapsed < EVENT_TIMEOUT_MS && result == EAGAIN; elapsed += 5) {
                result = peer_lock(&local, CMD_SETLK, fl, F_WRLCK, 100, 1);
                if (result == EAGAIN)
                        g_usleep(5000);
        }
        cr_expect_eq(result, 0, "and ends with its open file");
        peer_stop(&a);
        peer_stop(&local);
        peer_stop(&c);
}

Test(byterange, flock_holds_across_two_mounts_and_the_backing_store, .init = mount_two)
{
        Peer a = peer_start(), b = peer_start(), local = peer_start();
        int fa = peer_open(&a, node_a.mnt, O_RDWR);
        int fb = peer_open(&b, node_b.mnt, O_RDONLY);
        int fl = peer_open(&local, node_a.backing, O_RDONLY);
        cr_assert_eq(peer_flock(&a, fa, LOCK_EX), 0);
        cr_expect_eq(peer_flock(&b, fb, LOCK_SH | LOCK_NB), EWOULDBLOCK);
        cr_expect_eq(peer_flock(&local, fl, LOCK_SH | LOCK_NB), EWOULDBLOCK);
        g_autofree char *value = file_ranges(&node_a);
        cr_expect(strstr(value, "range 0 0 type=write kind=flock state=held"), "%s", value);
        /* flock is per open file, not per process: a second open of A's
         * conflicts with A's first. */
        int fa2 = peer_open(&a, node_a.mnt, O_RDONLY);
        cr_expect_eq(peer_flock(&a, fa2, LOCK_SH | LOCK_NB), EWOULDBLOCK);

        Cmd wait = {.op = CMD_FLOCK, .slot = fb, .arg = LOCK_SH};
        peer_send(&b, &wait);
        wait_until_waiting(&node_b, &b);
        cr_assert_eq(peer_close(&a, fa), 0);
        cr_expect_eq(peer_wait(&b).error, 0, "the waiter on node B gets in");
        cr_expect_eq(peer_flock(&local, fl, LOCK_SH | LOCK_NB), 0);
        cr_expect_eq(peer_flock(&a, fa2, LOCK_EX | LOCK_NB), EWOULDBLOCK);
        peer_stop(&a);
        peer_stop(&b);
        peer_stop(&local);
}

Test(byterange, the_root_lists_every_lock_of_the_mount, .init = mount_one)
{
        Peer a = peer_start(), b = peer_start();
        int fa = peer_open(&a, node_a.mnt, O_RDWR);
        int fb = peer_open(&b, node_a.mnt, O_RDWR);
        g_autofree char *empty = ranges_of(node_a.mnt);
        cr_expect_str_empty(empty);
        cr_assert_eq(peer_lock(&a, CMD_SETLK, fa, F_RDLCK, 4, 4), 0);
        cr_assert_eq(peer_lock(&b, CMD_SETLK, fb, F_RDLCK, 6, 0), 0);
        g_autofree char *root = ranges_of(node_a.mnt);
        g_autofree char *a_line = g_strdup_printf(
                "range 4 4 type=read kind=posix state=held owner=");
        g_autofree char *a_pid = g_strdup_printf(" pid=%d program=", a.pid);
        g_autofree char *b_pid = g_strdup_printf(" pid=%d program=", b.pid);
        cr_expect(strstr(root, a_line) && strstr(root, "range 6 0 type=read"), "%s", root);
        cr_expect(strstr(root, a_pid) && strstr(root, b_pid), "%s", root);
        cr_expect(strstr(root, " path=" FILE_NAME "\n"), "%s", root);
        char names[4096];
        ssize_t len = listxattr(node_a.mnt, names, sizeof(names));
        cr_assert_gt(len, 0);
        bool listed = false;
        for (ssize_t at = 0; at < len; at += (ssize_t)strlen(names + at) + 1)
                listed = listed || g_str_equal(names + at, RANGES);
        cr_expect(listed, "the root lists " RANGES);

        g_auto(ToolRun) stat = {0};
        tool_run(&stat, "MAILBAG_STAT", node_a.mnt, NULL);
        cr_expect_eq(stat.status, 0, "mailbag-stat: %s", stat.err);
        g_autofree char *row = g_strdup_printf("%-7d %-14s %-5s %-5s %-7s %-12s %-12s", a.pid,
                                               "test-byterange", "read", "posix", "held", "4", "4");
        g_autofree char *to_eof = g_strdup_printf("%-7d %-14s %-5s %-5s %-7s %-12s %-12s", b.pid,
                                                  "test-byterange", "read", "posix", "held", "6",
                                                  "to EOF");
        cr_expect(strstr(stat.out, "Byte-range locks") && strstr(stat.out, row) &&
                  strstr(stat.out, to_eof), "mailbag-stat's table:\n%s", stat.out);
        peer_stop(&a);
        peer_stop(&b);
        wait_for_ranges(&node_a, "state=held", false);
}
