/* byte-locks.c - clients' byte-range and flock locks as OFD locks and
 * flock() on the backing store (see the header for the semantics).
 *
 * Invariants, all under ByteLocks.mutex: an owner record exists while it
 * has a description (fd >= 0) or a parked request; an owner's handles are
 * the open files it has locked through since its description was opened;
 * a parked request holds a duplicate of the client's descriptor, to reopen
 * the owner's description from or to flock, so it never depends on the
 * open file outliving it. What an owner holds is asked of the kernel
 * (/proc/self/fdinfo of its description), never kept twice.
 *
 * Lock order: ByteLocks.mutex alone; callbacks run without it.
 */
#include "byte-locks.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "backing.h"
#include "caller.h"
#include "fd-util.h"

/* How often a parked request is retried when nothing in this daemon
 * signals a release: the holder may be another daemon or a process on
 * the backing store, which say nothing. */
#define RETRY_INTERVAL_US (10 * 1000)

#define RANGE_END_EOF INT64_MAX

typedef struct {
        dev_t dev;
        ino_t ino;
        uint64_t owner;
} OwnerKey;

typedef struct {
        OwnerKey key;
        int fd;          /* the owner's description; -1 when none */
        int accmode;     /* O_RDONLY, O_WRONLY or O_RDWR: how fd was opened */
        GArray *handles; /* uint64_t open files locked through */
        uint64_t serial; /* names the owner in the status */
        unsigned parked; /* parked requests of this owner */
        pid_t pid;
        char program[64];
        char *path;
} LockOwner;

typedef struct {
        uint64_t id;
        bool armed;
        bool cancelled;
        bool flock;
        int source_fd;    /* a duplicate of the client's descriptor */
        uint64_t handle;
        LockOwner *owner; /* byte-range requests only */
        struct flock lock;
        int flock_op;     /* LOCK_SH or LOCK_EX */
        dev_t dev;
        ino_t ino;
        pid_t pid;        /* flock requests: for the status */
        char program[64];
        char *path;
        int result;       /* set when it ends */
        ByteLocksDoneFn done;
        void *opaque;
} LockWaiter;

/* A flock held through one open file. */
typedef struct {
        dev_t dev;
        ino_t ino;
        uint64_t handle;
        uint64_t serial; /* names the open file in the status */
        short type;
        pid_t pid;
        char program[64];
        char *path;
} FlockHold;

struct ByteLocks {
        GMutex mutex;
        GCond wake;
        GHashTable *owners;  /* OwnerKey* -> LockOwner*; guarded by mutex */
        GHashTable *waiters; /* uint64_t* id -> LockWaiter*; guarded by mutex */
        GHashTable *flocks;  /* uint64_t* handle -> FlockHold*; guarded by mutex */
        uint64_t next_id;    /* guarded by mutex */
        bool kick;           /* retry now: something was released; guarded by mutex */
        bool stopping;       /* guarded by mutex */
        GThread *thread;
};

/* One lock of a description, as the kernel reports it. */
typedef struct {
        int64_t start;
        int64_t end; /* inclusive; RANGE_END_EOF */
        short type;
} HeldRange;

static guint owner_key_hash(gconstpointer p)
{
        const OwnerKey *key = p;
        return g_int64_hash(&key->owner) ^ (guint)key->ino ^ (guint)(key->dev << 7);
}

static gboolean owner_key_equal(gconstpointer a, gconstpointer b)
{
        const OwnerKey *x = a, *y = b;
        return x->dev == y->dev && x->ino == y->ino && x->owner == y->owner;
}

static void identify(pid_t thread_id, pid_t *pid, char *program, size_t size)
{
        if (thread_id > 0) {
                caller_identify(thread_id, pid, program, size);
                return;
        }
        *pid = 0;
        g_strlcpy(program, "?", size);
}

static void owner_free(gpointer data)
{
        LockOwner *owner = data;
        if (owner->fd >= 0)
                close(owner->fd);
        g_array_unref(owner->handles);
        g_free(owner->path);
        g_free(owner);
}

