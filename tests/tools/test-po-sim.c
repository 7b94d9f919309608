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
#include "mount-harness.h"
#include "tool-run.h"

#include <criterion/criterion.h>
#include <glib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>

static MountHarness harness;

static void po_sim_setup(void)
{
        cr_assert_eq(mount_harness_setup(&harness), 0, "harness setup failed");
}

static void po_sim_teardown(void)
{
        mount_harness_teardown(&harness);
}

TestSuite(po_sim, .init = po_sim_setup, .fini = po_sim_teardown);

static void make_postoffice(const char *users, const char *messages)
{
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "MKPO", harness.backing, "--users", users, "--messages", messages,
                 "--queue-max", messages, NULL);
        cr_assert_eq(run.status, 0, "mkpo failed: %s", run.err);
}

static void mount_postoffice(void)
{
        int r = mount_harness_mount(&harness, NULL);
        cr_assert_eq(r, 0, "mount failed (%s); see %s", g_strerror(-r), harness.log);
}

/* The number after "\"@key\": " in po-sim's one-line JSON. */
static double json_number(const char *json, const char *key)
{
        g_autofree char *needle = g_strdup_printf("\"%s\": ", key);
        const char *at = strstr(json, needle);
        cr_assert_not_null(at, "no %s in %s", key, json);
        char *end = NULL;
        double value = g_ascii_strtod(at + strlen(needle), &end);
        cr_assert(end != at + strlen(needle), "%s is not a number in %s", key, json);
        return value;
}

static unsigned json_count(const char *json, const char *key)
{
        return (unsigned)json_number(json, key);
}

/* Every offered message was queued or refused with [008], every queued
 * one is accounted for exactly once, and the queue is empty at the end. */
static void expect_accounted(const char *json, unsigned offered)
{
        unsigned queued = json_count(json, "queued");
        cr_expect_eq(queued + json_count(json, "refused"), offered, "%s", json);
        cr_expect_eq(json_count(json, "delivered") + json_count(json, "duplicates") +
                             json_count(json, "lost") + json_count(json, "returned"),
                     queued, "%s", json);
        cr_expect_eq(json_count(json, "still_queued"), 0, "%s", json);
        cr_expect(strstr(json, "\"ok\": true"), "%s", json);
}

static void expect_clean(const char *json, unsigned queued)
{
        expect_accounted(json, queued);
        cr_expect(strstr(json, "\"mode\": \"mailbagfs\""), "%s", json);
        cr_expect_eq(json_count(json, "delivered"), queued, "%s", json);
        cr_expect_eq(json_count(json, "duplicates"), 0, "%s", json);
        cr_expect_eq(json_count(json, "lost"), 0, "%s", json);
        cr_expect_eq(json_count(json, "missing_routing"), 0, "%s", json);
        cr_expect_eq(json_count(json, "contention_failures"), 0, "%s", json);
        g_autofree char *problems = mount_harness_log_problems(&harness);
        cr_expect_null(problems, "daemon log: %s", problems);
}

static void expect_usage_error(const char *what, ...)
{
        const char *path = g_getenv("PO_SIM");
        cr_assert_not_null(path, "PO_SIM is not set (run through meson test)");
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_ptr_array_add(argv, (gpointer)path);
        va_list args;
        va_start(args, what);
        for (const char *arg; (arg = va_arg(args, const char *)) != NULL;)
                g_ptr_array_add(argv, (gpointer)arg);
        va_end(args);
        g_ptr_array_add(argv, NULL);
        g_autofree char *out = NULL, *err = NULL;
        int wait_status = 0;
        cr_assert(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &out, &err, &wait_status, NULL));
        cr_expect(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 2,
                  "%s: expected exit 2, got status %d", what, wait_status);
        cr_expect(g_str_has_prefix(err, "po-sim: "), "%s: no message: %s", what, err);
        cr_expect_str_empty(out, "%s", what);
}

Test(po_sim, argument_errors)
{
        make_postoffice("4", "10");
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
        make_postoffice("8", "200");
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
        make_postoffice("8", "200");
        mount_postoffice();
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
        make_postoffice("40", "1000");
        mount_postoffice();
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
        make_postoffice("40", "1000");
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_SIM", harness.backing, "--messages", "9500", "--consumers",
                 BIG_CONSUMERS, "--producers", "2", "--timeout", "800", "--json", NULL);
        cr_assert_eq(run.status, 0, "po-sim failed: %s%s", run.out, run.err);
        expect_accounted(run.out, 10500);
        /* If this fails, po-sim no longer models the problem of Q103960. */
        cr_expect_gt(json_count(run.out, "duplicates") + json_count(run.out, "missing_routing"), 0,
                     "no collision on a raw postoffice: %s", run.out);
        cr_log_info("raw: %s", run.out);
}
