/* test-po-sim-soak.c - the short soak: tests/soak/soak.sh run as a user
 * runs it, with 3,000 messages, consumers killed at random and restarted,
 * and the daemon killed with SIGKILL and restarted once on its dead mount.
 * Nothing may be lost, no [021] may come from another consumer, and every
 * duplicate must be a message a dead consumer had in hand.
 *
 * soak.sh mounts its own daemon (without auto_unmount, so that its kill
 * leaves a dead mount) in a directory inside the harness' private one; the
 * suite's fini kills whatever the script left running (daemon.pid,
 * po-sim.pid) and lazily unmounts before the harness removes the directory,
 * also when an assertion fails or the script was killed. Paths come from
 * SOAK_SH, PO_SIM, MKPO and MAILBAGFS (set by meson).
 */
#include "mount-fixture.h"
#include "po-sim-json.h"
#include "tool-run.h"

#include <criterion/criterion.h>
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

static MountHarness harness;
static char *work;

static void soak_setup(void)
{
        mount_fixture_setup(&harness);
        work = g_build_filename(harness.dir, "soak", NULL);
}

static void kill_from_pid_file(const char *name)
{
        g_autofree char *path = g_build_filename(work, name, NULL);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL))
                return;
        gint64 pid = g_ascii_strtoll(text, NULL, 10);
        if (pid > 1)
                kill((pid_t)pid, SIGKILL);
}

static void soak_teardown(void)
{
        kill_from_pid_file("po-sim.pid");
        kill_from_pid_file("daemon.pid");
        g_autofree char *mnt = g_build_filename(work, "mnt", NULL);
        const char *argv[] = {"fusermount3", "-u", "-z", mnt, NULL};
        g_spawn_sync(NULL, (char **)argv, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                             G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, NULL, NULL);
        g_clear_pointer(&work, g_free);
        mount_harness_teardown(&harness);
}

TestSuite(po_sim_soak, .init = soak_setup, .fini = soak_teardown);

Test(po_sim_soak, kills_and_a_daemon_restart_lose_nothing, .timeout = 600)
{
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "SOAK_SH", "--messages", "3000", "--kill-consumers-every", "150",
                 "--restart-at", "40", "--timeout", "500", "--work", work, "--json", NULL);
        cr_log_info("soak: %s", run.out);
        cr_assert_eq(run.status, 0, "soak.sh failed: %s%s", run.out, run.err);
        const char *json = run.out;
        cr_expect(strstr(json, "\"verdict\": \"ok\""), "%s", json);
        cr_expect(strstr(json, "\"mode\": \"mailbagfs\""), "%s", json);
        cr_expect(strstr(json, "\"ok\": true"), "%s", json);
        cr_expect_eq(po_sim_json_count(json, "daemon_restarts"), 1, "%s", json);
        /* The refusal on the dead mount was followed. */
        cr_expect_geq(po_sim_json_count(json, "daemon_refusals"), 1, "%s", json);
        cr_expect_gt(po_sim_json_count(json, "kills"), 0, "%s", json);
        /* Programs cut off by the dead mount were restarted. */
        cr_expect_gt(po_sim_json_count(json, "io_exits"), 0, "%s", json);

        unsigned queued = po_sim_json_count(json, "queued");
        unsigned duplicates = po_sim_json_count(json, "duplicates");
        cr_expect_geq(queued + po_sim_json_count(json, "refused"), 3100, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "delivered") + duplicates +
                             po_sim_json_count(json, "returned"),
                     queued, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "lost"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "still_queued"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "missing_routing_other"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "duplicates_unexplained"), 0, "%s", json);
        cr_expect_leq(duplicates, po_sim_json_count(json, "kills_in_hand") +
                                          po_sim_json_count(json, "io_in_hand"),
                      "%s", json);
}