static void flock_hold_free(gpointer data)
{
        FlockHold *hold = data;
        g_free(hold->path);
        g_free(hold);
}

static void waiter_free(LockWaiter *waiter)
{
        if (waiter->source_fd >= 0)
                close(waiter->source_fd);
        g_free(waiter->path);
        g_free(waiter);
}

void byte_lock_info_free(ByteLockInfo *info)
{
        g_free(info->program);
        g_free(info->path);
        g_free(info);
}

static int64_t range_end(const struct flock *lock)
{
        return lock->l_len == 0 ? RANGE_END_EOF : lock->l_start + lock->l_len - 1;
}

static bool held_conflicts(const HeldRange *held, short type, int64_t start, int64_t end)
{
        return held->start <= end && start <= held->end &&
               (held->type == F_WRLCK || type == F_WRLCK);
}

/* The OFD locks of description @fd, from /proc/self/fdinfo: the lines of
 * /proc/locks ("lock:\tID: OFDLCK ADVISORY WRITE PID MAJ:MIN:INO START END"),
 * limited to this description. */
static GArray *description_locks(int fd)
{
        GArray *out = g_array_new(FALSE, FALSE, sizeof(HeldRange));
        if (fd < 0)
                return out;
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL))
                return out;
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (char **line = lines; *line; line++) {
                if (!g_str_has_prefix(*line, "lock:"))
                        continue;
                g_auto(GStrv) parts = g_strsplit_set(*line + strlen("lock:"), " \t", -1);
                /* ID: OFDLCK ADVISORY TYPE PID DEV:INO START END; a request
                 * blocked on the lock ("->") has other words, and never
                 * happens here: nothing here blocks. */
                const char *words[8];
                guint n = 0;
                bool other = false;
                for (char **part = parts; *part && !other; part++) {
                        if (!**part)
                                continue;
                        if (n == G_N_ELEMENTS(words))
                                other = true;
                        else
                                words[n++] = *part;
                }
                if (other || n != G_N_ELEMENTS(words) || !g_str_equal(words[1], "OFDLCK"))
                        continue;
                HeldRange held;
                if (g_str_equal(words[3], "READ"))
                        held.type = F_RDLCK;
                else if (g_str_equal(words[3], "WRITE"))
                        held.type = F_WRLCK;
                else
                        continue;
                held.start = g_ascii_strtoll(words[6], NULL, 10);
                held.end = g_str_equal(words[7], "EOF") ? RANGE_END_EOF
                                                        : g_ascii_strtoll(words[7], NULL, 10);
                g_array_append_val(out, held);
        }
        return out;
}

static bool description_conflicts(int fd, short type, int64_t start, int64_t end)
{
        g_autoptr(GArray) held = description_locks(fd);
        for (guint i = 0; i < held->len; i++)
                if (held_conflicts(&g_array_index(held, HeldRange, i), type, start, end))
                        return true;
        return false;
}

static LockOwner *owner_find(ByteLocks *locks, dev_t dev, ino_t ino, uint64_t owner)
{
        OwnerKey key = {.dev = dev, .ino = ino, .owner = owner};
        return g_hash_table_lookup(locks->owners, &key);
}

/* A new owner, of process @pid named @program (read by the caller before
 * it took the module's lock, which calls nothing). */
static LockOwner *owner_new(ByteLocks *locks, const ByteLockRequest *who, pid_t pid,
                            const char *program)
{
        LockOwner *owner = g_new0(LockOwner, 1);
        owner->key = (OwnerKey){.dev = who->dev, .ino = who->ino, .owner = who->owner};
        owner->fd = -1;
        owner->handles = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        owner->serial = ++locks->next_id;
        owner->pid = pid;
        g_strlcpy(owner->program, program, sizeof(owner->program));
        owner->path = g_strdup(who->path);
        g_hash_table_insert(locks->owners, &owner->key, owner);
        return owner;
}

