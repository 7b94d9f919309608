/* test-security.c - a local user who can write in the backing directory
 * cannot turn the root daemon against files outside it, nor against files
 * inside it that he has no rights on.
 *
 * Each test runs a swap race: one process, as an ordinary user, swaps two
 * names in the backing directory over and over with RENAME_EXCHANGE while
 * another, as the same user, repeats one operation through the mount on
 * one of the names. The operation is bounded (a number of iterations or a
 * few seconds, whichever ends first). Afterwards the victim must be
 * exactly as it was; the operations may have failed with the errors a
 * changing name gives (ENOENT, ESTALE, ELOOP, EACCES...), never with a
 * broken mount. How long the victim took to change, when it did, is logged
 * as information only.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "mount-harness.h"

static MountHarness harness;

#define ATTACKER 65534
#define RACE_ITERATIONS 20000
#define RACE_SECONDS 3
#define VICTIM_CONTENT "root's secret, outside the share\n"
#define VICTIM_XATTR "user.victim"
#define VICTIM_XATTR_VALUE "untouched"
#define VICTIM_ONLY_XATTR "user.victim-only"
#define VICTIM_MTIME 1000000000

/* Shared between the parent and its two children. */
typedef struct {
        long swaps;
        long iterations;
        long successes;
        int bad_errno; /* first errno outside the expected set */
        int leaked;    /* iteration number + 1 at which victim data showed */
        long errors[134]; /* by errno */
} RaceCounters;

typedef enum {
        OP_CHMOD,
        OP_CHOWN,
        OP_UTIMENS,
        OP_TRUNCATE,
        OP_SETXATTR,
        OP_REMOVEXATTR,
        OP_GETXATTR,
        OP_LISTXATTR,
        OP_READLINK,
        OP_OPEN_READ,
        OP_OPEN_TRUNC,
} RaceOp;

static long long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void become_attacker(void)
{
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (setgroups(0, NULL) < 0 || setgid(ATTACKER) < 0 || setuid(ATTACKER) < 0)
                _exit(120);
}

/* What a victim looks like from outside; compared before and after. */
typedef struct {
        struct stat st;
        char *content;
        char *xattr_value;
        char *xattr_list;
        ssize_t xattr_list_len;
} Snapshot;

static void snapshot_take(const char *path, Snapshot *s)
{
        memset(s, 0, sizeof(*s));
        cr_assert_eq(lstat(path, &s->st), 0, "%s: %s", path, g_strerror(errno));
        if (S_ISREG(s->st.st_mode))
                cr_assert(g_file_get_contents(path, &s->content, NULL, NULL));
        char buf[1024];
        ssize_t n = lgetxattr(path, VICTIM_XATTR, buf, sizeof(buf) - 1);
        s->xattr_value = n >= 0 ? g_strndup(buf, (gsize)n) : NULL;
        s->xattr_list_len = llistxattr(path, buf, sizeof(buf));
        s->xattr_list = s->xattr_list_len >= 0 ? g_memdup2(buf, (gsize)s->xattr_list_len) : NULL;
}

static void snapshot_clear(Snapshot *s)
{
        g_free(s->content);
        g_free(s->xattr_value);
        g_free(s->xattr_list);
}

static bool snapshot_same_times(const Snapshot *a, const struct stat *st)
{
        return a->st.st_mtim.tv_sec == st->st_mtim.tv_sec &&
               a->st.st_mtim.tv_nsec == st->st_mtim.tv_nsec &&
               a->st.st_ctim.tv_sec == st->st_ctim.tv_sec &&
               a->st.st_ctim.tv_nsec == st->st_ctim.tv_nsec;
}

