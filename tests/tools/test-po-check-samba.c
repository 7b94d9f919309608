/* test-po-check-samba.c - po-check --samba: the parsers of testparm's
 * output and of the mount table on text alone, then po-check run on
 * smb.conf files written beside a real mailbagfs mount, read by this
 * machine's testparm (no smbd runs).
 *
 * The mounted tests work in a mount harness' private directory (the
 * smb.conf files too), unmounted and removed by the suite's fini, also
 * when an assertion fails. PO_CHECK and MAILBAGFS come from meson.
 */
#include "mount-fixture.h"
#include "po-check-samba.h"
#include "tool-run.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void expect_in(const char *haystack, const char *needle)
{
        cr_expect(strstr(haystack, needle) != NULL, "no \"%s\" in:\n%s", needle, haystack);
}

static void expect_not_in(const char *haystack, const char *needle)
{
        cr_expect(strstr(haystack, needle) == NULL, "\"%s\" in:\n%s", needle, haystack);
}

static guint count_of(const char *haystack, const char *needle)
{
        guint count = 0;
        for (const char *at = haystack; (at = strstr(at, needle)) != NULL; at += strlen(needle))
                count++;
        return count;
}

/* --- the parsers, on text ---------------------------------------------- */

/* As `testparm -s -v` prints it: every [global] parameter, and for each
 * share what differs from [global]. */
static const char testparm_sample[] =
        "# Global parameters\n"
        "[global]\n"
        "\tclustering = No\n"
        "\tidmap config * : backend = tdb\n"
        "\toplocks = Yes\n"
        "\tpath = \n"
        "\tstrict locking = Auto\n"
        "\tvfs objects = \n"
        "\n"
        "\n"
        "[postoffice]\n"
        "\toplocks = No\n"
        "\tpath = /srv/postoffice\n"
        "\n"
        "\n"
        "[Long Name]\n"
        "\tpath = /srv/a = b\n"
        "\tvfs objects = fileid acl_xattr\n";

Test(samba_parse, each_share_has_its_own_value_or_the_global_one)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(PoSambaConf) conf = po_samba_conf_parse(testparm_sample, &error);
        cr_assert_not_null(conf, "%s", error->message);
        cr_assert_eq(conf->shares->len, 2);
        const PoSambaSection *postoffice = conf->shares->pdata[0];
        const PoSambaSection *other = conf->shares->pdata[1];
        cr_expect_str_eq(postoffice->name, "postoffice");
        cr_expect_str_eq(other->name, "Long Name");
        cr_expect_str_eq(po_samba_conf_value(conf, postoffice, "oplocks"), "No");
        cr_expect_str_eq(po_samba_conf_value(conf, other, "oplocks"), "Yes");
        cr_expect_str_eq(po_samba_conf_value(conf, postoffice, "strict locking"), "Auto");
        cr_expect_str_eq(po_samba_conf_value(conf, other, "path"), "/srv/a = b");
        cr_expect_str_eq(po_samba_conf_value(conf, postoffice, "vfs objects"), "");
        cr_expect_str_eq(po_samba_conf_value(conf, NULL, "idmap config * : backend"), "tdb");
        cr_expect_null(po_samba_conf_value(conf, other, "kernel share modes"));
}

Test(samba_parse, text_that_is_not_testparm_output_is_an_error_naming_its_line)
{
        static const struct {
                const char *text;
                const char *message;
        } cases[] = {
                { "oplocks = no\n[global]\n", "line 1: a parameter before the first section" },
                { "[global]\n\toplocks no\n", "line 2: expected NAME = VALUE" },
                { "[global]\n = no\n", "line 2: expected NAME = VALUE" },
                { "# x\n\n[global\n", "line 3: expected a section name in brackets" },
                { "[global]\n[]\n", "line 2: expected a section name in brackets" },
                { "[share]\n\tpath = /srv\n", "no [global] section" },
                { "", "no [global] section" },
        };
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(PoSambaConf) conf = po_samba_conf_parse(cases[i].text, &error);
                cr_expect_null(conf, "parsed: %s", cases[i].text);
                cr_expect(g_error_matches(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_PARSE));
                cr_expect_str_eq(error ? error->message : "", cases[i].message);
        }
}

