/* test-mkpo-pocheck.c - runs the built mkpo and po-check as real processes
 * on temporary postoffices: a fresh one is healthy, each injected fault is
 * found and named, --fix only moves and creates, mkpo is deterministic.
 * Tool paths come from the MKPO and PO_CHECK environment variables. */
#include "mailbag.h"
#include "test-util.h"
#include "tool-run.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

TestSuite(tools, .init = test_scratch_setup, .fini = test_scratch_teardown);

typedef struct {
        const char *tmp;
        char *root;
} TestPostoffice;

static void test_postoffice_clear(TestPostoffice *po)
{
        g_free(po->root);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TestPostoffice, test_postoffice_clear)

static void test_postoffice_make(TestPostoffice *po, const char *users, const char *messages)
{
        po->tmp = test_scratch;
        po->root = g_build_filename(po->tmp, "PO", NULL);
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "MKPO", po->root, "--users", users, "--messages", messages, NULL);
        cr_assert_eq(run.status, 0, "mkpo failed: %s", run.err);
        cr_assert_str_empty(run.err);
}

static char *po_file(const TestPostoffice *po, const char *relpath)
{
        return g_build_filename(po->root, relpath, NULL);
}

static void expect_problem(const TestPostoffice *po, const char *kind, const char *relpath)
{
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_CHECK", po->root, NULL);
        cr_assert_eq(run.status, 1, "po-check exit %d, stdout:\n%s", run.status, run.out);
        g_autofree char *line = g_strdup_printf("po-check: %s: %s: ", kind, relpath);
        cr_assert(strstr(run.out, line) != NULL, "no \"%s\" in:\n%s", line, run.out);
        cr_assert_str_empty(run.err, "stderr: %s", run.err);
}

static void set_age_days(const char *path, int days)
{
        struct timeval times[2];
        gettimeofday(&times[0], NULL);
        times[0].tv_sec -= days * 24 * 3600;
        times[1] = times[0];
        cr_assert(utimes(path, times) == 0);
}

Test(tools, fresh_postoffice_is_healthy, .timeout = 60)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "12", "40");
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_CHECK", po.root, NULL);
        cr_assert_eq(run.status, 0, "po-check on a fresh postoffice:\n%s%s", run.out, run.err);
        cr_assert_str_empty(run.out);
        g_auto(ToolRun) json = { 0 };
        tool_run(&json, "PO_CHECK", po.root, "--json", NULL);
        cr_assert_eq(json.status, 0);
        cr_assert_str_eq(json.out, "[]\n");
}

Test(tools, fresh_layout_matches_the_kb)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "3", "20");
        static const char *const files[][2] = {
                { "KEY/00000000.KEY", "560" }, { "KEY/INQUEUE.KEY", "560" },
                { "KEY/INQUEUE3.KEY", "560" }, { "KEY/SYSTEM.KEY", "560" },
                { "MBG/SYSTEM.MBG", "0" }, { "MBG/INQUEUE3.MBG", "2320" },
                { "KEY/00000003.KEY", "560" }, { "GLB/CONTROL.GLB", "8" },
                { "GLB/FLAG.GLB", "2" }, { "GLB/MASTER.GLB", "176" }, { "GLB/TID.GLB", "4" },
                { "GLB/GLOBAL.GLB", "512" }, { "GLB/ACCESS.GLB", "2344" },
                { "GLB/ACCESS2.GLB", "276" }, { "GLB/ACCESS3.GLB", "2048" },
                { "MAI/MAF/POPULATE.MSM", "1" }, { "ATT/AT0/POPULATE.MSM", "1" },
                { "XTN/POPULATE.MSM", "1" }, { "MAI/MAE/0000000E.MAI", NULL },
                { "P1/0000000E.P1", NULL }, { "MAI/MA4/00000014.MAI", NULL },
        };
        for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
                g_autofree char *path = po_file(&po, files[i][0]);
                struct stat st;
                cr_assert(stat(path, &st) == 0, "%s missing", files[i][0]);
                if (files[i][1])
                        cr_assert_eq(st.st_size, atoi(files[i][1]), "%s size", files[i][0]);
        }
        g_autofree char *marker = po_file(&po, "MAI/MAF/POPULATE.MSM");
        cr_assert(access(marker, W_OK) != 0 || geteuid() == 0, "marker is writable");
        struct stat st;
        stat(marker, &st);
        cr_assert_eq(st.st_mode & 0222, 0, "marker is not read-only");
        g_autoptr(PoMailbag) inqueue = po_mailbag_load(po.root, "INQUEUE3", NULL);
        cr_assert_not_null(inqueue);
        PoRecord record;
        po_record_decode(po_mailbag_record(inqueue, 13), &record);
        cr_assert_eq(record.message_number, 14);
}