static void owner_add_handle(LockOwner *owner, uint64_t handle)
{
        for (guint i = 0; i < owner->handles->len; i++)
                if (g_array_index(owner->handles, uint64_t, i) == handle)
                        return;
        g_array_append_val(owner->handles, handle);
}

/* Closes the owner's description, which ends its locks; the record goes
 * too unless requests of the owner are parked. */
static void owner_close(ByteLocks *locks, LockOwner *owner)
{
        if (owner->fd >= 0)
                close(owner->fd);
        owner->fd = -1;
        g_array_set_size(owner->handles, 0);
        if (owner->parked == 0)
                g_hash_table_remove(locks->owners, &owner->key);
}

static bool mode_allows(int accmode, short type)
{
        if (type == F_RDLCK)
                return accmode != O_WRONLY;
        if (type == F_WRLCK)
                return accmode != O_RDONLY;
        return true;
}

/* Gives @owner a description that may take a @type lock, reopened from
 * @source_fd. Read and write where the daemon may (one owner may lock
 * both ways through different descriptors), else as the client opened. */
static int owner_open(LockOwner *owner, int source_fd, short type)
{
        if (owner->fd >= 0) {
                if (mode_allows(owner->accmode, type))
                        return 0;
                g_autoptr(GArray) held = description_locks(owner->fd);
                if (held->len > 0)
                        return -ENOLCK;
                close(owner->fd);
                owner->fd = -1;
        }
        char path[BACKING_FD_PATH_MAX];
        backing_fd_path(source_fd, path);
        int extra = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
        int accmode = O_RDWR;
        int fd = open(path, accmode | extra);
        if (fd < 0) {
                int flags = fcntl(source_fd, F_GETFL);
                if (flags < 0)
                        return -errno;
                accmode = flags & O_ACCMODE;
                fd = open(path, accmode | extra);
        }
        if (fd < 0)
                return -errno;
        owner->fd = fd;
        owner->accmode = accmode;
        return 0;
}

/* One non-blocking attempt: 0, -EAGAIN on a conflict, or -errno. */
static int owner_try(LockOwner *owner, int source_fd, const struct flock *lock)
{
        if (lock->l_type == F_UNLCK && owner->fd < 0)
                return 0;
        int r = owner_open(owner, source_fd, lock->l_type);
        if (r < 0)
                return r;
        struct flock request = *lock;
        request.l_whence = SEEK_SET;
        request.l_pid = 0;
        if (fcntl(owner->fd, F_OFD_SETLK, &request) < 0)
                return errno == EACCES ? -EAGAIN : -errno;
        return 0;
}

/* Whether an owner here other than @asker holds a lock conflicting with
 * @type [@start, @end] of the file and waits, itself or through others
 * it waits for, for a lock @origin holds. @visited: owners followed. */
static bool closes_cycle(ByteLocks *locks, uint64_t origin, uint64_t asker, dev_t dev, ino_t ino,
                         short type, int64_t start, int64_t end, GHashTable *visited)
{
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, locks->owners);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LockOwner *holder = value;
                if (holder->key.dev != dev || holder->key.ino != ino ||
                    holder->key.owner == asker ||
                    !description_conflicts(holder->fd, type, start, end))
                        continue;
                if (holder->key.owner == origin)
                        return true;
                if (g_hash_table_contains(visited, &holder->key.owner))
                        continue;
                g_hash_table_add(visited, &holder->key.owner);
                GHashTableIter waits;
                gpointer parked;
                g_hash_table_iter_init(&waits, locks->waiters);
                while (g_hash_table_iter_next(&waits, NULL, &parked)) {
                        LockWaiter *waiter = parked;
                        if (waiter->flock || waiter->cancelled ||
                            waiter->owner->key.owner != holder->key.owner)
                                continue;
                        if (closes_cycle(locks, origin, holder->key.owner, waiter->dev,
                                         waiter->ino, waiter->lock.l_type, waiter->lock.l_start,
                                         range_end(&waiter->lock), visited))
                                return true;
                }
        }
        return false;
}

