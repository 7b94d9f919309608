/* test-mailbag-locks.c - the locking protocols through a real mount, with
 * real processes: each protocol excludes each other one and itself, a
 * producer appends while a consumer holds the session, dead or killed
 * clients let the others on, and the attributes tell the truth.
 *
 * A holder is a forked child that takes its lock, reports on a pipe, and
 * lets go when told. Waiting is observed through the daemon's own view
 * (user.mailbag.locks lists waiters), never by sleeping.
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

#include "mailbag.h"
#include "mount-fixture.h"
#include "sample-postoffice.h"
#include "process-name.h"

static MountHarness harness;

/* Bounds for events that normally take milliseconds; hitting one fails. */
#define EVENT_TIMEOUT_MS 20000

typedef enum {
        PROTO_SESSION_FILE, /* External 3.x: P1/INQUEUE3.0LK held open */
        PROTO_V20,          /* -V20: P1/INQUEUE3.0NN created, later unlinked */
        PROTO_QUEUE_READ,   /* gateway: KEY/INQUEUE3.KEY opened read-only */
        PROTO_CONTROL_GLB,  /* GLB/CONTROL.GLB held open */
} Protocol;

static const char *protocol_name(Protocol p)
{
        static const char *names[] = {"0LK", "V20", "queue-read", "control-glb"};
        return names[p];
}

typedef struct {
        pid_t pid;
        int report;  /* child -> parent: "A <ns>", "E <errno>", "R <ns>" */
        int command; /* parent -> child: any byte or EOF = let go */
} Holder;

static long long now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void child_report(int fd, char kind, long long value)
{
        char line[64];
        int len = snprintf(line, sizeof(line), "%c %lld\n", kind, value);
        if (write(fd, line, (size_t)len) != len)
                _exit(3);
}

/* In the child: takes the lock, reports, waits for the word, lets go. */
static void holder_main(Protocol protocol, int process_number, int report, int command)
{
        g_autofree char *path = NULL;
        int fd = -1;
        switch (protocol) {
        case PROTO_SESSION_FILE:
                path = g_build_filename(harness.mnt, "P1", "INQUEUE3.0LK", NULL);
                fd = open(path, O_RDWR | O_CREAT, 0644);
                break;
        case PROTO_V20: {
                g_autofree char *name = g_strdup_printf("INQUEUE3.0%02d", process_number);
                path = g_build_filename(harness.mnt, "P1", name, NULL);
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
                if (fd >= 0) {
                        close(fd); /* the hold lives on until unlink */
                        fd = 0;
                }
                break;
        }
        case PROTO_QUEUE_READ:
                path = g_build_filename(harness.mnt, "KEY", "INQUEUE3.KEY", NULL);
                fd = open(path, O_RDONLY);
                break;
        case PROTO_CONTROL_GLB:
                path = g_build_filename(harness.mnt, "GLB", "CONTROL.GLB", NULL);
                fd = open(path, O_RDWR);
                break;
        }
        if (fd < 0) {
                child_report(report, 'E', errno);
                _exit(0);
        }
        child_report(report, 'A', now_ns());
        char byte;
        if (read(command, &byte, 1) < 0)
                _exit(4);
        if (byte == 'D') {
                /* Deadlock probe: while holding, ask for the queue too. */
                g_autofree char *key = g_build_filename(harness.mnt, "KEY", "INQUEUE3.KEY", NULL);
                int second = open(key, O_RDONLY);
                child_report(report, second < 0 ? 'E' : 'A', second < 0 ? errno : now_ns());
                if (read(command, &byte, 1) < 0)
                        _exit(4);
        }
        long long released = now_ns();
        if (protocol == PROTO_V20)
                unlink(path);
        else
                close(fd);
        child_report(report, 'R', released);
        _exit(0);
}

/* A forked child that runs @child_main(@protocol, @process_number, its
 * report pipe, its command pipe) and never returns. */
static Holder child_start(void (*child_main)(Protocol, int, int, int), Protocol protocol,
                          int process_number)
{
        int report[2], command[2];
        cr_assert_eq(pipe2(report, O_CLOEXEC), 0);
        cr_assert_eq(pipe2(command, O_CLOEXEC), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(report[0]);
                close(command[1]);
                child_main(protocol, process_number, report[1], command[0]);
                _exit(0);
        }
        close(report[1]);
        close(command[0]);
        return (Holder){.pid = pid, .report = report[0], .command = command[1]};
}

static Holder holder_start(Protocol protocol, int process_number)
{
        return child_start(holder_main, protocol, process_number);
}

/* The child's next report line: kind and value. */
static char holder_next(Holder *h, long long *value)
{
        struct pollfd pfd = {.fd = h->report, .events = POLLIN};
        cr_assert_gt(poll(&pfd, 1, EVENT_TIMEOUT_MS), 0, "holder %d did not report", h->pid);
        char line[64] = {0};
        size_t len = 0;
        while (len < sizeof(line) - 1) {
                ssize_t n = read(h->report, line + len, 1);
                if (n <= 0)
                        break;
                if (line[len++] == '\n')
                        break;
        }
        cr_assert_gt(len, 2, "holder %d reported nothing", h->pid);
        *value = atoll(line + 2);
        return line[0];
}

static void holder_tell(Holder *h, char word)
{
        cr_assert_eq(write(h->command, &word, 1), 1);
}

static void holder_finish(Holder *h)
{
        if (h->pid > 0) {
                close(h->command);
                close(h->report);
                waitpid(h->pid, NULL, 0);
                h->pid = 0;
        }
}

static char *root_attribute(const char *name)
{
        return harness_attribute(harness.mnt, name);
}

/* The mount's user.mailbag.locks once it lists nothing, or as it stands
 * after EVENT_TIMEOUT_MS: the kernel sends a handle's RELEASE after
 * close() returned, even after its process exited. */
static char *root_locks_settled(void)
{
        char *locks = root_attribute("user.mailbag.locks");
        for (int elapsed = 0; locks && locks[0] && elapsed < EVENT_TIMEOUT_MS; elapsed += 5) {
                g_usleep(5000);
                g_free(locks);
                locks = root_attribute("user.mailbag.locks");
        }
        return locks;
}