Test(tools, mkpo_is_deterministic_per_seed)
{
        const char *tmp = test_scratch;
        const char *seeds[] = { "7", "7", "8" };
        char *contents[3] = { NULL };
        for (int i = 0; i < 3; i++) {
                g_autofree char *name = g_strdup_printf("PO%d", i);
                g_autofree char *root = g_build_filename(tmp, name, NULL);
                g_auto(ToolRun) run = { 0 };
                tool_run(&run, "MKPO", root, "--users", "4", "--messages", "30", "--seed", seeds[i],
                         "--queue-max", "10", NULL);
                cr_assert_eq(run.status, 0, "%s", run.err);
                g_autoptr(GString) all = g_string_new(NULL);
                const char *rels[] = { "MBG/INQUEUE3.MBG", "MBG/00000002.MBG", "MAI/MA7/00000017.MAI",
                                       "P1/00000003.P1", "GLB/ACCESS.GLB", "GLB/CONTROL.GLB" };
                for (gsize r = 0; r < G_N_ELEMENTS(rels); r++) {
                        g_autofree char *path = g_build_filename(root, rels[r], NULL);
                        g_autofree char *data = NULL;
                        gsize len;
                        cr_assert(g_file_get_contents(path, &data, &len, NULL), "%s", rels[r]);
                        g_string_append_len(all, data, len);
                }
                contents[i] = g_base64_encode((guchar *)all->str, all->len);
        }
        cr_assert_str_eq(contents[0], contents[1]);
        cr_assert_str_neq(contents[0], contents[2]);
        for (int i = 0; i < 3; i++)
                g_free(contents[i]);
}

Test(tools, mkpo_refuses_a_non_empty_dir_and_impossible_counts)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "1", "1");
        g_auto(ToolRun) again = { 0 };
        tool_run(&again, "MKPO", po.root, NULL);
        cr_assert_neq(again.status, 0);
        cr_assert(strstr(again.err, "not empty") != NULL, "%s", again.err);
        g_auto(ToolRun) forced = { 0 };
        tool_run(&forced, "MKPO", po.root, "--force", NULL);
        cr_assert_eq(forced.status, 0, "%s", forced.err);
        g_auto(ToolRun) too_many = { 0 };
        g_autofree char *other = g_build_filename(po.tmp, "OTHER", NULL);
        tool_run(&too_many, "MKPO", other, "--users", "0", "--messages", "5000", NULL);
        cr_assert_eq(too_many.status, 2);
        cr_assert(strstr(too_many.err, "do not fit") != NULL, "%s", too_many.err);
        g_auto(ToolRun) usage = { 0 };
        tool_run(&usage, "MKPO", NULL);
        cr_assert_eq(usage.status, 2);
}

/* The six faults of the acceptance list. */

Test(tools, fault_inqueue3_at_4096_records)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "2", "5");
        g_autofree char *mbg = po_file(&po, "MBG/INQUEUE3.MBG");
        cr_assert(truncate(mbg, PO_MAILBAG_MBG_MAX_SIZE) == 0);
        expect_problem(&po, "mailbag-full", "MBG/INQUEUE3.MBG");
}

Test(tools, fault_p1_file_three_days_old)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "2", "5");
        g_autofree char *p1 = po_file(&po, "P1/00000003.P1");
        set_age_days(p1, 3);
        expect_problem(&po, "old-p1-file", "P1/00000003.P1");
}

