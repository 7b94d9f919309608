/* test-coherence.c - which GlusterFS client settings the daemon refuses
 * (fs/locking/coherence.c), on the text its .meta folder gives, and that a
 * local backing is not judged. The refusal of a real client left at its
 * defaults is in test-gluster.c. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "coherence.h"

/* As .meta/cmdline reads on a client mounted as docs/cluster.md says. */
static const char recipe_cmdline[] =
        "{ \n  \"Cmdlinestr\": \"glusterfs -N --volfile-server=127.0.0.2 --volfile-id=mailbag "
        "--attribute-timeout=0 --entry-timeout=0 --negative-timeout=0 "
        "--log-file=/var/log/glusterfs/c.log /srv/gl\"\n}";
static const char defaults_cmdline[] =
        "{ \n  \"Cmdlinestr\": \"glusterfs --process-name fuse --volfile-server=gl1 "
        "--volfile-id=/mail /srv/gl\"\n}";

/* The translators of a volume with the recipe's options off, and of one
 * left at GlusterFS 10's defaults. */
static const char *const recipe_types[] = {
        "protocol/client",
        "cluster/distribute",
        "performance/io-threads",
        "features/utime",
        "debug/io-stats",
        "meta",
        NULL,
};
static const char *const default_types[] = {
        "protocol/client",
        "cluster/distribute",
        "features/utime",
        "performance/write-behind",
        "performance/open-behind",
        "performance/quick-read",
        "performance/md-cache",
        "performance/io-threads",
        "debug/io-stats",
        "meta",
        NULL,
};

static void expect_names(const char *problems, const char *const *names, gsize count)
{
        cr_assert_not_null(problems);
        for (gsize i = 0; i < count; i++)
                cr_expect(strstr(problems, names[i]), "%s not named: %s", names[i], problems);
}

Test(coherence, the_recipe_is_accepted)
{
        cr_expect_null(coherence_gluster_problems(recipe_cmdline, recipe_types));
        /* Other spellings of the same settings. */
        cr_expect_null(coherence_gluster_problems("glusterfs --attribute-timeout 0 "
                                                  "--entry-timeout=0.0 --negative-timeout=0 "
                                                  "--fopen-keep-cache=no "
                                                  "--kernel-writeback-cache=off /srv/gl",
                                                  recipe_types));
}

Test(coherence, defaults_name_every_setting_to_change)
{
        g_autofree char *problems = coherence_gluster_problems(defaults_cmdline, default_types);
        static const char *const names[] = {
                "attribute-timeout=0",       "entry-timeout=0",         "negative-timeout=0",
                "performance.write-behind",  "performance.open-behind", "performance.quick-read",
                "performance.stat-prefetch",
        };
        expect_names(problems, names, G_N_ELEMENTS(names));
        cr_expect_null(strstr(problems, "io-threads"), "%s", problems);
        cr_expect_null(strstr(problems, "md-cache"), "named by its translator: %s", problems);
}

Test(coherence, each_setting_counts_on_its_own)
{
        g_autofree char *timeouts =
                coherence_gluster_problems("glusterfs --attribute-timeout=1 --entry-timeout=0 "
                                           "--negative-timeout=0 /srv/gl",
                                           recipe_types);
        cr_assert_not_null(timeouts);
        cr_expect(strstr(timeouts, "attribute-timeout=0"), "%s", timeouts);
        cr_expect_null(strstr(timeouts, "entry-timeout"), "%s", timeouts);
        cr_expect_null(strstr(timeouts, "performance."), "%s", timeouts);

        static const char *const one_cache[] = { "performance/io-cache", NULL };
        g_autofree char *volume = coherence_gluster_problems(recipe_cmdline, one_cache);
        cr_assert_not_null(volume);
        cr_expect(strstr(volume, "performance.io-cache"), "%s", volume);
        cr_expect_null(strstr(volume, "timeout"), "%s", volume);

        g_autofree char *keep = coherence_gluster_problems("glusterfs --attribute-timeout=0 "
                                                           "--entry-timeout=0 --negative-timeout=0 "
                                                           "--fopen-keep-cache /srv/gl",
                                                           recipe_types);
        cr_assert_not_null(keep);
        cr_expect(strstr(keep, "fopen-keep-cache=no"), "%s", keep);
}

Test(coherence, a_local_directory_is_not_judged)
{
        char dir[] = "/tmp/mailbagfs-coherence-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        g_autofree char *problem = coherence_check(fd);
        close(fd);
        rmdir(dir);
        cr_expect_null(problem, "%s", problem);
}
