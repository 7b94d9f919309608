/* test-po-sim.c - po-sim as a user runs it: bad arguments are refused, and
 * the same workload run on a raw postoffice and through a mailbagfs mount
 * gives collisions on the first and none on the second.
 *
 * Every test works in a mount harness' private directory (a sample
 * postoffice made by mkpo in backing/), which the suite's fini removes,
 * with the mount, also when an assertion fails. Tool paths come from the
 * PO_SIM, MKPO and MAILBAGFS environment variables (set by meson).
 * The mounts use the daemon's defaults.
 */
#include "mount-fixture.h"
#include "po-sim-json.h"
#include "sample-postoffice.h"
#include "tool-run.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static MountHarness harness;

static void po_sim_setup(void)
{
        mount_fixture_setup(&harness);
}

static void po_sim_teardown(void)
{
        mount_harness_teardown(&harness);
}

TestSuite(po_sim, .init = po_sim_setup, .fini = po_sim_teardown);

/* The queue's mail is accounted for, and po-sim says all went well. */
static void expect_accounted(const char *json, unsigned offered)
{
        po_sim_expect_queue_accounted(json, offered);
        cr_expect(strstr(json, "\"ok\": true"), "%s", json);
}

static void expect_clean(const char *json, unsigned queued)
{
        expect_accounted(json, queued);
        po_sim_expect_clean(json, queued);
        mount_fixture_expect_quiet(&harness);
}

static void expect_usage_error(const char *what, ...)
{
        g_autoptr(GPtrArray) args = g_ptr_array_new();
        va_list list;
        va_start(list, what);
        for (const char *arg; (arg = va_arg(list, const char *)) != NULL;)
                g_ptr_array_add(args, (gpointer)arg);
        va_end(list);
        g_ptr_array_add(args, NULL);
        g_auto(ToolRun) run = {0};
        tool_runv(&run, "PO_SIM", (const char *const *)args->pdata);
        cr_expect_eq(run.status, 2, "%s: expected exit 2, got %d", what, run.status);
        cr_expect(g_str_has_prefix(run.err, "po-sim: "), "%s: no message: %s", what, run.err);
        cr_expect_str_empty(run.out, "%s", what);
}

Test(po_sim, argument_errors)
{
        harness_mkpo(harness.backing, 4, 10);
        const char *po = harness.backing;
        expect_usage_error("no directory", NULL);
        expect_usage_error("two directories", po, po, NULL);
        expect_usage_error("unknown consumer kind", po, "--consumers", "profs=1", NULL);
        expect_usage_error("no consumers", po, "--consumers", "external=0", NULL);
        expect_usage_error("too many -V20", po, "--consumers", "v20=71", NULL);
        expect_usage_error("messages, no producers", po, "--producers", "0", NULL);
        expect_usage_error("negative messages", po, "--messages", "-1", NULL);
        expect_usage_error("zero batch", po, "--batch", "0", NULL);
        expect_usage_error("unknown option", po, "--frobnicate", NULL);
        expect_usage_error("missing directory", "/nonexistent/po", NULL);
        expect_usage_error("not a postoffice", harness.mnt, NULL);
}

Test(po_sim, small_raw_run_accounts_for_every_message)
{
        harness_mkpo(harness.backing, 8, 200);
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_SIM", harness.backing, "--messages", "300", "--json", NULL);
        cr_assert_eq(run.status, 0, "po-sim failed: %s%s", run.out, run.err);
        cr_expect(strstr(run.out, "\"mode\": \"raw\""), "%s", run.out);
        expect_accounted(run.out, 500);
        /* The stand-in locks live outside the postoffice. */
        g_autofree char *stray = g_build_filename(harness.backing, ".po-sim", NULL);
        cr_expect(!g_file_test(stray, G_FILE_TEST_EXISTS));
}

