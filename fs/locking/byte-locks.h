/* byte-locks.h - clients' fcntl and flock locks, kept on the backing store.
 *
 * A byte-range lock taken through the mount is an OFD lock on the backing
 * file, so it conflicts with the same range locked through another
 * mailbagfs daemon on the share (another mount, another node) and with a
 * process working on the backing directory itself, by fcntl or OFD locks.
 *
 * POSIX semantics per owner: each (backing file, lock owner) pair has one
 * open file description of its own on the backing file, reopened from the
 * client's descriptor, and the owner's locks are OFD locks on it. The
 * kernel then merges and splits one owner's ranges and makes different
 * owners, mounts and nodes conflict. The owner's description is closed,
 * and with it its locks, when the owner closes any descriptor of the file
 * (byte_locks_owner_closed) or when the last open file it locked through
 * is released. An OFD lock a client takes through the mount has its open
 * file as owner: it arrives and is kept the same way.
 *
 * flock locks are flock() on the client's own backing descriptor: one per
 * open, as flock's semantics want.
 *
 * A blocking request that cannot be granted at once waits without a
 * thread: it is parked, and one thread of this module retries every
 * parked request without blocking, every few milliseconds and at once
 * when this daemon releases a lock, until it is granted, fails, or is
 * cancelled (an interrupted client: -EINTR). Waits are not queued in
 * order: whichever retry finds the range free wins.
 *
 * Deadlocks: the kernel finds none among OFD locks. Before parking, the
 * requests waiting in this daemon are followed from owner to holder; a
 * request that would close a cycle fails with -EDEADLK. A cycle through a
 * holder elsewhere (another daemon, a backing-store process) is not seen.
 *
 * Nothing here knows FUSE: requests carry a descriptor, an open-file
 * handle and an owner, and waits end through a callback.
 */
#pragma once

#include <fcntl.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct ByteLocks ByteLocks;

/* A request was parked; its callback will tell how it ended. */
#define BYTE_LOCKS_PENDING 1

/* How a parked request ended: 0 granted, or -errno (-EINTR cancelled,
 * -ECANCELED the module is going away). Called from the module's thread,
 * without its lock held, exactly once per parked request. */
typedef void (*ByteLocksDoneFn)(void *opaque, int result);

/* Who asks and through which open file. */
typedef struct {
        int fd;          /* the open file's backing descriptor (borrowed) */
        dev_t dev;       /* the backing file's identity (st_dev, st_ino of @fd) */
        ino_t ino;
        uint64_t handle; /* the open file */
        uint64_t owner;  /* the lock owner, as FUSE names it */
        pid_t thread_id; /* the calling thread, for the status; 0 unknown */
        const char *path; /* the file's path, for the status; may be NULL */
} ByteLockRequest;

ByteLocks *byte_locks_new(void);
/* Ends every parked request with -ECANCELED, then frees everything. */
void byte_locks_free(ByteLocks *locks);

/* F_GETLK: @lock (SEEK_SET) becomes the first conflicting lock, or
 * l_type F_UNLCK. l_pid is the holder's process when it is an owner of
 * this daemon or a plain POSIX lock on the backing store, else -1. */
int byte_locks_test(ByteLocks *locks, const ByteLockRequest *who, struct flock *lock);

/* F_SETLK (@wait false) or F_SETLKW: 0, -errno (-EAGAIN a conflict,
 * -EDEADLK), or BYTE_LOCKS_PENDING with *@waiter_id set: then the request
 * waits unarmed, and @done is called only after byte_locks_arm(). That
 * leaves the caller a moment to register a cancel path first. */
int byte_locks_set(ByteLocks *locks, const ByteLockRequest *who, const struct flock *lock,
                   bool wait, ByteLocksDoneFn done, void *opaque, uint64_t *waiter_id);

/* flock(2) @op (LOCK_SH, LOCK_EX, LOCK_UN, maybe | LOCK_NB) on the open
 * file; returns as byte_locks_set(). */
int byte_locks_flock(ByteLocks *locks, const ByteLockRequest *who, int op, ByteLocksDoneFn done,
                     void *opaque, uint64_t *waiter_id);

void byte_locks_arm(ByteLocks *locks, uint64_t waiter_id);
/* Ends parked request @waiter_id with -EINTR (from its callback, on the
 * module's thread, never from here); does nothing for an id that has
 * already ended. Safe from any thread, armed or not. */
void byte_locks_cancel(ByteLocks *locks, uint64_t waiter_id);

/* The owner closed a descriptor of the file (@dev, @ino): its locks there end.
 * This and the next do nothing for a NULL @locks (no session). */
void byte_locks_owner_closed(ByteLocks *locks, dev_t dev, ino_t ino, uint64_t owner);
/* Open file @handle (backing descriptor @fd) is released: its flock ends,
 * and so do the locks of owners that locked through it alone. */
void byte_locks_handle_released(ByteLocks *locks, int fd, uint64_t handle);

/* One held or awaited lock, for the status. */
typedef struct {
        bool flock;   /* a whole-file flock; start and len are 0 */
        bool waiting; /* awaited, not held */
        dev_t dev;
        ino_t ino;
        int64_t start;
        int64_t len; /* 0: to the end of the file, however long */
        short type;  /* F_RDLCK or F_WRLCK */
        uint64_t owner; /* a number naming the owner (flock: the open file) here */
        pid_t pid; /* 0 when unknown */
        char *program;
        char *path; /* as it was when first locked; NULL unknown */
} ByteLockInfo;

void byte_lock_info_free(ByteLockInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ByteLockInfo, byte_lock_info_free)

/* Every lock of this daemon's clients, or those on the file of @only
 * (NULL: all). A GPtrArray of ByteLockInfo that frees them. */
GPtrArray *byte_locks_snapshot(ByteLocks *locks, const struct stat *only);