/* Every prefix of the sample: a configuration or an error, never a crash
 * (ASan and UBSan watch the CI build). */
Test(samba_parse, every_truncation_parses_or_fails_cleanly)
{
        gsize len = strlen(testparm_sample);
        for (gsize cut = 0; cut <= len; cut++) {
                g_autofree char *text = g_strndup(testparm_sample, cut);
                g_autoptr(GError) error = NULL;
                g_autoptr(PoSambaConf) conf = po_samba_conf_parse(text, &error);
                cr_assert((conf == NULL) != (error == NULL), "cut at %zu", cut);
        }
}

/* Random text from the characters both formats are made of. */
Test(samba_parse, random_text_never_crashes_either_parser)
{
        static const char alphabet[] = "[]= \t\n#;-\\0123abc/";
        g_autoptr(GRand) rand = g_rand_new_with_seed(129456);
        for (int round = 0; round < 5000; round++) {
                gsize len = (gsize)g_rand_int_range(rand, 0, 300);
                g_autofree char *text = g_malloc(len + 1);
                for (gsize i = 0; i < len; i++)
                        text[i] = alphabet[g_rand_int_range(rand, 0, sizeof alphabet - 1)];
                text[len] = '\0';
                g_autoptr(GError) conf_error = NULL;
                g_autoptr(PoSambaConf) conf = po_samba_conf_parse(text, &conf_error);
                cr_assert((conf == NULL) != (conf_error == NULL));
                g_autoptr(GError) mounts_error = NULL;
                g_autoptr(GPtrArray) mounts = po_mounts_parse(text, &mounts_error);
                cr_assert((mounts == NULL) != (mounts_error == NULL));
        }
}

Test(samba_parse, mountinfo_paths_are_unescaped_and_kept_in_order)
{
        static const char mountinfo[] =
                "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
                "45 22 0:40 / /srv/post\\040office rw,nosuid - fuse.mailbagfs /srv/po\\134raw "
                "rw,user_id=0\n"
                "46 45 0:41 / /srv/post\\040office rw master:3 propagation:x - tmpfs none rw\n";
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) mounts = po_mounts_parse(mountinfo, &error);
        cr_assert_not_null(mounts, "%s", error->message);
        cr_assert_eq(mounts->len, 3);
        const PoSambaMount *daemon = mounts->pdata[1];
        cr_expect_str_eq(daemon->mount_point, "/srv/post office");
        cr_expect_str_eq(daemon->fstype, "fuse.mailbagfs");
        cr_expect_str_eq(daemon->source, "/srv/po\\raw");
        const PoSambaMount *above = mounts->pdata[2];
        cr_expect_str_eq(above->fstype, "tmpfs");
        cr_expect_str_eq(above->source, "none");

        g_autoptr(GError) short_error = NULL;
        g_autoptr(GPtrArray) none =
                po_mounts_parse("22 1 8:1 / / rw,relatime - ext4\n", &short_error);
        cr_expect_null(none);
        cr_expect_str_eq(short_error ? short_error->message : "",
                         "line 1: expected an id, a device, a mount point, a \"-\", a type and a source");
}

/* --- po-check --samba beside a mount ----------------------------------- */

static MountHarness harness;

static void shares_setup(void)
{
        mount_fixture_setup(&harness);
}

static void shares_teardown(void)
{
        mount_harness_teardown(&harness);
}

TestSuite(samba_shares, .init = shares_setup, .fini = shares_teardown, .timeout = 60);

