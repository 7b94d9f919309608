/* mount-harness.c - starts, watches and always stops a test mount. */
#include "mount-harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <linux/limits.h>
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
#include <sys/xattr.h>
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

void mount_harness_set_backing(MountHarness *h, const char *backing)
{
        g_free(h->backing);
        h->backing = g_strdup(backing);
}

typedef enum {
        HARNESS_START_FOREGROUND,
        HARNESS_START_DAEMON,
        HARNESS_START_MOUNT,
} HarnessStart;

static int harness_start_mode(HarnessStart *mode)
{
        const char *start = g_getenv("MAILBAGFS_TEST_START");
        if (!start || !*start || g_str_equal(start, "foreground"))
                *mode = HARNESS_START_FOREGROUND;
        else if (g_str_equal(start, "daemon"))
                *mode = HARNESS_START_DAEMON;
        else if (g_str_equal(start, "mount"))
                *mode = HARNESS_START_MOUNT;
        else
                return -EINVAL;
        return 0;
}

/* The command line for @mode. mount(8) takes only -o options, so any other
 * extra argument is refused there. */
static int harness_command(const MountHarness *h, HarnessStart mode, const char *daemon_path,
                           int ready_fd, const char *const *argv, GPtrArray *args)
{
        g_autoptr(GString) options = g_string_new(NULL);
        g_string_printf(options, "auto_unmount,ready_fd=%d", ready_fd);
        if (mode == HARNESS_START_MOUNT) {
                g_ptr_array_add(args, g_strdup("mount"));
                g_ptr_array_add(args, g_strdup("-t"));
                g_ptr_array_add(args, g_strdup("fuse"));
                g_ptr_array_add(args, g_strdup_printf("%s#%s", daemon_path, h->backing));
                g_ptr_array_add(args, g_strdup(h->mnt));
                for (const char *const *arg = argv; arg && *arg; arg++) {
                        if (g_str_has_prefix(*arg, "-o") && (*arg)[2])
                                g_string_append_printf(options, ",%s", *arg + 2);
                        else if (g_str_equal(*arg, "-o") && arg[1])
                                g_string_append_printf(options, ",%s", *++arg);
                        else
                                return -EINVAL;
                }
                g_ptr_array_add(args, g_strdup("-o"));
                g_ptr_array_add(args, g_strdup(options->str));
                return 0;
        }
        g_ptr_array_add(args, g_strdup(daemon_path));
        g_ptr_array_add(args, g_strdup(h->backing));
        g_ptr_array_add(args, g_strdup(h->mnt));
        if (mode == HARNESS_START_FOREGROUND)
                g_ptr_array_add(args, g_strdup("-f"));
        g_ptr_array_add(args, g_strdup_printf("-o%s", options->str));
        for (const char *const *arg = argv; arg && *arg; arg++)
                g_ptr_array_add(args, g_strdup(*arg));
        return 0;
}

/* The detached daemon serving @mnt: the process running @daemon_path whose
 * command line names the mountpoint. */
static pid_t harness_find_daemon(const char *daemon_path, const char *mnt)
{
        g_autofree char *want_exe = realpath(daemon_path, NULL);
        g_autoptr(GDir) proc = g_dir_open("/proc", 0, NULL);
        if (!want_exe || !proc)
                return 0;
        for (const char *name; (name = g_dir_read_name(proc));) {
                if (!g_ascii_isdigit(name[0]))
                        continue;
                g_autofree char *exe_link = g_strdup_printf("/proc/%s/exe", name);
                g_autofree char *exe = g_file_read_link(exe_link, NULL);
                if (!exe || !g_str_equal(exe, want_exe))
                        continue;
                g_autofree char *cmdline_path = g_strdup_printf("/proc/%s/cmdline", name);
                g_autofree char *cmdline = NULL;
                gsize len = 0;
                if (!g_file_get_contents(cmdline_path, &cmdline, &len, NULL))
                        continue;
                for (gsize at = 0; at < len; at += strlen(cmdline + at) + 1)
                        if (g_str_equal(cmdline + at, mnt))
                                return (pid_t)atoi(name);
        }
        return 0;
}

int mount_harness_mount(MountHarness *h, const char *const *argv)
{
        const char *daemon_path = getenv("MAILBAGFS");
        if (!daemon_path)
                return -ENOENT;
        HarnessStart mode;
        if (harness_start_mode(&mode) < 0)
                return -EINVAL;

        int ready[2];
        if (pipe2(ready, O_CLOEXEC) < 0)
                return -errno;

        g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
        int r = harness_command(h, mode, daemon_path, ready[1], argv, args);
        if (r < 0) {
                close(ready[0]);
                close(ready[1]);
                return r;
        }
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
                /* A foreground daemon must not outlive a test that crashed. */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                        _exit(127);
                int log_fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
                if (log_fd >= 0)
                        dup2(log_fd, STDERR_FILENO);
                fcntl(ready[1], F_SETFD, 0);
                execvp((char *)args->pdata[0], (char **)args->pdata);
                _exit(127);
        }
        close(ready[1]);
        h->daemon = child;
        h->detached = false;

        struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
        r = poll(&pfd, 1, HARNESS_READY_TIMEOUT_MS);
        char byte = 0;
        bool is_ready = r > 0 && read(ready[0], &byte, 1) == 1 && byte == 'R';
        close(ready[0]);
        if (is_ready && mode != HARNESS_START_FOREGROUND) {
                /* The command we ran exits once the daemon has detached. */
                int wstatus = 0;
                waitpid(child, &wstatus, 0);
                h->daemon = harness_find_daemon(daemon_path, h->mnt);
                h->detached = true;
                is_ready = h->daemon > 0 && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
        }
        if (!is_ready) {
                mount_harness_unmount(h);
                return r == 0 ? -ETIMEDOUT : -EIO;
        }
        return 0;
}

