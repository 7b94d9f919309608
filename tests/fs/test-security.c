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

#include "mount-fixture.h"

static MountHarness harness;

#define ATTACKER 65534
#define RACE_ITERATIONS 20000
#define RACE_SECONDS 3
#define VICTIM_CONTENT "root's secret, outside the share\n"
#define VICTIM_XATTR "user.victim"
#define VICTIM_XATTR_VALUE "untouched"
#define VICTIM_ONLY_XATTR "user.victim-only"
#define VICTIM_MTIME 1000000000
#define OTHER_TARGET "elsewhere"

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
        OP_LIST_DIR,        /* pub/mine, swapped with a root-only directory */
        OP_CREATE_IN_DIR,   /* in pub/mine, swapped with root's directory */
        OP_MKDIR_NAME,      /* pub/new, swapped with root's directory */
        OP_CREATE_NAME,     /* pub/newfile, swapped with root's file */
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

/* With @times, also the times: a victim the attacker may rename gets a
 * new ctime from each rename. */
static void snapshot_expect_same(const Snapshot *before, const char *path, bool times)
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
        cr_expect(!times || snapshot_same_times(before, &after.st), "%s: times changed", path);
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
/* A daemon warning the test provokes on purpose, or NULL. */
static const char *expected_warning;

/* pub/@name in the backing directory, or pub itself. */
static char *backing_path(const char *name)
{
        return g_build_filename(harness.backing, "pub", name, NULL);
}