/* The share of README's "A Samba share over the mount", in its order. */
static const char *const readme_share[][2] = {
        { "read only", "no" },
        { "oplocks", "no" },
        { "level2 oplocks", "no" },
        { "kernel oplocks", "no" },
        { "kernel share modes", "no" },
        { "posix locking", "yes" },
        { "strict locking", "yes" },
        { "case sensitive", "yes" },
        { "default case", "upper" },
        { "preserve case", "no" },
        { "short preserve case", "no" },
        { "mangled names", "no" },
};

/* Appends the README's share [@name] of @path, with @param set to @value
 * instead (@param NULL: as the README has it; @value NULL: left out). */
static void add_share(GString *conf, const char *name, const char *path, const char *param,
                      const char *value)
{
        g_string_append_printf(conf, "[%s]\n    path = %s\n", name, path);
        for (gsize i = 0; i < G_N_ELEMENTS(readme_share); i++) {
                bool changed = param && strcmp(readme_share[i][0], param) == 0;
                if (!changed)
                        g_string_append_printf(conf, "    %s = %s\n", readme_share[i][0],
                                               readme_share[i][1]);
                else if (value)
                        g_string_append_printf(conf, "    %s = %s\n", param, value);
        }
}

/* Writes @text as an smb.conf in the private directory: its path. */
static char *write_conf(const GString *text)
{
        char *path = g_build_filename(harness.dir, "smb.conf", NULL);
        g_autoptr(GError) error = NULL;
        cr_assert(g_file_set_contents(path, text->str, (gssize)text->len, &error), "%s",
                  error->message);
        return path;
}

static GString *conf_with_global(const char *global_lines)
{
        GString *conf = g_string_new("[global]\n    workgroup = MAILBAG\n");
        g_string_append(conf, global_lines ? global_lines : "");
        return conf;
}

static void mount_it(void)
{
        mount_fixture_mount(&harness, NULL);
}

static void run_samba(ToolRun *run, const char *conf, bool json)
{
        tool_run(run, "PO_CHECK", "--samba", conf, json ? "--json" : NULL, NULL);
}

/* po-check --samba on @conf: exit status 1, and @line among its findings. */
static void expect_finding(const char *conf, const char *line)
{
        g_auto(ToolRun) run = { 0 };
        run_samba(&run, conf, false);
        cr_expect_eq(run.status, 1, "%s", run.err);
        expect_in(run.out, line);
}

/* po-check --samba on @conf finds nothing, in text and in JSON. */
static void expect_clean(const char *conf)
{
        g_auto(ToolRun) text = { 0 };
        run_samba(&text, conf, false);
        cr_expect_eq(text.status, 0, "%s%s", text.out, text.err);
        cr_expect_str_empty(text.out);
        g_auto(ToolRun) json = { 0 };
        run_samba(&json, conf, true);
        cr_expect_eq(json.status, 0, "%s%s", json.out, json.err);
        cr_expect_str_eq(json.out, "[]\n");
}

Test(samba_shares, the_readme_share_over_the_mount_is_clean)
{
        mount_it();
        g_autoptr(GString) text = conf_with_global(NULL);
        add_share(text, "postoffice", harness.mnt, NULL, NULL);
        g_autofree char *conf = write_conf(text);
        expect_clean(conf);
        g_auto(ToolRun) run = { 0 };
        run_samba(&run, conf, false);
        expect_not_in(run.err, "no Samba share reaches");
}

/* Each setting of the README's share wrong in turn: one finding, named
 * in text and in JSON, and exit status 1. */
