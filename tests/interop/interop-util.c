/* interop-util.c - helper processes, ports and the descendant sweep. */
#include "interop-util.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int interop_main(int argc, char *argv[], void (*before)(void), void (*after)(void))
{
        struct criterion_test_set *tests = criterion_initialize();
        int result = 0;
        if (criterion_handle_args(argc, argv, true)) {
                criterion_options.jobs = 1;
                if (before)
                        before();
                result = !criterion_run_all_tests(tests);
                if (after)
                        after();
        }
        criterion_finalize(tests);
        return result;
}

static gint64 interop_now_ms(void)
{
        return g_get_monotonic_time() / 1000;
}

void interop_adopt_descendants(void)
{
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        /* A peer that exits early must not kill the test with SIGPIPE. */
        signal(SIGPIPE, SIG_IGN);
}

/* The children of this process, from every thread's list. */
static GArray *interop_children(void)
{
        GArray *pids = g_array_new(FALSE, FALSE, sizeof(pid_t));
        GDir *tasks = g_dir_open("/proc/self/task", 0, NULL);
        if (!tasks)
                return pids;
        const char *tid;
        while ((tid = g_dir_read_name(tasks))) {
                g_autofree char *path = g_strdup_printf("/proc/self/task/%s/children", tid);
                g_autofree char *text = NULL;
                if (!g_file_get_contents(path, &text, NULL, NULL))
                        continue;
                g_auto(GStrv) words = g_strsplit_set(text, " \n", -1);
                for (char **word = words; *word; word++)
                        if (**word) {
                                pid_t pid = (pid_t)atoi(*word);
                                g_array_append_val(pids, pid);
                        }
        }
        g_dir_close(tasks);
        return pids;
}

static void interop_reap_exited(void)
{
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
}

void interop_end_descendants(int grace_ms)
{
        /* Killing a child makes its own children ours, hence the rounds. */
        for (int round = 0; round < 20; round++) {
                interop_reap_exited();
                g_autoptr(GArray) pids = interop_children();
                if (pids->len == 0)
                        return;
                int sig = round == 0 ? SIGTERM : SIGKILL;
                for (guint i = 0; i < pids->len; i++)
                        kill(g_array_index(pids, pid_t, i), sig);
                for (guint i = 0; i < pids->len; i++)
                        interop_wait_pid(g_array_index(pids, pid_t, i), round == 0 ? grace_ms : 5000);
        }
}

int interop_free_port(void)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(addr);
        int port = -EIO;
        if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
            getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
                port = ntohs(addr.sin_port);
        else
                port = -errno;
        close(fd);
        return port;
}