static void scene_setup(void)
{
        mount_fixture_setup(&harness);
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
        /* A postoffice, whose message files the kernel may read and
         * write itself (passthrough, where the daemon is built with it). */
        for (const char *const *dir = (const char *const[]){"PO", "PO/KEY", "PO/P1", NULL}; *dir;
             dir++) {
                g_autofree char *path = backing_path(*dir);
                cr_assert_eq(mkdir(path, 0755), 0);
        }

        const char *args[] = {"-oallow_other", NULL};
        mount_fixture_mount(&harness, args);
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
        snapshot_clear(&victim_before);
        g_clear_pointer(&victim, g_free);
        mount_fixture_stop(&harness, expected_warning);
        expected_warning = NULL;
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
                /* The two symlinks' targets are the only answers. */
                n = readlink(link, buf, sizeof(buf) - 1);
                *leaked = n >= 0 && !(n == (ssize_t)strlen(victim) &&
                                      memcmp(buf, victim, (size_t)n) == 0) &&
                          !(n == (ssize_t)strlen(OTHER_TARGET) &&
                            memcmp(buf, OTHER_TARGET, (size_t)n) == 0);
                r = n < 0 ? -1 : 0;
                break;
        case OP_LIST_DIR:
                snprintf(buf, sizeof(buf), "/proc/self/fd/%d/mine", pub_fd);
                DIR *dir = opendir(buf);
                if (!dir)
                        return -errno;
                for (struct dirent *entry; (entry = readdir(dir));)
                        *leaked |= g_str_equal(entry->d_name, "root-only");
                closedir(dir);
                break;
        case OP_CREATE_IN_DIR:
                snprintf(buf, sizeof(buf), "/proc/self/fd/%d/mine/n%ld", pub_fd, i);
                switch (i % 4) {
                case 0: r = mkdir(buf, 0755); break;
                case 1: r = mknod(buf, S_IFIFO | 0644, 0); break;
                case 2: r = symlink("somewhere", buf); break;
                default:
                        fd = open(buf, O_WRONLY | O_CREAT | O_EXCL, 0644);
                        r = fd < 0 ? -1 : close(fd);
                }
                break;
        case OP_MKDIR_NAME:
                snprintf(buf, sizeof(buf), "/proc/self/fd/%d/new", pub_fd);
                r = mkdir(buf, 0755);
                fd = errno;
                rmdir(buf);
                errno = fd;
                break;
        case OP_CREATE_NAME:
                snprintf(buf, sizeof(buf), "/proc/self/fd/%d/newfile", pub_fd);
                fd = open(buf, O_WRONLY | O_CREAT | O_EXCL, 0644);
                r = fd < 0 ? -1 : close(fd);
                fd = errno;
                /* Out of the way, not unlinked: the name may hold root's
                 * file now, which the attacker may move but must keep. */
                char away[64];
                snprintf(away, sizeof(away), "/proc/self/fd/%d/old%ld", pub_fd, i);
                rename(buf, away);
                errno = fd;
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

/* Runs @op while the attacker swaps @a and @b in pub; when @watch is
 * given, logs how soon it changed. */
static void race_run(RaceOp op, const char *what, const char *a, const char *b,
                     const char *watch)
{
        RaceCounters *counters = mmap(NULL, sizeof(*counters), PROT_READ | PROT_WRITE,
                                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        cr_assert_neq(counters, MAP_FAILED);
        memset(counters, 0, sizeof(*counters));

        g_autofree char *pub = g_build_filename(harness.backing, "pub", NULL);
        int backing_pub = open(pub, O_PATH | O_DIRECTORY | O_CLOEXEC);
        cr_assert_geq(backing_pub, 0);
        long long start = now_ms();
        pid_t swapper = swapper_start(backing_pub, a, b, counters);
        pid_t racer = racer_start(op, counters);

        /* Watch the victim meanwhile, only to tell how soon it fell. */
        long long changed_at = -1;
        int status = 0;
        while (waitpid(racer, &status, WNOHANG) == 0) {
                struct stat st;
                if (watch && changed_at < 0 && lstat(watch, &st) == 0 &&
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
        munmap(counters, sizeof(*counters));
}

/* The race on the attacker's file and his symlink to the victim. */
static void race(RaceOp op, const char *what)
{
        race_run(op, what, "file", "link", victim);
        snapshot_expect_same(&victim_before, victim, true);
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
/* readlink on a regular node never reaches the daemon, so the race is
 * between two symlinks: the answer is one of their targets, whole. */
Test(security, readlink_gives_one_of_the_swapped_targets)
{
        g_autofree char *other = backing_path("link2");
        cr_assert_eq(symlink(OTHER_TARGET, other), 0);
        race_run(OP_READLINK, "readlink", "link", "link2", NULL);
        snapshot_expect_same(&victim_before, victim, true);
}
Test(security, open_does_not_leak_through_a_swapped_symlink) { race(OP_OPEN_READ, "open"); }
Test(security, open_trunc_does_not_follow_a_swapped_symlink)
{
        race(OP_OPEN_TRUNC, "open O_TRUNC");
}

/* Victims inside the backing directory, in the attacker's own pub, which
 * he may rename but not otherwise touch: root's directories and file. */

/* A root-owned directory pub/@name holding only @entry, mode @mode. */
static char *root_dir_make(const char *name, const char *entry, mode_t mode)
{
        char *dir = backing_path(name);
        cr_assert_eq(mkdir(dir, mode), 0);
        cr_assert_eq(chmod(dir, mode), 0);
        g_autofree char *inside = g_build_filename(dir, entry, NULL);
        cr_assert(g_file_set_contents(inside, "root's\n", -1, NULL));
        return dir;
}

static char *attacker_dir_make(const char *name)
{
        char *dir = backing_path(name);
        cr_assert_eq(mkdir(dir, 0755), 0);
        cr_assert_eq(chown(dir, ATTACKER, ATTACKER), 0);
        return dir;
}

/* Where in pub inode @ino is now (the race moves names about). */
static char *backing_find(ino_t ino)
{
        g_autofree char *pub = backing_path(NULL);
        GDir *d = g_dir_open(pub, 0, NULL);
        cr_assert_not_null(d);
        char *found = NULL;
        for (const char *name; !found && (name = g_dir_read_name(d));) {
                char *path = g_build_filename(pub, name, NULL);
                struct stat st;
                if (lstat(path, &st) == 0 && st.st_ino == ino)
                        found = path;
                else
                        g_free(path);
        }
        g_dir_close(d);
        cr_assert_not_null(found, "inode %lu is gone", (unsigned long)ino);
        return found;
}

static void expect_only_entry(const char *dir, const char *entry)
{
        GDir *d = g_dir_open(dir, 0, NULL);
        cr_assert_not_null(d);
        int extra = 0;
        g_autofree char *first = NULL;
        for (const char *name; (name = g_dir_read_name(d));)
                if (!g_str_equal(name, entry) && extra++ == 0)
                        first = g_strdup(name);
        g_dir_close(d);
        cr_expect_eq(extra, 0, "%s gained %d entries, %s first", dir, extra, first);
}

Test(security, opendir_does_not_list_a_swapped_directory)
{
        g_autofree char *mine = attacker_dir_make("mine");
        g_autofree char *root = root_dir_make("private", "root-only", 0700);
        race_run(OP_LIST_DIR, "opendir", "mine", "private", NULL);
}

Test(security, creation_does_not_land_in_a_swapped_directory)
{
        g_autofree char *mine = attacker_dir_make("mine");
        g_autofree char *root = root_dir_make("rootdir", "keep", 0755);
        struct stat before;
        cr_assert_eq(stat(root, &before), 0);
        race_run(OP_CREATE_IN_DIR, "create in directory", "mine", "rootdir", NULL);
        g_autofree char *after = backing_find(before.st_ino);
        expect_only_entry(after, "keep");
}

Test(security, mkdir_does_not_give_away_a_swapped_directory)
{
        g_autofree char *root = root_dir_make("rootdir", "keep", 0755);
        Snapshot before;
        snapshot_take(root, &before);
        race_run(OP_MKDIR_NAME, "mkdir", "new", "rootdir", NULL);
        g_autofree char *after = backing_find(before.st.st_ino);
        snapshot_expect_same(&before, after, false);
        expect_only_entry(after, "keep");
        snapshot_clear(&before);
}

Test(security, create_does_not_give_away_a_swapped_file)
{
        g_autofree char *root = backing_path("rootfile");
        cr_assert(g_file_set_contents(root, "root's\n", -1, NULL));
        cr_assert_eq(chmod(root, 0644), 0);
        Snapshot before;
        snapshot_take(root, &before);
        expected_warning = "it changed since its creation";
        race_run(OP_CREATE_NAME, "create", "newfile", "rootfile", NULL);
        g_autofree char *after = backing_find(before.st.st_ino);
        snapshot_expect_same(&before, after, false);
        snapshot_clear(&before);
}

/* pub/@name through the mount, made by root for the attacker with @mode. */
static char *setid_file(const char *name, mode_t mode)
{
        g_autofree char *backing = backing_path(name);
        cr_assert(g_file_set_contents(backing, "0123456789\n", -1, NULL));
        cr_assert_eq(chown(backing, ATTACKER, ATTACKER), 0);
        cr_assert_eq(chmod(backing, mode), 0);
        return g_build_filename(harness.mnt, "pub", name, NULL);
}

/* As the attacker: opens pub/@name through the mount with @flags, writes
 * a byte, and when @chmod_between is set, gives the file set-user-ID
 * again through the mount and writes once more on the same descriptor. */
static void write_as_attacker(const char *name, int flags, bool chmod_between)
{
        g_autofree char *path = g_build_filename(harness.mnt, "pub", name, NULL);
        pid_t child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                become_attacker();
                /* By the test's own descriptor of pub: the folders above
                 * are root's alone. */
                int fd = openat(pub_fd, name, flags);
                if (fd < 0 || pwrite(fd, "x", 1, 0) != 1)
                        _exit(1);
                if (chmod_between &&
                    (fchmodat(pub_fd, name, 04775, 0) < 0 || pwrite(fd, "y", 1, 1) != 1))
                        _exit(2);
                _exit(close(fd) == 0 ? 0 : 3);
        }
        int status = 0;
        cr_assert_eq(waitpid(child, &status, 0), child);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: writer failed (%d)", path,
                  status);
}

static void expect_mode(const char *path, mode_t want)
{
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_expect_eq(st.st_mode & 07777, want, "%s: mode %o, expected %o", path,
                     st.st_mode & 07777, want);
}

/* As on a local filesystem, a write by anyone but root takes away
 * set-user-ID, and set-group-ID with group execute, whether the kernel's
 * cache sees the write (other files) or the daemon does (direct I/O:
 * mailbag files, write-only handles of message files); set-group-ID
 * without group execute stays. */
Test(security, a_write_takes_set_user_id_and_set_group_id_away)
{
        static const struct {
                const char *name;
                mode_t mode;
                int flags;
                bool chmod_between; /* given again while the handle is open */
                mode_t after;
        } cases[] = {
                {"written", 06775, O_WRONLY, false, 0775},
                {"rdwr", 06775, O_RDWR, false, 0775},
                {"INQUEUE3.KEY", 04775, O_RDWR, false, 0775},
                {"kept", 02664, O_WRONLY, false, 02664},
                {"AGAIN.MBG", 0775, O_WRONLY, true, 0775},
                /* Message files: read-write, passed through where the
                 * daemon can; write-only, direct. */
                {"PO/P1/0000002A.P1", 06775, O_RDWR, false, 0775},
                {"PO/P1/0000002B.P1", 06775, O_WRONLY, false, 0775},
                {"PO/P1/0000002C.P1", 0775, O_RDWR, true, 0775},
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *path = setid_file(cases[i].name, cases[i].mode);
                write_as_attacker(cases[i].name, cases[i].flags, cases[i].chmod_between);
                expect_mode(path, cases[i].after);
        }
}