Test(tools, fault_access2_one_record_short)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "4", "5");
        g_autofree char *access2 = po_file(&po, "GLB/ACCESS2.GLB");
        cr_assert(truncate(access2, 4 * 69) == 0);
        expect_problem(&po, "access-count", "GLB/ACCESS2.GLB");
}

Test(tools, fault_mai_ma7_missing)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "2", "5");
        g_autofree char *ma7 = po_file(&po, "MAI/MA7");
        test_rm_rf(ma7);
        expect_problem(&po, "missing-folder", "MAI/MA7");
}

Test(tools, fault_lower_case_file_name)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "2", "5");
        g_autofree char *from = po_file(&po, "MAI/MA3/00000003.MAI");
        g_autofree char *to = po_file(&po, "MAI/MA3/00000003.mai");
        cr_assert(rename(from, to) == 0);
        expect_problem(&po, "lower-case-name", "MAI/MA3/00000003.mai");
}

Test(tools, fault_truncated_key_file)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "2", "5");
        g_autofree char *key = po_file(&po, "KEY/INQUEUE3.KEY");
        cr_assert(truncate(key, 300) == 0);
        expect_problem(&po, "key-size", "KEY/INQUEUE3.KEY");
}

/* Further faults. */

Test(tools, fault_near_full_and_key_disagreeing)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "2", "5");
        g_autofree char *mbg = po_file(&po, "MBG/00000001.MBG");
        cr_assert(truncate(mbg, 3700 * PO_MAILBAG_RECORD_SIZE) == 0);
        expect_problem(&po, "mailbag-near-full", "MBG/00000001.MBG");
        g_autofree char *key = po_file(&po, "KEY/SYSTEM.KEY");
        uint8_t bytes[PO_MAILBAG_KEY_SIZE] = { 0 };
        po_mailbag_key_set_slot_free(bytes, 10, true);
        test_write_file(key, bytes, sizeof bytes);
        expect_problem(&po, "key-mbg-disagree", "KEY/SYSTEM.KEY");
        g_autofree char *mbg2 = po_file(&po, "MBG/00000002.MBG");
        cr_assert(truncate(mbg2, 117) == 0);
        expect_problem(&po, "mbg-size", "MBG/00000002.MBG");
        g_autofree char *lone = po_file(&po, "KEY/LONELY.KEY");
        test_write_file(lone, bytes, sizeof bytes);
        expect_problem(&po, "mailbag-unpaired", "MBG/LONELY.MBG");
}

Test(tools, fault_glb_damage)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "3", "30");
        g_autofree char *access = po_file(&po, "GLB/ACCESS.GLB");
        g_autofree char *data = NULL;
        gsize len;
        cr_assert(g_file_get_contents(access, &data, &len, NULL));
        data[586 + 2] = '\x01';
        test_write_file(access, data, len);
        expect_problem(&po, "access-alias", "GLB/ACCESS.GLB");
        g_autofree char *control = po_file(&po, "GLB/CONTROL.GLB");
        static const uint8_t behind[8] = { 4, 0, 0, 0, 10, 0, 0, 0 };
        test_write_file(control, behind, sizeof behind);
        expect_problem(&po, "control-behind", "GLB/CONTROL.GLB");
        g_autofree char *master = po_file(&po, "GLB/MASTER.GLB");
        test_write_file(master, "x", 1);
        expect_problem(&po, "glb-size", "GLB/MASTER.GLB");
        g_autofree char *nme = po_file(&po, "NME/ADMIN.NME");
        test_write_file(nme, "0123456789", 10);
        expect_problem(&po, "nme-size", "NME/ADMIN.NME");
}