Test(po_sim, small_mounted_run_is_clean)
{
        harness_mkpo(harness.backing, 8, 200);
        mount_fixture_mount(&harness, NULL);
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_SIM", harness.mnt, "--messages", "300",
                 "--consumers", "external=1,v20=1,gateway=1", "--json", NULL);
        cr_assert_eq(run.status, 0, "po-sim failed: %s%s", run.out, run.err);
        expect_clean(run.out, 500);
        cr_expect_eq(mount_harness_unmount(&harness), 0);
}

/* The CI run: 10,500 messages, six consumers of three protocols, two
 * producers. */
#define BIG_CONSUMERS "external=2,v20=2,gateway=2"

Test(po_sim, big_mounted_run_is_clean, .timeout = 900)
{
        harness_mkpo(harness.backing, 40, 1000);
        mount_fixture_mount(&harness, NULL);
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_SIM", harness.mnt, "--messages", "9500", "--consumers", BIG_CONSUMERS,
                 "--producers", "2", "--timeout", "800", "--json", NULL);
        cr_assert_eq(run.status, 0, "po-sim failed: %s%s", run.out, run.err);
        expect_clean(run.out, 10500);
        cr_log_info("mounted: %s", run.out);
        cr_expect_eq(mount_harness_unmount(&harness), 0);
}

Test(po_sim, big_raw_run_collides, .timeout = 900)
{
        harness_mkpo(harness.backing, 40, 1000);
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_SIM", harness.backing, "--messages", "9500", "--consumers",
                 BIG_CONSUMERS, "--producers", "2", "--timeout", "800", "--json", NULL);
        cr_assert_eq(run.status, 0, "po-sim failed: %s%s", run.out, run.err);
        expect_accounted(run.out, 10500);
        /* If this fails, po-sim no longer models the problem of Q103960. */
        cr_expect_gt(po_sim_json_count(run.out, "duplicates") + po_sim_json_count(run.out, "missing_routing"), 0,
                     "no collision on a raw postoffice: %s", run.out);
        cr_log_info("raw: %s", run.out);
}

/* The daemon's overlaps counter on the mount root. */
static unsigned daemon_overlaps(void)
{
        g_autofree char *stats = harness_attribute(harness.mnt, "user.mailbag.stats");
        cr_assert_not_null(stats);
        const char *sums = strstr(stats, "stats * ");
        const char *field = sums ? strstr(sums, " overlaps=") : NULL;
        cr_assert_not_null(field, "no overlaps in %s", stats);
        return (unsigned)g_ascii_strtoull(field + strlen(" overlaps="), NULL, 10);
}

/* Through a mount in observe mode the programs collide as on a raw
 * share, and the daemon counts at least every cross-protocol overlap the
 * programs themselves saw; the same run enforced has none, and the daemon
 * counts none. */