static void snapshot_expect_same(const Snapshot *before, const char *path)
{
        Snapshot after;
        snapshot_take(path, &after);
        cr_expect_eq(after.st.st_ino, before->st.st_ino, "%s was replaced", path);
        cr_expect_eq(after.st.st_mode, before->st.st_mode, "%s: mode %o, was %o", path,
                     after.st.st_mode, before->st.st_mode);
        cr_expect_eq(after.st.st_uid, before->st.st_uid, "%s: owner %u", path, after.st.st_uid);
        cr_expect_eq(after.st.st_gid, before->st.st_gid, "%s: group %u", path, after.st.st_gid);
        cr_expect_eq(after.st.st_size, before->st.st_size, "%s: size %lld", path,
                     (long long)after.st.st_size);
        cr_expect(snapshot_same_times(before, &after.st), "%s: times changed", path);
        cr_expect_str_eq(after.content ? after.content : "", before->content ? before->content : "",
                         "%s: content changed", path);
        cr_expect_str_eq(after.xattr_value ? after.xattr_value : "(none)",
                         before->xattr_value ? before->xattr_value : "(none)",
                         "%s: attribute changed", path);
        cr_expect(after.xattr_list_len == before->xattr_list_len &&
                          (after.xattr_list_len <= 0 ||
                           memcmp(after.xattr_list, before->xattr_list,
                                  (size_t)after.xattr_list_len) == 0),
                  "%s: attribute list changed", path);
        snapshot_clear(&after);
}

/* The scene: backing/pub belongs to the attacker and holds his file, with
 * an attribute of his own, and his symlink to a root-only victim in the
 * test directory, which is outside the backing directory and which he
 * cannot even reach himself (the test directory is mode 0700). */
static char *victim;
static Snapshot victim_before;
static int pub_fd = -1; /* the mount's pub, opened before dropping rights */

static void scene_setup(void)
{
        cr_assert_eq(mount_harness_setup(&harness), 0);
        cr_assert_eq(chmod(harness.dir, 0700), 0);
        victim = g_build_filename(harness.dir, "victim", NULL);
        cr_assert(g_file_set_contents(victim, VICTIM_CONTENT, -1, NULL));
        cr_assert_eq(chown(victim, 0, 0), 0);
        cr_assert_eq(chmod(victim, 0600), 0);
        cr_assert_eq(lsetxattr(victim, VICTIM_XATTR, VICTIM_XATTR_VALUE,
                               strlen(VICTIM_XATTR_VALUE), 0), 0,
                     "the test directory needs user attributes: %s", g_strerror(errno));
        cr_assert_eq(lsetxattr(victim, VICTIM_ONLY_XATTR, "1", 1, 0), 0);
        struct timespec times[2] = {{VICTIM_MTIME, 0}, {VICTIM_MTIME, 0}};
        cr_assert_eq(utimensat(AT_FDCWD, victim, times, 0), 0);

        g_autofree char *pub = g_build_filename(harness.backing, "pub", NULL);
        g_autofree char *file = g_build_filename(pub, "file", NULL);
        g_autofree char *link = g_build_filename(pub, "link", NULL);
        cr_assert_eq(mkdir(pub, 0755), 0);
        cr_assert_eq(chown(pub, ATTACKER, ATTACKER), 0);
        cr_assert(g_file_set_contents(file, "mine\n", -1, NULL));
        cr_assert_eq(chown(file, ATTACKER, ATTACKER), 0);
        cr_assert_eq(chmod(file, 0644), 0);
        /* The same name as the victim's attribute, another value. */
        cr_assert_eq(setxattr(file, VICTIM_XATTR, "mine", 4, 0), 0);
        cr_assert_eq(symlink(victim, link), 0);
        cr_assert_eq(lchown(link, ATTACKER, ATTACKER), 0);

        const char *args[] = {"-oallow_other", NULL};
        int r = mount_harness_mount(&harness, args);
        cr_assert_eq(r, 0, "mount failed: %s", g_strerror(-r));
        g_autofree char *mnt_pub = g_build_filename(harness.mnt, "pub", NULL);
        pub_fd = open(mnt_pub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        cr_assert_geq(pub_fd, 0, "%s: %s", mnt_pub, g_strerror(errno));
        snapshot_take(victim, &victim_before);
}

static void scene_teardown(void)
{
        if (pub_fd >= 0)
                close(pub_fd);
        pub_fd = -1;
        g_autofree char *problems = mount_harness_log_problems(&harness);
        int status = mount_harness_unmount(&harness);
        mount_harness_teardown(&harness);
        snapshot_clear(&victim_before);
        g_clear_pointer(&victim, g_free);
        cr_expect_null(problems, "daemon logged problems:\n%s", problems);
        cr_expect_eq(status, 0, "daemon exit status %d", status);
}

/* Swaps @a and @b in directory @dirfd until killed. */
static pid_t swapper_start(int dirfd, const char *a, const char *b, RaceCounters *counters)
{
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                become_attacker();
                for (;;) {
                        if (renameat2(dirfd, a, dirfd, b, RENAME_EXCHANGE) == 0)
                                __atomic_add_fetch(&counters->swaps, 1, __ATOMIC_RELAXED);
                }
        }
        return pid;
}

