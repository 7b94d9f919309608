/* test-byte-locks.c - the byte-range lock module on its own, without a
 * mount: owners on real files in a temporary directory, parked requests
 * granted, cancelled and refused for a cycle, owners closed and open
 * files released, and what the status snapshot says. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include "byte-locks.h"

#define EVENT_TIMEOUT_US (20 * G_USEC_PER_SEC)

static char *dir;
static char *path;
static ByteLocks *locks;

static void setup(void)
{
        dir = g_dir_make_tmp("byte-locks-XXXXXX", NULL);
        cr_assert(dir);
        path = g_build_filename(dir, "file", NULL);
        cr_assert(g_file_set_contents(path, "0123456789", -1, NULL));
        locks = byte_locks_new();
}

static void teardown(void)
{
        byte_locks_free(locks);
        unlink(path);
        rmdir(dir);
        g_free(path);
        g_free(dir);
}

/* An answer a parked request gets, and when. */
typedef struct {
        GMutex mutex;
        GCond cond;
        bool done;
        int result;
} Outcome;

static void outcome_done(void *opaque, int result)
{
        Outcome *o = opaque;
        g_mutex_lock(&o->mutex);
        o->done = true;
        o->result = result;
        g_cond_signal(&o->cond);
        g_mutex_unlock(&o->mutex);
}

static int outcome_wait(Outcome *o)
{
        gint64 deadline = g_get_monotonic_time() + EVENT_TIMEOUT_US;
        g_mutex_lock(&o->mutex);
        while (!o->done)
                if (!g_cond_wait_until(&o->cond, &o->mutex, deadline))
                        break;
        bool done = o->done;
        int result = o->result;
        g_mutex_unlock(&o->mutex);
        cr_assert(done, "the parked request never ended");
        return result;
}

static bool outcome_done_yet(Outcome *o)
{
        g_mutex_lock(&o->mutex);
        bool done = o->done;
        g_mutex_unlock(&o->mutex);
        return done;
}

static ByteLockRequest who(int fd, uint64_t handle, uint64_t owner)
{
        struct stat st;
        cr_assert_eq(fstat(fd, &st), 0);
        return (ByteLockRequest){.fd = fd, .dev = st.st_dev, .ino = st.st_ino, .handle = handle,
                                 .owner = owner, .path = "file"};
}