static void kick_locked(ByteLocks *locks)
{
        /* Only parked requests have anything to retry: waking the thread
         * for every unlock and close of an uncontended lock would cost a
         * thread switch each. */
        if (g_hash_table_size(locks->waiters) == 0)
                return;
        locks->kick = true;
        g_cond_signal(&locks->wake);
}

static LockWaiter *waiter_park(ByteLocks *locks, const ByteLockRequest *who,
                               ByteLocksDoneFn done, void *opaque,
                               uint64_t *waiter_id, int *error)
{
        int source = fd_dup(who->fd);
        if (source < 0) {
                *error = -errno;
                return NULL;
        }
        LockWaiter *waiter = g_new0(LockWaiter, 1);
        waiter->id = ++locks->next_id;
        waiter->source_fd = source;
        waiter->handle = who->handle;
        waiter->dev = who->dev;
        waiter->ino = who->ino;
        waiter->done = done;
        waiter->opaque = opaque;
        g_hash_table_insert(locks->waiters, &waiter->id, waiter);
        *waiter_id = waiter->id;
        return waiter;
}

int byte_locks_set(ByteLocks *locks, const ByteLockRequest *who, const struct flock *lock,
                   bool wait, ByteLocksDoneFn done, void *opaque, uint64_t *waiter_id)
{
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&locks->mutex);
        LockOwner *owner = owner_find(locks, who->dev, who->ino, who->owner);
        if (lock->l_type == F_UNLCK) {
                int r = owner ? owner_try(owner, who->fd, lock) : 0;
                kick_locked(locks);
                return r;
        }
        if (!owner) {
                /* A new owner is recorded with its process, read with the
                 * module's lock let go (it calls nothing; a name is a /proc
                 * read now and then, caller.h). Nothing is changed yet; a
                 * request of the same owner may have made it meanwhile. */
                pid_t pid = 0;
                char program[64] = "?";
                g_mutex_unlock(&locks->mutex);
                identify(who->thread_id, &pid, program, sizeof(program));
                g_mutex_lock(&locks->mutex);
                owner = owner_find(locks, who->dev, who->ino, who->owner);
                if (!owner)
                        owner = owner_new(locks, who, pid, program);
        }
        int r = owner_try(owner, who->fd, lock);
        if (r == 0)
                owner_add_handle(owner, who->handle);
        if (r == -EAGAIN && wait) {
                g_autoptr(GHashTable) visited = g_hash_table_new(g_int64_hash, g_int64_equal);
                if (closes_cycle(locks, who->owner, who->owner, who->dev, who->ino,
                                 lock->l_type, lock->l_start, range_end(lock), visited)) {
                        r = -EDEADLK;
                } else {
                        LockWaiter *waiter =
                                waiter_park(locks, who, done, opaque, waiter_id, &r);
                        if (waiter) {
                                waiter->owner = owner;
                                waiter->lock = *lock;
                                owner->parked++;
                                return BYTE_LOCKS_PENDING;
                        }
                }
        }
        if (owner->handles->len == 0 && owner->parked == 0)
                owner_close(locks, owner);
        return r;
}

/* Records the outcome of a flock attempt on open file @handle. */
static void flock_note(ByteLocks *locks, uint64_t handle, dev_t dev, ino_t ino, int op,
                       bool granted, pid_t pid, const char *program, const char *path)
{
        /* A refused conversion has dropped the old lock already, as it
         * does on a local filesystem. */
        if (op == LOCK_UN || !granted) {
                g_hash_table_remove(locks->flocks, &handle);
                return;
        }
        FlockHold *hold = g_new0(FlockHold, 1);
        hold->dev = dev;
        hold->ino = ino;
        hold->handle = handle;
        hold->serial = ++locks->next_id;
        hold->type = op == LOCK_EX ? F_WRLCK : F_RDLCK;
        hold->pid = pid;
        g_strlcpy(hold->program, program, sizeof(hold->program));
        hold->path = g_strdup(path);
        g_hash_table_replace(locks->flocks, &hold->handle, hold);
}