/* Waits until the daemon lists @pid as waiting for something. */
static void wait_until_waiting(pid_t pid)
{
        g_autofree char *needle = g_strdup_printf("%d", pid);
        for (int elapsed = 0; elapsed < EVENT_TIMEOUT_MS; elapsed += 5) {
                g_autofree char *locks = root_attribute("user.mailbag.locks");
                const char *waiting = locks ? strstr(locks, "waiting=") : NULL;
                for (; waiting; waiting = strstr(waiting + 1, "waiting=")) {
                        const char *end = strchr(waiting, '\n');
                        g_autofree char *list = g_strndup(waiting + 8, end ? (gsize)(end - waiting - 8) : strlen(waiting + 8));
                        g_auto(GStrv) pids = g_strsplit(list, ",", -1);
                        for (char **p = pids; *p; p++)
                                if (g_str_equal(*p, needle))
                                        return;
                }
                g_usleep(5000);
        }
        cr_assert_fail("process %d never showed up as a waiter", pid);
}

/* The sample postoffice with a user's mailbag, mounted. */
static void mount_with(const char *const *args)
{
        mount_fixture_setup(&harness);
        harness_make_postoffice(harness.backing);
        harness_make_mailbag(harness.backing, "0000001A");
        mount_fixture_mount(&harness, args);
}

static void mount_default(void)
{
        const char *args[] = {"-olock_timeout=60", NULL};
        mount_with(args);
}

static void unmount_expect_quiet(void)
{
        mount_fixture_stop(&harness, NULL);
}

static void unmount_any(void)
{
        mount_harness_teardown(&harness);
}

/* Until @h either shows up as a waiter (true) or reports a refusal
 * (false, with the errno in @error). */
static bool wait_until_waiting_or_refused(Holder *h, long long *error)
{
        g_autofree char *needle = g_strdup_printf("%d", h->pid);
        for (int elapsed = 0; elapsed < EVENT_TIMEOUT_MS; elapsed += 5) {
                struct pollfd pfd = {.fd = h->report, .events = POLLIN};
                if (poll(&pfd, 1, 5) > 0) {
                        char kind = holder_next(h, error);
                        cr_assert_eq(kind, 'E', "holder %d got the lock while it was held", h->pid);
                        return false;
                }
                g_autofree char *locks = root_attribute("user.mailbag.locks");
                const char *waiting = locks ? strstr(locks, " waiting=") : NULL;
                if (waiting && strstr(waiting, needle))
                        return true;
        }
        cr_assert_fail("holder %d neither waited nor was refused", h->pid);
        return false;
}

/* First holds; second must not get its lock until the first let go: it
 * waits, or, when its claim creates a file (which never queues, see
 * ops-file.c), it is refused at once and gets the lock when it tries again
 * after the release. Returns whether the second was refused. */
static bool check_exclusion(Protocol first_protocol, Protocol second_protocol)
{
        Holder first = holder_start(first_protocol, 1);
        long long t;
        char kind = holder_next(&first, &t);
        cr_assert_eq(kind, 'A', "%s could not take the free queue: %s",
                     protocol_name(first_protocol), g_strerror((int)t));

        Holder second = holder_start(second_protocol, 2);
        long long error = 0;
        bool waited = wait_until_waiting_or_refused(&second, &error);
        if (!waited) {
                cr_assert_eq(error, EBUSY, "%s refused with %s", protocol_name(second_protocol),
                             g_strerror((int)error));
                holder_finish(&second);
        }

        holder_tell(&first, 'R');
        long long released;
        cr_assert_eq(holder_next(&first, &released), 'R');
        if (!waited)
                second = holder_start(second_protocol, 2);
        long long acquired;
        kind = holder_next(&second, &acquired);
        cr_assert_eq(kind, 'A', "%s after %s: %s", protocol_name(second_protocol),
                     protocol_name(first_protocol), kind == 'E' ? g_strerror((int)acquired) : "?");
        cr_expect_geq(acquired, released, "%s and %s overlapped", protocol_name(first_protocol),
                      protocol_name(second_protocol));
        holder_tell(&second, 'R');
        holder_next(&second, &t);
        holder_finish(&first);
        holder_finish(&second);
        return !waited;
}

Test(mailbag_locks, every_protocol_excludes_every_other, .init = mount_default,
     .fini = unmount_expect_quiet, .timeout = 240)
{
        Protocol queue_protocols[] = {PROTO_SESSION_FILE, PROTO_V20, PROTO_QUEUE_READ};
        int refused = 0, pairs = 0;
        for (size_t a = 0; a < G_N_ELEMENTS(queue_protocols); a++) {
                for (size_t b = 0; b < G_N_ELEMENTS(queue_protocols); b++) {
                        refused += check_exclusion(queue_protocols[a], queue_protocols[b]);
                        pairs++;
                }
        }
        /* Every -V20 claim creates its lock file, so those were refused;
         * the others waited. */
        cr_expect_eq(refused, 3);

        /* Nothing is left held, and the counters agree. */
        g_autofree char *locks = root_locks_settled();
        cr_expect_str_empty(locks, "leases left: %s", locks);
        g_autofree char *stats = root_attribute("user.mailbag.stats");
        g_autofree char *waits = g_strdup_printf("waits=%d ", pairs - refused);
        g_autofree char *refusals = g_strdup_printf("refused=%d ", refused);
        g_autofree char *granted = g_strdup_printf("waited_granted=%d ", pairs - refused);
        cr_expect(strstr(stats, waits), "stats: %s", stats);
        /* Refused at once and waited-then-granted, apart; none ran out. */
        cr_expect(strstr(stats, refusals), "stats: %s", stats);
        cr_expect(strstr(stats, granted), "stats: %s", stats);
        cr_expect(strstr(stats, " timeouts=0 "), "stats: %s", stats);
}

Test(mailbag_locks, exclusive_glb_file, .init = mount_default, .fini = unmount_expect_quiet,
     .timeout = 120)
{
        cr_expect_not(check_exclusion(PROTO_CONTROL_GLB, PROTO_CONTROL_GLB));
}