Test(po_sim, an_observed_run_collides_and_every_overlap_is_counted, .timeout = 900)
{
        harness_mkpo(harness.backing, 8, 200);
        const char *observe[] = {"-omode=observe", NULL};
        mount_fixture_mount(&harness, observe);
        g_auto(ToolRun) run = {0};
        tool_run(&run, "PO_SIM", harness.mnt, "--messages", "1000", "--consumers", BIG_CONSUMERS,
                 "--timeout", "600", "--json", NULL);
        cr_assert_eq(run.status, 0, "po-sim failed: %s%s", run.out, run.err);
        cr_log_info("observed: %s", run.out);
        cr_expect(strstr(run.out, "\"mode\": \"observe\""), "%s", run.out);
        expect_accounted(run.out, 1200);
        cr_expect_gt(po_sim_json_count(run.out, "duplicates") +
                             po_sim_json_count(run.out, "missing_routing"),
                     0, "no collision through an observing mount: %s", run.out);
        unsigned seen = po_sim_json_count(run.out, "cross_protocol_overlaps");
        unsigned counted = daemon_overlaps();
        cr_log_info("observed: po-sim saw %u cross-protocol overlaps, the daemon counted %u", seen,
                    counted);
        cr_expect_gt(seen, 0, "%s", run.out);
        cr_expect_geq(counted, seen, "the daemon counted fewer overlaps than the programs saw");
        /* The programs overlap here by design. In about 1 run in 20 on a
         * 2-core machine (ASan build) a -V20 program ends with a
         * reference to a lock file the daemon still counts for its
         * session, though the file is gone, and the daemon reclaims that
         * hold with a warning when the program exits: its recovery,
         * logged. One way to it, a removal between the look for the file
         * and its record in the registry, is closed (lockfiles_add looks
         * under the registry's lock); another is not found yet. */
        const char *const observed[] = {"observe mode", "stale hold reclaimed", NULL};
        mount_fixture_stop_allowing(&harness, observed);

        mount_fixture_setup(&harness);
        harness_mkpo(harness.backing, 8, 200);
        mount_fixture_mount(&harness, NULL);
        g_auto(ToolRun) enforced = {0};
        tool_run(&enforced, "PO_SIM", harness.mnt, "--messages", "1000", "--consumers",
                 BIG_CONSUMERS, "--timeout", "600", "--json", NULL);
        cr_assert_eq(enforced.status, 0, "po-sim failed: %s%s", enforced.out, enforced.err);
        expect_clean(enforced.out, 1200);
        cr_expect_eq(po_sim_json_count(enforced.out, "cross_protocol_overlaps"), 0, "%s",
                     enforced.out);
        cr_expect_eq(daemon_overlaps(), 0);
        cr_expect_eq(mount_harness_unmount(&harness), 0);
}

/* Switched from observe to enforce while the programs work: nothing is
 * lost, nothing delivered twice, nobody hangs. One consumer protocol
 * only, so that the observed part is clean too (a real share's one layer
 * keeps programs of one protocol apart); the switch then meets programs
 * inside the queue with their places in line. */
Test(po_sim, a_switch_to_enforce_under_load_loses_nothing, .timeout = 900)
{
        harness_mkpo(harness.backing, 8, 200);
        const char *observe[] = {"-omode=observe", NULL};
        mount_fixture_mount(&harness, observe);
        g_autofree char *out_path = g_build_filename(harness.dir, "po-sim.json", NULL);
        pid_t sim = fork();
        cr_assert_geq(sim, 0);
        if (sim == 0) {
                FILE *out = freopen(out_path, "w", stdout);
                if (!out)
                        _exit(127);
                const char *path = tool_path("PO_SIM");
                execl(path, path, harness.mnt, "--messages", "2000", "--consumers", "external=3",
                      "--producers", "3", "--timeout", "600", "--json", NULL);
                _exit(127);
        }
        /* Let the programs get going and overlap, then switch. */
        for (int i = 0; i < 2000 && daemon_overlaps() < 20; i++)
                g_usleep(5000);
        unsigned before = daemon_overlaps();
        cr_assert_eq(setxattr(harness.mnt, "user.mailbag.mode", "enforce", 7, 0), 0, "%s",
                     g_strerror(errno));
        int status = 0;
        cr_assert_eq(waitpid(sim, &status, 0), sim);
        g_autofree char *json = NULL;
        cr_assert(g_file_get_contents(out_path, &json, NULL, NULL));
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "po-sim: %d %s", status, json);
        cr_log_info("switched after %u overlaps: %s", before, json);
        /* Every message queued is delivered once. A producer may still
         * give up on a busy KEY with [008] while observed, as on a plain
         * share (KB Q237695): that message is never queued, and returned
         * to its sender, not lost. */
        unsigned queued = po_sim_json_count(json, "queued");
        cr_expect_eq(queued + po_sim_json_count(json, "refused"), 2200, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "delivered"), queued, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "lost"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "duplicates"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "missing_routing"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "still_queued"), 0, "%s", json);
        cr_expect(strstr(json, "\"ok\": true"), "%s", json);
        g_autofree char *mode = harness_attribute(harness.mnt, "user.mailbag.mode");
        cr_expect_str_eq(mode, "enforce\n");
        mount_fixture_stop(&harness, "mode");
}
