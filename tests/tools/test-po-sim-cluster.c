/* test-po-sim-cluster.c - po-sim split across two paths of one postoffice
 * (--also): through two mailbagfs daemons serving one backing directory,
 * as two cluster nodes serve one share, half of every kind of program on
 * each node, the mail comes through clean; the same split with both paths
 * the raw directory collides; and --also refuses a path that is another
 * postoffice.
 *
 * Node A's harness makes the backing directory and the sample postoffice
 * (mkpo); node B's daemon serves the same directory. Both harnesses'
 * private directories go in the suite's fini, with their mounts, also when
 * an assertion fails. Tool paths come from PO_SIM, MKPO and MAILBAGFS.
 */
#include "mount-fixture.h"
#include "po-sim-json.h"
#include "sample-postoffice.h"
#include "tool-run.h"

#include <criterion/criterion.h>
#include <glib.h>
#include <string.h>

static MountHarness node_a, node_b;

static void cluster_setup(void)
{
        mount_fixture_setup(&node_a);
        mount_fixture_setup(&node_b);
}

static void cluster_teardown(void)
{
        /* B's backing directory may be A's: B goes first, A removes it. */
        mount_harness_teardown(&node_b);
        mount_harness_teardown(&node_a);
}

TestSuite(po_sim_cluster, .init = cluster_setup, .fini = cluster_teardown);

/* @argv: extra daemon arguments for both nodes (may be NULL). */
static void mount_both_nodes(const char *const *argv)
{
        mount_harness_set_backing(&node_b, node_a.backing);
        mount_fixture_mount(&node_a, argv);
        mount_fixture_mount(&node_b, argv);
}

/* Every offered message was queued or refused, each queued one is
 * accounted for once, the queue is empty, and the run was split. */
static void expect_accounted(const char *json, unsigned offered)
{
        po_sim_expect_queue_accounted(json, offered);
        cr_expect(strstr(json, "\"split\": true"), "%s", json);
        cr_expect(strstr(json, "\"ok\": true"), "%s", json);
}

/* The split workload on @first and @second (--also): 500 messages queued
 * by mkpo and 3,000 more from two producers, two consumers of each kind;
 * @what labels it in the log. */
static void run_split(const char *first, const char *second, const char *what, ToolRun *run)
{
        tool_run(run, "PO_SIM", first, "--also", second, "--messages", "3000", "--consumers",
                 "external=2,v20=2,gateway=2", "--producers", "2", "--timeout", "800", "--json",
                 NULL);
        cr_log_info("%s: %s", what, run->out);
        cr_assert_eq(run->status, 0, "po-sim failed: %s%s", run->out, run->err);
        expect_accounted(run->out, 3500);
}

static void run_split_expect_clean(const char *const *daemon_argv)
{
        harness_mkpo(node_a.backing, 20, 500);
        mount_both_nodes(daemon_argv);
        g_auto(ToolRun) run = { 0 };
        run_split(node_a.mnt, node_b.mnt, "two nodes", &run);
        po_sim_expect_clean(run.out, 3500);
        mount_fixture_expect_quiet(&node_a);
        mount_fixture_expect_quiet(&node_b);
        cr_expect_eq(mount_harness_unmount(&node_b), 0);
        cr_expect_eq(mount_harness_unmount(&node_a), 0);
}

/* With the daemons' defaults. Before mailbag files were served without
 * the kernel's caches this lost mail (12 and 26 of 3,500 in two runs):
 * the kernel on one node answered fstat() of an .MBG from its cached size
 * after the other node had appended, and the delivery that followed wrote
 * over the other node's record. */
Test(po_sim_cluster, split_across_two_daemons_is_clean, .timeout = 900)
{
        run_split_expect_clean(NULL);
}

/* And with the kernel's caches off altogether. */
Test(po_sim_cluster, split_across_two_daemons_without_caches_is_clean, .timeout = 900)
{
        const char *const argv[] = {"-ocache_timeout=0", NULL};
        run_split_expect_clean(argv);
}

Test(po_sim_cluster, split_on_the_raw_directory_collides, .timeout = 900)
{
        harness_mkpo(node_a.backing, 20, 500);
        g_auto(ToolRun) run = { 0 };
        run_split(node_a.backing, node_a.backing, "raw twice", &run);
        cr_expect(strstr(run.out, "\"mode\": \"raw\""), "%s", run.out);
        /* If this fails, po-sim no longer models the problem of Q103960. */
        cr_expect_gt(po_sim_json_count(run.out, "duplicates") +
                             po_sim_json_count(run.out, "missing_routing"),
                     0, "no collision on a raw postoffice: %s", run.out);
}

Test(po_sim_cluster, also_refuses_another_postoffice)
{
        harness_mkpo(node_a.backing, 4, 10);
        harness_mkpo(node_b.backing, 4, 10);
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_SIM", node_a.backing, "--also", node_b.backing, "--messages", "10",
                 NULL);
        cr_expect_eq(run.status, 2, "po-sim accepted another postoffice: %s%s", run.out,
                     run.err);
        cr_expect(strstr(run.err, "is not the postoffice"), "%s", run.err);
        cr_expect_str_empty(run.out);
}