static struct flock range(short type, off_t start, off_t len)
{
        return (struct flock){.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
}

static int set(int fd, uint64_t handle, uint64_t owner, short type, off_t start, off_t len)
{
        ByteLockRequest w = who(fd, handle, owner);
        struct flock l = range(type, start, len);
        uint64_t id;
        return byte_locks_set(locks, &w, &l, false, outcome_done, NULL, &id);
}

static int park(int fd, uint64_t handle, uint64_t owner, short type, off_t start, off_t len,
                Outcome *o, uint64_t *id)
{
        ByteLockRequest w = who(fd, handle, owner);
        struct flock l = range(type, start, len);
        int r = byte_locks_set(locks, &w, &l, true, outcome_done, o, id);
        if (r == BYTE_LOCKS_PENDING)
                byte_locks_arm(locks, *id);
        return r;
}

static guint held_count(void)
{
        g_autoptr(GPtrArray) infos = byte_locks_snapshot(locks, NULL);
        guint n = 0;
        for (guint i = 0; i < infos->len; i++)
                n += !((ByteLockInfo *)infos->pdata[i])->waiting;
        return n;
}

TestSuite(byte_locks, .init = setup, .fini = teardown, .timeout = 60);

Test(byte_locks, owners_conflict_and_merge)
{
        int fd1 = open(path, O_RDWR | O_CLOEXEC), fd2 = open(path, O_RDONLY | O_CLOEXEC);
        cr_assert(fd1 >= 0 && fd2 >= 0);
        cr_assert_eq(set(fd1, 1, 100, F_WRLCK, 0, 5), 0);
        cr_assert_eq(set(fd1, 1, 100, F_WRLCK, 5, 5), 0);
        cr_expect_eq(held_count(), 1, "the kernel merged the owner's two ranges");
        /* A write lock through a read-only descriptor: the owner's own
         * description is opened for both. */
        cr_expect_eq(set(fd2, 2, 200, F_WRLCK, 4, 1), -EAGAIN);
        cr_expect_eq(set(fd2, 2, 200, F_WRLCK, 10, 1), 0);
        ByteLockRequest w = who(fd2, 2, 200);
        struct flock test = range(F_RDLCK, 0, 0);
        cr_assert_eq(byte_locks_test(locks, &w, &test), 0);
        cr_expect(test.l_type == F_WRLCK && test.l_start == 0 && test.l_len == 10);
        cr_expect_eq(set(fd1, 1, 100, F_UNLCK, 2, 2), 0);
        cr_expect_eq(held_count(), 3);
        cr_expect_eq(set(fd2, 2, 200, F_RDLCK, 2, 2), 0);
        close(fd1);
        close(fd2);
}

Test(byte_locks, a_parked_request_is_granted_when_the_owner_closes)
{
        int fd1 = open(path, O_RDWR | O_CLOEXEC), fd2 = open(path, O_RDWR | O_CLOEXEC);
        cr_assert_eq(set(fd1, 1, 100, F_WRLCK, 0, 0), 0);
        Outcome o = {0};
        uint64_t id;
        cr_assert_eq(park(fd2, 2, 200, F_WRLCK, 3, 1, &o, &id), BYTE_LOCKS_PENDING);
        cr_expect_not(outcome_done_yet(&o));
        struct stat st1;
        cr_assert_eq(fstat(fd1, &st1), 0);
        byte_locks_owner_closed(locks, st1.st_dev, st1.st_ino, 100);
        cr_expect_eq(outcome_wait(&o), 0);
        /* Cancelling a request that ended does nothing. */
        byte_locks_cancel(locks, id);
        cr_expect_eq(set(fd1, 1, 100, F_RDLCK, 3, 1), -EAGAIN);
        close(fd1);
        close(fd2);
}

Test(byte_locks, a_cancelled_request_ends_with_eintr_only_once_armed)
{
        int fd1 = open(path, O_RDWR | O_CLOEXEC), fd2 = open(path, O_RDWR | O_CLOEXEC);
        cr_assert_eq(set(fd1, 1, 100, F_WRLCK, 0, 1), 0);
        ByteLockRequest w = who(fd2, 2, 200);
        struct flock l = range(F_WRLCK, 0, 1);
        Outcome o = {0};
        uint64_t id;
        cr_assert_eq(byte_locks_set(locks, &w, &l, true, outcome_done, &o, &id), BYTE_LOCKS_PENDING);
        byte_locks_cancel(locks, id);
        /* Unarmed: the answer waits for the arm, so a caller can register
         * its cancel path before any answer is sent. */
        g_usleep(50 * 1000);
        cr_expect_not(outcome_done_yet(&o));
        byte_locks_arm(locks, id);
        cr_expect_eq(outcome_wait(&o), -EINTR);
        close(fd1);
        close(fd2);
}

Test(byte_locks, a_cycle_of_waits_gets_edeadlk)
{
        int fd1 = open(path, O_RDWR | O_CLOEXEC), fd2 = open(path, O_RDWR | O_CLOEXEC);
        cr_assert_eq(set(fd1, 1, 100, F_WRLCK, 0, 1), 0);
        cr_assert_eq(set(fd2, 2, 200, F_WRLCK, 1, 1), 0);
        Outcome o = {0};
        uint64_t id;
        cr_assert_eq(park(fd1, 1, 100, F_WRLCK, 1, 1, &o, &id), BYTE_LOCKS_PENDING);
        Outcome o2 = {0};
        uint64_t id2;
        cr_expect_eq(park(fd2, 2, 200, F_WRLCK, 0, 1, &o2, &id2), -EDEADLK);
        cr_assert_eq(set(fd2, 2, 200, F_UNLCK, 0, 0), 0);
        cr_expect_eq(outcome_wait(&o), 0);
        close(fd1);
        close(fd2);
}

Test(byte_locks, release_ends_flock_and_the_locks_of_its_owners)
{
        int fd1 = open(path, O_RDWR | O_CLOEXEC), fd2 = open(path, O_RDWR | O_CLOEXEC);
        ByteLockRequest w1 = who(fd1, 1, 100), w2 = who(fd2, 2, 200);
        uint64_t id;
        cr_assert_eq(byte_locks_flock(locks, &w1, LOCK_EX, outcome_done, NULL, &id), 0);
        cr_expect_eq(byte_locks_flock(locks, &w2, LOCK_SH | LOCK_NB, outcome_done, NULL, &id),
                     -EAGAIN);
        Outcome o = {0};
        cr_assert_eq(byte_locks_flock(locks, &w2, LOCK_SH, outcome_done, &o, &id),
                     BYTE_LOCKS_PENDING);
        byte_locks_arm(locks, id);
        cr_assert_eq(set(fd1, 1, 100, F_WRLCK, 0, 0), 0);
        g_autoptr(GPtrArray) infos = byte_locks_snapshot(locks, NULL);
        cr_expect_eq(infos->len, 3, "a flock, a range and a waiting flock");
        byte_locks_handle_released(locks, fd1, 1);
        cr_expect_eq(outcome_wait(&o), 0);
        cr_expect_eq(set(fd2, 2, 200, F_WRLCK, 0, 0), 0, "the range ended with its open file");
        close(fd1);
        close(fd2);
}
