/* gluster-fixture.c - starts, watches and always stops a private GlusterFS
 * volume and its two client mounts.
 *
 * Processes, and who ends each of them:
 *   test process
 *    |- warden            cleans up when asked, or when the test dies
 *    |   `- unshare(1)    holds glusterd's namespaces; SIGKILL ends them all
 *    |       `- glusterd  PID 1 of its namespace; glusterfsd bricks below it
 *    `- glusterfs x2      the clients; SIGKILL when the test dies
 * The warden is the one process that outlives a crashed test: it learns of
 * the death through PR_SET_PDEATHSIG, detaches the clients' mounts (a dead
 * FUSE client leaves its mount behind), ends the namespace and removes the
 * directory. Every process is killed by the pid this fixture got when it
 * started it, never by name.
 */
#include "gluster-fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mount-harness.h"

/* Generous: a loaded machine may take long to start glusterd and a brick;
 * these only turn a hang into a failure. */
#define GLUSTER_START_TIMEOUT_MS 60000
#define GLUSTER_EXIT_TIMEOUT_MS 15000

/* Set up in the namespace before glusterd runs: loopback up (the new
 * network namespace has it down), the paths glusterd spells itself made
 * private, /run an empty tmpfs (brick sockets go to /run/gluster). */
static const char gluster_namespace_script[] =
        "set -e\n"
        "\"$1\" link set lo up\n"
        "mount -t tmpfs -o mode=0755 gluster-run /run\n"
        "mkdir /run/gluster\n"
        "if [ -d /var/lib/glusterd ]; then mount --bind \"$3/sys-lib\" /var/lib/glusterd; fi\n"
        "if [ -d /var/log/glusterfs ]; then mount --bind \"$3/sys-log\" /var/log/glusterfs; fi\n"
        "exec \"$2\" -N -f \"$3/glusterd.vol\" -p \"$3/run/glusterd.pid\" -l \"$3/log/glusterd.log\"\n";

static GlusterFixture *gluster_live;      /* stopped at exit if still running */
static pid_t gluster_live_owner;

static long long gluster_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* @env from the build, else PATH, else the sbin folders, which are not on
 * every PATH. NULL when not found. */
static char *gluster_find_program(const char *env, const char *name)
{
        const char *configured = g_getenv(env);
        if (configured && *configured)
                return g_strdup(configured);
        char *found = g_find_program_in_path(name);
        if (found)
                return found;
        const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"};
        for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
                char *path = g_build_filename(dirs[i], name, NULL);
                if (access(path, X_OK) == 0)
                        return path;
                g_free(path);
        }
        return NULL;
}

static char *gluster_file_tail(const char *path, size_t max_bytes)
{
        g_autofree char *text = NULL;
        gsize len = 0;
        if (!g_file_get_contents(path, &text, &len, NULL))
                return g_strdup("");
        return g_strdup(len > max_bytes ? text + len - max_bytes : text);
}

/* Waits for @pid (our child) at most @timeout_ms; true when it exited. */
static bool gluster_reap(pid_t pid, int timeout_ms)
{
        int pidfd = pidfd_open(pid, 0);
        if (pidfd >= 0) {
                struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
                poll(&pfd, 1, timeout_ms);
                close(pidfd);
        }
        return waitpid(pid, NULL, WNOHANG) == pid;
}

static void gluster_end_child(pid_t pid, int grace_ms)
{
        if (!gluster_reap(pid, grace_ms)) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
}

static void gluster_close_fds_but(int keep1, int keep2)
{
        int low = MIN(keep1, keep2), high = MAX(keep1, keep2);
        if (low > 3)
                close_range(3, low - 1, 0);
        if (high > low + 1)
                close_range(low + 1, high - 1, 0);
        close_range(high + 1, ~0U, 0);
}