bool mount_harness_has_log(const MountHarness *h)
{
        return !h->detached;
}

static int harness_wait_exit(pid_t pid, bool detached, int timeout_ms)
{
        int pidfd = pidfd_open(pid, 0);
        if (pidfd < 0)
                return detached ? 0 : -ETIMEDOUT;
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        int polled = poll(&pfd, 1, timeout_ms);
        close(pidfd);
        /* Not our child: its exit status is its parent's (init's) to read. */
        if (detached)
                return polled > 0 ? 0 : -ETIMEDOUT;
        int wstatus;
        pid_t r = waitpid(pid, &wstatus, WNOHANG);
        if (r != pid)
                return -ETIMEDOUT;
        return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

int harness_count_fds(pid_t pid, int *pipes)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/fd", (int)pid);
        DIR *dir = opendir(path);
        if (!dir)
                return -1;
        int count = 0;
        *pipes = 0;
        for (struct dirent *e; (e = readdir(dir));) {
                if (e->d_name[0] == '.')
                        continue;
                char target[256] = {0};
                g_autofree char *link = g_strdup_printf("%s/%s", path, e->d_name);
                if (readlink(link, target, sizeof(target) - 1) > 0 && g_str_has_prefix(target, "pipe:"))
                        (*pipes)++;
                else
                        count++;
        }
        closedir(dir);
        return count;
}

bool harness_is_mounted(const char *mnt, const char *type)
{
        g_autofree char *mounts = NULL;
        if (!g_file_get_contents("/proc/self/mounts", &mounts, NULL, NULL))
                return false;
        g_autofree char *subtype = g_strconcat(type, ".", NULL);
        g_auto(GStrv) lines = g_strsplit(mounts, "\n", -1);
        for (char **line = lines; *line; line++) {
                /* DEVICE MOUNTPOINT TYPE OPTIONS... */
                g_auto(GStrv) fields = g_strsplit(*line, " ", 4);
                if (g_strv_length(fields) >= 3 && g_str_equal(fields[1], mnt) &&
                    (g_str_equal(fields[2], type) || g_str_has_prefix(fields[2], subtype)))
                        return true;
        }
        return false;
}

int mount_harness_unmount(MountHarness *h)
{
        if (!h->daemon) {
                if (h->mnt && harness_is_mounted(h->mnt, "fuse"))
                        umount2(h->mnt, MNT_DETACH);
                return 0;
        }
        /* Unmounting ends the daemon's loop; it then exits by itself. */
        int status = -1;
        if (harness_is_mounted(h->mnt, "fuse")) {
                g_autofree char *command = g_strdup_printf("fusermount3 -u -z '%s'", h->mnt);
                if (system(command) != 0)
                        umount2(h->mnt, MNT_DETACH);
        } else {
                kill(h->daemon, SIGTERM);
        }
        status = harness_wait_exit(h->daemon, h->detached, HARNESS_EXIT_TIMEOUT_MS);
        if (status == -ETIMEDOUT) {
                kill(h->daemon, SIGKILL);
                if (!h->detached)
                        waitpid(h->daemon, NULL, 0);
                status = -1;
        }
        if (harness_is_mounted(h->mnt, "fuse"))
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

char *harness_attribute(const char *path, const char *name)
{
        /* As much as an attribute can hold. */
        g_autofree char *value = g_malloc(XATTR_SIZE_MAX + 1);
        ssize_t len = getxattr(path, name, value, XATTR_SIZE_MAX);
        if (len < 0)
                return NULL;
        value[len] = '\0';
        return g_steal_pointer(&value);
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

char *harness_trail_text(const char *po)
{
        g_autofree char *folder = g_build_filename(po, ".mailbagfs-trail", NULL);
        g_autoptr(GDir) dir = g_dir_open(folder, 0, NULL);
        if (!dir)
                return NULL;
        GString *trail = g_string_new(NULL);
        for (const char *name; (name = g_dir_read_name(dir));) {
                g_autofree char *path = g_build_filename(folder, name, NULL);
                g_autofree char *text = NULL;
                if (g_file_get_contents(path, &text, NULL, NULL))
                        g_string_append(trail, text);
        }
        return g_string_free(trail, FALSE);
}

char *mount_harness_log_problems(const MountHarness *h)
{
        g_autofree char *text = NULL;
        if (!h->log || !g_file_get_contents(h->log, &text, NULL, NULL))
                return NULL;

        GString *problems = g_string_new(NULL);
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (char **line = lines; *line; line++)
                /* An empty backing folder is what most tests mount. */
                if (strstr(*line, ": warning: no postoffice in "))
                        continue;
                else if (strstr(*line, ": warning: ") || strstr(*line, ": error: ") ||
                         strstr(*line, "ERROR") || strstr(*line, "Sanitizer"))
                        g_string_append_printf(problems, "%s\n", *line);
        if (problems->len == 0) {
                g_string_free(problems, TRUE);
                return NULL;
        }
        return g_string_free(problems, FALSE);
}