static bool interop_port_answers(int port)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        struct sockaddr_in addr = {
                .sin_family = AF_INET,
                .sin_port = htons((uint16_t)port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        bool ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
        close(fd);
        return ok;
}

bool interop_wait_for_port(int port, pid_t alive_pid, int timeout_ms)
{
        gint64 deadline = interop_now_ms() + timeout_ms;
        while (interop_now_ms() < deadline) {
                if (interop_port_answers(port))
                        return true;
                if (alive_pid > 0 && waitpid(alive_pid, NULL, WNOHANG) == alive_pid)
                        return false;
                /* Polling interval of a readiness check, not a delay that
                 * orders anything: the connect above is the event. */
                struct timespec pause = {.tv_nsec = 20 * 1000 * 1000};
                nanosleep(&pause, NULL);
        }
        return false;
}

static void interop_exec_child(const char *const *argv, const char *const *envp, int in_fd, int out_fd,
                               int err_fd, pid_t parent)
{
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
                _exit(127);
        /* Our own process group: a terminal's signals for the test runner
         * do not reach the helpers, and their own groups stay theirs. */
        setpgid(0, 0);
        dup2(in_fd, STDIN_FILENO);
        dup2(out_fd, STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        signal(SIGPIPE, SIG_DFL);
        if (envp)
                execve(argv[0], (char **)argv, (char **)envp);
        else
                execv(argv[0], (char **)argv);
        dprintf(err_fd, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
}

pid_t interop_spawn_logged(const char *const *argv, const char *const *envp, const char *log_path)
{
        int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0)
                return -errno;
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid == 0)
                interop_exec_child(argv, envp, null_fd, log_fd, log_fd, parent);
        int saved = errno;
        close(log_fd);
        close(null_fd);
        return pid < 0 ? -saved : pid;
}

int interop_wait_pid(pid_t pid, int timeout_ms)
{
        int pidfd = pidfd_open(pid, 0);
        if (pidfd >= 0) {
                struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
                poll(&pfd, 1, timeout_ms);
                close(pidfd);
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
                return status;
        return -1;
}

void interop_stop_pid(pid_t pid, int grace_ms)
{
        if (pid <= 0)
                return;
        kill(pid, SIGTERM);
        if (interop_wait_pid(pid, grace_ms) == -1) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
}

int interop_peer_start(InteropPeer *peer, const char *name, const char *const *argv,
                       const char *const *envp, const char *stderr_path)
{
        memset(peer, 0, sizeof(*peer));
        peer->to_child = peer->from_child = -1;
        peer->name = g_strdup(name);
        peer->stderr_path = g_strdup(stderr_path);

        int in_pipe[2], out_pipe[2];
        if (pipe2(in_pipe, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out_pipe, O_CLOEXEC) < 0) {
                int saved = errno;
                close(in_pipe[0]);
                close(in_pipe[1]);
                return -saved;
        }
        int err_fd = open(stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid == 0)
                interop_exec_child(argv, envp, in_pipe[0], out_pipe[1], err_fd < 0 ? STDERR_FILENO : err_fd,
                                   parent);
        int saved = errno;
        close(in_pipe[0]);
        close(out_pipe[1]);
        if (err_fd >= 0)
                close(err_fd);
        if (pid < 0) {
                close(in_pipe[1]);
                close(out_pipe[0]);
                return -saved;
        }
        peer->pid = pid;
        peer->to_child = in_pipe[1];
        peer->from_child = out_pipe[0];
        return 0;
}

int interop_peer_send(InteropPeer *peer, const char *command)
{
        g_autofree char *line = g_strdup_printf("%s\n", command);
        size_t len = strlen(line);
        if (peer->to_child < 0 || write(peer->to_child, line, len) != (ssize_t)len)
                return -EPIPE;
        return 0;
}

/* Moves one complete line out of the buffer, if there is one. */
static char *interop_peer_take_line(InteropPeer *peer)
{
        char *newline = memchr(peer->buffer, '\n', peer->buffered);
        if (!newline)
                return NULL;
        size_t len = (size_t)(newline - peer->buffer);
        char *line = g_strndup(peer->buffer, len);
        g_strchomp(line); /* Win32 programs may end lines with \r\n */
        memmove(peer->buffer, newline + 1, peer->buffered - len - 1);
        peer->buffered -= len + 1;
        return line;
}

char *interop_peer_read(InteropPeer *peer, int timeout_ms)
{
        gint64 deadline = interop_now_ms() + timeout_ms;
        for (;;) {
                char *line = interop_peer_take_line(peer);
                if (line)
                        return line;
                gint64 left = deadline - interop_now_ms();
                if (left <= 0 || peer->from_child < 0 || peer->buffered == sizeof(peer->buffer))
                        return NULL;
                struct pollfd pfd = {.fd = peer->from_child, .events = POLLIN};
                if (poll(&pfd, 1, (int)left) <= 0)
                        continue;
                ssize_t n = read(peer->from_child, peer->buffer + peer->buffered,
                                 sizeof(peer->buffer) - peer->buffered);
                if (n <= 0)
                        return NULL;
                peer->buffered += (size_t)n;
        }
}

bool interop_peer_has_answer(InteropPeer *peer)
{
        if (memchr(peer->buffer, '\n', peer->buffered))
                return true;
        struct pollfd pfd = {.fd = peer->from_child, .events = POLLIN};
        return peer->from_child >= 0 && poll(&pfd, 1, 0) > 0;
}

char *interop_peer_ask(InteropPeer *peer, const char *command)
{
        if (interop_peer_send(peer, command) < 0)
                return g_strdup("<no answer>");
        char *answer = interop_peer_read(peer, INTEROP_ANSWER_TIMEOUT_MS);
        return answer ? answer : g_strdup("<no answer>");
}

void interop_peer_stop(InteropPeer *peer)
{
        if (peer->to_child >= 0)
                close(peer->to_child);
        peer->to_child = -1;
        if (peer->pid > 0 && interop_wait_pid(peer->pid, 10000) == -1) {
                kill(peer->pid, SIGKILL);
                waitpid(peer->pid, NULL, 0);
        }
        peer->pid = 0;
        if (peer->from_child >= 0)
                close(peer->from_child);
        peer->from_child = -1;
        g_clear_pointer(&peer->name, g_free);
        g_clear_pointer(&peer->stderr_path, g_free);
}

char *interop_file_tail(const char *path, size_t max_bytes)
{
        g_autofree char *text = NULL;
        gsize len = 0;
        if (!path || !g_file_get_contents(path, &text, &len, NULL))
                return g_strdup("");
        return g_strdup(len > max_bytes ? text + len - max_bytes : text);
}

char *interop_peer_stderr(const InteropPeer *peer)
{
        return interop_file_tail(peer->stderr_path, 2000);
}

int interop_mailbag_waiters(const char *state)
{
        if (!state)
                return -1;
        g_autoptr(GRegex) regex = g_regex_new("waiters\\W{0,3}(\\d+)", G_REGEX_CASELESS, 0, NULL);
        g_autoptr(GMatchInfo) match = NULL;
        if (!g_regex_match(regex, state, 0, &match))
                return -1;
        g_autofree char *number = g_match_info_fetch(match, 1);
        return atoi(number);
}

long long interop_gateway_delete_during(const char *root, InteropPeer *peer, const char *command,
                                        int *gateway_fd)
{
        g_autofree char *key = g_build_filename(root, "KEY", "INQUEUE3.KEY", NULL);
        g_autofree char *message = g_build_filename(root, "P1", "0000000A.P1", NULL);
        cr_assert(g_file_set_contents(message, "message", -1, NULL));
        *gateway_fd = open(key, O_RDONLY | O_CLOEXEC);
        cr_assert_geq(*gateway_fd, 0, "the gateway cannot take the queue: %s", g_strerror(errno));
        cr_assert_eq(interop_peer_send(peer, command), 0);
        g_usleep(100 * 1000);
        gint64 start = g_get_monotonic_time();
        cr_assert_eq(unlink(message), 0, "the gateway's delete: %s", g_strerror(errno));
        return (g_get_monotonic_time() - start) / 1000;
}
