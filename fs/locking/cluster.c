/* cluster.c - OFD locks in a postoffice's lease file (see the header
 * for the protocol). The descriptor is immutable once open and fcntl is
 * thread-safe, so no lock of our own guards anything here but the
 * once-only warning. */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"

#define CLUSTER_VERSION_BASE ((off_t)1 << 40)
#define CLUSTER_VERSION_WINDOW 256
#define CLUSTER_MARKS_BASE ((off_t)4096)
#define CLUSTER_MARKS_COUNT ((off_t)1 << 20)

struct Cluster {
        /* The lease file, read/write; -1 once cluster_close() closed it.
         * Guarded by fd_lock: read-held around every use, write-held to
         * close or to swap in a new file (cluster_rejoin), so a closed
         * number is never used for a file reopened under it. */
        int fd;
        GRWLock fd_lock;
        dev_t file_dev;           /* guarded by fd_lock: the file @fd is */
        ino_t file_ino;           /* guarded by fd_lock */
        gint64 fresh_until_us;    /* guarded by fd_lock: no new take before */
        /* The postoffice folder (O_RDONLY, so it can be flocked): where the
         * lease file is looked for again. Held shared-flocked while this
         * daemon serves, so a daemon that finds the file missing knows
         * whether others serve (cluster_rejoin). -1 when closed; set at
         * open, closed with fd under fd_lock's writer. */
        int dir_fd;
        atomic_llong checked_us;  /* monotonic time of the last look at the name */
        /* When this daemon last looked whether another serves the
         * postoffice (monotonic us), and what it saw: the intent bytes are
         * only worth a look while another does. */
        atomic_llong others_checked_us;
        atomic_bool others_seen;
        char *po_path;      /* for messages */
        atomic_bool unsupported; /* the filesystem gives no locks at all (found at open) */
        atomic_bool lock_failing; /* a lock failed lately (logged once) */
        bool local;         /* a local filesystem: every reader shares one page
                             * cache (found at open; immutable) */
        GMutex state_mutex; /* inside fd_lock when both are taken */
        /* Sessions whose mark this daemon set and has not cleared: only
         * these can be marked when this daemon's hold ends, as no other
         * daemon writes a session's mark while this one holds it. Guarded
         * by state_mutex. */
        GHashTable *marked_here;
        /* The ranges this daemon locks besides its version byte (offset ->
         * lock type), to take again in a new lease file. Guarded by
         * state_mutex, changed only with fd_lock read-held. */
        GHashTable *ranges;
};

static const char cluster_header[] =
        "mailbagfs lease file, protocol 1: mailbagfs daemons serving this postoffice lock "
        "ranges of it; it holds no data. Do not remove it while one runs.\n";

static guint64 cluster_hash(const char *name)
{
        guint64 hash = 14695981039346656037ULL;
        for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
                hash ^= *p;
                hash *= 1099511628211ULL;
        }
        return hash;
}

gint64 cluster_offset(LeaseKind kind, const char *name)
{
        guint64 hash = cluster_hash(name);
        return ((gint64)(kind + 1) << 56) + 2 * (gint64)(hash & ((G_GUINT64_CONSTANT(1) << 48) - 1));
}

static off_t cluster_mark_offset(const char *session)
{
        return CLUSTER_MARKS_BASE + (off_t)(cluster_hash(session) % (guint64)CLUSTER_MARKS_COUNT);
}

static int cluster_fcntl(int fd, int command, short type, off_t start, off_t len,
                         struct flock *out)
{
        struct flock lock = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
        if (fcntl(fd, command, &lock) < 0)
                return -errno;
        if (out)
                *out = lock;
        return 0;
}

/* Another daemon holds a lock in [start, start + len) that conflicts with
 * @type: *conflict_start receives where. */