Test(samba_shares, each_wrong_setting_is_one_finding_in_text_and_json)
{
        static const char *const wrong[][2] = {
                { "oplocks", "yes" },
                { "level2 oplocks", "yes" },
                { "kernel oplocks", "yes" },
                { "kernel share modes", "yes" },
                { "posix locking", "no" },
                { "strict locking", "auto" },
                { "case sensitive", "auto" },
                { "default case", "lower" },
                { "preserve case", "yes" },
                { "short preserve case", "yes" },
                { "mangled names", "illegal" },
        };
        mount_it();
        for (gsize i = 0; i < G_N_ELEMENTS(wrong); i++) {
                const char *param = wrong[i][0];
                g_autoptr(GString) text = conf_with_global(NULL);
                add_share(text, "postoffice", harness.mnt, param, wrong[i][1]);
                g_autofree char *conf = write_conf(text);

                g_auto(ToolRun) run = { 0 };
                run_samba(&run, conf, false);
                cr_expect_eq(run.status, 1, "%s: %s%s", param, run.out, run.err);
                cr_expect_eq(count_of(run.out, "\n"), 1, "%s: %s", param, run.out);
                g_autofree char *line =
                        g_strdup_printf("po-check: samba-setting: [postoffice]: %s = ", param);
                cr_expect(g_str_has_prefix(run.out, line), "%s: %s", param, run.out);
                expect_in(run.out, ", needs ");

                g_auto(ToolRun) json = { 0 };
                run_samba(&json, conf, true);
                cr_expect_eq(json.status, 1, "%s: %s", param, json.err);
                cr_expect_eq(count_of(json.out, "\"kind\":"), 1, "%s: %s", param, json.out);
                expect_in(json.out, "\"kind\":\"samba-setting\",\"file\":\"[postoffice]\"");
                g_autofree char *member = g_strdup_printf("\"setting\":\"%s\"", param);
                expect_in(json.out, member);
                g_autofree char *path = g_strdup_printf("\"path\":\"%s\"", harness.mnt);
                expect_in(json.out, path);
        }
}

/* Left out, a setting has Samba's own default, which testparm -v prints:
 * on Samba 4.17 eight of the README's lines differ from it. */
Test(samba_shares, a_setting_left_out_is_samba_s_default)
{
        mount_it();
        g_autoptr(GString) text = conf_with_global(NULL);
        g_string_append_printf(text, "[postoffice]\n    path = %s\n    read only = no\n",
                               harness.mnt);
        g_autofree char *conf = write_conf(text);
        g_auto(ToolRun) run = { 0 };
        run_samba(&run, conf, false);
        cr_expect_eq(run.status, 1);
        static const char *const lines[] = {
                "[postoffice]: oplocks = Yes, needs no",
                "[postoffice]: level2 oplocks = Yes, needs no",
                "[postoffice]: strict locking = Auto, needs yes",
                "[postoffice]: case sensitive = Auto, needs yes",
                "[postoffice]: default case = lower, needs upper",
                "[postoffice]: preserve case = Yes, needs no",
                "[postoffice]: short preserve case = Yes, needs no",
                "[postoffice]: mangled names = illegal, needs no",
        };
        for (gsize i = 0; i < G_N_ELEMENTS(lines); i++)
                expect_in(run.out, lines[i]);
        expect_not_in(run.out, "posix locking");
}

/* A share parameter set in [global] is every share's default. */
Test(samba_shares, a_wrong_setting_in_global_reaches_the_share)
{
        mount_it();
        g_autoptr(GString) text = conf_with_global("    case sensitive = no\n");
        add_share(text, "postoffice", harness.mnt, "case sensitive", NULL);
        g_autofree char *conf = write_conf(text);
        g_auto(ToolRun) run = { 0 };
        run_samba(&run, conf, false);
        cr_expect_eq(run.status, 1);
        cr_expect_str_eq(run.out, "po-check: samba-setting: [postoffice]: case sensitive = No, "
                                  "needs yes: names may reach the postoffice in lower case, and "
                                  "a lower-case name breaks Mail's lock test (KB Q129456)\n");
}

/* A share of the backing directory, or of a folder in it, comes first,
 * whatever its settings and wherever it stands in smb.conf. */
