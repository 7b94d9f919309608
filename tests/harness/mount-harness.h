/* mount-harness.h - a real mailbagfs mount for a test.
 *
 * mount_harness_setup() makes a private temporary directory holding
 * backing/ and mnt/; fill backing/ as the test needs, then
 * mount_harness_mount() starts the daemon built by this tree (the MAILBAGFS
 * environment variable names it) with auto_unmount and waits for its ready
 * signal on a pipe: no sleeping.
 *
 * MAILBAGFS_TEST_START says how the daemon is started, so that one suite
 * can run against each way users start it:
 *   foreground (default)  mailbagfs -f: the daemon gets SIGTERM if the test
 *                         process dies, and its log is kept in daemon.log
 *   daemon                mailbagfs without -f: it forks and detaches, as
 *                         fstab and systemd mounts run it
 *   mount                 mount -t fuse "MAILBAGFS#BACKING" MNT -o ...: the
 *                         mount(8) and mount.fuse3 path
 * A detached daemon logs to syslog, so its log is not available to tests
 * (mount_harness_has_log()).
 * mount_harness_teardown() unmounts, reaps the daemon and removes the
 * directory; it is safe to call at any stage, also twice.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

typedef struct {
        char *dir;     /* the private temporary directory */
        char *backing; /* dir/backing */
        char *mnt;     /* dir/mnt */
        char *log;     /* dir/daemon.log: the daemon's stderr */
        pid_t daemon;  /* 0 when not running */
        bool detached; /* the daemon is not our child (daemon, mount) */
} MountHarness;

/* 0 or -errno. */
int mount_harness_setup(MountHarness *h);

/* Has the daemon serve @backing instead of dir/backing (which stays,
 * empty): another node's backing directory, as two cluster nodes serve
 * one share, or a cluster filesystem's client mount. Between setup and
 * mount. */
void mount_harness_set_backing(MountHarness *h, const char *backing);

/* Mounts backing/ at mnt/ with the extra daemon arguments @argv (NULL
 * terminated, may be NULL). 0 or -errno; on failure the daemon's log says
 * why. */
int mount_harness_mount(MountHarness *h, const char *const *argv);

/* Unmounts and waits for the daemon. Returns its exit status (0 on a clean
 * exit), or -1 when it had to be killed. */
int mount_harness_unmount(MountHarness *h);

void mount_harness_teardown(MountHarness *h);

/* The lines of the daemon's log at warning level or worse, or NULL if
 * there were none (caller frees). */
char *mount_harness_log_problems(const MountHarness *h);

/* The trail streams of the postoffice folder @po on the backing store
 * (its .mailbagfs-trail/ files, one after the other), or NULL when it has
 * no trail folder (caller frees). */
char *harness_trail_text(const char *po);

/* Whether the daemon's log lands in @h->log (foreground start only). */
bool mount_harness_has_log(const MountHarness *h);

/* Whether a filesystem of @type is mounted at @mnt, by /proc/self/mounts:
 * "fuse" is any FUSE filesystem (fuse, fuse.glusterfs...), "fuse.mailbagfs"
 * only that one. */
bool harness_is_mounted(const char *mnt, const char *type);

/* The descriptors process @pid holds, pipes apart: libfuse gives each
 * worker thread a splice pipe pair, which follow the thread count, not
 * the files; they are counted in @pipes. -1 when /proc cannot tell. */
int harness_count_fds(pid_t pid, int *pipes);

/* Removes a directory tree; 0 or -errno. */
int harness_remove_tree(const char *path);

/* The extended attribute @name of @path as a string (caller frees), or
 * NULL with errno set when it cannot be read: how the tests read the
 * daemon's status attributes (user.mailbag.lock, .locks, .stats...). */
char *harness_attribute(const char *path, const char *name);