static bool cluster_conflict(int fd, short type, off_t start, off_t len, off_t *conflict_start)
{
        struct flock lock = {.l_type = F_UNLCK};
        if (cluster_fcntl(fd, F_OFD_GETLK, type, start, len, &lock) < 0)
                return false;
        if (lock.l_type == F_UNLCK)
                return false;
        if (conflict_start)
                *conflict_start = lock.l_start;
        return true;
}

static bool cluster_other_version(int fd)
{
        off_t own = CLUSTER_VERSION_BASE + CLUSTER_PROTOCOL;
        return cluster_conflict(fd, F_WRLCK, CLUSTER_VERSION_BASE, own - CLUSTER_VERSION_BASE, NULL) ||
               cluster_conflict(fd, F_WRLCK, own + 1,
                                CLUSTER_VERSION_BASE + CLUSTER_VERSION_WINDOW - own - 1, NULL);
}

/* On these filesystems every process of the host, and every NFS or SMB
 * server exporting them, reads one page cache: a descriptor held open
 * sees what any other wrote. Cluster and network clients (FUSE, NFS,
 * CIFS, Ceph, GPFS, ...) may show an old descriptor stale data. */
static bool cluster_file_is_local(int fd)
{
        struct statfs fs;
        if (fstatfs(fd, &fs) < 0)
                return false;
        switch ((unsigned long)fs.f_type) {
        case TMPFS_MAGIC:
        case RAMFS_MAGIC:
        case EXT4_SUPER_MAGIC: /* also ext2 and ext3 */
        case XFS_SUPER_MAGIC:
        case BTRFS_SUPER_MAGIC:
        case F2FS_SUPER_MAGIC:
                return true;
        default:
                return false;
        }
}

/* Opens the lease file in @dir_fd, making it if it is missing
 * (*@created). It must be the daemon's own: anyone who could open it could
 * hold a lock on a lease's byte and freeze that queue, or on the version
 * window and have the postoffice refused. */
static int cluster_file_open(int dir_fd, const char *shown, bool *created, struct stat *st,
                             GError **error)
{
        /* O_NONBLOCK: a FIFO planted under the name must not hold us. */
        const int flags = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
        int fd = openat(dir_fd, CLUSTER_FILE, flags | O_CREAT | O_EXCL, 0600);
        *created = fd >= 0;
        if (fd < 0 && errno == EEXIST)
                fd = openat(dir_fd, CLUSTER_FILE, flags);
        if (fd < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "%s/%s: %s", shown, CLUSTER_FILE, g_strerror(errno));
                return -1;
        }
        if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_uid != geteuid() ||
            st->st_nlink != 1) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                            "%s/%s is not the daemon's own file (it must be a regular file "
                            "owned by uid %u with one link); remove it", shown,
                            CLUSTER_FILE, (unsigned)geteuid());
                close(fd);
                return -1;
        }
        if ((st->st_mode & 077) && fchmod(fd, st->st_mode & 0700) < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "%s/%s: cannot make it private: %s", shown, CLUSTER_FILE,
                            g_strerror(errno));
                close(fd);
                return -1;
        }
        /* The header is for people; write it once, never trust it. */
        char first;
        if (pread(fd, &first, 1, 0) == 0 &&
            pwrite(fd, cluster_header, sizeof cluster_header - 1, 0) < 0)
                log_debug("%s/%s: cannot write its header: %s", shown, CLUSTER_FILE,
                          g_strerror(errno));
        return fd;
}

/* Takes @how (LOCK_SH, LOCK_EX) on the folder without waiting, trying a
 * few times while another daemon's probe holds it for a moment: 0 or
 * -errno. */
static int cluster_dir_flock(int dir_fd, int how)
{
        for (int attempt = 0; attempt < 20; attempt++) {
                if (flock(dir_fd, how | LOCK_NB) == 0)
                        return 0;
                if (errno != EWOULDBLOCK || how == LOCK_EX)
                        return -errno;
                g_usleep(5000);
        }
        return -EWOULDBLOCK;
}