Test(mailbag_locks, producer_appends_while_session_held, .init = mount_default,
     .fini = unmount_expect_quiet, .timeout = 120)
{
        Holder consumer = holder_start(PROTO_SESSION_FILE, 1);
        long long t;
        cr_assert_eq(holder_next(&consumer, &t), 'A');

        /* A producer in another process: the KEY write section and the
         * MBG are not the session, so its appends go through at once. */
        pid_t producer = fork();
        cr_assert_geq(producer, 0);
        if (producer == 0) {
                g_autofree char *key = g_build_filename(harness.mnt, "KEY", "INQUEUE3.KEY", NULL);
                g_autofree char *mbg = g_build_filename(harness.mnt, "MBG", "INQUEUE3.MBG", NULL);
                for (int i = 0; i < 20; i++) {
                        int key_fd = open(key, O_RDWR);
                        int mbg_fd = open(mbg, O_RDWR);
                        if (key_fd < 0 || mbg_fd < 0)
                                _exit(10 + i);
                        uint8_t record[PO_MAILBAG_RECORD_SIZE] = {0};
                        PoRecord fields = {.has_message_number = true, .message_number = 0x100 + i};
                        po_record_encode(record, &fields);
                        if (po_mailbag_append_fds(key_fd, mbg_fd, record, key, mbg, NULL) != i)
                                _exit(40 + i);
                        close(key_fd);
                        close(mbg_fd);
                }
                _exit(0);
        }
        int status = 0;
        cr_assert_eq(waitpid(producer, &status, 0), producer);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "producer failed with %d",
                  WEXITSTATUS(status));

        /* The consumer held the session all along. */
        g_autofree char *locks = root_attribute("user.mailbag.locks");
        g_autofree char *holder = g_strdup_printf("session INQUEUE3 held postoffice=. pid=%d ", consumer.pid);
        cr_expect(strstr(locks, holder), "locks: %s", locks);

        g_autofree char *key = g_build_filename(harness.mnt, "KEY", "INQUEUE3.KEY", NULL);
        char records[256] = {0};
        cr_assert_gt(getxattr(key, "user.mailbag.records", records, sizeof(records) - 1), 0);
        cr_expect(strstr(records, "live=20 "), "records: %s", records);
        holder_tell(&consumer, 'R');
        holder_next(&consumer, &t);
        holder_finish(&consumer);
}

Test(mailbag_locks, attributes_show_holder_and_waiters, .init = mount_default,
     .fini = unmount_expect_quiet, .timeout = 120)
{
        Holder first = holder_start(PROTO_SESSION_FILE, 1);
        long long t;
        cr_assert_eq(holder_next(&first, &t), 'A');
        Holder second = holder_start(PROTO_QUEUE_READ, 2);
        wait_until_waiting(second.pid);

        g_autofree char *key = g_build_filename(harness.mnt, "KEY", "INQUEUE3.KEY", NULL);
        char lock[1024] = {0};
        cr_assert_gt(getxattr(key, "user.mailbag.lock", lock, sizeof(lock) - 1), 0);
        g_autofree char *expected = g_strdup_printf(
                "session INQUEUE3 held postoffice=. pid=%d program=test-mailbag-l", first.pid);
        cr_expect(g_str_has_prefix(lock, expected), "lock: %s", lock);
        cr_expect(strstr(lock, " protocol=0LK "), "lock: %s", lock);
        g_autofree char *waiting = g_strdup_printf(" waiters=1 waiting=%d\n", second.pid);
        cr_expect(strstr(lock, waiting), "lock: %s", lock);
        cr_expect(strstr(lock, "key-write INQUEUE3 free postoffice=.\n"), "lock: %s", lock);

        /* The same view from the lock file, and listed by name. */
        g_autofree char *lockfile = g_build_filename(harness.mnt, "P1", "INQUEUE3.0LK", NULL);
        char names[512] = {0};
        ssize_t len = listxattr(lockfile, names, sizeof(names));
        cr_expect_gt(len, 0);
        cr_expect(memmem(names, (size_t)len, "user.mailbag.lock", sizeof("user.mailbag.lock")),
                  "not listed");

        holder_tell(&first, 'R');
        holder_next(&first, &t);
        cr_assert_eq(holder_next(&second, &t), 'A');
        holder_tell(&second, 'R');
        holder_next(&second, &t);
        holder_finish(&first);
        holder_finish(&second);

        /* The kernel sends RELEASE after close() has returned, even after
         * the process is gone, so the hold ends a moment later. */
        const char *all_free = "session INQUEUE3 free postoffice=.\nkey-write INQUEUE3 free postoffice=.\n";
        char after[1024] = {0};
        for (int elapsed = 0; elapsed < EVENT_TIMEOUT_MS; elapsed += 5) {
                memset(after, 0, sizeof(after));
                cr_assert_gt(getxattr(key, "user.mailbag.lock", after, sizeof(after) - 1), 0);
                if (g_str_equal(after, all_free))
                        break;
                g_usleep(5000);
        }
        cr_expect_str_eq(after, all_free);
}

/* A killed holder's hold is reclaimed at once; a killed -V20 holder's lock
 * file is removed, so other -V20 programs do not see a ghost lock. */
Test(mailbag_locks, killed_holder_lets_the_waiter_in, .init = mount_default,
     .fini = unmount_any, .timeout = 120)
{
        Protocol holders[] = {PROTO_SESSION_FILE, PROTO_V20};
        for (size_t i = 0; i < G_N_ELEMENTS(holders); i++) {
                Holder victim = holder_start(holders[i], 7);
                long long t;
                cr_assert_eq(holder_next(&victim, &t), 'A');
                Holder waiter = holder_start(PROTO_QUEUE_READ, 8);
                wait_until_waiting(waiter.pid);

                kill(victim.pid, SIGKILL);
                holder_finish(&victim);
                cr_assert_eq(holder_next(&waiter, &t), 'A', "%s: waiter not let in",
                             protocol_name(holders[i]));
                holder_tell(&waiter, 'R');
                holder_next(&waiter, &t);
                holder_finish(&waiter);
        }
        g_autofree char *ghost = g_build_filename(harness.backing, "P1", "INQUEUE3.007", NULL);
        cr_expect_neq(access(ghost, F_OK), 0, "the dead -V20 holder's lock file is still there");
        g_autofree char *stats = root_attribute("user.mailbag.stats");
        /* Only the lock file was stale: the killed process's open handle
         * was closed by the kernel, as for any process that exits. */
        cr_expect(strstr(stats, "stale_reclaimed=1 "), "stats: %s", stats);
        g_autofree char *problems = mount_harness_log_problems(&harness);
        if (mount_harness_has_log(&harness))
                cr_expect(problems && strstr(problems, "reclaimed stale lock file P1/INQUEUE3.007"),
                          "log: %s", problems);
}