Test(tools, fault_misplaced_message_missing_marker_stale_lock)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "2", "5");
        g_autofree char *from = po_file(&po, "MAI/MA5/00000005.MAI");
        g_autofree char *to = po_file(&po, "MAI/MA6/00000005.MAI");
        cr_assert(rename(from, to) == 0);
        expect_problem(&po, "misplaced-message", "MAI/MA6/00000005.MAI");
        g_autofree char *marker = po_file(&po, "ATT/ATC/POPULATE.MSM");
        cr_assert(unlink(marker) == 0);
        expect_problem(&po, "missing-marker", "ATT/ATC/POPULATE.MSM");
        g_autofree char *lock = po_file(&po, "P1/INQUEUE3.0LK");
        test_write_file(lock, "", 0);
        expect_problem(&po, "stale-lock", "P1/INQUEUE3.0LK");
        g_autofree char *v20 = po_file(&po, "P1/INQUEUE3.097");
        test_write_file(v20, "", 0);
        expect_problem(&po, "stale-lock", "P1/INQUEUE3.097");
}

Test(tools, lock_held_open_by_a_process_is_not_stale)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "2", "5");
        g_autofree char *lock = po_file(&po, "P1/INQUEUE3.0LK");
        test_write_file(lock, "", 0);
        FILE *held = fopen(lock, "r"); /* this process is the holder */
        cr_assert_not_null(held);
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_CHECK", po.root, NULL);
        fclose(held);
        cr_assert_eq(run.status, 0, "%s", run.out);
}

Test(tools, fix_quarantines_and_creates_but_never_deletes)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "2", "5");
        g_autofree char *p1 = po_file(&po, "P1/00000002.P1");
        set_age_days(p1, 3);
        g_autofree char *lock = po_file(&po, "P1/SYSTEM.OLK");
        test_write_file(lock, "", 0);
        g_autofree char *ma7 = po_file(&po, "MAI/MA7");
        test_rm_rf(ma7);
        g_autofree char *key = po_file(&po, "KEY/INQUEUE3.KEY");
        cr_assert(truncate(key, 300) == 0);

        g_auto(ToolRun) fix = { 0 };
        tool_run(&fix, "PO_CHECK", po.root, "--fix", NULL);
        cr_assert_eq(fix.status, 1, "the truncated KEY cannot be fixed:\n%s", fix.out);
        cr_assert(strstr(fix.out, "po-check: fixed: old-p1-file: P1/00000002.P1: moved to QUARANT/P1/00000002.P1"),
                  "%s", fix.out);
        cr_assert(strstr(fix.out, "po-check: fixed: stale-lock: P1/SYSTEM.OLK: moved to QUARANT/P1/SYSTEM.OLK"),
                  "%s", fix.out);
        cr_assert(strstr(fix.out, "po-check: fixed: missing-folder: MAI/MA7: created"), "%s", fix.out);
        cr_assert(strstr(fix.out, "po-check: key-size: KEY/INQUEUE3.KEY"), "%s", fix.out);
        g_autofree char *moved = po_file(&po, "QUARANT/P1/00000002.P1");
        cr_assert(g_file_test(moved, G_FILE_TEST_IS_REGULAR));
        cr_assert_not(g_file_test(p1, G_FILE_TEST_EXISTS));
        struct stat st;
        cr_assert(stat(key, &st) == 0 && st.st_size == 300, "the KEY was touched");

        /* Repair the KEY by hand: then the postoffice is healthy again. */
        cr_assert(truncate(key, PO_MAILBAG_KEY_SIZE) == 0);
        g_auto(ToolRun) after = { 0 };
        tool_run(&after, "PO_CHECK", po.root, NULL);
        cr_assert_eq(after.status, 0, "%s", after.out);
}

Test(tools, json_names_kind_and_file)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "2", "5");
        g_autofree char *odd = po_file(&po, "LOG/odd\"name");
        test_write_file(odd, "", 0);
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_CHECK", po.root, "--json", NULL);
        cr_assert_eq(run.status, 1);
        cr_assert(strstr(run.out, "{\"kind\":\"lower-case-name\",\"file\":\"LOG/odd\\\"name\""),
                  "%s", run.out);
}

Test(tools, po_check_usage_errors_exit_2)
{
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_CHECK", "/nonexistent/postoffice", NULL);
        cr_assert_eq(run.status, 2);
        g_auto(ToolRun) none = { 0 };
        tool_run(&none, "PO_CHECK", NULL);
        cr_assert_eq(none.status, 2);
        g_auto(ToolRun) bad_profile = { 0 };
        tool_run(&bad_profile, "PO_CHECK", "/", "--profile", "/nonexistent.profile", NULL);
        cr_assert_eq(bad_profile.status, 2);
}

