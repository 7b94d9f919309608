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
         * close, so a closed number is never used for a file reopened
         * under it. */
        int fd;
        GRWLock fd_lock;
        char *po_path;      /* for messages */
        atomic_bool unsupported; /* the filesystem gives no locks at all (found at open) */
        atomic_bool lock_failing; /* a lock failed lately (logged once) */
        bool local;         /* a local filesystem: every reader shares one page
                             * cache (found at open; immutable) */
        GMutex marks_mutex;
        /* Sessions whose mark this daemon set and has not cleared: only
         * these can be marked when this daemon's hold ends, as no other
         * daemon writes a session's mark while this one holds it. Guarded
         * by marks_mutex. */
        GHashTable *marked_here;
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

Cluster *cluster_open(int po_dirfd, const char *po_path, GError **error)
{
        const char *shown = po_path[0] ? po_path : ".";
        /* O_NONBLOCK: a FIFO planted under the name must not hold us. */
        int fd = openat(po_dirfd, CLUSTER_FILE,
                        O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        if (fd < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "%s/%s: %s", shown, CLUSTER_FILE, g_strerror(errno));
                return NULL;
        }
        /* Anyone who could open it could hold a lock on a lease's byte and
         * freeze that queue, or on the version window and have the
         * postoffice refused: it must be the daemon's own, root's only, and
         * not a link to some other file. */
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
            st.st_nlink != 1) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                            "%s/%s is not the daemon's own file (it must be a regular file "
                            "owned by uid %u with one link); remove it", shown,
                            CLUSTER_FILE, (unsigned)geteuid());
                close(fd);
                return NULL;
        }
        if ((st.st_mode & 077) && fchmod(fd, st.st_mode & 0700) < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "%s/%s: cannot make it private: %s", shown, CLUSTER_FILE,
                            g_strerror(errno));
                close(fd);
                return NULL;
        }
        /* The header is for people; write it once, never trust it. */
        char first;
        if (pread(fd, &first, 1, 0) == 0 &&
            pwrite(fd, cluster_header, sizeof cluster_header - 1, 0) < 0)
                log_debug("%s/%s: cannot write its header: %s", shown, CLUSTER_FILE,
                          g_strerror(errno));

        Cluster *locks = g_new0(Cluster, 1);
        g_rw_lock_init(&locks->fd_lock);
        g_mutex_init(&locks->marks_mutex);
        locks->marked_here = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        locks->fd = fd;
        locks->po_path = g_strdup(shown);
        locks->local = cluster_file_is_local(fd);
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
        g_mutex_clear(&locks->marks_mutex);
        g_free(locks);
}

/* Logged once per burst: the next success re-arms it. */
static void cluster_lock_failed(Cluster *locks, int error)
{
        if (!atomic_exchange(&locks->lock_failing, true))
                log_warning("%s: the backing filesystem refused a lease lock (%s): requests for "
                            "it wait and ask again", locks->po_path, g_strerror(-error));
}

static int cluster_take_range(Cluster *locks, LeaseKind kind, const char *name)
{
        if (atomic_load(&locks->unsupported))
                return 0;
        int fd = cluster_fd_begin(locks);
        if (fd < 0)
                return -EAGAIN; /* closed: its postoffice is gone */
        int r = cluster_fcntl(fd, F_OFD_SETLK, F_WRLCK, cluster_offset(kind, name), 1, NULL);
        cluster_fd_end(locks);
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
        cluster_fd_end(locks);
}

void cluster_want(Cluster *locks, LeaseKind kind, const char *name, bool want)
{
        int fd = cluster_lock_fd_begin(locks);
        if (fd < 0)
                return;
        cluster_fcntl(fd, F_OFD_SETLK, want ? F_RDLCK : F_UNLCK, cluster_offset(kind, name) + 1, 1,
                      NULL);
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

bool cluster_wanted_elsewhere(Cluster *locks, LeaseKind kind, const char *name)
{
        return cluster_conflict_now(locks, F_WRLCK, cluster_offset(kind, name) + 1, 1);
}

bool cluster_served_elsewhere(Cluster *locks)
{
        return cluster_conflict_now(locks, F_WRLCK, CLUSTER_VERSION_BASE, CLUSTER_VERSION_WINDOW);
}

bool cluster_held_elsewhere(Cluster *locks, LeaseKind kind, const char *name)
{
        return cluster_conflict_now(locks, F_RDLCK, cluster_offset(kind, name), 1);
}

static off_t cluster_mark_offset(const char *session)
{
        return CLUSTER_MARKS_BASE + (off_t)(cluster_hash(session) % (guint64)CLUSTER_MARKS_COUNT);
}

void cluster_mark(Cluster *locks, const char *session, bool marked)
{
        g_mutex_lock(&locks->marks_mutex);
        if (marked)
                g_hash_table_add(locks->marked_here, g_strdup(session));
        else
                g_hash_table_remove(locks->marked_here, session);
        g_mutex_unlock(&locks->marks_mutex);
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
        g_mutex_lock(&locks->marks_mutex);
        bool marked = g_hash_table_contains(locks->marked_here, session);
        g_mutex_unlock(&locks->marks_mutex);
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
