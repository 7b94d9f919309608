/* test-po-sim-contention.c - KB Q237695's "[008] Failure delivering user
 * mail due to mailbag contention" on a raw postoffice, and none through a
 * mailbagfs mount, for the same workload.
 *
 * Two workloads, each run raw and mounted from a fresh mkpo postoffice:
 * - two deliverers of one kind on one user mailbag (the KB's most common
 *   cause, two instances of External) and a single External emptying an
 *   empty queue: no second protocol anywhere, so the raw run must show no
 *   Q103960 collision, only [008]; through the mount both deliverers' KEY
 *   write opens wait in line in the daemon and every message is delivered
 *   exactly once;
 * - the demo's mix (External, -V20 and gateway consumers, producers, and
 *   deliverers on the same user mailbags), which must show both seeds'
 *   failures raw and none mounted.
 *
 * The raw runs assert that [008] happens: if they fail, po-sim no longer
 * models the problem (see tools/po-sim-deliver.c). Every test works in a
 * mount harness' private directory, removed with the mount by the suite's
 * fini, also when an assertion fails. Paths come from PO_SIM, MKPO and
 * MAILBAGFS (set by meson); the mounts use the daemon's defaults.
 */
#include "mount-fixture.h"
#include "po-sim-json.h"
#include "sample-postoffice.h"
#include "tool-run.h"

#include <criterion/criterion.h>
#include <glib.h>
#include <string.h>

static MountHarness harness;

static void contention_setup(void)
{
        mount_fixture_setup(&harness);
}

static void contention_teardown(void)
{
        mount_harness_teardown(&harness);
}

TestSuite(po_sim_contention, .init = contention_setup, .fini = contention_teardown);

/* The postoffice to run on: the raw backing directory, or the mount. */
static const char *postoffice(bool mounted)
{
        if (!mounted)
                return harness.backing;
        mount_fixture_mount(&harness, NULL);
        return harness.mnt;
}

/* Every deliverer's message is in exactly one mailbag or was returned with
 * [008], and every message in no mailbag for an [008] had one. (Raw, a
 * queued message returned by one consumer may be delivered by another
 * that collided with it: then it is not counted as returned.) */
static void expect_direct_accounted(const char *json, unsigned offered)
{
        cr_expect_eq(po_sim_json_count(json, "direct"), offered, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "direct_delivered") +
                             po_sim_json_count(json, "direct_returned"),
                     offered, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "direct_duplicates"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "direct_lost"), 0, "%s", json);
        cr_expect_geq(po_sim_json_count(json, "contention_delivery"),
                      po_sim_json_count(json, "direct_returned") +
                              po_sim_json_count(json, "returned"),
                      "%s", json);
        cr_expect(strstr(json, "\"ok\": true"), "%s", json);
}

static void expect_mounted_clean(const char *json, unsigned queued, unsigned direct)
{
        po_sim_expect_clean(json, queued);
        cr_expect_eq(po_sim_json_count(json, "direct_delivered"), direct, "%s", json);
        /* Through the mount a contended KEY open waits: never refused. */
        cr_expect_eq(po_sim_json_count(json, "delivery_refusals"), 0, "%s", json);
        mount_fixture_expect_quiet(&harness);
        cr_expect_eq(mount_harness_unmount(&harness), 0);
}

#define SAME_KIND_DIRECT 1000

static void run_same_kind(bool mounted, ToolRun *run)
{
        harness_mkpo(harness.backing, 1, 0);
        tool_run(run, "PO_SIM", postoffice(mounted), "--consumers", "external=1", "--messages",
                 "0", "--direct-messages", G_STRINGIFY(SAME_KIND_DIRECT), "--deliverers", "2",
                 "--timeout", "600", "--json", NULL);
        cr_log_info("%s: %s", mounted ? "mounted" : "raw", run->out);
        cr_assert_eq(run->status, 0, "po-sim failed: %s%s", run->out, run->err);
        expect_direct_accounted(run->out, SAME_KIND_DIRECT);
        po_sim_expect_queue_accounted(run->out, 0);
}

Test(po_sim_contention, same_kind_on_one_mailbag_raw_returns_008, .timeout = 600)
{
        g_auto(ToolRun) run = { 0 };
        run_same_kind(false, &run);
        cr_expect(strstr(run.out, "\"mode\": \"raw\""), "%s", run.out);
        /* One protocol only: nothing of Q103960. */
        cr_expect_eq(po_sim_json_count(run.out, "duplicates"), 0, "%s", run.out);
        cr_expect_eq(po_sim_json_count(run.out, "missing_routing"), 0, "%s", run.out);
        /* If this fails, po-sim no longer models the problem of Q237695. */
        cr_expect_gt(po_sim_json_count(run.out, "contention_delivery"), 0,
                     "no [008] on a raw postoffice: %s", run.out);
        /* No collision on the queue: every [008] is a returned message. */
        cr_expect_eq(po_sim_json_count(run.out, "contention_delivery"),
                     po_sim_json_count(run.out, "direct_returned"), "%s", run.out);
}

Test(po_sim_contention, same_kind_on_one_mailbag_mounted_is_clean, .timeout = 600)
{
        g_auto(ToolRun) run = { 0 };
        run_same_kind(true, &run);
        expect_mounted_clean(run.out, 0, SAME_KIND_DIRECT);
}

/* The demo's mix, smaller: 200 queued, 800 more from two producers, 500
 * delivered straight by two deliverers, eight user mailbags. */
#define MIX_QUEUED 1000
#define MIX_DIRECT 500

static void run_mix(bool mounted, ToolRun *run)
{
        harness_mkpo(harness.backing, 8, 200);
        tool_run(run, "PO_SIM", postoffice(mounted), "--consumers", "external=2,v20=2,gateway=2",
                 "--producers", "2", "--messages", "800", "--direct-messages",
                 G_STRINGIFY(MIX_DIRECT), "--deliverers", "2", "--timeout", "600", "--json",
                 NULL);
        cr_log_info("%s: %s", mounted ? "mounted" : "raw", run->out);
        cr_assert_eq(run->status, 0, "po-sim failed: %s%s", run->out, run->err);
        expect_direct_accounted(run->out, MIX_DIRECT);
        po_sim_expect_queue_accounted(run->out, MIX_QUEUED);
}

Test(po_sim_contention, mix_raw_shows_both_seeds, .timeout = 600)
{
        g_auto(ToolRun) run = { 0 };
        run_mix(false, &run);
        cr_expect(strstr(run.out, "\"mode\": \"raw\""), "%s", run.out);
        /* If either fails, po-sim no longer models Q103960 or Q237695. */
        cr_expect_gt(po_sim_json_count(run.out, "duplicates") +
                             po_sim_json_count(run.out, "missing_routing"),
                     0, "no collision on a raw postoffice: %s", run.out);
        cr_expect_gt(po_sim_json_count(run.out, "contention_delivery"), 0,
                     "no [008] on a raw postoffice: %s", run.out);
}

Test(po_sim_contention, mix_mounted_is_clean, .timeout = 600)
{
        g_auto(ToolRun) run = { 0 };
        run_mix(true, &run);
        po_sim_expect_queue_accounted(run.out, MIX_QUEUED);
        cr_expect_eq(po_sim_json_count(run.out, "queued"), MIX_QUEUED, "%s", run.out);
        expect_mounted_clean(run.out, MIX_QUEUED, MIX_DIRECT);
}
