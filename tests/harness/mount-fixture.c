/* mount-fixture.c - mount-harness.c's steps as criterion fixtures. */
#include "mount-fixture.h"

#include <criterion/criterion.h>
#include <glib.h>
#include <string.h>

/* How much of the daemon's log a failed mount shows. */
#define LOG_TAIL_BYTES 2000

void mount_fixture_setup(MountHarness *h)
{
        int r = mount_harness_setup(h);
        cr_assert_eq(r, 0, "harness setup failed: %s", g_strerror(-r));
}

void mount_fixture_mount(MountHarness *h, const char *const *argv)
{
        int r = mount_harness_mount(h, argv);
        if (r == 0)
                return;
        g_autofree char *log = NULL;
        gsize len = 0;
        if (!g_file_get_contents(h->log, &log, &len, NULL))
                log = g_strdup("(none)");
        cr_assert_fail("mount of %s failed (%s); the daemon's log:\n%s", h->backing,
                       g_strerror(-r), len > LOG_TAIL_BYTES ? log + len - LOG_TAIL_BYTES : log);
}

void mount_fixture_start(MountHarness *h, const char *const *argv)
{
        mount_fixture_setup(h);
        mount_fixture_mount(h, argv);
}

void mount_fixture_expect_quiet(const MountHarness *h)
{
        g_autofree char *problems = mount_harness_log_problems(h);
        cr_expect_null(problems, "the daemon on %s logged problems:\n%s", h->mnt, problems);
}

/* The log's problems without the lines that contain one of @expected
 * (NULL-terminated; NULL: none) (caller frees), or NULL. */
static char *problems_but(const MountHarness *h, const char *const *expected)
{
        g_autofree char *problems = mount_harness_log_problems(h);
        if (!problems || !expected)
                return g_steal_pointer(&problems);
        g_auto(GStrv) lines = g_strsplit(problems, "\n", -1);
        g_autoptr(GString) left = g_string_new(NULL);
        for (char **line = lines; *line; line++) {
                bool known = !**line;
                for (const char *const *e = expected; !known && *e; e++)
                        known = strstr(*line, *e) != NULL;
                if (!known)
                        g_string_append_printf(left, "%s\n", *line);
        }
        return left->len ? g_strdup(left->str) : NULL;
}

void mount_fixture_stop_allowing(MountHarness *h, const char *const *expected_warnings)
{
        g_autofree char *problems = problems_but(h, expected_warnings);
        int status = mount_harness_unmount(h);
        mount_harness_teardown(h);
        cr_expect_null(problems, "daemon logged problems:\n%s", problems);
        cr_expect_eq(status, 0, "daemon exit status %d", status);
}

void mount_fixture_stop(MountHarness *h, const char *expected_warning)
{
        const char *const expected[] = {expected_warning, NULL};
        mount_fixture_stop_allowing(h, expected_warning ? expected : NULL);
}
