/* mount-harness.c - starts, watches and always stops a test mount. */
#include "mount-harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Generous: a loaded CI machine may take long to start a process, and a
 * test must fail rather than hang if the daemon never answers. */
#define HARNESS_READY_TIMEOUT_MS 30000
#define HARNESS_EXIT_TIMEOUT_MS 15000

int mount_harness_setup(MountHarness *h)
{
        memset(h, 0, sizeof(*h));
        g_autoptr(GError) error = NULL;
        h->dir = g_dir_make_tmp("mailbagfs-test-XXXXXX", &error);
        if (!h->dir)
                return -EIO;
        h->backing = g_build_filename(h->dir, "backing", NULL);
        h->mnt = g_build_filename(h->dir, "mnt", NULL);
        h->log = g_build_filename(h->dir, "daemon.log", NULL);
        if (mkdir(h->backing, 0755) < 0 || mkdir(h->mnt, 0755) < 0)
                return -errno;
        return 0;
}

int mount_harness_mount(MountHarness *h, const char *const *argv)
{
        const char *daemon_path = getenv("MAILBAGFS");
        if (!daemon_path)
                return -ENOENT;

        int ready[2];
        if (pipe2(ready, O_CLOEXEC) < 0)
                return -errno;

        g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(args, g_strdup(daemon_path));
        g_ptr_array_add(args, g_strdup(h->backing));
        g_ptr_array_add(args, g_strdup(h->mnt));
        g_ptr_array_add(args, g_strdup("-f"));
        g_ptr_array_add(args, g_strdup_printf("-oauto_unmount,ready_fd=%d", ready[1]));
        for (const char *const *arg = argv; arg && *arg; arg++)
                g_ptr_array_add(args, g_strdup(*arg));
        g_ptr_array_add(args, NULL);

        pid_t parent = getpid();
        pid_t child = fork();
        if (child < 0) {
                int saved = errno;
                close(ready[0]);
                close(ready[1]);
                return -saved;
        }
        if (child == 0) {
                /* The daemon must not outlive a test that crashed. */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                        _exit(127);
                int log_fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
                if (log_fd >= 0)
                        dup2(log_fd, STDERR_FILENO);
                fcntl(ready[1], F_SETFD, 0);
                execv(daemon_path, (char **)args->pdata);
                _exit(127);
        }
        close(ready[1]);
        h->daemon = child;

        struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
        int r = poll(&pfd, 1, HARNESS_READY_TIMEOUT_MS);
        char byte = 0;
        bool is_ready = r > 0 && read(ready[0], &byte, 1) == 1 && byte == 'R';
        close(ready[0]);
        if (!is_ready) {
                mount_harness_unmount(h);
                return r == 0 ? -ETIMEDOUT : -EIO;
        }
        return 0;
}

static int harness_wait_exit(pid_t pid, int timeout_ms)
{
        int pidfd = pidfd_open(pid, 0);
        if (pidfd >= 0) {
                struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
                poll(&pfd, 1, timeout_ms);
                close(pidfd);
        }
        int wstatus;
        pid_t r = waitpid(pid, &wstatus, WNOHANG);
        if (r != pid)
                return -ETIMEDOUT;
        return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

static bool harness_is_mounted(const char *mnt)
{
        g_autofree char *mounts = NULL;
        if (!g_file_get_contents("/proc/self/mounts", &mounts, NULL, NULL))
                return false;
        g_autofree char *needle = g_strdup_printf(" %s fuse.", mnt);
        return strstr(mounts, needle) != NULL;
}

int mount_harness_unmount(MountHarness *h)
{
        if (!h->daemon) {
                if (h->mnt && harness_is_mounted(h->mnt))
                        umount2(h->mnt, MNT_DETACH);
                return 0;
        }
        /* Unmounting ends the daemon's loop; it then exits by itself. */
        int status = -1;
        if (harness_is_mounted(h->mnt)) {
                g_autofree char *command = g_strdup_printf("fusermount3 -u -z '%s'", h->mnt);
                if (system(command) != 0)
                        umount2(h->mnt, MNT_DETACH);
        } else {
                kill(h->daemon, SIGTERM);
        }
        status = harness_wait_exit(h->daemon, HARNESS_EXIT_TIMEOUT_MS);
        if (status == -ETIMEDOUT) {
                kill(h->daemon, SIGKILL);
                waitpid(h->daemon, NULL, 0);
                status = -1;
        }
        if (harness_is_mounted(h->mnt))
                umount2(h->mnt, MNT_DETACH);
        h->daemon = 0;
        return status;
}

static int harness_remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        if (type == FTW_DP)
                return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
        /* Tests create read-only files and folders (POPULATE.MSM). */
        return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int harness_remove_tree(const char *path)
{
        if (nftw(path, harness_remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 0;
}

void mount_harness_teardown(MountHarness *h)
{
        mount_harness_unmount(h);
        /* For diagnosing a failure: the log goes with the directory. */
        g_autofree char *log_text = NULL;
        if (g_getenv("MAILBAGFS_TEST_DUMP_LOG") && h->log &&
            g_file_get_contents(h->log, &log_text, NULL, NULL))
                fprintf(stderr, "--- daemon log %s ---\n%s--- end of daemon log ---\n", h->log,
                        log_text);
        if (h->dir)
                harness_remove_tree(h->dir);
        g_clear_pointer(&h->dir, g_free);
        g_clear_pointer(&h->backing, g_free);
        g_clear_pointer(&h->mnt, g_free);
        g_clear_pointer(&h->log, g_free);
}

char *mount_harness_log_problems(const MountHarness *h)
{
        g_autofree char *text = NULL;
        if (!h->log || !g_file_get_contents(h->log, &text, NULL, NULL))
                return NULL;

        GString *problems = g_string_new(NULL);
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (char **line = lines; *line; line++)
                if (strstr(*line, ": warning: ") || strstr(*line, ": error: ") ||
                    strstr(*line, "ERROR") || strstr(*line, "Sanitizer"))
                        g_string_append_printf(problems, "%s\n", *line);
        if (problems->len == 0) {
                g_string_free(problems, TRUE);
                return NULL;
        }
        return g_string_free(problems, FALSE);
}