static void swapper_stop(pid_t pid)
{
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

static bool errno_expected(int error)
{
        switch (error) {
        case ENOENT: case ESTALE: case ELOOP: case EACCES: case EPERM: case EINVAL:
        case ENODATA: case EOPNOTSUPP: case ENOTDIR: case EISDIR: case EEXIST:
        case ENOTEMPTY: case ERANGE:
                return true;
        default:
                return false;
        }
}

/* One operation through the mount on the attacker's names; 0 or -errno,
 * and true in @leaked when victim data came back. */
static int race_op_once(RaceOp op, long i, bool *leaked)
{
        char file[64], link[64], buf[256];
        snprintf(file, sizeof(file), "/proc/self/fd/%d/file", pub_fd);
        snprintf(link, sizeof(link), "/proc/self/fd/%d/link", pub_fd);
        ssize_t n;
        int r = 0, fd;
        struct timespec times[2] = {{12345, 0}, {12345 + i, 0}};

        switch (op) {
        case OP_CHMOD:
                r = chmod(file, (i & 1) ? 0666 : 0644);
                break;
        case OP_CHOWN:
                r = chown(file, ATTACKER, ATTACKER);
                break;
        case OP_UTIMENS:
                r = utimensat(AT_FDCWD, file, times, 0);
                break;
        case OP_TRUNCATE:
                r = truncate(file, 0);
                break;
        case OP_SETXATTR:
                r = setxattr(file, VICTIM_XATTR, "changed", 7, 0);
                break;
        case OP_REMOVEXATTR:
                /* Put it back for the next round, whatever happened. */
                r = removexattr(file, VICTIM_XATTR);
                fd = errno;
                setxattr(file, VICTIM_XATTR, "mine", 4, 0);
                errno = fd;
                break;
        case OP_GETXATTR:
                n = getxattr(file, VICTIM_XATTR, buf, sizeof(buf));
                *leaked = n == (ssize_t)strlen(VICTIM_XATTR_VALUE) &&
                          memcmp(buf, VICTIM_XATTR_VALUE, (size_t)n) == 0;
                r = n < 0 ? -1 : 0;
                break;
        case OP_LISTXATTR:
                n = listxattr(file, buf, sizeof(buf));
                for (ssize_t at = 0; n > 0 && at < n; at += (ssize_t)strlen(buf + at) + 1)
                        *leaked |= g_str_equal(buf + at, VICTIM_ONLY_XATTR);
                r = n < 0 ? -1 : 0;
                break;
        case OP_READLINK:
                /* Whichever name holds the symlink now. Its target is no
                 * secret, but it is the only answer there can be. */
                n = readlink((i & 1) ? link : file, buf, sizeof(buf) - 1);
                *leaked = n >= 0 && (n != (ssize_t)strlen(victim) ||
                                     memcmp(buf, victim, (size_t)n) != 0);
                r = n < 0 ? -1 : 0;
                break;
        case OP_OPEN_READ:
        case OP_OPEN_TRUNC:
                fd = open(file, op == OP_OPEN_READ ? O_RDONLY : O_WRONLY | O_TRUNC);
                if (fd < 0)
                        return -errno;
                n = op == OP_OPEN_READ ? read(fd, buf, sizeof(buf)) : 0;
                *leaked = n > 0 && memmem(buf, (size_t)n, "secret", 6) != NULL;
                r = n < 0 ? -1 : 0;
                close(fd);
                break;
        }
        return r < 0 ? -errno : 0;
}

static pid_t racer_start(RaceOp op, RaceCounters *counters)
{
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                become_attacker();
                long long deadline = now_ms() + RACE_SECONDS * 1000;
                /* Past the bound only while nothing got through yet. */
                for (long i = 0; now_ms() < deadline &&
                                 (i < RACE_ITERATIONS || counters->successes == 0);
                     i++) {
                        bool leaked = false;
                        int r = race_op_once(op, i, &leaked);
                        counters->iterations = i + 1;
                        if (r == 0)
                                counters->successes++;
                        else if (!errno_expected(-r) && !counters->bad_errno)
                                counters->bad_errno = -r;
                        if (r < 0 && -r < (int)G_N_ELEMENTS(counters->errors))
                                counters->errors[-r]++;
                        if (leaked && !counters->leaked)
                                counters->leaked = (int)i + 1;
                }
                _exit(0);
        }
        return pid;
}