/* In the child: a DOS program under DOSBox (its process name is the
 * emulator's) creates its lock file, then a file of its own, and writes
 * it; each step is reported ("A", "W", or "E <errno>"). */
static void dos_writer_main(Protocol protocol, int process_number, int report, int command)
{
        (void)protocol;
        (void)process_number;
        (void)command;
        harness_name_process("dosbox");
        g_autofree char *lock = g_build_filename(harness.mnt, "P1", "INQUEUE3.0LK", NULL);
        int lock_fd = open(lock, O_RDWR | O_CREAT, 0644);
        if (lock_fd < 0) {
                child_report(report, 'E', errno);
                _exit(0);
        }
        child_report(report, 'A', now_ns());
        g_autofree char *own = g_build_filename(harness.mnt, "P1", "00000DOS.TMP", NULL);
        int fd = open(own, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || pwrite(fd, "inside", 6, 0) != 6) {
                child_report(report, 'E', errno);
                _exit(0);
        }
        child_report(report, 'W', now_ns());
        close(fd);
        close(lock_fd);
        unlink(lock);
        _exit(0);
}

/* How many times process @pid waits now, by the daemon's view. */
static int waits_of(pid_t pid)
{
        g_autofree char *needle = g_strdup_printf("%d", pid);
        g_autofree char *locks = root_attribute("user.mailbag.locks");
        int count = 0;
        for (const char *w = locks ? strstr(locks, "waiting=") : NULL; w; w = strstr(w + 1, "waiting=")) {
                const char *end = strchr(w, '\n');
                g_autofree char *list = g_strndup(w + 8, end ? (gsize)(end - w - 8) : strlen(w + 8));
                g_auto(GStrv) pids = g_strsplit(list, ",", -1);
                for (char **p = pids; *p; p++)
                        count += g_str_equal(*p, needle);
        }
        return count;
}

/* DOSBox's create is answered before its lease comes (the kernel holds
 * the folder meanwhile), and the program stays in line. A file it creates
 * before its turn is made, but what it writes there lands in its turn:
 * never while another program is inside, and nothing is lost. */
Test(mailbag_locks, a_deferred_dos_programs_new_file_is_written_in_its_turn,
     .init = mount_default, .fini = unmount_expect_quiet, .timeout = 120)
{
        Holder gateway = holder_start(PROTO_QUEUE_READ, 1);
        long long t;
        cr_assert_eq(holder_next(&gateway, &t), 'A');

        Holder dos = child_start(dos_writer_main, PROTO_SESSION_FILE, 2);
        pid_t pid = dos.pid;
        cr_assert_eq(holder_next(&dos, &t), 'A', "the create is answered while the queue is held");

        /* Its file is made; its write waits in line beside the create's
         * own deferred claim. */
        g_autofree char *made = g_build_filename(harness.backing, "P1", "00000DOS.TMP", NULL);
        int elapsed = 0;
        for (; (access(made, F_OK) < 0 || waits_of(pid) < 2) && elapsed < EVENT_TIMEOUT_MS; elapsed += 5)
                g_usleep(5000);
        cr_assert_lt(elapsed, EVENT_TIMEOUT_MS, "the program's write never waited: locks %s",
                     root_attribute("user.mailbag.locks"));
        struct stat st;
        cr_assert_eq(stat(made, &st), 0);
        cr_expect_eq(st.st_size, 0, "the write landed while the gateway held the queue");

        holder_tell(&gateway, 'R');
        long long released;
        cr_assert_eq(holder_next(&gateway, &released), 'R');
        long long written;
        cr_assert_eq(holder_next(&dos, &written), 'W', "the write failed with errno %lld", written);
        cr_expect_gt(written, released, "the write returned before the gateway let go");
        holder_finish(&gateway);
        holder_finish(&dos);

        g_autofree char *text = NULL;
        cr_assert(g_file_get_contents(made, &text, NULL, NULL));
        cr_expect_str_eq(text, "inside", "what the program wrote in its turn");
        g_autofree char *locks = root_locks_settled();
        cr_expect_str_empty(locks, "locks left: %s", locks);
}

/* The kernel caches names for cache_timeout: a dead holder's lock file
 * that the daemon removed must not stay visible, or the next -V20 program
 * that looks for lock files (access, stat) believes the queue is still
 * locked. (An O_EXCL create is safe anyway: FUSE looks the name up again
 * for it.) With a minute's cache, only the daemon's invalidation makes the
 * name go. */
static void mount_long_cache(void)
{
        const char *args[] = {"-olock_timeout=60,cache_timeout=60", NULL};
        mount_with(args);
}

Test(mailbag_locks, reclaimed_lock_file_is_forgotten_by_the_kernel, .init = mount_long_cache,
     .fini = unmount_any, .timeout = 120)
{
        Holder victim = holder_start(PROTO_V20, 7);
        long long t;
        cr_assert_eq(holder_next(&victim, &t), 'A');
        g_autofree char *lock = g_build_filename(harness.mnt, "P1", "INQUEUE3.007", NULL);
        cr_assert_eq(access(lock, F_OK), 0, "the kernel now caches the name");
        kill(victim.pid, SIGKILL);
        holder_finish(&victim);

        bool gone = false;
        for (int elapsed = 0; !gone && elapsed < EVENT_TIMEOUT_MS; elapsed += 10) {
                gone = access(lock, F_OK) < 0 && errno == ENOENT;
                if (!gone)
                        g_usleep(10000);
        }
        cr_expect(gone, "the reclaimed lock file is still visible through the mount");
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0644);
        cr_assert_geq(fd, 0, "O_EXCL create of the reclaimed lock file: %s", g_strerror(errno));
        close(fd);
        cr_expect_eq(unlink(lock), 0);
}