static void gluster_redirect_output(const char *log_path)
{
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0)
                dup2(null_fd, STDIN_FILENO);
        int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd >= 0) {
                dup2(log_fd, STDOUT_FILENO);
                dup2(log_fd, STDERR_FILENO);
        }
}

/* The first child of @pid, or 0. */
static pid_t gluster_first_child(pid_t pid)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/task/%d/children", pid, pid);
        g_autofree char *children = NULL;
        if (!g_file_get_contents(path, &children, NULL, NULL))
                return 0;
        return (pid_t)atoi(children);
}

/* The warden: starts the namespace, reports it, then waits for the word to
 * clean up (a byte, or end of file) or for the test's death. Never returns. */
static void gluster_warden(const GlusterFixture *g, pid_t test_pid, int stop_fd, int news_fd,
                           char *const *unshare_argv, const char *namespace_log)
{
        sigset_t signals;
        sigemptyset(&signals);
        sigaddset(&signals, SIGTERM);
        sigaddset(&signals, SIGCHLD);
        sigset_t previous;
        sigprocmask(SIG_BLOCK, &signals, &previous);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        gluster_close_fds_but(stop_fd, news_fd);
        int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);

        pid_t namespace = -1;
        if (getppid() == test_pid && signal_fd >= 0)
                namespace = fork();
        if (namespace == 0) {
                sigprocmask(SIG_SETMASK, &previous, NULL);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                gluster_redirect_output(namespace_log);
                execv(unshare_argv[0], unshare_argv);
                _exit(127);
        }
        bool namespace_alive = namespace > 0;
        /* A test that cannot read this gives up and asks us to stop. */
        bool told = write(news_fd, &namespace, sizeof(namespace)) == sizeof(namespace);
        (void)told;

        while (namespace > 0) {
                struct pollfd pfds[2] = {{.fd = stop_fd, .events = POLLIN},
                                         {.fd = signal_fd, .events = POLLIN}};
                if (poll(pfds, 2, -1) < 0 && errno != EINTR)
                        break;
                if (pfds[0].revents)
                        break; /* asked to stop, or the test closed its end */
                if (pfds[1].revents) {
                        struct signalfd_siginfo info;
                        if (read(signal_fd, &info, sizeof(info)) != sizeof(info))
                                continue;
                        if (info.ssi_signo == SIGTERM)
                                break; /* the test process died */
                        if (namespace_alive && waitpid(namespace, NULL, WNOHANG) == namespace) {
                                namespace_alive = false;
                                char gone = 'X';
                                if (write(news_fd, &gone, 1) != 1)
                                        break;
                        }
                }
        }
        if (namespace_alive) {
                /* Killing glusterd, PID 1 of its namespace, ends every brick
                 * with it; unshare reaps it and exits. Killing unshare
                 * instead would also end it (--kill-child), but would leave
                 * glusterd for init to reap. */
                pid_t glusterd = gluster_first_child(namespace);
                kill(glusterd > 0 ? glusterd : namespace, SIGKILL);
                waitpid(namespace, NULL, 0);
        }
        for (int i = 0; i < GLUSTER_FIXTURE_CLIENTS; i++)
                if (g->clients[i] && harness_is_mounted(g->clients[i], "fuse"))
                        umount2(g->clients[i], MNT_DETACH);
        harness_remove_tree(g->dir);
        _exit(0);
}

static char *gluster_volfile_text(const char *dir)
{
        return g_strdup_printf(
                "volume management\n"
                "    type mgmt/glusterd\n"
                "    option working-directory %s/wd\n"
                "    option run-directory %s/run\n"
                "    option logging-directory %s/log\n"
                "    option glusterd-sockfile %s/run/glusterd.socket\n"
                "    option transport-type socket\n"
                "    option transport.address-family inet\n"
                "    option transport.socket.bind-address " GLUSTER_FIXTURE_ADDRESS "\n"
                "    option transport.socket.listen-port 24007\n"
                "    option transport.socket.keepalive-time 10\n"
                "    option transport.socket.keepalive-interval 2\n"
                "    option transport.socket.read-fail-log off\n"
                "    option ping-timeout 0\n"
                "    option event-threads 1\n"
                "    option base-port 49152\n"
                "    option max-port 60999\n"
                "end-volume\n",
                dir, dir, dir, dir);
}