Test(tools, fix_leaves_a_lower_case_folder_to_a_human)
{
        g_auto(TestPostoffice) po = { 0 };
        test_postoffice_make(&po, "1", "3");
        g_autofree char *from = po_file(&po, "MAI/MA3");
        g_autofree char *to = po_file(&po, "MAI/ma3");
        cr_assert(rename(from, to) == 0);
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_CHECK", po.root, "--fix", NULL);
        cr_assert_eq(run.status, 1);
        cr_assert(strstr(run.out, "po-check: missing-folder: MAI/MA3: folder is missing; only MAI/ma3 exists"),
                  "%s", run.out);
        cr_assert(strstr(run.out, "po-check: lower-case-name: MAI/ma3: "), "%s", run.out);
        cr_assert_not(g_file_test(from, G_FILE_TEST_EXISTS), "--fix created MAI/MA3 beside MAI/ma3");
}

/* Every path comes from the profile: with other subfolder prefixes mkpo
 * builds MAI/MX0..MXF and ATT/AX0..AXF, puts the messages there, and
 * po-check with the same profile finds nothing wrong (with the default
 * profile it misses MAI/MA0). */
Test(tools, mkpo_and_po_check_follow_the_profile_prefixes, .timeout = 60)
{
        const char *default_profile = g_getenv("PO_DEFAULT_PROFILE");
        cr_assert_not_null(default_profile, "PO_DEFAULT_PROFILE not set by the test runner");
        g_autofree char *text = NULL;
        cr_assert(g_file_get_contents(default_profile, &text, NULL, NULL));
        GString *site = g_string_new(text);
        cr_assert(g_string_replace(site, "\nmessage-subfolders=MA\n", "\nmessage-subfolders=MX\n", 1) == 1);
        cr_assert(g_string_replace(site, "\nattachment-subfolders=AT\n", "\nattachment-subfolders=AX\n", 1) == 1);
        g_autofree char *site_text = g_string_free(site, FALSE);
        g_autofree char *profile = g_build_filename(test_scratch, "site.profile", NULL);
        test_write_file(profile, site_text, strlen(site_text));

        g_autofree char *root = g_build_filename(test_scratch, "PO", NULL);
        g_auto(ToolRun) mkpo = { 0 };
        tool_run(&mkpo, "MKPO", root, "--users", "3", "--messages", "20", "--profile", profile, NULL);
        cr_assert_eq(mkpo.status, 0, "mkpo failed: %s", mkpo.err);
        cr_assert_str_empty(mkpo.err);
        g_autofree char *message = g_build_filename(root, "MAI/MX1/00000001.MAI", NULL);
        g_autofree char *marker = g_build_filename(root, "ATT/AXF/POPULATE.MSM", NULL);
        g_autofree char *standard = g_build_filename(root, "MAI/MA1", NULL);
        cr_assert(g_file_test(message, G_FILE_TEST_IS_REGULAR), "no %s", message);
        cr_assert(g_file_test(marker, G_FILE_TEST_IS_REGULAR), "no %s", marker);
        cr_assert_not(g_file_test(standard, G_FILE_TEST_EXISTS), "%s made by hand", standard);

        g_auto(ToolRun) check = { 0 };
        tool_run(&check, "PO_CHECK", root, "--profile", profile, NULL);
        cr_assert_eq(check.status, 0, "po-check:\n%s%s", check.out, check.err);
        cr_assert_str_empty(check.out);

        g_auto(ToolRun) other = { 0 };
        tool_run(&other, "PO_CHECK", root, NULL);
        cr_assert_eq(other.status, 1);
        cr_assert(strstr(other.out, "po-check: missing-folder: MAI/MA0: "), "%s", other.out);
        cr_assert(strstr(other.out, "po-check: misplaced-message: MAI/MX1/00000001.MAI: belongs in MAI/MA1"),
                  "%s", other.out);
}