Test(samba_shares, a_share_of_the_backing_directory_is_the_worst_finding)
{
        g_autofree char *backing_po = g_build_filename(harness.backing, "PO1", NULL);
        cr_assert_eq(mkdir(backing_po, 0755), 0);
        mount_it();
        g_autoptr(GString) text = conf_with_global(NULL);
        add_share(text, "postoffice", harness.mnt, "oplocks", "yes");
        add_share(text, "raw", harness.backing, NULL, NULL);
        add_share(text, "raw po1", backing_po, "oplocks", "yes");
        g_autofree char *conf = write_conf(text);

        g_auto(ToolRun) run = { 0 };
        run_samba(&run, conf, false);
        cr_expect_eq(run.status, 1);
        g_auto(GStrv) lines = g_strsplit(run.out, "\n", -1);
        cr_assert_eq(g_strv_length(lines), 4, "%s", run.out);
        g_autofree char *raw = g_strdup_printf(
                "po-check: samba-backing-share: [raw]: %s is the backing directory of the "
                "mailbagfs mount %s: its clients bypass every lease (the worst finding); share "
                "the mount instead", harness.backing, harness.mnt);
        cr_expect_str_eq(lines[0], raw);
        g_autofree char *inside = g_strdup_printf(
                "po-check: samba-backing-share: [raw po1]: %s lies inside the backing "
                "directory %s of the mailbagfs mount %s:", backing_po, harness.backing,
                harness.mnt);
        cr_expect(g_str_has_prefix(lines[1], inside), "%s", lines[1]);
        cr_expect(g_str_has_prefix(lines[2], "po-check: samba-setting: [postoffice]: oplocks"),
                  "%s", lines[2]);

        g_auto(ToolRun) json = { 0 };
        run_samba(&json, conf, true);
        cr_expect_eq(json.status, 1);
        cr_expect(g_str_has_prefix(json.out,
                                   "[{\"kind\":\"samba-backing-share\",\"file\":\"[raw]\""),
                  "%s", json.out);
        g_autofree char *backing = g_strdup_printf("\"backing\":\"%s\"", harness.backing);
        expect_in(json.out, backing);
}

/* A share of a folder that holds both the mount and its backing directory
 * reaches the backing directory. */
Test(samba_shares, a_share_around_the_backing_directory_is_the_worst_finding)
{
        mount_it();
        g_autoptr(GString) text = conf_with_global(NULL);
        add_share(text, "everything", harness.dir, NULL, NULL);
        g_autofree char *conf = write_conf(text);
        g_auto(ToolRun) run = { 0 };
        run_samba(&run, conf, false);
        cr_expect_eq(run.status, 1);
        g_autofree char *line = g_strdup_printf(
                "po-check: samba-backing-share: [everything]: %s contains the backing directory "
                "%s of the mailbagfs mount %s:", harness.dir, harness.backing, harness.mnt);
        cr_expect(g_str_has_prefix(run.out, line), "%s", run.out);
        cr_expect_eq(count_of(run.out, "\n"), 1, "%s", run.out);
}

/* A daemon serving its share in place covers its backing directory: the
 * share of that folder reaches the mount, not the raw files. */
Test(samba_shares, a_share_of_a_mount_served_in_place_is_a_share_of_the_mount)
{
        mount_harness_set_backing(&harness, harness.mnt);
        mount_it();
        g_autoptr(GString) right = conf_with_global(NULL);
        add_share(right, "postoffice", harness.mnt, NULL, NULL);
        g_autofree char *right_conf = write_conf(right);
        expect_clean(right_conf);

        g_autoptr(GString) wrong = conf_with_global(NULL);
        add_share(wrong, "postoffice", harness.mnt, "oplocks", "yes");
        g_autofree char *wrong_conf = write_conf(wrong);
        expect_finding(wrong_conf, "po-check: samba-setting: [postoffice]: oplocks = Yes");
}

Test(samba_shares, a_share_below_the_mount_is_checked)
{
        mount_it();
        g_autofree char *po = g_build_filename(harness.mnt, "PO1", NULL);
        cr_assert_eq(mkdir(po, 0755), 0, "mkdir %s: %s", po, g_strerror(errno));
        g_autoptr(GString) right = conf_with_global(NULL);
        add_share(right, "po1", po, NULL, NULL);
        g_autofree char *right_conf = write_conf(right);
        expect_clean(right_conf);

        g_autoptr(GString) wrong = conf_with_global(NULL);
        add_share(wrong, "po1", po, "mangled names", "illegal");
        g_autofree char *wrong_conf = write_conf(wrong);
        expect_finding(wrong_conf,
                       "po-check: samba-setting: [po1]: mangled names = illegal, needs no");
}