static bool gluster_socket_answers(const char *path)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
        bool answered = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
        close(fd);
        return answered;
}

/* Waits for glusterd's CLI socket; false with *reason when glusterd ended
 * or never answered. */
static bool gluster_wait_for_glusterd(GlusterFixture *g, char **reason)
{
        long long deadline = gluster_now_ms() + GLUSTER_START_TIMEOUT_MS;
        while (gluster_now_ms() < deadline) {
                if (gluster_socket_answers(g->socket))
                        return true;
                struct pollfd pfd = {.fd = g->warden_news, .events = POLLIN};
                if (poll(&pfd, 1, 100) > 0) {
                        g_autofree char *log = g_build_filename(g->logs, "glusterd.log", NULL);
                        g_autofree char *ns_log = g_build_filename(g->logs, "namespace.log", NULL);
                        g_autofree char *tail = gluster_file_tail(log, 1500);
                        g_autofree char *ns_tail = gluster_file_tail(ns_log, 800);
                        *reason = g_strdup_printf("glusterd exited at start: %s%s", ns_tail, tail);
                        return false;
                }
        }
        *reason = g_strdup_printf("glusterd did not open its CLI socket %s within %d s", g->socket,
                                  GLUSTER_START_TIMEOUT_MS / 1000);
        return false;
}

/* The CLI writes below /var/lib/glusterd itself
 * (geo-replication/gsyncd_template.conf): it gets a mount namespace of its
 * own in which that is the fixture's sys-lib folder. (Joining glusterd's
 * would not do: its /proc is of another PID namespace, and the CLI
 * crashes there.) */
static void gluster_cli_setup(gpointer sys_lib)
{
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                _exit(126);
        if (access("/var/lib/glusterd", F_OK) == 0 &&
            mount(sys_lib, "/var/lib/glusterd", NULL, MS_BIND, NULL) < 0)
                _exit(126);
}

int gluster_fixture_cli(const GlusterFixture *g, const char *const *args, char **output)
{
        g_autofree char *gluster = gluster_find_program("GLUSTER", "gluster");
        if (!gluster)
                return -ENOENT;
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(argv, g_strdup(gluster));
        g_ptr_array_add(argv, g_strdup("--mode=script"));
        g_ptr_array_add(argv, g_strdup_printf("--glusterd-sock=%s", g->socket));
        g_ptr_array_add(argv, g_strdup_printf("--log-file=%s/cli.log", g->logs));
        for (const char *const *arg = args; *arg; arg++)
                g_ptr_array_add(argv, g_strdup(*arg));
        g_ptr_array_add(argv, NULL);
        g_autofree char *sys_lib = g_build_filename(g->dir, "sys-lib", NULL);
        g_autofree char *out = NULL, *err = NULL;
        int wait_status = 0;
        gboolean spawned = g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, gluster_cli_setup,
                                        sys_lib, &out, &err, &wait_status, NULL);
        if (output)
                *output = g_strdup_printf("%s%s(wait status %d)", out ? out : "", err ? err : "", wait_status);
        if (!spawned)
                return -EIO;
        return g_spawn_check_wait_status(wait_status, NULL) ? 0 : -EIO;
}

static int gluster_cli_or_reason(const GlusterFixture *g, const char *const *args, char **reason)
{
        g_autofree char *output = NULL;
        int r = gluster_fixture_cli(g, args, &output);
        if (r < 0)
                *reason = g_strdup_printf("gluster %s %s: %s", args[0], args[1], output);
        return r;
}