int byte_locks_flock(ByteLocks *locks, const ByteLockRequest *who, int op, ByteLocksDoneFn done,
                     void *opaque, uint64_t *waiter_id)
{
        int kind = op & ~LOCK_NB;
        if (kind != LOCK_SH && kind != LOCK_EX && kind != LOCK_UN)
                return -EINVAL;
        pid_t pid = 0;
        char program[64] = "?";
        if (kind != LOCK_UN)
                identify(who->thread_id, &pid, program, sizeof(program));
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&locks->mutex);
        int r = flock(who->fd, kind | LOCK_NB) < 0 ? -errno : 0;
        if (r == -EWOULDBLOCK)
                r = -EAGAIN;
        flock_note(locks, who->handle, who->dev, who->ino, kind, r == 0, pid, program,
                   who->path);
        kick_locked(locks);
        if (r != -EAGAIN || (op & LOCK_NB))
                return r;
        LockWaiter *waiter = waiter_park(locks, who, done, opaque, waiter_id, &r);
        if (!waiter)
                return r;
        waiter->flock = true;
        waiter->flock_op = kind;
        waiter->pid = pid;
        g_strlcpy(waiter->program, program, sizeof(waiter->program));
        waiter->path = g_strdup(who->path);
        return BYTE_LOCKS_PENDING;
}

void byte_locks_arm(ByteLocks *locks, uint64_t waiter_id)
{
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&locks->mutex);
        LockWaiter *waiter = g_hash_table_lookup(locks->waiters, &waiter_id);
        if (waiter)
                waiter->armed = true;
        kick_locked(locks);
}

void byte_locks_cancel(ByteLocks *locks, uint64_t waiter_id)
{
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&locks->mutex);
        LockWaiter *waiter = g_hash_table_lookup(locks->waiters, &waiter_id);
        if (waiter)
                waiter->cancelled = true;
        kick_locked(locks);
}

/* One attempt for a parked request: 0, -EAGAIN, or -errno. */
static int waiter_try(ByteLocks *locks, LockWaiter *waiter)
{
        if (waiter->cancelled)
                return -EINTR;
        if (waiter->flock) {
                int r = flock(waiter->source_fd, waiter->flock_op | LOCK_NB) < 0 ? -errno : 0;
                if (r == -EWOULDBLOCK)
                        r = -EAGAIN;
                if (r == 0)
                        flock_note(locks, waiter->handle, waiter->dev, waiter->ino,
                                   waiter->flock_op, true, waiter->pid, waiter->program,
                                   waiter->path);
                return r;
        }
        int r = owner_try(waiter->owner, waiter->source_fd, &waiter->lock);
        if (r == 0)
                owner_add_handle(waiter->owner, waiter->handle);
        return r;
}

/* Takes an ended request out of the tables. */
static void waiter_detach(ByteLocks *locks, LockWaiter *waiter)
{
        g_hash_table_steal(locks->waiters, &waiter->id);
        LockOwner *owner = waiter->owner;
        if (owner && --owner->parked == 0 && owner->handles->len == 0)
                owner_close(locks, owner);
}

static void waiters_finish(GSList *ended)
{
        for (GSList *l = ended; l; l = l->next) {
                LockWaiter *waiter = l->data;
                waiter->done(waiter->opaque, waiter->result);
                waiter_free(waiter);
        }
        g_slist_free(ended);
}