/* A client killed while it waits leaves the queue at once (the daemon
 * answers the kernel's interrupt), not when its wait would time out. */
Test(mailbag_locks, killed_waiter_leaves_the_queue, .init = mount_default,
     .fini = unmount_expect_quiet, .timeout = 120)
{
        Holder holder = holder_start(PROTO_SESSION_FILE, 1);
        long long t;
        cr_assert_eq(holder_next(&holder, &t), 'A');
        Holder waiter = holder_start(PROTO_QUEUE_READ, 2);
        wait_until_waiting(waiter.pid);

        long long killed = now_ns();
        kill(waiter.pid, SIGKILL);
        holder_finish(&waiter);
        /* The wait would have lasted 60 s. */
        cr_expect_lt(now_ns() - killed, 30LL * 1000000000LL, "the killed waiter stayed stuck");
        g_autofree char *locks = root_attribute("user.mailbag.locks");
        cr_expect(strstr(locks, "waiters=0"), "locks: %s", locks);
        holder_tell(&holder, 'R');
        holder_next(&holder, &t);
        holder_finish(&holder);
}

/* Root breaks the queue over and over while a -V20 program creates and
 * removes its lock file. A break that lands between the grant and the
 * create's end refuses the create: the file it made must go with it, or
 * it stays as a lock that nobody holds and every other -V20 program
 * takes for one. A create that fails must leave no file behind. */
Test(mailbag_locks, create_refused_by_a_break_leaves_no_lock_file, .init = mount_default,
     .fini = unmount_any, .timeout = 120)
{
        g_autofree char *lockfile = g_build_filename(harness.mnt, "P1", "INQUEUE3.001", NULL);
        g_autofree char *backing = g_build_filename(harness.backing, "P1", "INQUEUE3.001", NULL);
        g_autofree char *key = g_build_filename(harness.mnt, "KEY", "INQUEUE3.KEY", NULL);
        int report[2];
        cr_assert_eq(pipe(report), 0);
        pid_t creator = fork();
        cr_assert_geq(creator, 0);
        if (creator == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(report[0]);
                long counts[3] = {0}; /* created, refused, refused but left behind */
                for (long long end = now_ns() + 3000000000LL; now_ns() < end;) {
                        int fd = open(lockfile, O_WRONLY | O_CREAT | O_EXCL, 0644);
                        if (fd >= 0) {
                                counts[0]++;
                                close(fd);
                                unlink(lockfile); /* ENOENT when a break removed it */
                                continue;
                        }
                        counts[1]++;
                        if (access(backing, F_OK) == 0) {
                                counts[2]++;
                                unlink(backing);
                        }
                }
                _exit(write(report[1], counts, sizeof(counts)) == sizeof(counts) ? 0 : 1);
        }
        close(report[1]);
        long breaks = 0;
        struct pollfd pfd = {.fd = report[0], .events = POLLIN};
        while (poll(&pfd, 1, 0) == 0)
                if (setxattr(key, "user.mailbag.break", "1", 1, 0) == 0)
                        breaks++;
        long counts[3] = {0};
        cr_assert_eq(read(report[0], counts, sizeof(counts)), (ssize_t)sizeof(counts));
        close(report[0]);
        int status = 0;
        waitpid(creator, &status, 0);
        cr_log_info("%ld creates, %ld refused, %ld breaks", counts[0], counts[1], breaks);
        cr_expect_gt(counts[0], 0, "no create got through");
        cr_expect_gt(breaks, 0, "no break landed");
        cr_expect_eq(counts[2], 0, "%ld of %ld refused creates left their lock file behind",
                     counts[2], counts[1]);
}

/* A -V20 lock file is the lock by its existence, and its hold begins with
 * the create that makes it. Any other way to put a file under such a name
 * would make a lock that nobody holds, so each is refused; names of other
 * forms, and renames away from a lock file's name, are not. */
Test(mailbag_locks, lock_file_names_are_made_only_by_create, .init = mount_default,
     .fini = unmount_expect_quiet, .timeout = 120)
{
        g_autofree char *p1 = g_build_filename(harness.mnt, "P1", NULL);
        g_autofree char *lock = g_build_filename(p1, "INQUEUE3.001", NULL);
        g_autofree char *other = g_build_filename(p1, "NOTALOCK.TMP", NULL);
        cr_assert(g_file_set_contents(other, "x", 1, NULL));

        cr_expect_eq(rename(other, lock), -1, "rename made a lock file");
        cr_expect_eq(errno, EACCES, "rename: %s", g_strerror(errno));
        cr_expect_eq(link(other, lock), -1, "link made a lock file");
        cr_expect_eq(errno, EACCES, "link: %s", g_strerror(errno));
        cr_expect_eq(symlink("NOTALOCK.TMP", lock), -1, "symlink made a lock file");
        cr_expect_eq(errno, EACCES, "symlink: %s", g_strerror(errno));
        cr_expect_eq(mkdir(lock, 0755), -1, "mkdir made a lock file");
        cr_expect_eq(errno, EACCES, "mkdir: %s", g_strerror(errno));
        cr_expect_eq(mknod(lock, S_IFREG | 0644, 0), -1, "mknod made a lock file");
        cr_expect_eq(errno, EACCES, "mknod: %s", g_strerror(errno));
        g_autofree char *backing = g_build_filename(harness.backing, "P1", "INQUEUE3.001", NULL);
        struct stat st;
        cr_expect_eq(lstat(backing, &st), -1, "a lock file was left on the share");

        /* A create makes it, with its hold; renamed away, it holds no more. */
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0644);
        cr_assert_geq(fd, 0, "create: %s", g_strerror(errno));
        close(fd);
        g_autofree char *held = root_attribute("user.mailbag.locks");
        cr_expect(strstr(held, "session INQUEUE3 held"), "locks: %s", held);
        g_autofree char *moved = g_build_filename(p1, "MOVED.TMP", NULL);
        cr_expect_eq(rename(lock, moved), 0, "rename away: %s", g_strerror(errno));
        g_autofree char *after = root_attribute("user.mailbag.locks");
        cr_expect(!strstr(after, "session INQUEUE3 held"), "locks: %s", after);
        cr_expect_eq(rename(moved, other), 0, "rename of other names: %s", g_strerror(errno));
        unlink(other);
}