/* A client of the volume at clients[i], in glusterd's network namespace. */
static int gluster_mount_client(GlusterFixture *g, int i, const char *glusterfs, char **reason)
{
        g_autofree char *netns = g_strdup_printf("/proc/%d/ns/net", g->namespace_pid);
        g_autofree char *log = g_strdup_printf("%s/client-%c.log", g->logs, 'a' + i);
        g_autofree char *out = g_strdup_printf("%s/client-%c.out", g->logs, 'a' + i);
        g_autofree char *log_arg = g_strdup_printf("--log-file=%s", log);
        int netns_fd = open(netns, O_RDONLY | O_CLOEXEC);
        if (netns_fd < 0) {
                *reason = g_strdup_printf("%s: %s", netns, g_strerror(errno));
                return -errno;
        }
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                close(netns_fd);
                *reason = g_strdup_printf("fork: %s", g_strerror(errno));
                return -EIO;
        }
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent || setns(netns_fd, CLONE_NEWNET) < 0)
                        _exit(126);
                gluster_redirect_output(out);
                /* The recipe: no kernel caching of what the other client
                 * changes, a cached size hides records it appended
                 * (docs/cluster.md). */
                if (g->defaults)
                        execl(glusterfs, "glusterfs", "-N",
                              "--volfile-server=" GLUSTER_FIXTURE_ADDRESS,
                              "--volfile-id=" GLUSTER_FIXTURE_VOLUME, log_arg, g->clients[i],
                              (char *)NULL);
                else
                        execl(glusterfs, "glusterfs", "-N",
                              "--volfile-server=" GLUSTER_FIXTURE_ADDRESS,
                              "--volfile-id=" GLUSTER_FIXTURE_VOLUME, "--attribute-timeout=0",
                              "--entry-timeout=0", "--negative-timeout=0", log_arg,
                              g->clients[i], (char *)NULL);
                _exit(127);
        }
        close(netns_fd);
        g->client_pids[i] = pid;

        struct stat st;
        for (long long deadline = gluster_now_ms() + GLUSTER_START_TIMEOUT_MS; gluster_now_ms() < deadline;
             g_usleep(20000)) {
                if (harness_is_mounted(g->clients[i], "fuse") && stat(g->clients[i], &st) == 0)
                        return 0;
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        g->client_pids[i] = 0;
                        g_autofree char *tail = gluster_file_tail(log, 1500);
                        *reason = g_strdup_printf("the glusterfs client exited before mounting: %s", tail);
                        return -EIO;
                }
        }
        *reason = g_strdup_printf("the glusterfs client did not mount %s", g->clients[i]);
        return -ETIMEDOUT;
}

static void gluster_at_exit(void)
{
        if (gluster_live && getpid() == gluster_live_owner)
                gluster_fixture_stop(gluster_live);
}

