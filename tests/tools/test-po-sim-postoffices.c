/* test-po-sim-postoffices.c - one mount, several postoffices below its root
 * (one made through the mount after it was mounted), a mixed-protocol
 * po-sim run on each at the same time: every message delivered once in
 * each, and a session held in yet another postoffice for the whole time
 * delays none of them.
 */
#include "mount-harness.h"
#include "tool-run.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static MountHarness harness;

static void setup(void)
{
        cr_assert_eq(mount_harness_setup(&harness), 0, "harness setup failed");
}

static void teardown(void)
{
        mount_harness_teardown(&harness);
}

static void make_postoffice(const char *dir)
{
        g_auto(ToolRun) run = {0};
        tool_run(&run, "MKPO", dir, "--users", "8", "--messages", "0", NULL);
        cr_assert_eq(run.status, 0, "mkpo %s failed: %s", dir, run.err);
}

static unsigned json_count(const char *json, const char *key)
{
        g_autofree char *needle = g_strdup_printf("\"%s\": ", key);
        const char *at = strstr(json, needle);
        cr_assert_not_null(at, "no %s in %s", key, json);
        return (unsigned)g_ascii_strtoull(at + strlen(needle), NULL, 10);
}

typedef struct {
        GPid pid;
        int out_fd;
        char *dir;
} SimRun;

static SimRun sim_start(const char *dir, const char *messages)
{
        const char *po_sim = tool_path("PO_SIM");
        const char *argv[] = {po_sim, dir, "--messages", messages, "--json", NULL};
        SimRun run = {.dir = g_strdup(dir)};
        g_autoptr(GError) error = NULL;
        cr_assert(g_spawn_async_with_pipes(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                           NULL, NULL, &run.pid, NULL, &run.out_fd, NULL, &error),
                  "po-sim: %s", error ? error->message : "?");
        return run;
}

/* Waits for the run; returns its JSON. */
static char *sim_finish(SimRun *run)
{
        GString *out = g_string_new(NULL);
        char buf[4096];
        for (ssize_t n; (n = read(run->out_fd, buf, sizeof buf)) > 0;)
                g_string_append_len(out, buf, n);
        close(run->out_fd);
        int status = 0;
        cr_assert_eq(waitpid(run->pid, &status, 0), run->pid);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "po-sim on %s: status %d: %s",
                  run->dir, status, out->str);
        g_free(run->dir);
        return g_string_free(out, FALSE);
}

Test(po_sim_postoffices, every_postoffice_of_a_mount_is_protected_on_its_own, .init = setup,
     .fini = teardown, .timeout = 900)
{
        g_autofree char *po1 = g_build_filename(harness.backing, "PO1", NULL);
        g_autofree char *po2 = g_build_filename(harness.backing, "HUB", "PO2", NULL);
        g_autofree char *idle = g_build_filename(harness.backing, "IDLE", NULL);
        make_postoffice(po1);
        make_postoffice(po2);
        make_postoffice(idle);
        cr_assert_eq(mount_harness_mount(&harness, NULL), 0, "mount failed; see %s", harness.log);
        /* Made through the mount, after it was mounted. */
        g_autofree char *po3 = g_build_filename(harness.mnt, "LATE", "PO3", NULL);
        make_postoffice(po3);

        /* An External holds IDLE's queue for the whole run. */
        g_autofree char *idle_lock = g_build_filename(harness.mnt, "IDLE", "P1", "INQUEUE3.0LK", NULL);
        int held = open(idle_lock, O_RDWR | O_CREAT, 0644);
        cr_assert_geq(held, 0, "%s: %s", idle_lock, g_strerror(errno));

        g_autofree char *mnt_po1 = g_build_filename(harness.mnt, "PO1", NULL);
        g_autofree char *mnt_po2 = g_build_filename(harness.mnt, "HUB", "PO2", NULL);
        const char *dirs[] = {mnt_po1, mnt_po2, po3};
        SimRun runs[G_N_ELEMENTS(dirs)];
        for (gsize i = 0; i < G_N_ELEMENTS(dirs); i++)
                runs[i] = sim_start(dirs[i], "2000");
        for (gsize i = 0; i < G_N_ELEMENTS(dirs); i++) {
                g_autofree char *json = sim_finish(&runs[i]);
                cr_log_info("%s: %s", dirs[i], json);
                cr_expect(strstr(json, "\"mode\": \"mailbagfs\""), "%s: %s", dirs[i], json);
                unsigned queued = json_count(json, "queued");
                cr_expect_gt(queued, 0, "%s", json);
                cr_expect_eq(json_count(json, "delivered"), queued, "%s: %s", dirs[i], json);
                cr_expect_eq(json_count(json, "duplicates"), 0, "%s: %s", dirs[i], json);
                cr_expect_eq(json_count(json, "lost"), 0, "%s: %s", dirs[i], json);
                cr_expect_eq(json_count(json, "missing_routing"), 0, "%s: %s", dirs[i], json);
        }

        /* IDLE's session was never taken from its holder. */
        g_autofree char *mnt_idle = g_build_filename(harness.mnt, "IDLE", NULL);
        char locks[4096] = {0};
        cr_assert_gt(getxattr(mnt_idle, "user.mailbag.locks", locks, sizeof locks - 1), 0);
        g_autofree char *mine = g_strdup_printf("session INQUEUE3 held postoffice=IDLE pid=%d ",
                                                getpid());
        cr_expect(strstr(locks, mine), "IDLE's locks: %s", locks);
        close(held);

        g_autofree char *problems = mount_harness_log_problems(&harness);
        cr_expect_null(problems, "daemon log: %s", problems);
}
