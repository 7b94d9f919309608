/* po-freeze - hold a postoffice still for as long as a command runs.
 *
 *   po-freeze [--all] [--timeout SEC] PATH -- COMMAND [ARG...]
 *
 * Through a mailbagfs mount, as root: the daemon takes every queue
 * session, KEY write section and global file of the postoffice at PATH
 * (--all: of every postoffice at or below PATH) in line like any holder,
 * then COMMAND runs (a backup: `po-freeze /srv/mail/PO1 -- tar czf b.tgz
 * /srv/mail/PO1`), then the postoffice is let go. COMMAND and its children
 * share the hold: they read the postoffice without waiting for it.
 *
 * The hold belongs to a session leader this program forks, which dies with
 * it (PR_SET_PDEATHSIG): a killed po-freeze, even by SIGKILL, frees the
 * postoffice at once. Exit status: COMMAND's; 2 for bad usage or a path
 * that is no protected postoffice; 3 when the freeze could not be taken
 * within --timeout (nothing is left held, and what it waited for is said).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "status-attr.h"
#include "status-line.h"

#define EXIT_USAGE 2
#define EXIT_NOT_TAKEN 3
#define DEFAULT_TIMEOUT_S 60

typedef struct {
        char *path; /* as the user names it */
        int fd;     /* the folder, opened through the mount */
        bool held;
} Target;

static void target_free(gpointer data)
{
        Target *t = data;
        if (t->fd >= 0)
                close(t->fd);
        g_free(t->path);
        g_free(t);
}

static G_GNUC_NORETURN void usage(const char *why)
{
        if (why)
                fprintf(stderr, "po-freeze: %s\n", why);
        fprintf(stderr, "usage: po-freeze [--all] [--timeout SEC] PATH -- COMMAND [ARG...]\n");
        exit(EXIT_USAGE);
}

/* Folders below a path that po-freeze --all looks into. */
#define WALK_DEPTH_MAX 6

/* Whether folder @fd holds both a KEY and a P1 folder (any case): what
 * makes a folder a postoffice. */
static bool looks_like_postoffice(int fd)
{
        DIR *stream = fdopendir(dup(fd));
        if (!stream)
                return false;
        rewinddir(stream); /* the duplicate shares @fd's offset */
        bool key = false, p1 = false;
        for (struct dirent *entry; (entry = readdir(stream));) {
                if (entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN)
                        continue;
                key = key || g_ascii_strcasecmp(entry->d_name, "KEY") == 0;
                p1 = p1 || g_ascii_strcasecmp(entry->d_name, "P1") == 0;
        }
        closedir(stream);
        return key && p1;
}

/* Every postoffice at or below folder @path (opened as @fd), depth first
 * in name order, so two po-freeze --all take them in the same order and
 * never deadlock. Symbolic links are not followed. */
static void postoffices_below(const char *path, int fd, guint depth, GPtrArray *found)
{
        if (looks_like_postoffice(fd)) {
                g_ptr_array_add(found, g_strdup(path));
                return;
        }
        if (depth >= WALK_DEPTH_MAX)
                return;
        DIR *stream = fdopendir(dup(fd));
        if (!stream)
                return;
        rewinddir(stream);
        g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func(g_free);
        for (struct dirent *entry; (entry = readdir(stream));)
                if ((entry->d_type == DT_DIR || entry->d_type == DT_UNKNOWN) &&
                    entry->d_name[0] != '.')
                        g_ptr_array_add(children, g_strdup(entry->d_name));
        closedir(stream);
        g_ptr_array_sort(children, (GCompareFunc)g_strcmp0);
        for (guint i = 0; i < children->len; i++) {
                const char *name = children->pdata[i];
                int child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (child < 0)
                        continue;
                g_autofree char *below = g_build_filename(path, name, NULL);
                postoffices_below(below, child, depth + 1, found);
                close(child);
        }
}