static int gluster_start_warden(GlusterFixture *g, const char *unshare, const char *ip,
                                const char *glusterd, char **reason)
{
        int stop[2], news[2];
        if (pipe2(stop, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(news, O_CLOEXEC) < 0) {
                close(stop[0]);
                close(stop[1]);
                return -errno;
        }
        char *const unshare_argv[] = {(char *)unshare, "--net", "--mount", "--pid", "--fork",
                                      "--mount-proc", "--kill-child", "--", "/bin/sh", "-c",
                                      (char *)gluster_namespace_script, "gluster-namespace",
                                      (char *)ip, (char *)glusterd, g->dir, NULL};
        g_autofree char *namespace_log = g_build_filename(g->logs, "namespace.log", NULL);
        pid_t test_pid = getpid();
        pid_t warden = fork();
        if (warden == 0)
                gluster_warden(g, test_pid, stop[0], news[1], unshare_argv, namespace_log);
        close(stop[0]);
        close(news[1]);
        g->warden_stop = stop[1];
        g->warden_news = news[0];
        if (warden < 0) {
                *reason = g_strdup_printf("fork: %s", g_strerror(errno));
                return -EIO;
        }
        g->warden = warden;
        struct pollfd pfd = {.fd = g->warden_news, .events = POLLIN};
        pid_t namespace = -1;
        if (poll(&pfd, 1, GLUSTER_START_TIMEOUT_MS) <= 0 ||
            read(g->warden_news, &namespace, sizeof(namespace)) != sizeof(namespace) || namespace <= 0) {
                *reason = g_strdup("could not start unshare(1) for glusterd's namespaces");
                return -EIO;
        }
        g->namespace_pid = namespace;
        return 0;
}

int gluster_fixture_start(GlusterFixture *g, char **reason)
{
        return gluster_fixture_start_as(g, GLUSTER_RECIPE, reason);
}

int gluster_fixture_start_as(GlusterFixture *g, GlusterSetup setup, char **reason)
{
        memset(g, 0, sizeof(*g));
        g->defaults = setup == GLUSTER_DEFAULTS;
        g->warden_stop = g->warden_news = -1;
        *reason = NULL;
        g_autofree char *glusterd = gluster_find_program("GLUSTERD", "glusterd");
        g_autofree char *gluster = gluster_find_program("GLUSTER", "gluster");
        g_autofree char *glusterfs = gluster_find_program("GLUSTERFS", "glusterfs");
        g_autofree char *unshare = gluster_find_program("UNSHARE", "unshare");
        g_autofree char *ip = gluster_find_program("IP", "ip");
        if (!glusterd || !gluster || !glusterfs) {
                *reason = g_strdup("glusterd, gluster or glusterfs not found "
                                   "(Debian packages glusterfs-server, glusterfs-client)");
                return -ENOENT;
        }
        if (!unshare || !ip) {
                *reason = g_strdup("unshare (util-linux) or ip (iproute2) not found: glusterd "
                                   "runs in namespaces of its own");
                return -ENOENT;
        }
        if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) < 0) {
                *reason = g_strdup("glusterd and its client mounts need root and /dev/fuse");
                return -EPERM;
        }

        g_autoptr(GError) error = NULL;
        g->dir = g_dir_make_tmp("mailbagfs-gluster-XXXXXX", &error);
        if (!g->dir) {
                *reason = g_strdup_printf("temporary directory: %s", error->message);
                return -EIO;
        }
        gluster_live = g;
        gluster_live_owner = getpid();
        static bool exit_hook;
        if (!exit_hook)
                exit_hook = atexit(gluster_at_exit) == 0;

        g->socket = g_build_filename(g->dir, "run", "glusterd.socket", NULL);
        g->logs = g_build_filename(g->dir, "log", NULL);
        g->brick = g_build_filename(g->dir, "brick", GLUSTER_FIXTURE_VOLUME, NULL);
        for (int i = 0; i < GLUSTER_FIXTURE_CLIENTS; i++)
                g->clients[i] = g_strdup_printf("%s/client-%c", g->dir, 'a' + i);
        static const char *const subdirs[] = {"wd", "run", "log", "brick", "sys-lib", "sys-log",
                                              "client-a", "client-b"};
        for (size_t i = 0; i < G_N_ELEMENTS(subdirs); i++) {
                g_autofree char *sub = g_build_filename(g->dir, subdirs[i], NULL);
                if (mkdir(sub, 0755) < 0) {
                        *reason = g_strdup_printf("%s: %s", sub, g_strerror(errno));
                        gluster_fixture_stop(g);
                        return -EIO;
                }
        }
        g_autofree char *volfile = g_build_filename(g->dir, "glusterd.vol", NULL);
        g_autofree char *volfile_text = gluster_volfile_text(g->dir);
        if (!g_file_set_contents(volfile, volfile_text, -1, &error)) {
                *reason = g_strdup_printf("glusterd.vol: %s", error->message);
                gluster_fixture_stop(g);
                return -EIO;
        }

        int r = gluster_start_warden(g, unshare, ip, glusterd, reason);
        if (r == 0 && !gluster_wait_for_glusterd(g, reason))
                r = -EIO;
        if (r == 0) {
                g_autofree char *brick = g_strdup_printf(GLUSTER_FIXTURE_ADDRESS ":%s", g->brick);
                /* force: the brick is a folder on the root filesystem. */
                const char *const create[] = {"volume", "create", GLUSTER_FIXTURE_VOLUME, brick, "force", NULL};
                r = gluster_cli_or_reason(g, create, reason);
                g->volume_created = r == 0;
        }
        /* The client-side caches of a GlusterFS client serve a small file's
         * old content to one node after another node rewrote it (quick-read,
         * io-cache), hold writes back (write-behind) and answer stat from a
         * cache (md-cache): a postoffice shared by nodes needs them off, as
         * the README's cluster section says. */
        static const char *const uncached[] = {
                "performance.quick-read", "performance.io-cache", "performance.read-ahead",
                "performance.write-behind", "performance.stat-prefetch", "performance.open-behind",
                "performance.readdir-ahead",
        };
        for (gsize i = 0; r == 0 && !g->defaults && i < G_N_ELEMENTS(uncached); i++) {
                const char *const set[] = {"volume", "set", GLUSTER_FIXTURE_VOLUME, uncached[i], "off",
                                           NULL};
                r = gluster_cli_or_reason(g, set, reason);
        }
        if (r == 0) {
                const char *const start[] = {"volume", "start", GLUSTER_FIXTURE_VOLUME, NULL};
                r = gluster_cli_or_reason(g, start, reason);
                g->volume_started = r == 0;
        }
        for (int i = 0; r == 0 && i < GLUSTER_FIXTURE_CLIENTS; i++)
                r = gluster_mount_client(g, i, glusterfs, reason);
        if (r < 0) {
                gluster_fixture_stop(g);
                return r;
        }
        return 0;
}