/* smbd follows a link in a share's path; so does po-check. */
Test(samba_shares, a_share_through_a_symbolic_link_to_the_mount_is_checked)
{
        mount_it();
        g_autofree char *link = g_build_filename(harness.dir, "po-link", NULL);
        cr_assert_eq(symlink(harness.mnt, link), 0);
        g_autoptr(GString) text = conf_with_global(NULL);
        add_share(text, "linked", link, "level2 oplocks", "yes");
        g_autofree char *conf = write_conf(text);
        expect_finding(conf, "po-check: samba-setting: [linked]: level2 oplocks = Yes, needs no");
}

Test(samba_shares, an_unrelated_share_is_ignored)
{
        mount_it();
        g_autofree char *other = g_build_filename(harness.dir, "other", NULL);
        cr_assert_eq(mkdir(other, 0755), 0);
        g_autoptr(GString) text = conf_with_global(NULL);
        add_share(text, "postoffice", harness.mnt, NULL, NULL);
        g_string_append_printf(text, "[other]\n    path = %s\n    oplocks = yes\n", other);
        g_autofree char *conf = write_conf(text);
        expect_clean(conf);
}

/* No share over a mount is no finding: exit 0, and stderr says so. */
Test(samba_shares, a_configuration_without_a_share_over_a_mount_says_so)
{
        mount_it();
        g_autofree char *other = g_build_filename(harness.dir, "other", NULL);
        cr_assert_eq(mkdir(other, 0755), 0);
        g_autoptr(GString) text = conf_with_global(NULL);
        g_string_append_printf(text, "[other]\n    path = %s\n", other);
        g_autofree char *conf = write_conf(text);
        g_auto(ToolRun) run = { 0 };
        run_samba(&run, conf, false);
        cr_expect_eq(run.status, 0, "%s", run.err);
        cr_expect_str_empty(run.out);
        expect_in(run.err, "po-check: no Samba share reaches a mailbagfs mount or its backing "
                           "directory (1 shares, ");
}

Test(samba_shares, clustering_needs_fileid_among_the_vfs_objects)
{
        mount_it();
        g_autoptr(GString) without = conf_with_global("    clustering = yes\n");
        add_share(without, "postoffice", harness.mnt, NULL, NULL);
        g_autofree char *without_conf = write_conf(without);
        g_auto(ToolRun) run = { 0 };
        run_samba(&run, without_conf, false);
        cr_expect_eq(run.status, 1);
        cr_expect_str_eq(run.out,
                         "po-check: samba-setting: [postoffice]: vfs objects = (empty), needs "
                         "fileid: with clustering = yes the same file gets different IDs on "
                         "different nodes, so their locks do not meet\n");
        g_auto(ToolRun) json = { 0 };
        run_samba(&json, without_conf, true);
        cr_expect_eq(json.status, 1);
        expect_in(json.out, "\"setting\":\"vfs objects\",\"found\":\"\",\"needed\":\"fileid\"");

        g_autoptr(GString) with = conf_with_global("    clustering = yes\n");
        add_share(with, "postoffice", harness.mnt, NULL, NULL);
        g_string_append(with, "    vfs objects = fileid\n");
        g_autofree char *with_conf = write_conf(with);
        expect_clean(with_conf);
}

/* A path with a substitution (%U) leads elsewhere for each client: said,
 * not checked. */