/* The daemon's account of the last refusal in @path's postoffice. */
static void say_refusal(const char *path, int error)
{
        g_autoptr(GPtrArray) lines = status_attr_read_lines(path, PO_STATUS_ATTR_FREEZE, NULL);
        for (guint i = 0; lines && i < lines->len; i++) {
                const PoStatusLine *line = lines->pdata[i];
                const char *word = po_status_line_word(line, 0);
                if (!word || !g_str_equal(word, "refused"))
                        continue;
                const char *pid = po_status_line_field(line, "pid");
                const char *program = po_status_line_field(line, "program");
                const char *protocol = po_status_line_field(line, "protocol");
                const char *holder = po_status_line_field(line, PO_STATUS_FIELD_HOLDER);
                const char *waited = po_status_line_field(line, "waited_ms");
                g_autofree char *who =
                        pid ? g_strdup_printf("held by pid %s (%s, %s)", pid,
                                              program ? program : "?", protocol ? protocol : "?")
                        : holder && g_str_equal(holder, "other-daemon")
                                ? g_strdup("held through another mailbagfs daemon")
                                : g_strdup("its holder had gone");
                fprintf(stderr, "po-freeze: %s: not frozen after %s ms: waited for %s %s, %s\n",
                        path, waited ? waited : "?", po_status_line_word(line, 1),
                        po_status_line_word(line, 2), who);
                return;
        }
        fprintf(stderr, "po-freeze: %s: not frozen: %s\n", path, g_strerror(error));
}

static int freeze_ioctl(int fd, uint32_t timeout_ms)
{
        return ioctl(fd, PO_FREEZE_IOCTL, &timeout_ms) < 0 ? -errno : 0;
}

static void release_all(GPtrArray *targets)
{
        for (guint i = 0; i < targets->len; i++) {
                Target *t = targets->pdata[i];
                if (t->held && freeze_ioctl(t->fd, 0) < 0)
                        fprintf(stderr, "po-freeze: %s: cannot let go: %s\n", t->path,
                                g_strerror(errno));
                t->held = false;
        }
}

/* The session leader: holds the freeze, runs the command, lets go. */
static G_GNUC_NORETURN void hold_and_run(GPtrArray *targets, int timeout_s, char **command)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
        for (guint i = 0; i < targets->len; i++) {
                Target *t = targets->pdata[i];
                gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
                int r = left_ms > 0 ? freeze_ioctl(t->fd, (uint32_t)MIN(left_ms, G_MAXUINT32))
                                    : -EBUSY;
                if (r < 0) {
                        if (r == -ENOTTY || r == -EINVAL)
                                fprintf(stderr, "po-freeze: %s: not a postoffice a mailbagfs "
                                                "daemon protects\n", t->path);
                        else if (r == -EPERM)
                                fprintf(stderr, "po-freeze: %s: only root may freeze a "
                                                "postoffice\n", t->path);
                        else
                                say_refusal(t->path, -r);
                        release_all(targets);
                        _exit(r == -ENOTTY || r == -EINVAL || r == -EPERM ? EXIT_USAGE
                                                                          : EXIT_NOT_TAKEN);
                }
                t->held = true;
                fprintf(stderr, "po-freeze: %s frozen\n", t->path);
        }

        pid_t child = fork();
        if (child < 0) {
                fprintf(stderr, "po-freeze: fork: %s\n", g_strerror(errno));
                release_all(targets);
                _exit(EXIT_NOT_TAKEN);
        }
        if (child == 0) {
                for (guint i = 0; i < targets->len; i++)
                        close(((Target *)targets->pdata[i])->fd);
                execvp(command[0], command);
                fprintf(stderr, "po-freeze: %s: %s\n", command[0], g_strerror(errno));
                _exit(127);
        }
        int status = 0;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                ;
        release_all(targets);
        fprintf(stderr, "po-freeze: let go\n");
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static pid_t leader;