static void mount_short_timeout(void)
{
        const char *args[] = {"-olock_timeout=1", NULL};
        mount_with(args);
}

/* A claim on an existing file waits in line for lock_timeout, then fails
 * with EBUSY; a claim that creates its lock file is refused at once (a
 * create holds the directory's lock, see ops-file.c). */
Test(mailbag_locks, wait_times_out_with_ebusy, .init = mount_short_timeout,
     .fini = unmount_any, .timeout = 120)
{
        Holder holder = holder_start(PROTO_SESSION_FILE, 1);
        long long t;
        cr_assert_eq(holder_next(&holder, &t), 'A');

        Holder late = holder_start(PROTO_QUEUE_READ, 2);
        long long error;
        cr_assert_eq(holder_next(&late, &error), 'E');
        cr_expect_eq(error, EBUSY, "got %s", g_strerror((int)error));
        holder_finish(&late);
        g_autofree char *after_wait = root_attribute("user.mailbag.stats");
        cr_expect(strstr(after_wait, "waits=1 "), "the open never waited: %s", after_wait);
        cr_expect(strstr(after_wait, " timeouts=1 "), "stats: %s", after_wait);
        /* Its wait is in the histogram of waits that ran out. */
        cr_expect(strstr(after_wait, "wait_timeout_ms=") &&
                          strstr(after_wait, ",inf:1 wait_timeout_sum_ms="),
                  "stats: %s", after_wait);

        Holder creator = holder_start(PROTO_V20, 3);
        cr_assert_eq(holder_next(&creator, &error), 'E');
        cr_expect_eq(error, EBUSY, "got %s", g_strerror((int)error));
        holder_finish(&creator);
        g_autofree char *after_create = root_attribute("user.mailbag.stats");
        cr_expect(strstr(after_create, "waits=1 "), "the create waited: %s", after_create);
        cr_expect(strstr(after_create, "refused=1 "), "stats: %s", after_create);
        cr_expect(strstr(after_create, " timeouts=1 "), "stats: %s", after_create);

        holder_tell(&holder, 'R');
        holder_next(&holder, &t);
        holder_finish(&holder);
}

/* A holds CONTROL.GLB; B holds the queue and waits for CONTROL.GLB; when
 * A then asks for the queue, waiting would deadlock: refused at once. */
Test(mailbag_locks, deadlock_is_refused, .init = mount_default, .fini = unmount_any,
     .timeout = 120)
{
        Holder a = holder_start(PROTO_CONTROL_GLB, 1);
        long long t;
        cr_assert_eq(holder_next(&a, &t), 'A');

        /* B: the queue first, then CONTROL.GLB in the same process. */
        int report[2], command[2];
        cr_assert_eq(pipe2(report, O_CLOEXEC), 0);
        cr_assert_eq(pipe2(command, O_CLOEXEC), 0);
        pid_t b = fork();
        cr_assert_geq(b, 0);
        if (b == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(report[0]);
                close(command[1]);
                g_autofree char *key = g_build_filename(harness.mnt, "KEY", "INQUEUE3.KEY", NULL);
                g_autofree char *glb = g_build_filename(harness.mnt, "GLB", "CONTROL.GLB", NULL);
                int queue = open(key, O_RDONLY);
                child_report(report[1], queue < 0 ? 'E' : 'A', queue < 0 ? errno : 0);
                int control = open(glb, O_RDWR); /* waits for A */
                child_report(report[1], control < 0 ? 'E' : 'A', control < 0 ? errno : 0);
                char byte;
                if (read(command[0], &byte, 1) < 0)
                        _exit(4);
                _exit(0);
        }
        close(report[1]);
        close(command[0]);
        Holder holder_b = {.pid = b, .report = report[0], .command = command[1]};
        cr_assert_eq(holder_next(&holder_b, &t), 'A');
        wait_until_waiting(b);

        holder_tell(&a, 'D');
        long long error;
        cr_assert_eq(holder_next(&a, &error), 'E', "A was given the queue");
        cr_expect_eq(error, EDEADLK, "got %s", g_strerror((int)error));

        holder_tell(&a, 'R');
        holder_next(&a, &t);
        cr_expect_eq(holder_next(&holder_b, &t), 'A', "B never got CONTROL.GLB");
        holder_finish(&a);
        holder_finish(&holder_b);
        g_autofree char *stats = root_attribute("user.mailbag.stats");
        cr_expect(strstr(stats, "deadlocks=1 "), "stats: %s", stats);
}

static void mount_v20_none(void)
{
        const char *args[] = {"-ov20=none", NULL};
        mount_with(args);
}

/* KB Q103960: -V20 on all MTAs or none. A -V20 program on a postoffice
 * declared v20=none is still served and serialised, but warned about once
 * and counted. */
Test(mailbag_locks, v20_misconfiguration_is_reported, .init = mount_v20_none,
     .fini = unmount_any, .timeout = 120)
{
        Holder v20 = holder_start(PROTO_V20, 3);
        long long t;
        cr_assert_eq(holder_next(&v20, &t), 'A');
        holder_tell(&v20, 'R');
        holder_next(&v20, &t);
        holder_finish(&v20);

        g_autofree char *stats = root_attribute("user.mailbag.stats");
        cr_expect(strstr(stats, "mixed_protocol=1 "), "stats: %s", stats);
        g_autofree char *problems = mount_harness_log_problems(&harness);
        if (mount_harness_has_log(&harness))
                cr_expect(problems && strstr(problems, "misconfigured MTA"), "log: %s", problems);
}