static gpointer retry_thread(gpointer data)
{
        ByteLocks *locks = data;
        g_mutex_lock(&locks->mutex);
        while (!locks->stopping) {
                locks->kick = false;
                GSList *ended = NULL;
                GHashTableIter iter;
                gpointer value;
                g_hash_table_iter_init(&iter, locks->waiters);
                while (g_hash_table_iter_next(&iter, NULL, &value)) {
                        LockWaiter *waiter = value;
                        if (!waiter->armed)
                                continue;
                        int r = waiter_try(locks, waiter);
                        if (r == -EAGAIN)
                                continue;
                        waiter->result = r;
                        ended = g_slist_prepend(ended, waiter);
                }
                for (GSList *l = ended; l; l = l->next)
                        waiter_detach(locks, l->data);
                if (ended) {
                        g_mutex_unlock(&locks->mutex);
                        waiters_finish(ended);
                        g_mutex_lock(&locks->mutex);
                        /* A grant may have freed nothing, but an error or a
                         * cancel can let the next request in at once. */
                        continue;
                }
                if (locks->kick || locks->stopping)
                        continue;
                if (g_hash_table_size(locks->waiters) > 0)
                        g_cond_wait_until(&locks->wake, &locks->mutex,
                                          g_get_monotonic_time() + RETRY_INTERVAL_US);
                else
                        g_cond_wait(&locks->wake, &locks->mutex);
        }
        g_mutex_unlock(&locks->mutex);
        return NULL;
}

ByteLocks *byte_locks_new(void)
{
        ByteLocks *locks = g_new0(ByteLocks, 1);
        g_mutex_init(&locks->mutex);
        g_cond_init(&locks->wake);
        locks->owners = g_hash_table_new_full(owner_key_hash, owner_key_equal, NULL, owner_free);
        locks->waiters = g_hash_table_new(g_int64_hash, g_int64_equal);
        locks->flocks = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, flock_hold_free);
        locks->thread = g_thread_new("byte-locks", retry_thread, locks);
        return locks;
}

void byte_locks_free(ByteLocks *locks)
{
        if (!locks)
                return;
        g_mutex_lock(&locks->mutex);
        locks->stopping = true;
        g_cond_signal(&locks->wake);
        g_mutex_unlock(&locks->mutex);
        g_thread_join(locks->thread);

        GSList *ended = NULL;
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, locks->waiters);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LockWaiter *waiter = value;
                waiter->result = -ECANCELED;
                ended = g_slist_prepend(ended, waiter);
        }
        g_hash_table_steal_all(locks->waiters);
        waiters_finish(ended);

        g_hash_table_unref(locks->waiters);
        g_hash_table_unref(locks->owners);
        g_hash_table_unref(locks->flocks);
        g_cond_clear(&locks->wake);
        g_mutex_clear(&locks->mutex);
        g_free(locks);
}

/* The pid of an owner here, not @asker, that holds exactly @lock. */
static pid_t holder_pid(ByteLocks *locks, const ByteLockRequest *who, const struct flock *lock)
{
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, locks->owners);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LockOwner *holder = value;
                if (holder->key.dev != who->dev || holder->key.ino != who->ino ||
                    holder->key.owner == who->owner)
                        continue;
                g_autoptr(GArray) held = description_locks(holder->fd);
                for (guint i = 0; i < held->len; i++) {
                        const HeldRange *range = &g_array_index(held, HeldRange, i);
                        if (range->type == lock->l_type && range->start == lock->l_start &&
                            range->end == range_end(lock))
                                return holder->pid > 0 ? holder->pid : -1;
                }
        }
        return -1;
}

int byte_locks_test(ByteLocks *locks, const ByteLockRequest *who, struct flock *lock)
{
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&locks->mutex);
        /* The owner's own locks never conflict: test on its description.
         * An owner without one holds nothing, and the client's own
         * description carries no OFD locks, so it tests as a stranger. */
        LockOwner *owner = owner_find(locks, who->dev, who->ino, who->owner);
        int fd = owner && owner->fd >= 0 ? owner->fd : who->fd;
        struct flock test = *lock;
        test.l_whence = SEEK_SET;
        test.l_pid = 0;
        if (fcntl(fd, F_OFD_GETLK, &test) < 0)
                return -errno;
        if (test.l_type != F_UNLCK && test.l_pid == -1)
                test.l_pid = holder_pid(locks, who, &test);
        *lock = test;
        return 0;
}

