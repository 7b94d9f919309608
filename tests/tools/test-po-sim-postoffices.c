/* test-po-sim-postoffices.c - one mount, several postoffices below its root
 * (one made through the mount after it was mounted), a mixed-protocol
 * po-sim run on each at the same time: every message delivered once in
 * each, and a session held in yet another postoffice for the whole time
 * delays none of them.
 */
#include "mount-fixture.h"
#include "po-sim-json.h"
#include "sample-postoffice.h"
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
        mount_fixture_setup(&harness);
}

static void teardown(void)
{
        mount_harness_teardown(&harness);
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
        harness_mkpo(po1, 8, 0);
        harness_mkpo(po2, 8, 0);
        harness_mkpo(idle, 8, 0);
        mount_fixture_mount(&harness, NULL);
        /* Made through the mount, after it was mounted. */
        g_autofree char *po3 = g_build_filename(harness.mnt, "LATE", "PO3", NULL);
        harness_mkpo(po3, 8, 0);

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
                unsigned queued = po_sim_json_count(json, "queued");
                cr_expect_gt(queued, 0, "%s", json);
                po_sim_expect_clean(json, queued);
        }

        /* IDLE's session was never taken from its holder. */
        g_autofree char *mnt_idle = g_build_filename(harness.mnt, "IDLE", NULL);
        char locks[4096] = {0};
        cr_assert_gt(getxattr(mnt_idle, "user.mailbag.locks", locks, sizeof locks - 1), 0);
        g_autofree char *mine = g_strdup_printf("session INQUEUE3 held postoffice=IDLE pid=%d ",
                                                getpid());
        cr_expect(strstr(locks, mine), "IDLE's locks: %s", locks);
        close(held);

        mount_fixture_expect_quiet(&harness);
}