static void forward_signal(int sig)
{
        if (leader > 0)
                kill(-leader, sig);
}

int main(int argc, char **argv)
{
        gboolean all = FALSE;
        int timeout_s = DEFAULT_TIMEOUT_S;
        GOptionEntry entries[] = {
                {"all", 'a', 0, G_OPTION_ARG_NONE, &all,
                 "every postoffice at or below PATH", NULL},
                {"timeout", 't', 0, G_OPTION_ARG_INT, &timeout_s,
                 "give up (and let go) when not everything is held after SEC seconds "
                 "(default 60)", "SEC"},
                {NULL},
        };
        /* COMMAND's own options are not ours: only what comes before "--"
         * is parsed (GOption would also eat the "--"). */
        int dashes = 0;
        for (int i = 1; i < argc; i++)
                if (g_str_equal(argv[i], "--")) {
                        dashes = i;
                        break;
                }
        char **command = dashes ? argv + dashes + 1 : NULL;
        int ours = dashes ? dashes : argc;
        if (dashes)
                argv[dashes] = NULL;
        g_autoptr(GOptionContext) context = g_option_context_new("PATH -- COMMAND [ARG...]");
        g_option_context_set_summary(context, "Hold a mailbagfs postoffice still while COMMAND "
                                              "runs (a consistent backup).");
        g_option_context_add_main_entries(context, entries, NULL);
        g_autoptr(GError) error = NULL;
        if (!g_option_context_parse(context, &ours, &argv, &error))
                usage(error->message);
        if (timeout_s <= 0 || timeout_s > 86400)
                usage("--timeout must be 1 to 86400 seconds");
        if (!command || !command[0])
                usage("no COMMAND after --");
        if (ours != 2)
                usage("one PATH, then -- COMMAND");
        const char *path = argv[1];

        g_autoptr(GPtrArray) paths = NULL;
        if (all) {
                paths = g_ptr_array_new_with_free_func(g_free);
                int top = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (top < 0) {
                        fprintf(stderr, "po-freeze: %s: %s\n", path, g_strerror(errno));
                        return EXIT_USAGE;
                }
                postoffices_below(path, top, 0, paths);
                close(top);
                if (paths->len == 0) {
                        fprintf(stderr, "po-freeze: no postoffice at or below %s\n", path);
                        return EXIT_USAGE;
                }
        } else {
                paths = g_ptr_array_new_with_free_func(g_free);
                g_ptr_array_add(paths, g_strdup(path));
        }
        g_autoptr(GPtrArray) targets = g_ptr_array_new_with_free_func(target_free);
        for (guint i = 0; i < paths->len; i++) {
                Target *t = g_new0(Target, 1);
                t->path = g_strdup(paths->pdata[i]);
                t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                g_ptr_array_add(targets, t);
                if (t->fd < 0) {
                        fprintf(stderr, "po-freeze: %s: %s\n", t->path, g_strerror(errno));
                        return EXIT_USAGE;
                }
        }

        /* The holder leads a session of its own: the daemon lets that
         * session (the command and its children) share the hold, and no
         * process outside it. */
        pid_t parent = getpid();
        leader = fork();
        if (leader < 0) {
                fprintf(stderr, "po-freeze: fork: %s\n", g_strerror(errno));
                return EXIT_NOT_TAKEN;
        }
        if (leader == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(EXIT_NOT_TAKEN);
                if (setsid() < 0) {
                        fprintf(stderr, "po-freeze: setsid: %s\n", g_strerror(errno));
                        _exit(EXIT_NOT_TAKEN);
                }
                hold_and_run(targets, timeout_s, command);
        }
        struct sigaction forward = {.sa_handler = forward_signal};
        sigemptyset(&forward.sa_mask);
        sigaction(SIGINT, &forward, NULL);
        sigaction(SIGTERM, &forward, NULL);
        sigaction(SIGHUP, &forward, NULL);
        int status = 0;
        while (waitpid(leader, &status, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