Test(mailbag_locks, break_needs_root_and_a_valid_value, .init = mount_default,
     .fini = unmount_any, .timeout = 120)
{
        Holder hung = holder_start(PROTO_SESSION_FILE, 1);
        long long t;
        cr_assert_eq(holder_next(&hung, &t), 'A');
        g_autofree char *lockfile = g_build_filename(harness.mnt, "P1", "INQUEUE3.0LK", NULL);

        const char *hostile[] = {"0", "11", "yes", "1\n\n", ""};
        for (size_t i = 0; i < G_N_ELEMENTS(hostile); i++) {
                cr_expect_eq(setxattr(lockfile, "user.mailbag.break", hostile[i], strlen(hostile[i]), 0), -1);
                cr_expect_eq(errno, EINVAL, "value '%s': %s", hostile[i], g_strerror(errno));
        }
        cr_expect_eq(setxattr(lockfile, "user.mailbag.locks", "1", 1, 0), -1);
        cr_expect_eq(errno, EPERM);

        pid_t unprivileged = fork();
        if (unprivileged == 0) {
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                int r = setxattr(lockfile, "user.mailbag.break", "1", 1, 0);
                _exit(r == 0 ? 0 : (errno == EPERM || errno == EACCES) ? 1 : 3);
        }
        int status;
        waitpid(unprivileged, &status, 0);
        cr_expect_eq(WEXITSTATUS(status), 1, "an unprivileged break was not refused");

        cr_expect_eq(setxattr(lockfile, "user.mailbag.break", "1", 1, 0), 0);
        g_autofree char *locks = root_attribute("user.mailbag.locks");
        cr_expect_str_empty(locks, "still held: %s", locks);
        cr_expect_eq(setxattr(lockfile, "user.mailbag.break", "1", 1, 0), -1);
        cr_expect_eq(errno, ENODATA);

        holder_tell(&hung, 'R');
        holder_next(&hung, &t);
        holder_finish(&hung);
}

/* Waiting occupies no worker thread: with many more waiters than the
 * daemon has threads (libfuse's default is 10), the holder's close and
 * every other request still get through, and every waiter gets its turn. */
Test(mailbag_locks, more_waiters_than_threads, .init = mount_default,
     .fini = unmount_expect_quiet, .timeout = 300)
{
        enum { WAITERS = 40 };
        Holder holder = holder_start(PROTO_SESSION_FILE, 1);
        long long t;
        cr_assert_eq(holder_next(&holder, &t), 'A');

        Holder waiters[WAITERS];
        for (int i = 0; i < WAITERS; i++)
                waiters[i] = holder_start(PROTO_QUEUE_READ, 2 + i);
        for (int i = 0; i < WAITERS; i++)
                wait_until_waiting(waiters[i].pid);

        /* The filesystem still answers while all of them wait. */
        g_autofree char *other = g_build_filename(harness.mnt, "MBG", "INQUEUE3.MBG", NULL);
        struct stat st;
        cr_expect_eq(stat(other, &st), 0);
        g_autofree char *scratch = g_build_filename(harness.mnt, "P1", "00000001.P1", NULL);
        cr_expect(g_file_set_contents(scratch, "P1", 2, NULL));

        /* The line as the daemon holds it: first in, first out. */
        g_autofree char *locks = root_attribute("user.mailbag.locks");
        const char *list = strstr(locks, " waiting=");
        cr_assert_not_null(list, "locks: %s", locks);
        g_autofree char *pids_text = g_strndup(list + 9, strcspn(list + 9, "\n"));
        g_auto(GStrv) order = g_strsplit(pids_text, ",", -1);
        cr_assert_eq(g_strv_length(order), WAITERS, "line: %s", pids_text);

        holder_tell(&holder, 'R');
        cr_assert_eq(holder_next(&holder, &t), 'R');
        /* Each waiter gets the queue in its turn, after the one before it
         * let go. */
        long long previous_release = t;
        for (int turn = 0; turn < WAITERS; turn++) {
                Holder *next = NULL;
                for (int i = 0; i < WAITERS && !next; i++)
                        if (waiters[i].pid == atoi(order[turn]))
                                next = &waiters[i];
                cr_assert_not_null(next, "pid %s is not one of ours", order[turn]);
                long long acquired, released;
                cr_assert_eq(holder_next(next, &acquired), 'A', "turn %d", turn);
                cr_expect_geq(acquired, previous_release, "turn %d overlapped", turn);
                holder_tell(next, 'R');
                cr_assert_eq(holder_next(next, &released), 'R');
                previous_release = released;
        }
        for (int i = 0; i < WAITERS; i++)
                holder_finish(&waiters[i]);
        holder_finish(&holder);
}

/* --- observe mode: served as a plain share would be, overlaps counted. */

static void mount_observing(void)
{
        const char *args[] = {"-omode=observe,lock_timeout=1", NULL};
        mount_with(args);
}

/* The daemon says it observes at start and when switched: expected. */
static void unmount_observed(void)
{
        mount_fixture_stop(&harness, "mode");
}

/* The value of @field in the first line of @text that starts with @word. */
static guint64 stats_field(const char *text, const char *word, const char *field)
{
        g_autofree char *key = g_strdup_printf(" %s=", field);
        for (const char *line = text; line && *line; line = strchr(line, '\n')) {
                while (*line == '\n')
                        line++;
                if (!g_str_has_prefix(line, word))
                        continue;
                const char *end = strchr(line, '\n');
                g_autofree char *one = g_strndup(line, end ? (gsize)(end - line) : strlen(line));
                const char *at = strstr(one, key);
                return at ? g_ascii_strtoull(at + strlen(key), NULL, 10) : G_MAXUINT64;
        }
        return G_MAXUINT64;
}

/* Observing, a gateway opens the queue while an External holds its
 * session file, at once as on a plain share (enforcing, it waits its
 * lock_timeout and is refused): the overlap is counted, with both
 * protocols, and logged with both programs. */
