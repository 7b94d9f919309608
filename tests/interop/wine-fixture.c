/* wine-fixture.c - prefixes, wineservers and mbhold.exe peers. */
#include "wine-fixture.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mount-harness.h"

#define WINE_DIR_ENV "MAILBAGFS_TEST_WINE_DIR"
#define WINE_SKIP_ENV "MAILBAGFS_TEST_WINE_UNAVAILABLE"
#define WINEBOOT_TIMEOUT_MS 300000

static char *wine_prefix_path(const char *dir, int prefix)
{
        g_autofree char *name = g_strdup_printf("prefix%d", prefix + 1);
        return g_build_filename(dir, name, NULL);
}

/* The environment of a Win32 program: no display (no window may open in
 * CI), no debug chatter, and no Mono or Gecko installer prompt. */
static char **wine_environment(const char *prefix_path)
{
        char **env = g_get_environ();
        env = g_environ_unsetenv(env, "DISPLAY");
        env = g_environ_unsetenv(env, "WAYLAND_DISPLAY");
        env = g_environ_setenv(env, "WINEPREFIX", prefix_path, TRUE);
        env = g_environ_setenv(env, "WINEDEBUG", "-all", TRUE);
        env = g_environ_setenv(env, "WINEDLLOVERRIDES", "mscoree,mshtml=", TRUE);
        return env;
}

static void wine_record_unavailable(const char *reason)
{
        g_setenv(WINE_SKIP_ENV, reason, TRUE);
}

const char *wine_unavailable_reason(void)
{
        const char *reason = g_getenv(WINE_SKIP_ENV);
        if (reason)
                return reason;
        if (!g_getenv(WINE_DIR_ENV))
                return "the Wine prefixes were not prepared";
        return NULL;
}

/* "wineserver -k" ends the prefix's server and every Wine process of the
 * prefix; "wineserver -w" returns once the server has gone, so that no
 * descriptor of it is left on a mount that is about to go. */
static void wine_run_wineserver(const char *prefix_path, const char *option)
{
        const char *wineserver = getenv("WINESERVER");
        if (!wineserver || !*wineserver)
                return;
        g_auto(GStrv) env = wine_environment(prefix_path);
        const char *argv[] = {wineserver, option, NULL};
        g_autofree char *log = g_strdup_printf("%s.wineserver.log", prefix_path);
        pid_t pid = interop_spawn_logged(argv, (const char *const *)env, log);
        if (pid > 0 && interop_wait_pid(pid, 30000) == -1)
                interop_stop_pid(pid, 1000);
}

void wine_prefixes_prepare(void)
{
        const char *wine = getenv("WINE");
        const char *exe = getenv("MBHOLD_EXE");
        if (!wine || !*wine || !getenv("WINESERVER") || !*getenv("WINESERVER")) {
                wine_record_unavailable("wine not found at build time (Debian packages wine, wine64)");
                return;
        }
        if (!exe || !*exe || access(exe, R_OK) != 0) {
                wine_record_unavailable("mbhold.exe not built: no x86_64-w64-mingw32-gcc at build time "
                                        "(Debian package gcc-mingw-w64-x86-64)");
                return;
        }
        interop_adopt_descendants();

        g_autoptr(GError) error = NULL;
        g_autofree char *dir = g_dir_make_tmp("mailbagfs-wine-XXXXXX", &error);
        if (!dir) {
                wine_record_unavailable("no temporary directory for Wine prefixes");
                return;
        }
        g_setenv(WINE_DIR_ENV, dir, TRUE);

        /* "wine wineboot -i" creates a prefix; both at once, since each
         * spends most of its time waiting on its own wineserver. */
        pid_t boots[WINE_PREFIXES];
        for (int i = 0; i < WINE_PREFIXES; i++) {
                g_autofree char *prefix = wine_prefix_path(dir, i);
                g_autofree char *log = g_strdup_printf("%s.wineboot.log", prefix);
                g_auto(GStrv) env = wine_environment(prefix);
                const char *argv[] = {wine, "wineboot", "-i", NULL};
                boots[i] = interop_spawn_logged(argv, (const char *const *)env, log);
        }
        for (int i = 0; i < WINE_PREFIXES; i++) {
                g_autofree char *prefix = wine_prefix_path(dir, i);
                g_autofree char *log = g_strdup_printf("%s.wineboot.log", prefix);
                int status = boots[i] > 0 ? interop_wait_pid(boots[i], WINEBOOT_TIMEOUT_MS) : -1;
                if (status == -1)
                        interop_stop_pid(boots[i], 1000);
                g_autofree char *system_dir = g_build_filename(prefix, "drive_c", "windows", NULL);
                if (status != 0 || !g_file_test(system_dir, G_FILE_TEST_IS_DIR)) {
                        g_autofree char *tail = interop_file_tail(log, 1500);
                        g_autofree char *reason = g_strdup_printf(
                                "wine could not create a prefix (wineboot %s): %s",
                                status == -1 ? "timed out" : "failed", tail);
                        wine_record_unavailable(reason);
                }
        }
        /* The tests start their own wineservers; these ones only booted. */
        wine_stop_servers();
        interop_end_descendants(5000);
}

void wine_stop_servers(void)
{
        const char *dir = g_getenv(WINE_DIR_ENV);
        if (!dir)
                return;
        for (int i = 0; i < WINE_PREFIXES; i++) {
                g_autofree char *prefix = wine_prefix_path(dir, i);
                wine_run_wineserver(prefix, "-k");
                wine_run_wineserver(prefix, "-w");
        }
}

void wine_prefixes_remove(void)
{
        const char *dir = g_getenv(WINE_DIR_ENV);
        if (!dir)
                return;
        wine_stop_servers();
        /* wineserver and the services Wine starts (winedevice.exe and
         * friends) detach; they are our descendants all the same. */
        interop_end_descendants(5000);
        harness_remove_tree(dir);
        g_unsetenv(WINE_DIR_ENV);
}

int wine_peer_start(InteropPeer *peer, int prefix, const char *name, const char *log_dir, char **error_text)
{
        *error_text = NULL;
        const char *dir = g_getenv(WINE_DIR_ENV);
        if (!dir) {
                *error_text = g_strdup("no Wine prefixes");
                return -ENOENT;
        }
        g_autofree char *prefix_path = wine_prefix_path(dir, prefix);
        g_auto(GStrv) env = wine_environment(prefix_path);
        g_autofree char *log = g_strdup_printf("%s/%s.stderr", log_dir, name);
        const char *argv[] = {getenv("WINE"), getenv("MBHOLD_EXE"), NULL};
        int r = interop_peer_start(peer, name, argv, (const char *const *)env, log);
        if (r < 0) {
                *error_text = g_strdup_printf("cannot start wine: %s", g_strerror(-r));
                return r;
        }
        /* Its first line proves the program runs; the first start of a
         * wineserver for a prefix takes a moment. */
        g_autofree char *answer = interop_peer_read(peer, INTEROP_START_TIMEOUT_MS);
        if (!answer || strcmp(answer, "READY") != 0) {
                g_autofree char *err = interop_peer_stderr(peer);
                *error_text = g_strdup_printf("mbhold.exe under wine said '%s'; stderr: %s",
                                              answer ? answer : "nothing", err);
                return -EIO;
        }
        return 0;
}

char *wine_path(const char *unix_path)
{
        g_autofree char *win = g_strdup(unix_path);
        g_strdelimit(win, "/", '\\');
        return g_strdup_printf("Z:%s", win);
}