/* Whether another daemon serves the postoffice: it holds the folder
 * flocked shared. Asked by a daemon that has just made the lease file,
 * before it takes its own shared flock, or holding it (a conversion). A
 * folder that cannot be flocked answers true: the file may have been
 * removed under another daemon. */
static bool cluster_others_serve(int dir_fd)
{
        if (cluster_dir_flock(dir_fd, LOCK_EX) < 0)
                return true;
        cluster_dir_flock(dir_fd, LOCK_SH);
        return false;
}

Cluster *cluster_open(int po_dirfd, const char *po_path, GError **error)
{
        const char *shown = po_path[0] ? po_path : ".";
        int dir_fd = openat(po_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", shown,
                            g_strerror(errno));
                return NULL;
        }
        bool created = false;
        struct stat st;
        int fd = cluster_file_open(dir_fd, shown, &created, &st, error);
        if (fd < 0) {
                close(dir_fd);
                return NULL;
        }

        Cluster *locks = g_new0(Cluster, 1);
        g_rw_lock_init(&locks->fd_lock);
        g_mutex_init(&locks->state_mutex);
        locks->marked_here = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        locks->ranges = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        locks->fd = fd;
        locks->dir_fd = dir_fd;
        locks->file_dev = st.st_dev;
        locks->file_ino = st.st_ino;
        atomic_store(&locks->checked_us, g_get_monotonic_time());
        locks->po_path = g_strdup(shown);
        locks->local = cluster_file_is_local(fd);
        /* A file made here while other daemons serve the postoffice was
         * removed under them: give them time to join this one first. */
        if (created && cluster_others_serve(dir_fd)) {
                locks->fresh_until_us = g_get_monotonic_time() + CLUSTER_REJOIN_GRACE_MS * 1000;
                log_warning("%s/%s was missing while another mailbagfs daemon serves the "
                            "postoffice: made it again; no lease is granted through it for %d ms, "
                            "while the other daemons join it", shown, CLUSTER_FILE,
                            CLUSTER_REJOIN_GRACE_MS);
        }
        int flocked = cluster_dir_flock(dir_fd, LOCK_SH);
        if (flocked < 0)
                log_debug("%s: cannot flock the folder (%s): a daemon that finds the lease file "
                          "missing will wait before granting", shown, g_strerror(-flocked));
        int r = cluster_fcntl(fd, F_OFD_SETLK, F_RDLCK,
                              CLUSTER_VERSION_BASE + CLUSTER_PROTOCOL, 1, NULL);
        if (r == -EINVAL || r == -ENOLCK || r == -EOPNOTSUPP) {
                atomic_store(&locks->unsupported, true);
                log_warning("%s: the backing filesystem gives no file locks (%s): its leases "
                            "hold for this daemon only", shown, g_strerror(-r));
                return locks;
        }
        if (r < 0 || cluster_other_version(fd)) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                            "%s: %s", shown,
                            r < 0 ? g_strerror(-r)
                                  : "a mailbagfs daemon of another lease protocol version serves "
                                    "this postoffice; run one version on all nodes");
                cluster_free(locks);
                return NULL;
        }
        return locks;
}

/* The lease file's descriptor, read-held until cluster_fd_end(); -1 (and
 * nothing held) once closed. */
static int cluster_fd_begin(Cluster *locks)
{
        g_rw_lock_reader_lock(&locks->fd_lock);
        if (locks->fd >= 0)
                return locks->fd;
        g_rw_lock_reader_unlock(&locks->fd_lock);
        return -1;
}

static void cluster_fd_end(Cluster *locks)
{
        g_rw_lock_reader_unlock(&locks->fd_lock);
}

/* cluster_fd_begin() for a lock operation: -1 also when the filesystem
 * gives no locks at all. */
static int cluster_lock_fd_begin(Cluster *locks)
{
        return atomic_load(&locks->unsupported) ? -1 : cluster_fd_begin(locks);
}