Test(observe, a_gateway_inside_an_externals_session_is_served_and_counted,
     .init = mount_observing, .fini = unmount_observed, .timeout = 120)
{
        g_autofree char *mode = root_attribute("user.mailbag.mode");
        cr_expect_str_eq(mode, "observe\n");

        Holder external = holder_start(PROTO_SESSION_FILE, 1);
        long long t;
        cr_assert_eq(holder_next(&external, &t), 'A');
        Holder gateway = holder_start(PROTO_QUEUE_READ, 2);
        long long v;
        char got = holder_next(&gateway, &v);
        cr_assert_eq(got, 'A', "the gateway was refused: %s", g_strerror((int)v));

        g_autofree char *stats = root_attribute("user.mailbag.stats");
        cr_expect_eq(stats_field(stats, "stats .", "overlaps"), 1, "stats: %s", stats);
        cr_expect_eq(stats_field(stats, "stats .", "refused"), 0, "stats: %s", stats);
        cr_expect_eq(stats_field(stats, "stats .", "timeouts"), 0, "stats: %s", stats);
        cr_expect(strstr(stats, "overlap . kind=session name=INQUEUE3 protocol=queue-read "
                                "other=0LK count=1\n"),
                  "stats: %s", stats);

        holder_tell(&gateway, 'R');
        cr_assert_eq(holder_next(&gateway, &t), 'R');
        holder_tell(&external, 'R');
        cr_assert_eq(holder_next(&external, &t), 'R');
        holder_finish(&gateway);
        holder_finish(&external);

        /* A detached daemon logs to syslog. */
        if (!mount_harness_has_log(&harness))
                return;
        g_autofree char *log = NULL;
        cr_assert(g_file_get_contents(harness.log, &log, NULL, NULL));
        cr_expect(strstr(log, "overlap on session INQUEUE3: pid "), "log: %s", log);
        cr_expect(strstr(log, ", queue-read) while pid ") && strstr(log, ", 0LK) holds it"),
                  "log: %s", log);
}

/* Enforcing, the same gateway is refused and nothing is an overlap. */
Test(observe, enforcing_counts_no_overlap, .init = mount_short_timeout, .fini = unmount_any,
     .timeout = 120)
{
        g_autofree char *mode = root_attribute("user.mailbag.mode");
        cr_expect_str_eq(mode, "enforce\n");
        Holder external = holder_start(PROTO_SESSION_FILE, 1);
        long long t;
        cr_assert_eq(holder_next(&external, &t), 'A');
        Holder gateway = holder_start(PROTO_QUEUE_READ, 2);
        long long error;
        cr_assert_eq(holder_next(&gateway, &error), 'E');
        cr_expect_eq(error, EBUSY);
        holder_finish(&gateway);
        g_autofree char *stats = root_attribute("user.mailbag.stats");
        cr_expect_eq(stats_field(stats, "stats .", "overlaps"), 0, "stats: %s", stats);
        cr_expect_null(strstr(stats, "overlap "), "stats: %s", stats);
        holder_tell(&external, 'R');
        holder_next(&external, &t);
        holder_finish(&external);
}

/* Switched to enforcing while two programs overlap inside the queue: a
 * newcomer waits until both are out, then gets in. Only root switches. */
Test(observe, a_switch_to_enforce_makes_newcomers_wait_for_everyone_inside,
     .init = mount_observing, .fini = unmount_observed, .timeout = 120)
{
        Holder external = holder_start(PROTO_SESSION_FILE, 1);
        long long t;
        cr_assert_eq(holder_next(&external, &t), 'A');
        Holder gateway = holder_start(PROTO_QUEUE_READ, 2);
        cr_assert_eq(holder_next(&gateway, &t), 'A');

        /* Not root: refused, nothing changes. */
        pid_t child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                /* The kernel's own permission check may refuse it first. */
                int r = setxattr(harness.mnt, "user.mailbag.mode", "enforce", 7, 0);
                _exit(r < 0 && (errno == EPERM || errno == EACCES) ? 0 : 1);
        }
        int status = 0;
        cr_assert_eq(waitpid(child, &status, 0), child);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a user switched the mode");
        cr_expect_neq(setxattr(harness.mnt, "user.mailbag.mode", "lax", 3, 0), 0);
        cr_expect_eq(errno, EINVAL);

        cr_assert_eq(setxattr(harness.mnt, "user.mailbag.mode", "enforce\n", 8, 0), 0,
                     "%s", g_strerror(errno));
        g_autofree char *mode = root_attribute("user.mailbag.mode");
        cr_expect_str_eq(mode, "enforce\n");

        /* lock_timeout is 1 s: a newcomer is refused while they are in. */
        Holder newcomer = holder_start(PROTO_QUEUE_READ, 3);
        long long error;
        cr_assert_eq(holder_next(&newcomer, &error), 'E');
        cr_expect_eq(error, EBUSY);
        holder_finish(&newcomer);

        holder_tell(&external, 'R');
        cr_assert_eq(holder_next(&external, &t), 'R');
        holder_finish(&external);
        /* The gateway, observed in, is still inside: still refused. */
        Holder second = holder_start(PROTO_SESSION_FILE, 4);
        cr_assert_eq(holder_next(&second, &error), 'E');
        cr_expect_eq(error, EBUSY);
        holder_finish(&second);

        holder_tell(&gateway, 'R');
        cr_assert_eq(holder_next(&gateway, &t), 'R');
        holder_finish(&gateway);
        /* Everyone out (the kernel's RELEASE comes after close()). */
        g_autofree char *settled = root_locks_settled();
        cr_expect_str_eq(settled, "");
        Holder last = holder_start(PROTO_QUEUE_READ, 5);
        long long v;
        cr_expect_eq(holder_next(&last, &v), 'A', "refused: %s", g_strerror((int)v));
        holder_tell(&last, 'R');
        holder_next(&last, &v);
        holder_finish(&last);

        if (!mount_harness_has_log(&harness))
                return;
        g_autofree char *log = NULL;
        cr_assert(g_file_get_contents(harness.log, &log, NULL, NULL));
        cr_expect(strstr(log, "mode switched from observe to enforce by pid "), "log: %s", log);
}
