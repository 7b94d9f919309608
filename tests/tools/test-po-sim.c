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
#include <glib.h>
#include <stdarg.h>
#include <string.h>

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