void cluster_close(Cluster *locks)
{
        if (!locks)
                return;
        g_rw_lock_writer_lock(&locks->fd_lock);
        if (locks->fd >= 0)
                close(locks->fd);
        locks->fd = -1;
        if (locks->dir_fd >= 0)
                close(locks->dir_fd);
        locks->dir_fd = -1;
        g_rw_lock_writer_unlock(&locks->fd_lock);
}

void cluster_free(Cluster *locks)
{
        if (!locks)
                return;
        cluster_close(locks);
        g_rw_lock_clear(&locks->fd_lock);
        g_free(locks->po_path);
        g_hash_table_unref(locks->marked_here);
        g_hash_table_unref(locks->ranges);
        g_mutex_clear(&locks->state_mutex);
        g_free(locks);
}

/* Logged once per burst: the next success re-arms it. */
static void cluster_lock_failed(Cluster *locks, int error)
{
        if (!atomic_exchange(&locks->lock_failing, true))
                log_warning("%s: the backing filesystem refused a lease lock (%s): requests for "
                            "it wait and ask again", locks->po_path, g_strerror(-error));
}

/* Records that this daemon now locks @offset with @type (F_UNLCK: no
 * more), for cluster_rejoin(). With fd_lock read-held, so a rejoin sees
 * every lock taken in the file it replaces. */
static void cluster_range_note(Cluster *locks, off_t offset, short type)
{
        gint64 key = offset;
        g_mutex_lock(&locks->state_mutex);
        if (type == F_UNLCK)
                g_hash_table_remove(locks->ranges, &key);
        else
                g_hash_table_replace(locks->ranges, g_memdup2(&key, sizeof key),
                                     GINT_TO_POINTER((int)type));
        g_mutex_unlock(&locks->state_mutex);
}

/* Whether the lease file's name still leads to the file held. With
 * fd_lock held. */