/* Runs the race on the attacker's file and symlink; true when the victim
 * changed while it ran (logged, asserted by the caller). */
static void race(RaceOp op, const char *what)
{
        RaceCounters *counters = mmap(NULL, sizeof(*counters), PROT_READ | PROT_WRITE,
                                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        cr_assert_neq(counters, MAP_FAILED);
        memset(counters, 0, sizeof(*counters));

        g_autofree char *pub = g_build_filename(harness.backing, "pub", NULL);
        int backing_pub = open(pub, O_PATH | O_DIRECTORY | O_CLOEXEC);
        cr_assert_geq(backing_pub, 0);
        long long start = now_ms();
        pid_t swapper = swapper_start(backing_pub, "file", "link", counters);
        pid_t racer = racer_start(op, counters);

        /* Watch the victim meanwhile, only to tell how soon it fell. */
        long long changed_at = -1;
        int status = 0;
        while (waitpid(racer, &status, WNOHANG) == 0) {
                struct stat st;
                if (changed_at < 0 && lstat(victim, &st) == 0 &&
                    !snapshot_same_times(&victim_before, &st))
                        changed_at = now_ms() - start;
                g_usleep(1000);
        }
        swapper_stop(swapper);
        close(backing_pub);

        if (changed_at >= 0)
                cr_log_warn("%s: victim changed after %lld ms", what, changed_at);
        cr_log_info("%s: %ld operations (%ld succeeded), %ld swaps, %lld ms", what,
                    counters->iterations, counters->successes, counters->swaps,
                    now_ms() - start);
        g_autoptr(GString) errors = g_string_new(NULL);
        for (int e = 0; e < (int)G_N_ELEMENTS(counters->errors); e++)
                if (counters->errors[e])
                        g_string_append_printf(errors, " %s=%ld", strerrorname_np(e),
                                               counters->errors[e]);
        cr_log_info("%s: errors:%s", what, errors->len ? errors->str : " none");
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: racer died (%d)", what,
                  status);
        cr_expect_eq(counters->bad_errno, 0, "%s: unexpected error %s", what,
                     strerrorname_np(counters->bad_errno));
        cr_expect_eq(counters->leaked, 0, "%s: victim data came back at operation %d", what,
                     counters->leaked);
        /* A race that never ran proves nothing. */
        cr_expect_gt(counters->swaps, 0, "%s: no swap happened", what);
        cr_expect_gt(counters->successes, 0, "%s: no operation got through", what);
        snapshot_expect_same(&victim_before, victim);
        munmap(counters, sizeof(*counters));
}

TestSuite(security, .init = scene_setup, .fini = scene_teardown, .timeout = 120);

Test(security, chmod_does_not_follow_a_swapped_symlink) { race(OP_CHMOD, "chmod"); }
Test(security, chown_does_not_follow_a_swapped_symlink) { race(OP_CHOWN, "chown"); }
Test(security, utimens_does_not_follow_a_swapped_symlink) { race(OP_UTIMENS, "utimens"); }
Test(security, truncate_does_not_follow_a_swapped_symlink) { race(OP_TRUNCATE, "truncate"); }
Test(security, setxattr_does_not_follow_a_swapped_symlink) { race(OP_SETXATTR, "setxattr"); }
Test(security, removexattr_does_not_follow_a_swapped_symlink)
{
        race(OP_REMOVEXATTR, "removexattr");
}
Test(security, getxattr_does_not_leak_through_a_swapped_symlink)
{
        race(OP_GETXATTR, "getxattr");
}
Test(security, listxattr_does_not_leak_through_a_swapped_symlink)
{
        race(OP_LISTXATTR, "listxattr");
}
Test(security, readlink_does_not_leak_through_a_swapped_symlink)
{
        race(OP_READLINK, "readlink");
}
Test(security, open_does_not_leak_through_a_swapped_symlink) { race(OP_OPEN_READ, "open"); }
Test(security, open_trunc_does_not_follow_a_swapped_symlink)
{
        race(OP_OPEN_TRUNC, "open O_TRUNC");
}
