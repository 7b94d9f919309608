/* mount-harness.h - a real mailbagfs mount for a test.
 *
 * mount_harness_setup() makes a private temporary directory holding
 * backing/ and mnt/; fill backing/ as the test needs, then
 * mount_harness_mount() starts the daemon built by this tree (the MAILBAGFS
 * environment variable names it) in the foreground with auto_unmount and
 * waits for its ready signal on a pipe: no sleeping. The daemon gets
 * SIGTERM if the test process dies, so a crashed test leaves no mount.
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
} MountHarness;

/* 0 or -errno. */
int mount_harness_setup(MountHarness *h);

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

/* Removes a directory tree; 0 or -errno. */
int harness_remove_tree(const char *path);