void gluster_fixture_stop(GlusterFixture *g)
{
        if (!g->dir)
                return;
        for (int i = 0; i < GLUSTER_FIXTURE_CLIENTS; i++) {
                /* Unmounting ends the client; a busy mount is detached. */
                if (g->clients[i] && harness_is_mounted(g->clients[i], "fuse") && umount2(g->clients[i], 0) < 0)
                        umount2(g->clients[i], MNT_DETACH);
                if (g->client_pids[i] > 0)
                        gluster_end_child(g->client_pids[i], GLUSTER_EXIT_TIMEOUT_MS);
                g->client_pids[i] = 0;
        }
        if (g->volume_started) {
                const char *const stop[] = {"volume", "stop", GLUSTER_FIXTURE_VOLUME, NULL};
                gluster_fixture_cli(g, stop, NULL);
                g->volume_started = false;
        }
        if (g->volume_created) {
                const char *const delete[] = {"volume", "delete", GLUSTER_FIXTURE_VOLUME, NULL};
                gluster_fixture_cli(g, delete, NULL);
                g->volume_created = false;
        }
        if (g->warden > 0) {
                char stop = 'S';
                if (write(g->warden_stop, &stop, 1) != 1)
                        kill(g->warden, SIGTERM);
                gluster_end_child(g->warden, 2 * GLUSTER_EXIT_TIMEOUT_MS);
        }
        g->warden = 0;
        if (g->warden_stop >= 0)
                close(g->warden_stop);
        if (g->warden_news >= 0)
                close(g->warden_news);
        g->warden_stop = g->warden_news = -1;
        /* The warden removed it, unless it could not run. */
        harness_remove_tree(g->dir);
        if (gluster_live == g)
                gluster_live = NULL;
        g_clear_pointer(&g->dir, g_free);
        g_clear_pointer(&g->socket, g_free);
        g_clear_pointer(&g->logs, g_free);
        g_clear_pointer(&g->brick, g_free);
        for (int i = 0; i < GLUSTER_FIXTURE_CLIENTS; i++)
                g_clear_pointer(&g->clients[i], g_free);
}