static bool cluster_name_is_ours(Cluster *locks)
{
        struct stat named;
        return locks->fd < 0 ||
               (fstatat(locks->dir_fd, CLUSTER_FILE, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
                named.st_dev == locks->file_dev && named.st_ino == locks->file_ino);
}

/* Joins the lease file now under the name, after the one held was removed
 * or replaced on the backing store: every lock this daemon held is taken
 * again there, every mark written again, and the old file closed. Its
 * lease file is in every daemon's interest, so a removal is logged, not
 * fought. */
static void cluster_rejoin(Cluster *locks)
{
        g_autoptr(GError) error = NULL;
        g_rw_lock_writer_lock(&locks->fd_lock);
        if (cluster_name_is_ours(locks)) {
                g_rw_lock_writer_unlock(&locks->fd_lock);
                return; /* closed, or joined meanwhile */
        }
        bool created = false;
        struct stat st;
        int fd = cluster_file_open(locks->dir_fd, locks->po_path, &created, &st, &error);
        if (fd < 0) {
                g_rw_lock_writer_unlock(&locks->fd_lock);
                log_warning("%s/%s was removed or replaced on the backing store, and cannot be "
                            "made again: %s; other daemons cannot serve the postoffice meanwhile",
                            locks->po_path, CLUSTER_FILE, error->message);
                return;
        }
        unsigned taken = 0, conflicts = 0;
        cluster_fcntl(fd, F_OFD_SETLK, F_RDLCK, CLUSTER_VERSION_BASE + CLUSTER_PROTOCOL, 1, NULL);
        g_mutex_lock(&locks->state_mutex);
        GHashTableIter iter;
        gpointer key, value;
        g_hash_table_iter_init(&iter, locks->ranges);
        while (g_hash_table_iter_next(&iter, &key, &value)) {
                if (cluster_fcntl(fd, F_OFD_SETLK, (short)GPOINTER_TO_INT(value), *(gint64 *)key, 1,
                                  NULL) == 0)
                        taken++;
                else
                        conflicts++;
        }
        g_hash_table_iter_init(&iter, locks->marked_here);
        char byte = 1;
        while (g_hash_table_iter_next(&iter, &key, NULL))
                if (pwrite(fd, &byte, 1, cluster_mark_offset(key)) != 1)
                        log_debug("%s/%s: cannot write a mark again: %s", locks->po_path,
                                  CLUSTER_FILE, g_strerror(errno));
        g_mutex_unlock(&locks->state_mutex);
        if (created && cluster_others_serve(locks->dir_fd))
                locks->fresh_until_us = g_get_monotonic_time() + CLUSTER_REJOIN_GRACE_MS * 1000;
        close(locks->fd);
        locks->fd = fd;
        locks->file_dev = st.st_dev;
        locks->file_ino = st.st_ino;
        g_rw_lock_writer_unlock(&locks->fd_lock);
        if (conflicts > 0)
                log_error("%s/%s was removed or replaced on the backing store; joined the new "
                          "one, but %u of the %u leases held here are held through another daemon "
                          "too: programs on two nodes may be inside one queue until they let go",
                          locks->po_path, CLUSTER_FILE, conflicts, taken + conflicts);
        else
                log_warning("%s/%s was removed or replaced on the backing store; joined the %s one "
                            "with the %u leases held here (keep the backing store root's only: "
                            "docs/security.md)", locks->po_path, CLUSTER_FILE,
                            created ? "re-made" : "new", taken);
}

/* Looks at the lease file's name at most every CLUSTER_CHECK_MS: when it
 * no longer leads to the file held, joins the one it leads to. */
static void cluster_check(Cluster *locks)
{
        gint64 now = g_get_monotonic_time();
        gint64 last = atomic_load(&locks->checked_us);
        if (now - last < CLUSTER_CHECK_MS * 1000 ||
            !atomic_compare_exchange_strong(&locks->checked_us, &last, now))
                return;
        g_rw_lock_reader_lock(&locks->fd_lock);
        bool same = cluster_name_is_ours(locks);
        g_rw_lock_reader_unlock(&locks->fd_lock);
        if (!same)
                cluster_rejoin(locks);
}

gint64 cluster_keep_joined(Cluster *locks)
{
        if (!locks || atomic_load(&locks->unsupported))
                return G_MAXINT64;
        g_mutex_lock(&locks->state_mutex);
        bool holding = g_hash_table_size(locks->ranges) > 0;
        g_mutex_unlock(&locks->state_mutex);
        if (!holding)
                return G_MAXINT64;
        cluster_check(locks);
        return atomic_load(&locks->checked_us) + CLUSTER_CHECK_MS * 1000;
}

static int cluster_take_range(Cluster *locks, LeaseKind kind, const char *name)
{
        if (atomic_load(&locks->unsupported))
                return 0;
        off_t offset = cluster_offset(kind, name);
        int r = -EAGAIN;
        /* A lock taken in a file that is no longer under the name holds
         * against nobody who joined the new one: the name is checked once
         * the lock is held (a removal after that finds this daemon holding
         * and joining the new file, cluster_keep_joined). */
        for (int attempt = 0; attempt < 2; attempt++) {
                int fd = cluster_fd_begin(locks);
                if (fd < 0)
                        return -EAGAIN; /* closed: its postoffice is gone */
                if (locks->fresh_until_us > g_get_monotonic_time()) {
                        cluster_fd_end(locks);
                        return -EAGAIN; /* others are joining a re-made file */
                }
                r = cluster_fcntl(fd, F_OFD_SETLK, F_WRLCK, offset, 1, NULL);
                bool ours = r < 0 || cluster_name_is_ours(locks);
                if (r == 0 && ours)
                        cluster_range_note(locks, offset, F_WRLCK);
                else if (r == 0)
                        cluster_fcntl(fd, F_OFD_SETLK, F_UNLCK, offset, 1, NULL);
                cluster_fd_end(locks);
                if (ours)
                        break;
                r = -EAGAIN;
                cluster_rejoin(locks);
        }
        if (r == -EAGAIN || r == -EACCES)
                return -EAGAIN;
        if (r < 0) {
                /* A lock that cannot be taken now (a cluster client
                 * reconnecting: EIO, ENOTCONN, ENOLCK) is not held here: the
                 * request waits and asks again, or times out. Leases never
                 * fall back to this daemon alone once it joined the share. */
                cluster_lock_failed(locks, r);
                return -EAGAIN;
        }
        atomic_store(&locks->lock_failing, false);
        return 0;
}

int cluster_take(Cluster *locks, LeaseKind kind, const char *name, bool after_waiting)
{
        int r = cluster_take_range(locks, kind, name);
        if (r < 0)
                return r;
        if (kind == LEASE_SESSION && (after_waiting || cluster_marked(locks, name)))
                return CLUSTER_TAKEN_FROM_DEAD_NODE;
        return CLUSTER_TAKEN;
}

void cluster_drop(Cluster *locks, LeaseKind kind, const char *name)
{
        if (kind == LEASE_SESSION && cluster_marked_here(locks, name))
                cluster_mark(locks, name, false);
        int fd = cluster_lock_fd_begin(locks);
        if (fd < 0)
                return;
        cluster_fcntl(fd, F_OFD_SETLK, F_UNLCK, cluster_offset(kind, name), 1, NULL);
        cluster_range_note(locks, cluster_offset(kind, name), F_UNLCK);
        cluster_fd_end(locks);
}

void cluster_want(Cluster *locks, LeaseKind kind, const char *name, bool want)
{
        int fd = cluster_lock_fd_begin(locks);
        if (fd < 0)
                return;
        short type = want ? F_RDLCK : F_UNLCK;
        off_t offset = cluster_offset(kind, name) + 1;
        if (cluster_fcntl(fd, F_OFD_SETLK, type, offset, 1, NULL) == 0 || !want)
                cluster_range_note(locks, offset, type);
        cluster_fd_end(locks);
}

/* Whether another daemon holds a lock in the range conflicting with @type;
 * false when locks are unsupported or the file is closed. */
static bool cluster_conflict_now(Cluster *locks, short type, off_t start, off_t len)
{
        int fd = cluster_lock_fd_begin(locks);
        if (fd < 0)
                return false;
        bool conflict = cluster_conflict(fd, type, start, len, NULL);
        cluster_fd_end(locks);
        return conflict;
}

bool cluster_served_elsewhere(Cluster *locks)
{
        return cluster_conflict_now(locks, F_WRLCK, CLUSTER_VERSION_BASE, CLUSTER_VERSION_WINDOW);
}

/* Whether another daemon served the postoffice when this one last looked,
 * looking again once that is CLUSTER_CHECK_MS old. */
static bool cluster_others_seen_lately(Cluster *locks)
{
        gint64 now = g_get_monotonic_time();
        if (now - atomic_load(&locks->others_checked_us) < CLUSTER_CHECK_MS * 1000)
                return atomic_load(&locks->others_seen);
        bool seen = cluster_served_elsewhere(locks);
        atomic_store(&locks->others_seen, seen);
        atomic_store(&locks->others_checked_us, now);
        return seen;
}

bool cluster_wanted_elsewhere(Cluster *locks, LeaseKind kind, const char *name)
{
        return cluster_others_seen_lately(locks) &&
               cluster_conflict_now(locks, F_WRLCK, cluster_offset(kind, name) + 1, 1);
}

bool cluster_held_elsewhere(Cluster *locks, LeaseKind kind, const char *name)
{
        return cluster_conflict_now(locks, F_RDLCK, cluster_offset(kind, name), 1);
}

void cluster_mark(Cluster *locks, const char *session, bool marked)
{
        g_mutex_lock(&locks->state_mutex);
        if (marked)
                g_hash_table_add(locks->marked_here, g_strdup(session));
        else
                g_hash_table_remove(locks->marked_here, session);
        g_mutex_unlock(&locks->state_mutex);
        char byte = marked ? 1 : 0;
        int fd = cluster_fd_begin(locks);
        if (fd < 0)
                return;
        /* Written through: a cluster filesystem's client may hold writes
         * back, and the mark matters most when this daemon dies. */
        bool written = pwrite(fd, &byte, 1, cluster_mark_offset(session)) == 1 &&
                       fdatasync(fd) == 0;
        cluster_fd_end(locks);
        if (!written)
                log_debug("%s/%s: cannot %s the lock-file mark of %s: %s", locks->po_path,
                          CLUSTER_FILE, marked ? "set" : "clear", session, g_strerror(errno));
}

bool cluster_marked_here(Cluster *locks, const char *session)
{
        g_mutex_lock(&locks->state_mutex);
        bool marked = g_hash_table_contains(locks->marked_here, session);
        g_mutex_unlock(&locks->state_mutex);
        return marked;
}

bool cluster_marked(Cluster *locks, const char *session)
{
        char byte = 0;
        int held = cluster_fd_begin(locks);
        if (held < 0)
                return false;
        if (locks->local) {
                bool marked = pread(held, &byte, 1, cluster_mark_offset(session)) == 1 &&
                              byte != 0;
                cluster_fd_end(locks);
                return marked;
        }
        /* A fresh open, not the long-held descriptor: over GlusterFS the
         * old one kept showing the file as this client last read it. */
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", held);
        int fd = open(self, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                fd = fd_dup(held);
        cluster_fd_end(locks);
        bool marked = fd >= 0 && pread(fd, &byte, 1, cluster_mark_offset(session)) == 1 &&
                      byte != 0;
        if (fd >= 0)
                close(fd);
        return marked;
}

/* The names a lock-file pattern of the profile stands for ("0NN": every N
 * a decimal digit), in turn: @number from 0 up, until it answers false. */
static bool cluster_pattern_name(const char *pattern, unsigned number, char *ext, gsize size)
{
        gsize len = strlen(pattern);
        unsigned rest = number;
        if (len >= size)
                return false;
        for (gsize i = len; i-- > 0;) {
                ext[i] = pattern[i] == 'N' ? (char)('0' + rest % 10) : pattern[i];
                if (pattern[i] == 'N')
                        rest /= 10;
        }
        ext[len] = '\0';
        return rest == 0;
}

void cluster_sweep_dead_lockfiles(Cluster *locks, const Backing *backing,
                                  const PoProfile *profile, const char *po_path,
                                  LockFiles *known, const char *session)
{
        /* Looked at now; lock files this daemon makes will mark it again. */
        cluster_mark(locks, session, false);
        const char *lock_folder = po_profile_lock_folder(profile);
        g_autofree char *folder_rel = po_path[0] ? g_strdup_printf("%s/%s", po_path, lock_folder)
                                                 : g_strdup(lock_folder);
        autoclose_fd int dirfd = backing_open_dir(backing, folder_rel);
        if (dirfd < 0)
                return;
        for (const char *const *pattern = po_profile_v20_extensions(profile); *pattern; pattern++) {
                char ext[16];
                for (unsigned number = 0; number < 100000 &&
                     cluster_pattern_name(*pattern, number, ext, sizeof ext);
                     number++) {
                        g_autofree char *file = g_strdup_printf("%s.%s", session, ext);
                        g_autofree char *inner = g_strdup_printf("%s/%s", lock_folder, file);
                        struct stat st;
                        if (fstatat(dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                            !S_ISREG(st.st_mode) || lockfiles_known(known, inner))
                                continue;
                        if (unlinkat(dirfd, file, 0) == 0)
                                log_warning("removed stale lock file %s/%s: made through another "
                                            "mailbagfs daemon, which no longer holds its queue",
                                            folder_rel, file);
                }
        }
}