Test(samba_shares, a_path_that_changes_with_the_client_is_noted)
{
        mount_it();
        g_autoptr(GString) text = conf_with_global(NULL);
        g_autofree char *path = g_build_filename(harness.mnt, "%U", NULL);
        g_string_append_printf(text, "[mine]\n    path = %s\n", path);
        g_autofree char *conf = write_conf(text);
        g_auto(ToolRun) run = { 0 };
        run_samba(&run, conf, false);
        cr_expect_eq(run.status, 0);
        cr_expect_str_empty(run.out);
        g_autofree char *note = g_strdup_printf(
                "po-check: warning: share [mine]: its path %s changes with the client", path);
        expect_in(run.err, note);
}

/* --- what --samba refuses ---------------------------------------------- */

/* Runs po-check --samba with PATH holding only a testparm made of the
 * shell @script (and /usr/bin and /bin for what it runs), or with no
 * testparm at all (@script NULL). */
static void run_with_testparm(ToolRun *run, const char *script)
{
        g_autofree char *dir = g_dir_make_tmp("po-check-samba-XXXXXX", NULL);
        cr_assert_not_null(dir);
        g_autofree char *testparm = g_build_filename(dir, "testparm", NULL);
        g_autofree char *text = g_strdup_printf("#!/bin/sh\n%s\n", script ? script : "");
        cr_assert(!script || g_file_set_contents(testparm, text, -1, NULL));
        cr_assert(!script || chmod(testparm, 0755) == 0);
        g_autofree char *search = script ? g_strdup_printf("%s:/usr/bin:/bin", dir)
                                         : g_strdup(dir);
        g_setenv("PATH", search, TRUE);
        tool_run(run, "PO_CHECK", "--samba", NULL);
        unlink(testparm);
        rmdir(dir);
}

/* With that testparm: exit status 2, nothing on stdout, and @message. */
static void expect_testparm_error(const char *script, const char *message)
{
        g_auto(ToolRun) run = { 0 };
        run_with_testparm(&run, script);
        cr_expect_eq(run.status, 2);
        cr_expect_str_empty(run.out);
        cr_expect_str_eq(run.err, message);
}

Test(samba_errors, a_missing_testparm_is_a_clear_error)
{
        expect_testparm_error(NULL, "po-check: --samba: testparm not found in PATH: it comes "
                                    "with Samba (Debian: samba-common-bin)\n");
}

Test(samba_errors, output_that_is_not_testparm_s_is_an_error)
{
        expect_testparm_error("echo 'oplocks = no'",
                              "po-check: --samba: testparm's output: line 1: a parameter "
                              "before the first section\n");
}

/* Output without end is cut off, and testparm killed. */
Test(samba_errors, endless_output_is_stopped)
{
        expect_testparm_error("exec yes '[global]'",
                              "po-check: --samba: testparm on its default file printed more "
                              "than 16 MiB: stopped\n");
}

Test(samba_errors, a_configuration_testparm_cannot_load_is_an_error)
{
        g_auto(ToolRun) run = { 0 };
        tool_run(&run, "PO_CHECK", "--samba", "/nonexistent/smb.conf", "--json", NULL);
        cr_expect_eq(run.status, 2);
        cr_expect_str_empty(run.out);
        expect_in(run.err, "po-check: --samba: testparm on /nonexistent/smb.conf failed (exit "
                           "status 1): ");
        expect_in(run.err, "Error loading services.");
}

Test(samba_errors, samba_takes_no_directory_fix_or_profile)
{
        static const char *const calls[][3] = {
                { "--samba", "/etc/samba/smb.conf", "/srv/po" },
                { "--samba", "--fix", NULL },
                { "--samba", "--profile=/dev/null", NULL },
        };
        for (gsize i = 0; i < G_N_ELEMENTS(calls); i++) {
                g_auto(ToolRun) run = { 0 };
                tool_runv(&run, "PO_CHECK",
                          (const char *const[]){ calls[i][0], calls[i][1], calls[i][2], NULL });
                cr_expect_eq(run.status, 2, "%s %s", calls[i][1], run.err);
                expect_in(run.err, "po-check: --samba takes no DIR, --fix or --profile\n");
        }
}