void byte_locks_owner_closed(ByteLocks *locks, dev_t dev, ino_t ino, uint64_t owner)
{
        if (!locks)
                return;
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&locks->mutex);
        if (g_hash_table_size(locks->owners) == 0)
                return;
        LockOwner *record = owner_find(locks, dev, ino, owner);
        if (!record || record->fd < 0)
                return;
        owner_close(locks, record);
        kick_locked(locks);
}

void byte_locks_handle_released(ByteLocks *locks, int fd, uint64_t handle)
{
        if (!locks)
                return;
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&locks->mutex);
        if (g_hash_table_remove(locks->flocks, &handle)) {
                /* Explicitly: a duplicate of the descriptor may briefly
                 * outlive the close that follows. */
                flock(fd, LOCK_UN);
                kick_locked(locks);
        }
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, locks->owners);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LockOwner *owner = value;
                guint i;
                for (i = 0; i < owner->handles->len; i++)
                        if (g_array_index(owner->handles, uint64_t, i) == handle)
                                break;
                if (i == owner->handles->len)
                        continue;
                g_array_remove_index_fast(owner->handles, i);
                if (owner->handles->len > 0)
                        continue;
                if (owner->fd >= 0)
                        close(owner->fd);
                owner->fd = -1;
                if (owner->parked == 0)
                        g_hash_table_iter_remove(&iter);
                kick_locked(locks);
        }
}

static ByteLockInfo *info_new(dev_t dev, ino_t ino, short type, pid_t pid, const char *program,
                              const char *path)
{
        ByteLockInfo *info = g_new0(ByteLockInfo, 1);
        info->dev = dev;
        info->ino = ino;
        info->type = type;
        info->pid = pid;
        info->program = g_strdup(program);
        info->path = g_strdup(path);
        return info;
}

static bool info_wanted(const struct stat *only, dev_t dev, ino_t ino)
{
        return !only || (only->st_dev == dev && only->st_ino == ino);
}

GPtrArray *byte_locks_snapshot(ByteLocks *locks, const struct stat *only)
{
        GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)byte_lock_info_free);
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&locks->mutex);
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, locks->owners);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LockOwner *owner = value;
                if (!info_wanted(only, owner->key.dev, owner->key.ino))
                        continue;
                g_autoptr(GArray) held = description_locks(owner->fd);
                for (guint i = 0; i < held->len; i++) {
                        const HeldRange *range = &g_array_index(held, HeldRange, i);
                        ByteLockInfo *info = info_new(owner->key.dev, owner->key.ino, range->type,
                                                      owner->pid, owner->program, owner->path);
                        info->owner = owner->serial;
                        info->start = range->start;
                        info->len = range->end == RANGE_END_EOF ? 0 : range->end - range->start + 1;
                        g_ptr_array_add(out, info);
                }
        }
        g_hash_table_iter_init(&iter, locks->flocks);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                FlockHold *hold = value;
                if (!info_wanted(only, hold->dev, hold->ino))
                        continue;
                ByteLockInfo *info = info_new(hold->dev, hold->ino, hold->type, hold->pid,
                                              hold->program, hold->path);
                info->flock = true;
                info->owner = hold->serial;
                g_ptr_array_add(out, info);
        }
        g_hash_table_iter_init(&iter, locks->waiters);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LockWaiter *waiter = value;
                if (!info_wanted(only, waiter->dev, waiter->ino) || waiter->cancelled)
                        continue;
                ByteLockInfo *info;
                if (waiter->flock) {
                        info = info_new(waiter->dev, waiter->ino,
                                        waiter->flock_op == LOCK_EX ? F_WRLCK : F_RDLCK,
                                        waiter->pid, waiter->program, waiter->path);
                        info->flock = true;
                        info->owner = waiter->id;
                } else {
                        const LockOwner *owner = waiter->owner;
                        info = info_new(waiter->dev, waiter->ino, waiter->lock.l_type, owner->pid,
                                        owner->program, owner->path);
                        info->owner = owner->serial;
                        info->start = waiter->lock.l_start;
                        info->len = waiter->lock.l_len;
                }
                info->waiting = true;
                g_ptr_array_add(out, info);
        }
        return out;
}
